#include <gtest/gtest.h>
TEST(Placeholderemit, Empty) {}
