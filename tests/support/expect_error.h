// EXPECT_LKV_ERROR: asserts that a statement throws latentkv::Error with a given code and a
// one-line message containing a given fragment.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "latentkv/status.h"

#define EXPECT_LKV_ERROR(statement, expected_code, fragment)                                   \
  do {                                                                                         \
    try {                                                                                      \
      statement;                                                                               \
      ADD_FAILURE() << #statement " did not throw";                                            \
    } catch (const ::latentkv::Error& lkv_e_) {                                                \
      const std::string lkv_msg_ = lkv_e_.what();                                              \
      EXPECT_EQ(lkv_e_.code(), (expected_code))                                                \
          << "code " << ::latentkv::status_code_name(lkv_e_.code()) << ": " << lkv_msg_;       \
      EXPECT_NE(lkv_msg_.find(fragment), std::string::npos)                                    \
          << "message \"" << lkv_msg_ << "\" lacks \"" << (fragment) << "\"";                  \
      EXPECT_EQ(lkv_msg_.find('\n'), std::string::npos) << "multi-line message: " << lkv_msg_; \
    }                                                                                          \
  } while (0)
