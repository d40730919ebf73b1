#include "shared/tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"
#include "shared/tokenizer/byte_level.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve {

using tokenizer::AddedToken;

namespace {

// Fields of tokenizer.json that change ids but that Blockserve does not
// implement: they must be null or absent.
constexpr const char* kMustBeNull[] = {"truncation", "padding"};

absl::StatusOr<bool> AddedTokenFlag(const nlohmann::json& entry,
                                    const char* field, bool default_value,
                                    size_t index) {
  if (!entry.contains(field) || entry[field].is_null()) return default_value;
  if (!entry[field].is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat("added_tokens[", index, "].", field, " must be a bool"));
  }
  return entry[field].get<bool>();
}

absl::StatusOr<AddedToken> ParseAddedToken(const nlohmann::json& entry,
                                           size_t index) {
  if (!entry.is_object() || !entry.contains("id") ||
      !entry["id"].is_number_integer() || !entry.contains("content") ||
      !entry["content"].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("added_tokens[", index,
                     "] needs an integer \"id\" and a string "
                     "\"content\""));
  }
  AddedToken token;
  const int64_t id = entry["id"].get<int64_t>();
  if (id < 0 || id >= (int64_t{1} << 31) - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("added_tokens[", index, "] has id ", id, " out of range"));
  }
  token.id = static_cast<int32_t>(id);
  token.content = entry["content"].get<std::string>();
  if (token.content.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "added_tokens[", index, "] (id ", id, ") has empty content"));
  }
  if (!tokenizer::IsValidUtf8(token.content)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "added_tokens[", index, "] (id ", id, ") content is not valid UTF-8"));
  }
  ASSIGN_OR_RETURN(token.special,
                   AddedTokenFlag(entry, "special", false, index));
  ASSIGN_OR_RETURN(token.single_word,
                   AddedTokenFlag(entry, "single_word", false, index));
  ASSIGN_OR_RETURN(token.lstrip, AddedTokenFlag(entry, "lstrip", false, index));
  ASSIGN_OR_RETURN(token.rstrip, AddedTokenFlag(entry, "rstrip", false, index));
  // Hugging Face's default: special tokens are not normalized.
  ASSIGN_OR_RETURN(token.normalized,
                   AddedTokenFlag(entry, "normalized", !token.special, index));
  return token;
}

absl::Status CheckDecoder(const nlohmann::json& decoder) {
  if (decoder.is_object() && decoder.value("type", "") == "ByteLevel") {
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat("decoder ", decoder.dump(),
                   " is not supported (only {\"type\": \"ByteLevel\"})"));
}

// What decoding `text` (a token) produces: the bytes its byte-level
// characters stand for, or its own UTF-8 when it is not byte-level text.
std::string DecodedBytes(const std::string& text) {
  std::optional<std::string> bytes = tokenizer::ByteLevelToBytes(text);
  return bytes.has_value() ? *std::move(bytes) : text;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open tokenizer file ", path));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(
        absl::StrCat("cannot read tokenizer file ", path));
  }
  return FromJson(contents.str(), path);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(
    absl::string_view json_text, absl::string_view source) {
  auto tokenizer = std::unique_ptr<Tokenizer>(new Tokenizer());
  absl::Status status;
  try {
    const nlohmann::json json = nlohmann::json::parse(
        json_text.begin(), json_text.end(), /*cb=*/nullptr,
        /*allow_exceptions=*/true);
    status = tokenizer->Load(json);
  } catch (const nlohmann::json::exception& e) {
    status =
        absl::InvalidArgumentError(absl::StrCat("malformed JSON: ", e.what()));
  }
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat(source, ": ", status.message()));
  }
  return tokenizer;
}

