// The tokenizer.json "normalizer": Unicode normalization forms (NFC, NFD,
// NFKC, NFKD) and Sequences of them, applied in order, through utf8proc.
// Any other normalizer type is rejected by FromJson with a message naming it.
//
// ASCII text is left untouched without calling utf8proc (every ASCII
// character is invariant and starts a new normalization segment), and so is
// a run of characters that the form leaves alone in any context (ICU's
// "inert" characters: curly quotes, dashes, CJK ideographs, ...); text that
// is already normalized is not copied. English text costs one scan.
//
// Immutable after construction; thread-safe.
#ifndef BLOCKSERVE_SHARED_TOKENIZER_NORMALIZER_H_
#define BLOCKSERVE_SHARED_TOKENIZER_NORMALIZER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace blockserve::tokenizer {

class Normalizer {
 public:
  enum class Form { kNfc, kNfd, kNfkc, kNfkd };

  // From the "normalizer" value of tokenizer.json (null means none).
  static absl::StatusOr<Normalizer> FromJson(const nlohmann::json& config);

  explicit Normalizer(std::vector<Form> forms = {})
      : forms_(std::move(forms)) {}

  bool empty() const { return forms_.empty(); }

  // `text` (well-formed UTF-8) normalized.
  std::string Normalize(absl::string_view text) const;

  // The same without copying text that is already normalized: returns
  // `text` itself when nothing changes, else a view of `*storage`, which
  // receives the normalized text.
  absl::string_view Normalize(absl::string_view text,
                              std::string* storage) const;

  // "NFC", "Sequence[NFC, NFKD]", "none": for messages and docs.
  std::string Describe() const;

 private:
  std::vector<Form> forms_;
};

}  // namespace blockserve::tokenizer

#endif  // BLOCKSERVE_SHARED_TOKENIZER_NORMALIZER_H_
