#include <gtest/gtest.h>
TEST(Placeholderrails, Empty) {}