absl::Status Tokenizer::Load(const nlohmann::json& json) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError("the top level must be a JSON object");
  }
  for (const char* field : kMustBeNull) {
    if (json.contains(field) && !json[field].is_null()) {
      return absl::UnimplementedError(
          absl::StrCat("\"", field, "\" = ", json[field].dump(),
                       " is not supported (must be null)"));
    }
  }
  if (!json.contains("model")) {
    return absl::InvalidArgumentError("no \"model\"");
  }
  ASSIGN_OR_RETURN(model_, tokenizer::BpeModel::FromJson(json["model"]));
  const nlohmann::json null_json;
  ASSIGN_OR_RETURN(normalizer_, tokenizer::Normalizer::FromJson(
                                    json.value("normalizer", null_json)));
  ASSIGN_OR_RETURN(pre_tokenizer_, tokenizer::PreTokenizer::FromJson(
                                       json.value("pre_tokenizer", null_json)));
  ASSIGN_OR_RETURN(post_processor_,
                   tokenizer::PostProcessor::FromJson(
                       json.value("post_processor", null_json)));
  RETURN_IF_ERROR(CheckDecoder(json.value("decoder", null_json)));

  // Added tokens.
  const nlohmann::json added =
      json.value("added_tokens", nlohmann::json::array());
  if (!added.is_array()) {
    return absl::InvalidArgumentError("\"added_tokens\" must be an array");
  }
  int32_t id_limit = model_->id_limit();
  // Hugging Face does not take the ids in the file as they are: it adds the
  // tokens one by one, giving a token the vocabulary's id when the
  // vocabulary has it and otherwise the next free id after the vocabulary
  // (the number of vocabulary entries, or one past the largest added id). A
  // file whose ids disagree with that would encode differently there, so it
  // is rejected.
  const int64_t vocab_entries = static_cast<int64_t>(model_->vocab_entries());
  int64_t max_added_id = -1;
  for (size_t i = 0; i < added.size(); ++i) {
    ASSIGN_OR_RETURN(AddedToken token, ParseAddedToken(added[i], i));
    if (added_token_ids_.contains(token.content)) {
      return absl::InvalidArgumentError(
          absl::StrCat("added token \"", token.content, "\" is listed twice"));
    }
    int64_t expected_id;
    if (const std::optional<int32_t> vocab_id =
            model_->TokenToId(token.content)) {
      expected_id = *vocab_id;
    } else if (max_added_id < 0) {
      expected_id = vocab_entries;
    } else {
      expected_id = max_added_id >= vocab_entries || vocab_entries == 0
                        ? max_added_id + 1
                        : vocab_entries;
    }
    if (expected_id != token.id) {
      return absl::InvalidArgumentError(absl::StrCat(
          "added token \"", token.content, "\" has id ", token.id,
          " but Hugging Face tokenizers would give it id ", expected_id,
          " (the vocabulary's id, or the next id after the vocabulary and "
          "the added tokens before it)"));
    }
    if (!model_->TokenToId(token.content).has_value() &&
        model_->IdToToken(token.id) != nullptr) {
      return absl::UnimplementedError(absl::StrCat(
          "added token \"", token.content, "\" gets id ", token.id,
          ", which the vocab gives to \"", *model_->IdToToken(token.id),
          "\" (a vocabulary with gaps in its ids)"));
    }
    max_added_id = std::max<int64_t>(max_added_id, token.id);
    added_token_ids_.emplace(token.content, token.id);
    id_limit = std::max(id_limit, token.id + 1);
    added_tokens_.push_back(std::move(token));
  }
  // Special tokens first, then the others (the order Hugging Face builds its
  // matchers in, which decides between identical patterns).
  for (const bool special : {true, false}) {
    for (const AddedToken& token : added_tokens_) {
      if (token.special != special) continue;
      if (token.normalized) {
        normalized_matcher_.Add(normalizer_.Normalize(token.content), token);
      } else {
        raw_matcher_.Add(token.content, token);
      }
    }
  }

  // The id table used by decoding and lookups.
  tokens_.resize(static_cast<size_t>(id_limit));
  for (int32_t id = 0; id < model_->id_limit(); ++id) {
    const std::string* text = model_->IdToToken(id);
    if (text == nullptr) continue;
    TokenInfo& info = tokens_[id];
    info.text = *text;
    info.bytes = DecodedBytes(*text);
    info.present = true;
  }
  for (const AddedToken& token : added_tokens_) {
    TokenInfo& info = tokens_[token.id];
    info.text = token.content;
    info.bytes = DecodedBytes(token.content);
    info.present = true;
    info.special = token.special;
  }
  for (const int32_t id : post_processor_.AddedIds()) {
    if (id < 0 || id >= id_limit || !tokens_[id].present) {
      return absl::InvalidArgumentError(
          absl::StrCat("post_processor adds id ", id, ", which no token has"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(
    absl::string_view text) const {
  return Encode(text, EncodeOptions());
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(
    absl::string_view text, const EncodeOptions& options) const {
  std::string repaired;
  if (!tokenizer::IsValidUtf8(text)) {
    tokenizer::AppendUtf8Lossy(text, &repaired);
    text = repaired;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  raw_matcher_.Split(
      text, options.parse_special_tokens,
      [&](absl::string_view piece, int32_t id) {
        if (id >= 0) {
          ids.push_back(id);
          return;
        }
        std::string storage;  // holds the piece when normalizing changes it
        EncodeNormalizedPiece(normalizer_.Normalize(piece, &storage), options,
                              &ids);
      });
  if (options.add_special_tokens) ids = post_processor_.Apply(std::move(ids));
  return ids;
}

void Tokenizer::EncodeNormalizedPiece(absl::string_view piece,
                                      const EncodeOptions& options,
                                      std::vector<int32_t>* ids) const {
  normalized_matcher_.Split(piece, options.parse_special_tokens,
                            [&](absl::string_view sub_piece, int32_t id) {
                              if (id >= 0) {
                                ids->push_back(id);
                                return;
                              }
                              pre_tokenizer_->Run(
                                  sub_piece, [&](absl::string_view word) {
                                    model_->EncodeWord(word, ids);
                                  });
                            });
}

absl::Status Tokenizer::CheckId(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !tokens_[id].present) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is not in the vocabulary (size ",
                     vocab_size(), ")"));
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::AppendTokenBytes(int32_t id, bool skip_special_tokens,
                                         std::string* bytes) const {
  RETURN_IF_ERROR(CheckId(id));
  const TokenInfo& info = tokens_[id];
  if (skip_special_tokens && info.special) return absl::OkStatus();
  bytes->append(info.bytes);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              bool skip_special_tokens) const {
  std::string bytes;
  bytes.reserve(ids.size() * 4);
  for (const int32_t id : ids) {
    RETURN_IF_ERROR(AppendTokenBytes(id, skip_special_tokens, &bytes));
  }
  if (tokenizer::IsValidUtf8(bytes)) return bytes;
  std::string text;
  tokenizer::AppendUtf8Lossy(bytes, &text);
  return text;
}

std::optional<int32_t> Tokenizer::TokenToId(absl::string_view token) const {
  const auto it = added_token_ids_.find(token);
  if (it != added_token_ids_.end()) return it->second;
  return model_->TokenToId(token);
}

absl::StatusOr<std::string> Tokenizer::IdToToken(int32_t id) const {
  RETURN_IF_ERROR(CheckId(id));
  return tokens_[id].text;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && tokens_[id].special;
}

std::string Tokenizer::Normalize(absl::string_view text) const {
  std::string repaired;
  if (!tokenizer::IsValidUtf8(text)) {
    tokenizer::AppendUtf8Lossy(text, &repaired);
    text = repaired;
  }
  return normalizer_.Normalize(text);
}

}  // namespace blockserve
