// Tests of Tokenizer: the reference tokenizations shipped with the
// GPT-2 and GPT-NeoX-20B tokenizer.json files (produced by Hugging Face
// `tokenizers`), round trips, added tokens, invalid input, load errors and
// concurrent use.
#include "shared/tokenizer/tokenizer.h"

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shared/tokenizer/utf8.h"
#include "tests/shared/tokenizer/tokenizer_test_util.h"

namespace blockserve {
namespace {

using ::blockserve::testing::IdOf;
using ::blockserve::testing::MinimalTokenizerJson;
using ::blockserve::testing::ReadTestFile;
using ::blockserve::testing::ReferenceTokenizer;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kTokenizers[] = {"gpt2", "gpt-neox-20b"};

std::vector<int32_t> EncodeOrDie(const Tokenizer& tokenizer, absl::string_view text,
                                 const EncodeOptions& options = {}) {
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text, options);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>();
}

std::string DecodeOrDie(const Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                        bool skip_special = false) {
  absl::StatusOr<std::string> text = tokenizer.Decode(ids, skip_special);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : std::string();
}

// --- Reference cases ------------------------------------------------------

struct ReferenceCase {
  std::string text;
  std::vector<int32_t> ids;
};

// cases.inp holds the texts, each followed by a line "__ggml_vocab_test__";
// line i of cases.out holds the ids of text i.
std::vector<ReferenceCase> LoadReferenceCases(const std::string& name) {
  const std::string dir = std::string(BLOCKSERVE_TEST_DATA_DIR) + "/tokenizers/" + name + "/";
  const std::string inputs = ReadTestFile(dir + "cases.inp");
  const std::string outputs = ReadTestFile(dir + "cases.out");
  std::vector<std::string> texts = absl::StrSplit(inputs, "\n__ggml_vocab_test__\n");
  EXPECT_EQ(texts.back(), "");  // after the last separator
  texts.pop_back();
  std::vector<std::string> lines = absl::StrSplit(outputs, '\n');
  EXPECT_EQ(lines.back(), "");
  lines.pop_back();
  EXPECT_EQ(texts.size(), lines.size());
  std::vector<ReferenceCase> cases;
  for (size_t i = 0; i < texts.size() && i < lines.size(); ++i) {
    ReferenceCase c{texts[i], {}};
    for (absl::string_view piece : absl::StrSplit(lines[i], ' ', absl::SkipEmpty())) {
      int32_t id;
      EXPECT_TRUE(absl::SimpleAtoi(piece, &id)) << piece;
      c.ids.push_back(id);
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

TEST(TokenizerTest, MatchesEveryReferenceCase) {
  for (const char* name : kTokenizers) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    const std::vector<ReferenceCase> cases = LoadReferenceCases(name);
    EXPECT_EQ(cases.size(), 46u) << name;
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_EQ(EncodeOrDie(tokenizer, cases[i].text), cases[i].ids)
          << name << " case " << i << ": \"" << cases[i].text << "\"";
    }
  }
}

TEST(TokenizerTest, VocabularySizes) {
  EXPECT_EQ(ReferenceTokenizer("gpt2").vocab_size(), 50257);
  EXPECT_EQ(ReferenceTokenizer("gpt-neox-20b").vocab_size(), 50277);
  const Tokenizer& neox = ReferenceTokenizer("gpt-neox-20b");
  EXPECT_EQ(neox.TokenToId("<|endoftext|>"), 0);
  EXPECT_EQ(neox.TokenToId("\xC4\xA0the"), 253);  // "Ġthe"
  EXPECT_EQ(neox.IdToToken(253).value(), "\xC4\xA0the");
  EXPECT_TRUE(neox.IsSpecial(0));
  EXPECT_TRUE(neox.IsSpecial(1));
  EXPECT_FALSE(neox.IsSpecial(50276));
  EXPECT_FALSE(neox.IsSpecial(253));
}

// --- Round trips ----------------------------------------------------------

void ExpectRoundTrip(const Tokenizer& tokenizer, const std::string& text,
                     const std::string& label) {
  const std::vector<int32_t> ids = EncodeOrDie(tokenizer, text);
  EXPECT_EQ(DecodeOrDie(tokenizer, ids), tokenizer.Normalize(text))
      << label << ": \"" << text << "\"";
}

TEST(TokenizerTest, RoundTripsWhitespaceAndLayout) {
  const std::vector<std::string> texts = {
      "",
      " ",
      "  leading spaces",
      "trailing spaces   ",
      "\ttabs\tand\t\ttabs\t",
      "line\nbreaks\r\nand\n\n\nblank lines\n",
      std::string(100, ' '),
      absl::StrCat("a", std::string(30, ' '), "b"),
      "    indented code:\n        return x;\n",
      " \u00a0\u2000\u3000 mixed unicode spaces \u2028\u2029\u0085",
      std::string("embedded\0nul", 12),
  };
  for (const char* name : kTokenizers) {
    for (const std::string& text : texts) {
      ExpectRoundTrip(ReferenceTokenizer(name), text, name);
    }
  }
}

TEST(TokenizerTest, RoundTripsEveryAddedToken) {
  for (const char* name : kTokenizers) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    ASSERT_FALSE(tokenizer.added_tokens().empty());
    for (const tokenizer::AddedToken& token : tokenizer.added_tokens()) {
      EXPECT_THAT(EncodeOrDie(tokenizer, token.content), ElementsAre(token.id))
          << name << " \"" << token.content << "\"";
      EXPECT_EQ(DecodeOrDie(tokenizer, {token.id}), token.content);
      ExpectRoundTrip(tokenizer, "x" + token.content + "y", name);
      ExpectRoundTrip(tokenizer, " " + token.content + " ", name);
    }
  }
}

TEST(TokenizerTest, NeoxMultiSpaceTokens) {
  const Tokenizer& neox = ReferenceTokenizer("gpt-neox-20b");
  // The added tokens 50254..50276 are runs of 24 down to 2 spaces; runs are
  // matched leftmost-longest, before BPE sees the text.
  const int32_t a = IdOf(neox, "a");
  const int32_t b = IdOf(neox, "b");
  EXPECT_THAT(EncodeOrDie(neox, "a  b"), ElementsAre(a, 50276, b));
  EXPECT_THAT(EncodeOrDie(neox, absl::StrCat("a", std::string(24, ' '), "b")),
              ElementsAre(a, 50254, b));
  EXPECT_THAT(EncodeOrDie(neox, absl::StrCat("a", std::string(30, ' '), "b")),
              ElementsAre(a, 50254, 50272, b));
  // A single space is ordinary text: it joins the next word.
  EXPECT_THAT(EncodeOrDie(neox, "a b"), ElementsAre(a, IdOf(neox,
                                                            "\xC4\xA0"
                                                            "b")));
}

// Random strings of code points from every plane (no surrogates).
std::string RandomUnicode(std::mt19937& rng, int length) {
  std::string text;
  std::uniform_int_distribution<int> kind(0, 9);
  for (int i = 0; i < length; ++i) {
    char32_t c;
    switch (kind(rng)) {
      case 0:
      case 1:
      case 2:
        c = std::uniform_int_distribution<char32_t>(0x20, 0x7E)(rng);
        break;
      case 3:
        c = std::uniform_int_distribution<char32_t>(0x00, 0x20)(rng);
        break;
      case 4:
        c = std::uniform_int_distribution<char32_t>(0x80, 0x7FF)(rng);
        break;
      case 5:
        c = std::uniform_int_distribution<char32_t>(0x0300, 0x036F)(rng);
        break;
      case 6:
        c = std::uniform_int_distribution<char32_t>(0xAC00, 0xD7A3)(rng);
        break;
      case 7:
        c = std::uniform_int_distribution<char32_t>(0x800, 0xD7FF)(rng);
        break;
      case 8:
        c = std::uniform_int_distribution<char32_t>(0xE000, 0xFFFD)(rng);
        break;
      default:
        c = std::uniform_int_distribution<char32_t>(0x10000, 0x10FFFF)(rng);
        break;
    }
    tokenizer::AppendUtf8(c, &text);
  }
  return text;
}

TEST(TokenizerTest, RoundTripsRandomUnicode) {
  std::mt19937 rng(20240501);
  for (int i = 0; i < 300; ++i) {
    const std::string text = RandomUnicode(rng, 1 + i % 60);
    for (const char* name : kTokenizers) {
      ExpectRoundTrip(ReferenceTokenizer(name), text, name);
    }
  }
}

TEST(TokenizerTest, RoundTripsVeryLongInputs) {
  std::mt19937 rng(7);
  std::string prose;
  const std::vector<std::string> words = {"the",   "tokenizer", "streams", "blocks", "of",
                                          "text,", "and",       "it's",    "fast.",  "\n"};
  while (prose.size() < (1 << 20)) {
    prose += words[rng() % words.size()];
    prose += ' ';
  }
  // One "word" of 200 KB: merged with the priority queue, not the array.
  std::string long_word;
  while (long_word.size() < 200000) long_word += "abcab";
  const std::string long_digits(50000, '7');
  for (const char* name : kTokenizers) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    ExpectRoundTrip(tokenizer, prose, name);
    ExpectRoundTrip(tokenizer, long_word, name);
    ExpectRoundTrip(tokenizer, long_digits, name);
    ExpectRoundTrip(tokenizer, RandomUnicode(rng, 100000), name);
  }
}

