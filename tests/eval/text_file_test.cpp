#include "latentkv/eval/text_file.h"

#include <gtest/gtest.h>

#include <fstream>

#include "latentkv/status.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

std::string write_file(const std::string& name, const std::string& bytes) {
  const std::string path = testing::temp_dir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

StatusCode code_of(const std::string& path, std::string* message) {
  try {
    read_text_file(path);
  } catch (const Error& e) {
    *message = e.what();
    return e.code();
  }
  return StatusCode::kOk;
}

TEST(TextFile, ReadsUtf8) {
  const std::string text = "Grüße, 世界 🙂\n";
  EXPECT_EQ(read_text_file(write_file("ok.txt", text)), text);
}

TEST(TextFile, RejectsMissingEmptyNonUtf8AndDirectories) {
  std::string msg;
  EXPECT_EQ(code_of(testing::temp_dir() + "/nope.txt", &msg), StatusCode::kNotFound);
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_EQ(code_of(write_file("empty.txt", ""), &msg), StatusCode::kInvalidArgument);
  EXPECT_NE(msg.find("is empty"), std::string::npos) << msg;
  EXPECT_EQ(code_of(write_file("latin1.txt", "caf\xe9 au lait"), &msg),
            StatusCode::kInvalidArgument);
  EXPECT_NE(msg.find("not valid UTF-8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 3"), std::string::npos) << msg;
  EXPECT_EQ(code_of(testing::temp_dir(), &msg), StatusCode::kIoError);
}

}  // namespace
}  // namespace latentkv
