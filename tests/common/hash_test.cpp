#include "latentkv/hash.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/expect_error.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

// Test vectors from FIPS 180-4 / NIST CSRC examples.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million.data(), million.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalUpdatesMatchOneShot) {
  std::string msg;
  for (int i = 0; i < 1000; ++i) msg += static_cast<char>(i * 7 + 3);
  const std::string want = sha256_hex(msg.data(), msg.size());
  for (size_t chunk : {1, 3, 55, 56, 63, 64, 65, 200}) {
    Sha256 h;
    for (size_t at = 0; at < msg.size(); at += chunk) {
      h.update(std::string_view(msg).substr(at, chunk));
    }
    EXPECT_EQ(h.hex_digest(), want) << "chunk " << chunk;
  }
}

TEST(Sha256, HashesFiles) {
  const std::string path = testing::temp_dir() + "/hash_me.txt";
  std::ofstream(path) << "abc";
  EXPECT_EQ(sha256_file(path), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_LKV_ERROR(sha256_file(testing::temp_dir() + "/nope.txt"), StatusCode::kNotFound,
                   "nope.txt: cannot open");
}

}  // namespace
}  // namespace latentkv
