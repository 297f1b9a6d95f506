#include "base/status.h"

#include <gtest/gtest.h>

namespace rtnq {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Err("{} is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  RTNQ_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(Status, PropagatesErrorsWithContext) {
  EXPECT_TRUE(Status::Ok().ok());
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "3 is odd");
  EXPECT_EQ(r.status().WithContext("f.bin").message(), "f.bin: 3 is odd");
  EXPECT_EQ(*Quarter(8), 2);
}

}  // namespace
}  // namespace rtnq
