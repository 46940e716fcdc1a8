#include <gtest/gtest.h>
TEST(Placeholdercluster, Empty) {}
