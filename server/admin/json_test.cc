#include "server/admin/json.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "gtest/gtest.h"

namespace amaters::server {
namespace {

TEST(JsonString, PlainAndEscapes) {
  EXPECT_EQ(JsonString(""), "\"\"");
  EXPECT_EQ(JsonString("leader"), "\"leader\"");
  EXPECT_EQ(JsonString("say \"hi\""), "\"say \\\"hi\\\"\"");
  EXPECT_EQ(JsonString("C:\\data"), "\"C:\\\\data\"");
  EXPECT_EQ(JsonString("a/b"), "\"a/b\"");  // '/' needs no escape
  EXPECT_EQ(JsonString("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
}

TEST(JsonString, EveryOtherControlCharacterIsUnicodeEscaped) {
  for (int c = 0; c < 0x20; ++c) {
    if (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') continue;
    const std::string in(1, static_cast<char>(c));
    char expected[16];
    std::snprintf(expected, sizeof(expected), "\"\\u%04x\"", c);
    EXPECT_EQ(JsonString(in), expected) << "byte " << c;
  }
  EXPECT_EQ(JsonString(std::string("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(JsonString("\x7f"), "\"\x7f\"");  // DEL is allowed unescaped
}

TEST(JsonString, ValidUtf8PassesThrough) {
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");                 // U+00E9
  EXPECT_EQ(JsonString("\xe2\x82\xac"), "\"\xe2\x82\xac\"");                // U+20AC
  EXPECT_EQ(JsonString("\xef\xbf\xbd"), "\"\xef\xbf\xbd\"");                // U+FFFD
  EXPECT_EQ(JsonString("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");        // U+1F600
  EXPECT_EQ(JsonString("\xf4\x8f\xbf\xbf"), "\"\xf4\x8f\xbf\xbf\"");        // U+10FFFF
}

TEST(JsonString, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(JsonString("\x80"), "\"\\ufffd\"");                 // stray continuation byte
  EXPECT_EQ(JsonString("\xff"), "\"\\ufffd\"");                 // never valid
  EXPECT_EQ(JsonString("\xc0\x80"), "\"\\ufffd\\ufffd\"");      // overlong NUL
  EXPECT_EQ(JsonString("\xe0\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\"");      // overlong
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");      // surrogate D800
  EXPECT_EQ(JsonString("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  EXPECT_EQ(JsonString("a\xe2\x82"), "\"a\\ufffd\\ufffd\"");    // truncated at the end
  EXPECT_EQ(JsonString("\xe2\x82x"), "\"\\ufffd\\ufffdx\"");    // truncated in the middle
  EXPECT_EQ(JsonString("\xc3\"\n"), "\"\\ufffd\\\"\\n\"");      // escapes still apply after
}

TEST(JsonObject, BuildsMembersInOrder) {
  EXPECT_EQ(JsonObject().Build(), "{}");
  EXPECT_EQ(JsonObject()
                .AddString("s", "v\"")
                .AddUint("n", 18446744073709551615ull)
                .AddBool("t", true)
                .AddBool("f", false)
                .AddDouble("d", 1.23456, 3)
                .AddRaw("o", "{\"a\":[]}")
                .AddString("k\n", "")
                .Build(),
            "{\"s\":\"v\\\"\",\"n\":18446744073709551615,\"t\":true,\"f\":false,"
            "\"d\":1.235,\"o\":{\"a\":[]},\"k\\n\":\"\"}");
}

TEST(JsonObject, NonFiniteDoublesAreNull) {
  EXPECT_EQ(JsonObject().AddDouble("x", std::nan(""), 3).Build(), "{\"x\":null}");
  EXPECT_EQ(JsonObject().AddDouble("x", std::numeric_limits<double>::infinity(), 3).Build(),
            "{\"x\":null}");
  EXPECT_EQ(JsonObject().AddDouble("x", -0.5, 1).Build(), "{\"x\":-0.5}");
}

}  // namespace
}  // namespace amaters::server
