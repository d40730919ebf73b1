// Tests of the hand-written split-pattern matchers against the regex
// semantics they reproduce. Expected splits are worked out by hand from the
// regular expressions (leftmost alternative first, greedy with
// backtracking), independently of the code.
#include "shared/tokenizer/split_pattern.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace blockserve::tokenizer {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> SplitWith(SplitPattern::Kind kind, absl::string_view text) {
  std::vector<std::string> pieces;
  SplitPattern(kind).Split(text, [&](absl::string_view piece) { pieces.emplace_back(piece); });
  return pieces;
}

std::vector<std::string> Gpt2(absl::string_view text) {
  return SplitWith(SplitPattern::Kind::kGpt2, text);
}

TEST(Gpt2SplitTest, WordsKeepOneLeadingSpace) {
  EXPECT_THAT(Gpt2("Hello world, it's 42!"),
              ElementsAre("Hello", " world", ",", " it", "'s", " 42", "!"));
}

TEST(Gpt2SplitTest, ContractionsAreCaseSensitive) {
  EXPECT_THAT(Gpt2("we'll WE'LL I'm I'M"),
              ElementsAre("we", "'ll", " WE", "'", "LL", " I", "'m", " I", "'", "M"));
  // 's matches even inside a word, as in the original pattern.
  EXPECT_THAT(Gpt2("'sa"), ElementsAre("'s", "a"));
  EXPECT_THAT(Gpt2("''s"), ElementsAre("''", "s"));
}

TEST(Gpt2SplitTest, TrailingWhitespaceLookahead) {
  // \s+(?!\S): the last space of a run goes with the next word.
  EXPECT_THAT(Gpt2("a   b"), ElementsAre("a", "  ", " b"));
  // At the end of the text the whole run is one piece.
  EXPECT_THAT(Gpt2("a   "), ElementsAre("a", "   "));
  // A single whitespace character before a word that is not a space: \s+.
  EXPECT_THAT(Gpt2("a\tb"), ElementsAre("a", "\t", "b"));
  EXPECT_THAT(Gpt2("a \n\nb"), ElementsAre("a", " \n", "\n", "b"));
  EXPECT_THAT(Gpt2("\n"), ElementsAre("\n"));
}

TEST(Gpt2SplitTest, UnicodeLettersNumbersAndSpaces) {
  // Cyrillic letters are \p{L}; U+00BD (one half) is \p{N}; U+3000 is \s.
  EXPECT_THAT(Gpt2("\xD0\xBD\xD0\xB0 4 \xC2\xBD"),
              ElementsAre("\xD0\xBD\xD0\xB0", " 4", " \xC2\xBD"));
  // Only U+0020 can lead a word, so the second U+3000 stands alone.
  EXPECT_THAT(Gpt2("a\xE3\x80\x80\xE3\x80\x80"
                   "b"),
              ElementsAre("a", "\xE3\x80\x80", "\xE3\x80\x80", "b"));
  // Only U+0020 is the optional space before a word: U+00A0 stays apart.
  EXPECT_THAT(Gpt2("x\xC2\xA0y"), ElementsAre("x", "\xC2\xA0", "y"));
  // A combining mark (Mn) is not a letter.
  EXPECT_THAT(Gpt2("e\xCC\x81t"), ElementsAre("e", "\xCC\x81", "t"));
  // Emoji are neither letters nor numbers.
  EXPECT_THAT(Gpt2(" \xF0\x9F\xA6\x99.cpp"), ElementsAre(" \xF0\x9F\xA6\x99.", "cpp"));
}

TEST(Cl100kSplitTest, Llama3Semantics) {
  const auto split = [](absl::string_view text) {
    return SplitWith(SplitPattern::Kind::kCl100k, text);
  };
  // Case-insensitive contractions; a non-letter may lead a word.
  EXPECT_THAT(split("WE'LL go"), ElementsAre("WE", "'LL", " go"));
  EXPECT_THAT(split("(hello)"), ElementsAre("(hello", ")"));
  // Numbers in groups of at most three.
  EXPECT_THAT(split("1234567"), ElementsAre("123", "456", "7"));
  // Line breaks: \s*[\r\n]+ takes whitespace up to the last line break.
  EXPECT_THAT(split("a \n\n  b"), ElementsAre("a", " \n\n", " ", " b"));
  EXPECT_THAT(split("x.\n\ny"), ElementsAre("x", ".\n\n", "y"));
}

TEST(Qwen2SplitTest, SingleDigits) {
  EXPECT_THAT(SplitWith(SplitPattern::Kind::kQwen2, "1234"), ElementsAre("1", "2", "3", "4"));
}

TEST(SplitPatternTest, RecognizesOnlyKnownRegexes) {
  EXPECT_TRUE(SplitPattern::FromRegex(kGpt2SplitRegex).has_value());
  EXPECT_TRUE(SplitPattern::FromRegex(kCl100kSplitRegex).has_value());
  EXPECT_TRUE(SplitPattern::FromRegex(kQwen2SplitRegex).has_value());
  EXPECT_FALSE(SplitPattern::FromRegex("\\s+").has_value());
}

}  // namespace
}  // namespace blockserve::tokenizer