TEST(TokenizerTest, NfcNormalizationForNeox) {
  const Tokenizer& neox = ReferenceTokenizer("gpt-neox-20b");
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  // "e" + COMBINING ACUTE ACCENT composes to U+00E9 under NFC.
  EXPECT_EQ(EncodeOrDie(neox,
                        "caf"
                        "e\xCC\x81"),
            EncodeOrDie(neox, "caf\xC3\xA9"));
  EXPECT_EQ(DecodeOrDie(neox, EncodeOrDie(neox,
                                          "caf"
                                          "e\xCC\x81")),
            "caf\xC3\xA9");
  // GPT-2 has no normalizer.
  EXPECT_NE(EncodeOrDie(gpt2,
                        "caf"
                        "e\xCC\x81"),
            EncodeOrDie(gpt2, "caf\xC3\xA9"));
}

// --- Special tokens ---------------------------------------------------------

TEST(TokenizerTest, SpecialTokensInTextAndDecode) {
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  const std::vector<int32_t> ids = EncodeOrDie(gpt2, "Hi<|endoftext|>there");
  EXPECT_THAT(ids, ElementsAre(IdOf(gpt2, "Hi"), 50256, IdOf(gpt2, "there")));
  EXPECT_EQ(DecodeOrDie(gpt2, ids), "Hi<|endoftext|>there");
  EXPECT_EQ(DecodeOrDie(gpt2, ids, /*skip_special=*/true), "Hithere");

  EncodeOptions literal;
  literal.parse_special_tokens = false;
  const std::vector<int32_t> plain = EncodeOrDie(gpt2, "Hi<|endoftext|>there", literal);
  EXPECT_THAT(plain, ::testing::Not(::testing::Contains(50256)));
  EXPECT_EQ(DecodeOrDie(gpt2, plain), "Hi<|endoftext|>there");

  // The ByteLevel post-processor adds nothing.
  EncodeOptions with_special;
  with_special.add_special_tokens = true;
  EXPECT_EQ(EncodeOrDie(gpt2, "Hello world", with_special), EncodeOrDie(gpt2, "Hello world"));
}

