#include "engine/base/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace amaters {
namespace {

// Test vectors from RFC 3720 §B.4 (iSCSI CRC32C) and the common "123456789" check value.
TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string inc;
  for (int i = 0; i < 32; ++i) inc.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(inc), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  std::string s = "the quick brown fox jumps over the lazy dog, many times over";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    uint32_t a = Crc32cExtend(0, s.data(), cut);
    EXPECT_EQ(Crc32cExtend(a, s.data() + cut, s.size() - cut), Crc32c(s)) << cut;
  }
}

// The hardware path (when the CPU has one) and the software path agree on every length and
// alignment, including the byte-wise tails.
TEST(Crc32c, PortableMatchesDispatched) {
  std::string s;
  uint32_t x = 12345;  // fixed LCG: the same bytes on every run
  for (int i = 0; i < 300; ++i) {
    x = x * 1103515245u + 12345u;
    s.push_back(static_cast<char>(x >> 24));
  }
  for (size_t off = 0; off < 9; ++off) {
    for (size_t len = 0; off + len <= s.size(); len += 7) {
      EXPECT_EQ(Crc32cExtend(0x1234u, s.data() + off, len),
                Crc32cExtendPortable(0x1234u, s.data() + off, len))
          << off << " " << len;
    }
  }
}

}  // namespace
}  // namespace amaters
