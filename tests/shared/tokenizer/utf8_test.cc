// Tests of the UTF-8 helpers: validation and the lossy repair that both
// Encode (invalid input) and Decode (tokens cut inside a character) rely on.
// Expected outputs follow the Unicode Standard's "maximal subpart" practice
// (the same as Python's bytes.decode("utf-8", "replace")), written by hand.
#include "shared/tokenizer/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace blockserve::tokenizer {
namespace {

std::string Lossy(absl::string_view bytes) {
  std::string out;
  AppendUtf8Lossy(bytes, &out);
  return out;
}

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidTextIsUnchanged) {
  const std::string text = "plain ASCII, caf\xC3\xA9, \xE4\xB8\xAD, \xF0\x9F\xA6\x99";
  EXPECT_TRUE(IsValidUtf8(text));
  EXPECT_EQ(Lossy(text), text);
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));
}

TEST(Utf8Test, MaximalSubpartsBecomeOneReplacementEach) {
  // A lone continuation byte.
  EXPECT_EQ(Lossy("a\x80z"), "a" + kFffd + "z");
  // Bytes that never start a sequence.
  EXPECT_EQ(Lossy("\xC0\xC1\xF5\xFF"), kFffd + kFffd + kFffd + kFffd);
  // A truncated 3-byte sequence followed by ASCII: one U+FFFD.
  EXPECT_EQ(Lossy("\xE2\x82z"), kFffd + "z");
  // Truncated at the end of the text.
  EXPECT_EQ(Lossy("ok\xF0\x9F\xA6"), "ok" + kFffd);
  // Overlong (E0 80) and surrogate (ED A0) second bytes are not part of a
  // valid prefix: the lead byte alone is replaced, then the continuation.
  EXPECT_EQ(Lossy("\xE0\x80\x80"), kFffd + kFffd + kFffd);
  EXPECT_EQ(Lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);
  // Above U+10FFFF.
  EXPECT_EQ(Lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));
  EXPECT_FALSE(IsValidUtf8("abcdefgh\xC3"));
}

TEST(Utf8Test, DecodePrefixTellsIncompleteFromInvalid) {
  Utf8PrefixStep step = DecodeUtf8Prefix("\xE4\xB8", 0);
  EXPECT_TRUE(step.incomplete);
  step = DecodeUtf8Prefix("\xE4\xB8\xAD", 0);
  EXPECT_FALSE(step.incomplete);
  EXPECT_TRUE(step.step.valid);
  EXPECT_EQ(step.step.code_point, 0x4E2Du);
  EXPECT_EQ(step.step.length, 3);
  step = DecodeUtf8Prefix("\xE4z", 0);
  EXPECT_FALSE(step.incomplete);
  EXPECT_FALSE(step.step.valid);
  EXPECT_EQ(step.step.length, 1);
}

TEST(Utf8Test, AppendUtf8EncodesEveryLength) {
  std::string out;
  AppendUtf8(0x41, &out);
  AppendUtf8(0xE9, &out);
  AppendUtf8(0x4E2D, &out);
  AppendUtf8(0x1F999, &out);
  EXPECT_EQ(out, "A\xC3\xA9\xE4\xB8\xAD\xF0\x9F\xA6\x99");
}

}  // namespace
}  // namespace blockserve::tokenizer