// --- Bad input --------------------------------------------------------------

TEST(TokenizerTest, InvalidUtf8IsEncodedAsReplacementCharacters) {
  for (const char* name : kTokenizers) {
    const Tokenizer& tokenizer = ReferenceTokenizer(name);
    EXPECT_EQ(EncodeOrDie(tokenizer,
                          "ab\xFF"
                          "cd\xE2\x82"),
              EncodeOrDie(tokenizer,
                          "ab\xEF\xBF\xBD"
                          "cd\xEF\xBF\xBD"));
    EXPECT_EQ(DecodeOrDie(tokenizer, EncodeOrDie(tokenizer, "\xC3(")), "\xEF\xBF\xBD(");
  }
}

TEST(TokenizerTest, DecodeOfPartialCharacterGivesReplacement) {
  const Tokenizer& gpt2 = ReferenceTokenizer("gpt2");
  // U+1F999 (llama) is four byte tokens in GPT-2; the first two alone are an
  // incomplete character.
  const std::vector<int32_t> ids = EncodeOrDie(gpt2, "\xF0\x9F\xA6\x99");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(DecodeOrDie(gpt2, {ids[0]}), "\xEF\xBF\xBD");
}

TEST(TokenizerTest, UnknownIdsAreErrorsNamingTheId) {
  const Tokenizer& neox = ReferenceTokenizer("gpt-neox-20b");
  for (const int32_t bad : {50277, 50303, -1, 1 << 30}) {
    const absl::StatusOr<std::string> text = neox.Decode({12092, bad}, false);
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(text.status().message()), HasSubstr(std::to_string(bad)));
    EXPECT_FALSE(neox.IdToToken(bad).ok());
  }
}

