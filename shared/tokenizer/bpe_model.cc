#include "shared/tokenizer/bpe_model.h"

#include <limits>
#include <queue>

#include "absl/strings/str_cat.h"
#include "shared/common/status_macros.h"
#include "shared/tokenizer/byte_level.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve::tokenizer {
namespace {

constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();
// Words up to this many bytes merge in place in a small array; longer ones use
// the priority queue.
constexpr size_t kShortWordBytes = 96;

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
         static_cast<uint32_t>(right);
}

absl::Status CheckEmptyOrNull(const nlohmann::json& model, const char* field) {
  if (!model.contains(field) || model[field].is_null()) return absl::OkStatus();
  if (model[field].is_string() && model[field].get<std::string>().empty()) {
    return absl::OkStatus();
  }
  return absl::UnimplementedError(
      absl::StrCat("BPE model field \"", field, "\" = ", model[field].dump(),
                   " is not supported (byte-level BPE uses none)"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(
    const nlohmann::json& model) {
  if (!model.is_object()) {
    return absl::InvalidArgumentError("\"model\" must be an object");
  }
  if (model.contains("type")) {
    const nlohmann::json& type = model["type"];
    if (!type.is_string() || type.get<std::string>() != "BPE") {
      return absl::UnimplementedError(
          absl::StrCat("model type ", type.dump(),
                       " is not supported (only byte-level \"BPE\")"));
    }
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return absl::InvalidArgumentError("BPE model has no \"vocab\" object");
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    return absl::InvalidArgumentError("BPE model has no \"merges\" array");
  }
  RETURN_IF_ERROR(CheckEmptyOrNull(model, "continuing_subword_prefix"));
  RETURN_IF_ERROR(CheckEmptyOrNull(model, "end_of_word_suffix"));
  if (model.contains("dropout") && !model["dropout"].is_null()) {
    if (!model["dropout"].is_number() || model["dropout"].get<double>() != 0) {
      return absl::UnimplementedError(
          absl::StrCat("BPE dropout ", model["dropout"].dump(),
                       " is not supported (encoding must be deterministic)"));
    }
  }

  auto bpe = std::unique_ptr<BpeModel>(new BpeModel());
  if (model.contains("ignore_merges") && !model["ignore_merges"].is_null()) {
    if (!model["ignore_merges"].is_boolean()) {
      return absl::InvalidArgumentError("BPE \"ignore_merges\" must be a bool");
    }
    bpe->ignore_merges_ = model["ignore_merges"].get<bool>();
  }

  // Vocabulary.
  const nlohmann::json& vocab = model["vocab"];
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) {
      return absl::InvalidArgumentError(absl::StrCat("vocab entry \"", it.key(),
                                                     "\" has a non-integer id ",
                                                     it.value().dump()));
    }
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id >= std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("vocab entry \"", it.key(),
                                                     "\" has id ", id,
                                                     " outside [0, 2^31-1)"));
    }
    max_id = std::max(max_id, id);
    bpe->token_to_id_.emplace(it.key(), static_cast<int32_t>(id));
  }
  if (max_id > 16 * static_cast<int64_t>(vocab.size()) + 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab ids are too sparse: largest id ", max_id, " for ",
                     vocab.size(), " entries"));
  }
  bpe->id_to_token_.resize(static_cast<size_t>(max_id + 1));
  bpe->id_used_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [token, id] : bpe->token_to_id_) {
    if (bpe->id_used_[id]) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocab id ", id, " is given to both \"",
                       bpe->id_to_token_[id], "\" and \"", token, "\""));
    }
    bpe->id_used_[id] = true;
    bpe->id_to_token_[id] = token;
  }
  // Words reach the model as well-formed UTF-8 (the tokenizer repairs its
  // input), so only the bytes that well-formed UTF-8 can contain need a
  // symbol: GPT-NeoX-20B leaves out 0xC0, 0xC1 and 0xF5..0xFF.
  for (int byte = 0; byte < 256; ++byte) {
    std::string symbol;
    AppendUtf8(ByteToChar(static_cast<unsigned char>(byte)), &symbol);
    const auto it = bpe->token_to_id_.find(symbol);
    if (it != bpe->token_to_id_.end()) {
      bpe->byte_ids_[byte] = it->second;
      continue;
    }
    bpe->byte_ids_[byte] = -1;
    const bool in_utf8 = byte < 0xC0 || (byte >= 0xC2 && byte <= 0xF4);
    if (in_utf8) {
      return absl::UnimplementedError(absl::StrCat(
          "the BPE vocab lacks the byte-level symbol \"", symbol,
          "\" for byte ", byte,
          ": only byte-level BPE vocabularies (a symbol for every byte of "
          "UTF-8 text) are supported"));
    }
  }

  // Merges: "a b" strings or ["a", "b"] pairs; the rank is the position.
  // A pair listed twice keeps its last rank, as Hugging Face's loader does.
  const nlohmann::json& merges = model["merges"];
  bpe->merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const nlohmann::json& merge = merges[rank];
    std::string left, right;
    if (merge.is_string()) {
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("merge ", rank, " \"", text,
                         "\" is not two tokens separated by a "
                         "space"));
      }
      left = text.substr(0, space);
      right = text.substr(space + 1);
    } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
               merge[1].is_string()) {
      left = merge[0].get<std::string>();
      right = merge[1].get<std::string>();
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge ", rank, " must be \"a b\" or [\"a\", \"b\"], got ",
          merge.dump()));
    }
    const auto left_it = bpe->token_to_id_.find(left);
    const auto right_it = bpe->token_to_id_.find(right);
    const auto merged_it = bpe->token_to_id_.find(left + right);
    if (left_it == bpe->token_to_id_.end() ||
        right_it == bpe->token_to_id_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " (\"", left, "\", \"", right,
                       "\") names a token that is not in the vocab"));
    }
    if (merged_it == bpe->token_to_id_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "merge ", rank, " (\"", left, "\", \"", right, "\") makes \"", left,
          right, "\", which is not in the vocab"));
    }
    bpe->merges_[PairKey(left_it->second, right_it->second)] =
        Merge{static_cast<int32_t>(rank), merged_it->second};
  }
  return bpe;
}

