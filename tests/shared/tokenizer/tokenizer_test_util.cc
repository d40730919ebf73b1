#include "tests/shared/tokenizer/tokenizer_test_util.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "gtest/gtest.h"
#include "shared/tokenizer/byte_level.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve::testing {

std::string TokenizerPath(const std::string& name) {
  return std::string(BLOCKSERVE_TEST_DATA_DIR) + "/tokenizers/" + name + "/tokenizer.json";
}

const Tokenizer& ReferenceTokenizer(const std::string& name) {
  static auto* loaded = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto it = loaded->find(name);
  if (it == loaded->end()) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(TokenizerPath(name));
    if (!tokenizer.ok()) {
      ADD_FAILURE() << tokenizer.status();
      std::abort();
    }
    it = loaded->emplace(name, std::move(*tokenizer)).first;
  }
  return *it->second;
}

nlohmann::json MinimalTokenizerJson(const std::vector<std::string>& extra_tokens,
                                    const std::vector<std::string>& merges) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int byte = 0; byte < 256; ++byte) {
    std::string symbol;
    tokenizer::AppendUtf8(tokenizer::ByteToChar(static_cast<unsigned char>(byte)), &symbol);
    vocab[symbol] = byte;
  }
  int id = 256;
  for (const std::string& token : extra_tokens) vocab[token] = id++;
  nlohmann::json byte_level = {{"type", "ByteLevel"},
                               {"add_prefix_space", false},
                               {"trim_offsets", true},
                               {"use_regex", true}};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", nlohmann::json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
}

int32_t IdOf(const Tokenizer& tokenizer, const std::string& token) {
  const std::optional<int32_t> id = tokenizer.TokenToId(token);
  EXPECT_TRUE(id.has_value()) << "no token " << token;
  return id.value_or(-1);
}

std::string ReadTestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace blockserve::testing
