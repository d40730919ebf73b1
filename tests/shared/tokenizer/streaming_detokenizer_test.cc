// Tests of StreamingDetokenizer: pieces are always whole UTF-8 characters,
// multi-byte characters split across tokens are held back until complete,
// and the concatenated pieces equal Tokenizer::Decode of the whole stream.
#include "shared/tokenizer/streaming_detokenizer.h"

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/tokenizer/utf8.h"
#include "tests/shared/tokenizer/tokenizer_test_util.h"

namespace blockserve {
namespace {

using ::blockserve::testing::ReferenceTokenizer;
using ::testing::HasSubstr;

std::vector<int32_t> Encode(const Tokenizer& tokenizer, absl::string_view text) {
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>();
}

// Pushes ids one at a time; checks every piece is valid UTF-8 and returns
// the pieces.
std::vector<std::string> StreamOneByOne(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                                        bool skip_special = false) {
  StreamingDetokenizer detokenizer(tokenizer, skip_special);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) {
    absl::StatusOr<std::string> piece = detokenizer.Push(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    if (!piece.ok()) break;
    EXPECT_TRUE(tokenizer::IsValidUtf8(*piece));
    EXPECT_LE(detokenizer.pending_bytes(), 3u);
    pieces.push_back(*piece);
  }
  pieces.push_back(detokenizer.Finish());
  EXPECT_EQ(detokenizer.pending_bytes(), 0u);
  return pieces;
}

std::string Join(const std::vector<std::string>& pieces) {
  std::string out;
  for (const std::string& piece : pieces) out += piece;
  return out;
}

TEST(StreamingDetokenizerTest, HoldsBackCharactersSplitAcrossTokens) {
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  // U+1F999 LLAMA is split into several byte tokens by GPT-2 BPE.
  const std::string llama = "\xF0\x9F\xA6\x99";
  const std::vector<int32_t> ids = Encode(gpt2, "a" + llama + "b");
  ASSERT_GE(ids.size(), 3u);
  const std::vector<std::string> pieces = StreamOneByOne(gpt2, ids);
  // No piece contains part of the llama: it appears whole in exactly one.
  int whole = 0;
  for (const std::string& piece : pieces) {
    if (piece.find(llama) != std::string::npos) ++whole;
  }
  EXPECT_EQ(whole, 1);
  EXPECT_EQ(Join(pieces), "a" + llama + "b");
  // Some pushes had to return nothing while the character was incomplete.
  EXPECT_THAT(pieces, ::testing::Contains(""));
}

TEST(StreamingDetokenizerTest, ConcatenationEqualsDecode) {
  std::mt19937 rng(5);
  const std::vector<std::string> samples = {
      "Hello, world! "
      "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C",
      "\xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F emoji",
      "\xE1\x9E\x80\xE1\x9E\xB6\xE1\x9E\x93\xE1\x9F\x8B Khmer",
      "Cu\xCC\x9B\xCC\x89"
      "a Vie\xCC\xA3\xCC\x82t<|endoftext|>next",
  };
  for (const char* name : {"gpt2", "gpt-neox-20b"}) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    for (const std::string& sample : samples) {
      const std::vector<int32_t> ids = Encode(tokenizer, sample);
      for (const bool skip : {false, true}) {
        EXPECT_EQ(Join(StreamOneByOne(tokenizer, ids, skip)), tokenizer.Decode(ids, skip).value());
      }
    }
    // Random id streams, including ones that cut characters and leave
    // invalid byte sequences: still equal to Decode, piece by piece valid.
    for (int round = 0; round < 200; ++round) {
      std::vector<int32_t> ids;
      const int length = static_cast<int>(rng() % 12);
      for (int i = 0; i < length; ++i) {
        // Mostly low ids (nearly all single-byte tokens in both
        // vocabularies), some arbitrary tokens.
        ids.push_back(rng() % 3 == 0 ? static_cast<int32_t>(rng() % tokenizer.vocab_size())
                                     : static_cast<int32_t>(rng() % 256));
      }
      EXPECT_EQ(Join(StreamOneByOne(tokenizer, ids)), tokenizer.Decode(ids, false).value());
    }
  }
}

TEST(StreamingDetokenizerTest, PushingSpansEqualsPushingOneByOne) {
  const Tokenizer& neox = ReferenceTokenizer("gpt-neox-20b");
  const std::vector<int32_t> ids =
      Encode(neox, "Stre\xC3\xA4m \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x9A\x80!");
  StreamingDetokenizer detokenizer(neox);
  std::string text;
  for (size_t i = 0; i < ids.size(); i += 3) {
    const size_t count = std::min<size_t>(3, ids.size() - i);
    absl::StatusOr<std::string> piece =
        detokenizer.Push(absl::MakeConstSpan(ids.data() + i, count));
    ASSERT_TRUE(piece.ok()) << piece.status();
    text += *piece;
  }
  text += detokenizer.Finish();
  EXPECT_EQ(text, "Stre\xC3\xA4m \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\x9A\x80!");
}

TEST(StreamingDetokenizerTest, DanglingPartialCharacterBecomesReplacement) {
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  const std::vector<int32_t> ids = Encode(gpt2, "x\xF0\x9F\xA6\x99");
  ASSERT_GE(ids.size(), 3u);
  StreamingDetokenizer detokenizer(gpt2);
  std::string text;
  // Everything but the last token: the llama stays incomplete.
  for (size_t i = 0; i + 1 < ids.size(); ++i) text += *detokenizer.Push(ids[i]);
  EXPECT_EQ(text, "x");
  EXPECT_GT(detokenizer.pending_bytes(), 0u);
  EXPECT_EQ(detokenizer.Finish(), "\xEF\xBF\xBD");
  // The detokenizer starts over after Finish.
  EXPECT_EQ(*detokenizer.Push(ids[0]), "x");
}

TEST(StreamingDetokenizerTest, UnknownIdIsAnErrorAndChangesNothing) {
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  const std::vector<int32_t> ids = Encode(gpt2, "\xF0\x9F\xA6\x99");
  StreamingDetokenizer detokenizer(gpt2);
  ASSERT_TRUE(detokenizer.Push(ids[0]).ok());
  const size_t pending = detokenizer.pending_bytes();
  const absl::StatusOr<std::string> bad = detokenizer.Push(std::vector<int32_t>{ids[1], 99999});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("99999"));
  EXPECT_EQ(detokenizer.pending_bytes(), pending);
  std::string rest;
  for (size_t i = 1; i < ids.size(); ++i) rest += *detokenizer.Push(ids[i]);
  EXPECT_EQ(rest, "\xF0\x9F\xA6\x99");
}

TEST(StreamingDetokenizerTest, SkipsSpecialTokensWhenAsked) {
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  const std::vector<int32_t> ids = Encode(gpt2, "end<|endoftext|>");
  EXPECT_EQ(Join(StreamOneByOne(gpt2, ids, /*skip_special=*/true)), "end");
  EXPECT_EQ(Join(StreamOneByOne(gpt2, ids, /*skip_special=*/false)), "end<|endoftext|>");
}

}  // namespace
}  // namespace blockserve