std::optional<int32_t> BpeModel::TokenToId(absl::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int32_t id) const {
  if (id < 0 || id >= id_limit() || !id_used_[id]) return nullptr;
  return &id_to_token_[id];
}

const BpeModel::Merge* BpeModel::FindMerge(int32_t left, int32_t right) const {
  const auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::EncodeWord(absl::string_view word,
                          std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    const auto it = token_to_id_.find(BytesToByteLevel(word));
    if (it != token_to_id_.end()) {
      ids->push_back(it->second);
      return;
    }
  }
  if (word.size() == 1) {
    ids->push_back(byte_ids_[static_cast<unsigned char>(word[0])]);
    return;
  }
  if (cache_.Lookup(word, ids)) return;
  const size_t start = ids->size();
  if (word.size() <= kShortWordBytes) {
    MergeShortWord(word, ids);
  } else {
    MergeLongWord(word, ids);
  }
  cache_.Insert(word,
                absl::MakeConstSpan(ids->data() + start, ids->size() - start));
}

void BpeModel::MergeShortWord(absl::string_view word,
                              std::vector<int32_t>* ids) const {
  // symbols[i] is the i-th current token; ranks[i]/merged[i] describe the
  // merge of symbols[i] with symbols[i + 1].
  int32_t symbols[kShortWordBytes];
  int32_t ranks[kShortWordBytes];
  int32_t merged[kShortWordBytes];
  size_t count = word.size();
  for (size_t i = 0; i < count; ++i) {
    symbols[i] = byte_ids_[static_cast<unsigned char>(word[i])];
  }
  auto update_pair = [&](size_t i) {
    const Merge* merge = FindMerge(symbols[i], symbols[i + 1]);
    ranks[i] = merge ? merge->rank : kNoRank;
    merged[i] = merge ? merge->new_id : -1;
  };
  for (size_t i = 0; i + 1 < count; ++i) update_pair(i);
  while (count > 1) {
    size_t best = 0;
    for (size_t i = 1; i + 1 < count; ++i) {
      if (ranks[i] < ranks[best]) best = i;
    }
    if (ranks[best] == kNoRank) break;
    symbols[best] = merged[best];
    for (size_t i = best + 1; i + 1 < count; ++i) {
      symbols[i] = symbols[i + 1];
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --count;
    if (best > 0) update_pair(best - 1);
    if (best + 1 < count) update_pair(best);
  }
  ids->insert(ids->end(), symbols, symbols + count);
}

void BpeModel::MergeLongWord(absl::string_view word,
                             std::vector<int32_t>* ids) const {
  // A doubly linked list of symbols; a merged-away symbol gets id -1.
  const int32_t count = static_cast<int32_t>(word.size());
  std::vector<int32_t> symbol(count), prev(count), next(count);
  for (int32_t i = 0; i < count; ++i) {
    symbol[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    prev[i] = i - 1;
    next[i] = i + 1 < count ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int32_t pos;
    int32_t new_id;
    // Lowest rank first, then leftmost.
    bool operator>(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : pos > other.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto push_pair = [&](int32_t pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* merge = FindMerge(symbol[pos], symbol[next[pos]])) {
      queue.push({merge->rank, pos, merge->new_id});
    }
  };
  for (int32_t i = 0; i + 1 < count; ++i) push_pair(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (symbol[top.pos] < 0 || next[top.pos] < 0) continue;
    // Skip entries made stale by earlier merges around this position.
    const Merge* current = FindMerge(symbol[top.pos], symbol[next[top.pos]]);
    if (current == nullptr || current->new_id != top.new_id) continue;
    const int32_t right = next[top.pos];
    symbol[top.pos] = top.new_id;
    symbol[right] = -1;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    push_pair(prev[top.pos]);
    push_pair(top.pos);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) ids->push_back(symbol[i]);
}

}  // namespace blockserve::tokenizer
