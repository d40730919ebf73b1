// The byte-level BPE model of a tokenizer.json ("model": {"type": "BPE"}):
// the vocabulary (token string -> id), the ranked merges, and the merge
// algorithm that turns one pre-tokenized word into token ids exactly as
// Hugging Face `tokenizers` does (repeatedly merge the adjacent pair of
// lowest rank, leftmost first).
//
// Words are given as raw UTF-8 bytes; each byte starts as the token of its
// byte-level character (byte_level.h), so the vocabulary must hold the
// symbols of every byte that well-formed UTF-8 can contain (checked at load).
// Merge ranks live in a hash map keyed by the id pair; short words merge in a
// small array, long ones with a priority queue over a linked list (O(n log n));
// results for frequent words are cached.
//
// Immutable after FromJson except for the internal cache, which is
// synchronized: EncodeWord may be called from many threads at once.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_BPE_MODEL_H_
#define BLOCKSERVE_SHARED_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "shared/tokenizer/word_cache.h"

namespace blockserve::tokenizer {

class BpeModel {
 public:
  // From the "model" value of tokenizer.json. Rejects (with a message naming
  // the field) other model types, merges that name tokens outside the
  // vocabulary, BPE dropout, subword prefixes/suffixes, and vocabularies
  // that lack a byte-level character for a byte of UTF-8 text.
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(
      const nlohmann::json& model);

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the token ids of one pre-tokenized word (its raw bytes, which
  // must be well-formed UTF-8).
  void EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const;

  // The vocabulary, both ways. IdToToken returns nullptr for an id that no
  // vocabulary entry has.
  std::optional<int32_t> TokenToId(absl::string_view token) const;
  const std::string* IdToToken(int32_t id) const;
  // One past the largest id in the vocabulary.
  int32_t id_limit() const { return static_cast<int32_t>(id_to_token_.size()); }
  size_t vocab_entries() const { return token_to_id_.size(); }
  size_t merge_count() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  BpeModel() = default;

  const Merge* FindMerge(int32_t left, int32_t right) const;
  void MergeShortWord(absl::string_view word, std::vector<int32_t>* ids) const;
  void MergeLongWord(absl::string_view word, std::vector<int32_t>* ids) const;

  absl::flat_hash_map<std::string, int32_t> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> id_used_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_ids_{};
  bool ignore_merges_ = false;
  mutable WordCache cache_;
};

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_BPE_MODEL_H_
