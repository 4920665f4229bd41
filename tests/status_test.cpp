#include "latentkv/status.h"

#include <gtest/gtest.h>

namespace latentkv {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return Status(StatusCode::kInvalidArgument, str_cat("value ", x, " must be > 0"));
  return x;
}

Status check_twice(int x) {
  LKV_RETURN_IF_ERROR(parse_positive(x).status());
  return Status::Ok();
}

TEST(Status, CarriesCodeAndMessage) {
  const Status s(StatusCode::kCorruptData, "bad magic");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.to_string(), "corrupt_data: bad magic");
  EXPECT_TRUE(Status::Ok().ok());
}

TEST(Status, ResultHoldsValueOrError) {
  EXPECT_EQ(parse_positive(3).value(), 3);
  const auto bad = parse_positive(-1);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "value -1 must be > 0");
  EXPECT_THROW(parse_positive(0).value_or_throw(), Error);
}

TEST(Status, ReturnIfErrorPropagates) {
  EXPECT_TRUE(check_twice(1).ok());
  EXPECT_EQ(check_twice(0).code(), StatusCode::kInvalidArgument);
}

TEST(Status, ExceptionConvertsAtTheEdge) {
  Status s;
  try {
    LKV_CHECK_ARG(1 + 1 == 3, "arithmetic is ", "broken");
  } catch (...) {
    s = status_from_exception();
  }
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "arithmetic is broken");
}

}  // namespace
}  // namespace latentkv