// --- Loading ----------------------------------------------------------------

absl::Status LoadStatus(const nlohmann::json& json) {
  return Tokenizer::FromJson(json.dump(), "test.json").status();
}

void ExpectRejected(const nlohmann::json& json, absl::StatusCode code, const std::string& feature) {
  const absl::Status status = LoadStatus(json);
  EXPECT_EQ(status.code(), code) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(feature));
  EXPECT_THAT(std::string(status.message()), HasSubstr("test.json"));
}

TEST(TokenizerLoadTest, UnsupportedFeaturesAreNamed) {
  const nlohmann::json base = MinimalTokenizerJson({}, {});
  ASSERT_TRUE(LoadStatus(base).ok()) << LoadStatus(base);
  const auto unimplemented = absl::StatusCode::kUnimplemented;

  nlohmann::json json = base;
  json["normalizer"] = {{"type", "Lowercase"}};
  ExpectRejected(json, unimplemented, "Lowercase");

  json = base;
  json["normalizer"] = {{"type", "Sequence"},
                        {"normalizers", {{{"type", "NFC"}}, {{"type", "Strip"}}}}};
  ExpectRejected(json, unimplemented, "Strip");

  json = base;
  json["pre_tokenizer"] = {{"type", "Whitespace"}};
  ExpectRejected(json, unimplemented, "Whitespace");

  json = base;
  json["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            {{{"type", "Split"},
                              {"pattern", {{"Regex", "\\w+|[^\\w\\s]+"}}},
                              {"behavior", "Isolated"},
                              {"invert", false}},
                             {{"type", "ByteLevel"}, {"use_regex", false}}}}};
  ExpectRejected(json, unimplemented, "\\w+|[^\\w\\s]+");

  json = base;
  json["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Digits"}}}}};
  ExpectRejected(json, unimplemented, "ByteLevel");

  json = base;
  json["pre_tokenizer"] = nullptr;
  ExpectRejected(json, unimplemented, "pre_tokenizer null");

  json = base;
  json["model"]["type"] = "WordPiece";
  ExpectRejected(json, unimplemented, "WordPiece");

  json = base;
  json["model"]["dropout"] = 0.1;
  ExpectRejected(json, unimplemented, "dropout");

  json = base;
  json["model"]["continuing_subword_prefix"] = "##";
  ExpectRejected(json, unimplemented, "continuing_subword_prefix");

  json = base;
  json["decoder"] = {{"type", "Metaspace"}};
  ExpectRejected(json, unimplemented, "Metaspace");

  json = base;
  json["decoder"] = nullptr;
  ExpectRejected(json, unimplemented, "decoder");

  json = base;
  json["post_processor"] = {{"type", "SomethingNew"}};
  ExpectRejected(json, unimplemented, "SomethingNew");

  json = base;
  json["truncation"] = {{"max_length", 512}};
  ExpectRejected(json, unimplemented, "truncation");

  json = base;
  json["model"]["vocab"].erase("a");
  ExpectRejected(json, unimplemented, "\"a\"");
}

