// The tokenizer.json "post_processor": what Encode adds around the ids of one
// sequence when special tokens are requested (EncodeOptions::
// add_special_tokens). Supported, as Hugging Face `tokenizers` applies them to
// a single sequence:
// - ByteLevel: changes only offsets, so adds nothing to the ids.
// - TemplateProcessing: the "single" template ($A and special-token pieces).
// - RobertaProcessing / BertProcessing: cls + ids + sep.
// - Sequence of those, applied in order.
// Anything else is rejected by FromJson with a message naming it.
//
// Immutable after construction; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_POST_PROCESSOR_H_
#define BLOCKSERVE_SHARED_TOKENIZER_POST_PROCESSOR_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace blockserve::tokenizer {

class PostProcessor {
 public:
  // From the "post_processor" value (null means none).
  static absl::StatusOr<PostProcessor> FromJson(const nlohmann::json& config);

  // `ids` with the special tokens of every template added.
  std::vector<int32_t> Apply(std::vector<int32_t> ids) const;

  // Ids that the processor may add, for validation against the vocabulary.
  std::vector<int32_t> AddedIds() const;

 private:
  // One template: special-token ids before and after the sequence.
  struct Template {
    std::vector<int32_t> before;
    std::vector<int32_t> after;
  };
  std::vector<Template> templates_;
};

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_POST_PROCESSOR_H_
