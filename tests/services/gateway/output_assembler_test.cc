// OutputAssembler: UTF-8-safe text pieces, stop sequences across tokens and
// blocks, token truncation at the stop, ids unknown to the tokenizer.
#include "services/gateway/output_assembler.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve::services {
namespace {

class OutputAssemblerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto loaded = Tokenizer::FromFile(std::string(BLOCKSERVE_TEST_DATA_DIR) +
                                      "/services/tiny_bpe512/tokenizer.json");
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    tokenizer_ = loaded->release();
  }
  static std::vector<int32_t> Encode(const std::string& text) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return *ids;
  }
  // Feeds `ids` in blocks of `block` tokens; returns the text and tokens
  // emitted and whether a stop sequence ended the output.
  struct Output {
    std::string text;
    std::vector<int32_t> tokens;
    bool stopped = false;
    std::string stop_sequence;
  };
  static Output Feed(OutputAssembler& assembler, const std::vector<int32_t>& ids, size_t block) {
    Output out;
    for (size_t i = 0; i < ids.size() && !out.stopped; i += block) {
      const size_t n = std::min(block, ids.size() - i);
      OutputAssembler::Delta d = assembler.Append(absl::MakeConstSpan(ids).subspan(i, n), {});
      out.text += d.text;
      out.tokens.insert(out.tokens.end(), d.tokens.begin(), d.tokens.end());
      out.stopped = d.stopped;
      out.stop_sequence = d.stop_sequence;
    }
    if (!out.stopped) out.text += assembler.Finish();
    return out;
  }
  static Tokenizer* tokenizer_;
};

Tokenizer* OutputAssemblerTest::tokenizer_ = nullptr;

TEST_F(OutputAssemblerTest, TextPiecesConcatenateToTheDecodedText) {
  const std::string text = "Hello there, caf\xC3\xA9 and \xF0\x9F\x98\x80 emoji!";
  const std::vector<int32_t> ids = Encode(text);
  for (size_t block : {1u, 2u, 4u, 8u}) {
    OutputAssembler assembler(tokenizer_, {}, /*keep_special_tokens=*/false);
    Output out = Feed(assembler, ids, block);
    EXPECT_EQ(out.text, text) << "block " << block;
    EXPECT_EQ(out.tokens, ids);
    EXPECT_FALSE(out.stopped);
  }
}

TEST_F(OutputAssemblerTest, EveryPieceIsWholeUtf8) {
  const std::vector<int32_t> ids = Encode("\xF0\x9F\x98\x80\xF0\x9F\x98\x81");  // two emoji
  OutputAssembler assembler(tokenizer_, {}, false);
  for (int32_t id : ids) {
    OutputAssembler::Delta d = assembler.Append({id}, {});
    // Byte-level tokens of a 4-byte character: nothing until it completes.
    EXPECT_TRUE(d.text.empty() || d.text.size() % 4 == 0) << d.text.size();
  }
}

TEST_F(OutputAssemblerTest, StopSequenceSpanningBlocksEndsTheOutputAtItsLastToken) {
  const std::string text = "one two three four five";
  const std::vector<int32_t> ids = Encode(text);
  OutputAssembler assembler(tokenizer_, {"three"}, false);
  Output out = Feed(assembler, ids, /*block=*/2);
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.stop_sequence, "three");
  EXPECT_EQ(out.text, "one two ");
  // The tokens end with the one that completed "three".
  ASSERT_FALSE(out.tokens.empty());
  auto decoded = tokenizer_->Decode(out.tokens, false);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->substr(decoded->size() - 5), "three") << *decoded;
  EXPECT_LT(out.tokens.size(), ids.size());
  EXPECT_EQ(assembler.generated_tokens(), static_cast<int>(out.tokens.size()));
}

TEST_F(OutputAssemblerTest, SpecialTokensAreSkippedUnlessKept) {
  std::vector<int32_t> ids = Encode("ab");
  ids.push_back(0);  // <|endoftext|>
  OutputAssembler skip(tokenizer_, {}, false);
  EXPECT_EQ(Feed(skip, ids, 4).text, "ab");
  OutputAssembler keep(tokenizer_, {}, true);
  EXPECT_EQ(Feed(keep, ids, 4).text, "ab<|endoftext|>");
}

TEST_F(OutputAssemblerTest, IdsTheTokenizerDoesNotKnowGiveNoText) {
  OutputAssembler assembler(tokenizer_, {}, false);
  std::vector<int32_t> ids = Encode("x");
  ids.push_back(tokenizer_->vocab_size() + 10);
  Output out = Feed(assembler, ids, 4);
  EXPECT_EQ(out.text, "x");
  EXPECT_EQ(out.tokens.size(), ids.size());
}

TEST_F(OutputAssemblerTest, WithoutATokenizerOnlyTokensAndLogprobs) {
  OutputAssembler assembler(nullptr, {}, false);
  OutputAssembler::Delta d = assembler.Append({5, 6, 7}, {-1.0f, -2.0f, -3.0f});
  EXPECT_EQ(d.tokens, (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(d.logprobs, (std::vector<float>{-1.0f, -2.0f, -3.0f}));
  EXPECT_TRUE(d.text.empty());
  EXPECT_EQ(assembler.Finish(), "");
}

}  // namespace
}  // namespace blockserve::services