TEST(TokenizerLoadTest, MalformedFilesAreInvalidArgument) {
  EXPECT_EQ(Tokenizer::FromJson("{not json", "bad.json").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromJson("[]", "bad.json").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Tokenizer::FromFile("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);

  nlohmann::json json = MinimalTokenizerJson({}, {"a zz"});
  ExpectRejected(json, absl::StatusCode::kInvalidArgument, "merge 0");

  json = MinimalTokenizerJson({}, {"a b"});  // "ab" is not in the vocab
  ExpectRejected(json, absl::StatusCode::kInvalidArgument, "\"ab\"");

  // Added-token ids must be the ones Hugging Face would assign.
  json = MinimalTokenizerJson({}, {});
  json["added_tokens"] = {
      {{"id", 300}, {"content", "<x>"}, {"special", true}, {"normalized", false}}};
  ExpectRejected(json, absl::StatusCode::kInvalidArgument, "256");
  json["added_tokens"][0]["id"] = 256;
  EXPECT_TRUE(LoadStatus(json).ok()) << LoadStatus(json);
}

// --- BPE merges -------------------------------------------------------------

TEST(TokenizerBpeTest, MergesApplyByRankInBothFileForms) {
  // Vocabulary: bytes, then "ab" (256), "bc" (257), "abc" (258).
  const std::vector<std::string> extra = {"ab", "bc", "abc"};
  for (const bool pairs : {false, true}) {
    nlohmann::json json = MinimalTokenizerJson(extra, {"b c", "a b", "a bc"});
    if (pairs) {
      using Json = nlohmann::json;
      json["model"]["merges"] =
          Json::array({Json::array({"b", "c"}), Json::array({"a", "b"}), Json::array({"a", "bc"})});
    }
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(json.dump());
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    // "b c" has the lowest rank, so "abc" is a + bc, then merged by "a bc".
    EXPECT_THAT(EncodeOrDie(**tokenizer, "abc"), ElementsAre(258));
    EXPECT_THAT(EncodeOrDie(**tokenizer, "abd"), ElementsAre(256, 'd'));
    // Leftmost first among equal ranks: "abab" -> ab ab.
    EXPECT_THAT(EncodeOrDie(**tokenizer, "abab"), ElementsAre(256, 256));
    // "bcbc": two bc.
    EXPECT_THAT(EncodeOrDie(**tokenizer, "bcbc"), ElementsAre(257, 257));
  }
}

TEST(TokenizerBpeTest, TemplatePostProcessorAddsSpecialTokens) {
  nlohmann::json json = MinimalTokenizerJson({}, {});
  json["added_tokens"] = {
      {{"id", 256}, {"content", "<s>"}, {"special", true}, {"normalized", false}}};
  json["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single",
       {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
        {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
      {"pair", nlohmann::json::array()},
      {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {256}}, {"tokens", {"<s>"}}}}}}};
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(json.dump());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EncodeOptions options;
  options.add_special_tokens = true;
  EXPECT_THAT(EncodeOrDie(**tokenizer, "hi", options), ElementsAre(256, 'h', 'i'));
  EXPECT_THAT(EncodeOrDie(**tokenizer, "hi"), ElementsAre('h', 'i'));
}

// --- Threads ----------------------------------------------------------------

TEST(TokenizerTest, ConcurrentEncodesAgreeWithSequentialOnes) {
  const Tokenizer& neox = ReferenceTokenizer("gpt-neox-20b");
  std::mt19937 rng(99);
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> expected;
  for (int i = 0; i < 64; ++i) {
    texts.push_back(RandomUnicode(rng, 200) + " the cat's hat  is\n\tred " + std::to_string(i));
  }
  // Sequential results are taken from a fresh tokenizer so that the shared
  // one starts the threads with an empty cache.
  absl::StatusOr<std::unique_ptr<Tokenizer>> fresh =
      Tokenizer::FromFile(testing::TokenizerPath("gpt-neox-20b"));
  ASSERT_TRUE(fresh.ok());
  for (const std::string& text : texts) {
    expected.push_back(EncodeOrDie(**fresh, text));
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + t * 7 + round) % texts.size();
          absl::StatusOr<std::vector<int32_t>> ids = neox.Encode(texts[k]);
          if (!ids.ok() || *ids != expected[k]) ++mismatches[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace blockserve
