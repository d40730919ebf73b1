// Checks Blockserve's tokenizer against tests/data/tokenizers/
// reference_fixture.json: ids and decoded text produced by Hugging Face
// `tokenizers` itself (see tools/tokenizer/make_reference_fixture.js) for
// multilingual sentences, random strings that stress the split rules,
// invalid UTF-8, long texts, and variants of the GPT-2 tokenizer.json with
// other normalizers, Split/Digits pre-tokenizers, post-processors and added
// tokens with lstrip/rstrip/single_word/normalized.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shared/tokenizer/tokenizer.h"
#include "tests/shared/tokenizer/tokenizer_test_util.h"

namespace blockserve {
namespace {

using ::blockserve::testing::ReadTestFile;
using ::blockserve::testing::TokenizerPath;

class ReferenceFixtureTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = new nlohmann::json(nlohmann::json::parse(ReadTestFile(
        std::string(BLOCKSERVE_TEST_DATA_DIR) + "/tokenizers/reference_fixture.json")));
    texts_ = new std::vector<std::string>();
    for (const nlohmann::json& entry : (*fixture_)["texts"]) {
      texts_->push_back(entry.contains("hex")
                            ? absl::HexStringToBytes(entry["hex"].get<std::string>())
                            : entry["text"].get<std::string>());
    }
  }
  static void TearDownTestSuite() {
    delete fixture_;
    delete texts_;
  }

  // The base tokenizer.json with `patch` applied: top-level fields replaced,
  // fields under "model" replaced one by one.
  static std::unique_ptr<Tokenizer> Build(const std::string& base, const nlohmann::json& patch) {
    if (patch.is_null()) {
      absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
          Tokenizer::FromFile(TokenizerPath(base));
      EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
      return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
    }
    nlohmann::json json = nlohmann::json::parse(ReadTestFile(TokenizerPath(base)));
    for (auto it = patch.begin(); it != patch.end(); ++it) {
      if (it.key() == "model") {
        for (auto field = it->begin(); field != it->end(); ++field) {
          json["model"][field.key()] = field.value();
        }
      } else {
        json[it.key()] = it.value();
      }
    }
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::FromJson(json.dump(), base + "+patch");
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
  }

  static nlohmann::json* fixture_;
  static std::vector<std::string>* texts_;
};

nlohmann::json* ReferenceFixtureTest::fixture_ = nullptr;
std::vector<std::string>* ReferenceFixtureTest::texts_ = nullptr;

TEST_F(ReferenceFixtureTest, EncodeMatchesHuggingFace) {
  const nlohmann::json& tokenizers = (*fixture_)["tokenizers"];
  ASSERT_GE(tokenizers.size(), 8u);
  for (const nlohmann::json& entry : tokenizers) {
    const std::string name = entry["name"].get<std::string>();
    std::unique_ptr<Tokenizer> tokenizer = Build(entry["base"].get<std::string>(), entry["patch"]);
    ASSERT_NE(tokenizer, nullptr) << name;
    struct Mode {
      const char* texts;
      const char* ids;
      bool add_special_tokens;
    };
    for (const Mode mode :
         {Mode{"texts", "encode", false}, Mode{"special_texts", "encode_special", true}}) {
      if (!entry.contains(mode.ids)) continue;
      const nlohmann::json& indices = entry[mode.texts];
      const nlohmann::json& expected = entry[mode.ids];
      ASSERT_EQ(indices.size(), expected.size()) << name;
      int mismatches = 0;
      for (size_t k = 0; k < indices.size(); ++k) {
        const std::string& text = (*texts_)[indices[k].get<size_t>()];
        EncodeOptions options;
        options.add_special_tokens = mode.add_special_tokens;
        absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(text, options);
        ASSERT_TRUE(ids.ok()) << ids.status();
        const std::vector<int32_t> want = expected[k].get<std::vector<int32_t>>();
        if (*ids != want && ++mismatches <= 3) {
          ADD_FAILURE() << name << " " << mode.ids << " text " << indices[k] << " \"" << text
                        << "\"";
        }
      }
      EXPECT_EQ(mismatches, 0) << name << " " << mode.ids;
    }
  }
}

TEST_F(ReferenceFixtureTest, DecodeMatchesHuggingFace) {
  std::map<std::string, std::unique_ptr<Tokenizer>> tokenizers;
  const nlohmann::json& decodes = (*fixture_)["decode"];
  ASSERT_GE(decodes.size(), 100u);
  for (const nlohmann::json& entry : decodes) {
    const std::string name = entry["tokenizer"].get<std::string>();
    std::unique_ptr<Tokenizer>& tokenizer = tokenizers[name];
    if (tokenizer == nullptr) tokenizer = Build(name, nullptr);
    ASSERT_NE(tokenizer, nullptr);
    const std::vector<int32_t> ids = entry["ids"].get<std::vector<int32_t>>();
    absl::StatusOr<std::string> text = tokenizer->Decode(ids, entry["skip_special"].get<bool>());
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, entry["text"].get<std::string>()) << name << " " << entry["ids"].dump();
  }
}

}  // namespace
}  // namespace blockserve
