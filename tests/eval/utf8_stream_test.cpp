#include "latentkv/eval/utf8_stream.h"

#include <gtest/gtest.h>

namespace latentkv {
namespace {

TEST(Utf8Stream, HoldsBackSplitCharacters) {
  Utf8Stream s;
  const std::string euro = "\xE2\x82\xAC";       // 3 bytes
  const std::string smile = "\xF0\x9F\x99\x82";  // 4 bytes
  EXPECT_EQ(s.push("a" + euro.substr(0, 1)), "a");
  EXPECT_EQ(s.push(euro.substr(1, 1)), "");
  EXPECT_EQ(s.push(euro.substr(2) + "b" + smile.substr(0, 2)), euro + "b");
  EXPECT_EQ(s.push(smile.substr(2, 1)), "");
  EXPECT_EQ(s.push(smile.substr(3)), smile);
  EXPECT_EQ(s.flush(), "");
}

TEST(Utf8Stream, EveryByteSplitReassemblesTheText) {
  const std::string text = "Grüße — 世界 🙂!";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    Utf8Stream s;
    std::string out = s.push(text.substr(0, cut));
    out += s.push(text.substr(cut));
    EXPECT_EQ(out + s.flush(), text);
    EXPECT_EQ(out, text);  // the text ends with a whole character
  }
}

TEST(Utf8Stream, PassesInvalidBytesAndFlushesIncompleteTail) {
  Utf8Stream s;
  EXPECT_EQ(s.push("x\x80y"), "x\x80y");  // stray continuation byte
  EXPECT_EQ(s.push("\xFF"), "\xFF");      // never valid: nothing to wait for
  EXPECT_EQ(s.push("z\xE2\x82"), "z");
  EXPECT_EQ(s.flush(), "\xE2\x82");
}

}  // namespace
}  // namespace latentkv
