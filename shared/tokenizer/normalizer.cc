#include "shared/tokenizer/normalizer.h"

#include <unicode/unorm2.h>
#include <utf8proc.h>

#include <bitset>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "shared/common/status_macros.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve::tokenizer {
namespace {

absl::string_view FormName(Normalizer::Form form) {
  switch (form) {
    case Normalizer::Form::kNfc:
      return "NFC";
    case Normalizer::Form::kNfd:
      return "NFD";
    case Normalizer::Form::kNfkc:
      return "NFKC";
    case Normalizer::Form::kNfkd:
      return "NFKD";
  }
  return "?";
}

absl::Status AppendForms(const nlohmann::json& config,
                         std::vector<Normalizer::Form>* forms) {
  if (config.is_null()) return absl::OkStatus();
  if (!config.is_object() || !config.contains("type") ||
      !config["type"].is_string()) {
    return absl::InvalidArgumentError(
        "normalizer must be null or an object with a string \"type\"");
  }
  const std::string type = config["type"].get<std::string>();
  if (type == "NFC") {
    forms->push_back(Normalizer::Form::kNfc);
  } else if (type == "NFD") {
    forms->push_back(Normalizer::Form::kNfd);
  } else if (type == "NFKC") {
    forms->push_back(Normalizer::Form::kNfkc);
  } else if (type == "NFKD") {
    forms->push_back(Normalizer::Form::kNfkd);
  } else if (type == "Sequence") {
    if (!config.contains("normalizers") || !config["normalizers"].is_array()) {
      return absl::InvalidArgumentError(
          "normalizer Sequence needs a \"normalizers\" array");
    }
    for (const nlohmann::json& inner : config["normalizers"]) {
      if (inner.is_null()) {
        return absl::InvalidArgumentError(
            "normalizer Sequence contains a null normalizer");
      }
      RETURN_IF_ERROR(AppendForms(inner, forms));
    }
  } else {
    return absl::UnimplementedError(absl::StrCat(
        "normalizer type \"", type,
        "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Sequence of "
        "those)"));
  }
  return absl::OkStatus();
}

int Utf8procOptions(Normalizer::Form form) {
  switch (form) {
    case Normalizer::Form::kNfc:
      return UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    case Normalizer::Form::kNfd:
      return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE;
    case Normalizer::Form::kNfkc:
      return UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    case Normalizer::Form::kNfkd:
      return UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  }
  return UTF8PROC_STABLE;
}

// The normalized form of one segment, from utf8proc.
std::string NormalizeSegment(absl::string_view segment, Normalizer::Form form) {
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(segment.data()),
                   static_cast<utf8proc_ssize_t>(segment.size()), &result,
                   static_cast<utf8proc_option_t>(Utf8procOptions(form)));
  std::string out;
  if (length < 0) {
    // Only reachable for malformed UTF-8 or out of memory; the tokenizer
    // repairs text before normalizing, so keep the segment as it is.
    out.assign(segment.data(), segment.size());
  } else {
    out.assign(reinterpret_cast<const char*>(result),
               static_cast<size_t>(length));
  }
  std::free(result);
  return out;
}

// Characters that a normalization form leaves alone whatever surrounds them
// (ICU's "inert": no decomposition, combining class 0, never composed with a
// neighbour). A segment made only of them needs no call to utf8proc. ICU 72
// and utf8proc 2.8 both implement Unicode 15.
class InertCharacters {
 public:
  explicit InertCharacters(Normalizer::Form form) {
    UErrorCode error = U_ZERO_ERROR;
    switch (form) {
      case Normalizer::Form::kNfc:
        normalizer_ = unorm2_getNFCInstance(&error);
        break;
      case Normalizer::Form::kNfd:
        normalizer_ = unorm2_getNFDInstance(&error);
        break;
      case Normalizer::Form::kNfkc:
        normalizer_ = unorm2_getNFKCInstance(&error);
        break;
      case Normalizer::Form::kNfkd:
        normalizer_ = unorm2_getNFKDInstance(&error);
        break;
    }
    if (U_FAILURE(error)) normalizer_ = nullptr;  // then nothing is inert
    for (UChar32 c = 0; c < 0x10000; ++c) {
      bmp_[c] = normalizer_ != nullptr && unorm2_isInert(normalizer_, c);
    }
  }

  bool AllInert(absl::string_view segment) const {
    size_t pos = 0;
    while (pos < segment.size()) {
      const Utf8Step step = DecodeUtf8(segment, pos);
      if (!step.valid) return false;
      const bool inert =
          step.code_point < 0x10000
              ? bmp_[step.code_point]
              : normalizer_ != nullptr &&
                    unorm2_isInert(normalizer_,
                                   static_cast<UChar32>(step.code_point));
      if (!inert) return false;
      pos += step.length;
    }
    return true;
  }

 private:
  const UNormalizer2* normalizer_ = nullptr;
  std::bitset<0x10000> bmp_;
};

const InertCharacters& InertFor(Normalizer::Form form) {
  static const InertCharacters* const tables[] = {
      new InertCharacters(Normalizer::Form::kNfc),
      new InertCharacters(Normalizer::Form::kNfd),
      new InertCharacters(Normalizer::Form::kNfkc),
      new InertCharacters(Normalizer::Form::kNfkd),
  };
  return *tables[static_cast<int>(form)];
}

size_t NextNonAscii(absl::string_view text, size_t pos) {
  // Eight bytes at a time while they are all ASCII.
  while (pos + 8 <= text.size()) {
    uint64_t word;
    std::memcpy(&word, text.data() + pos, 8);
    if ((word & 0x8080808080808080ULL) != 0) break;
    pos += 8;
  }
  while (pos < text.size() && static_cast<unsigned char>(text[pos]) < 0x80) {
    ++pos;
  }
  return pos;
}

size_t NextAscii(absl::string_view text, size_t pos) {
  while (pos < text.size() && static_cast<unsigned char>(text[pos]) >= 0x80) {
    ++pos;
  }
  return pos;
}

// Normalizes `text` to `form`. Returns false, leaving `out` alone, when the
// text is already normalized; otherwise fills `out`.
bool NormalizeOneForm(absl::string_view text, Normalizer::Form form,
                      std::string* out) {
  const InertCharacters& inert = InertFor(form);
  bool changed = false;
  size_t copied = 0;  // text[0, copied) is in *out (when changed)
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t non_ascii = NextNonAscii(text, pos);
    if (non_ascii == text.size()) break;
    // An ASCII character right before the non-ASCII run may compose with the
    // marks that follow it ("e" + U+0301), so it goes into the segment. An
    // ASCII character never combines with what precedes it, so the segment
    // can end right before the next one.
    const size_t segment_start = non_ascii > pos ? non_ascii - 1 : non_ascii;
    const size_t segment_end = NextAscii(text, non_ascii);
    pos = segment_end;
    const absl::string_view segment =
        text.substr(segment_start, segment_end - segment_start);
    // When every non-ASCII character is inert nothing changes, not even the
    // ASCII character before them (an inert character never composes).
    if (inert.AllInert(text.substr(non_ascii, segment_end - non_ascii))) {
      continue;
    }
    const std::string normalized = NormalizeSegment(segment, form);
    if (normalized == segment) continue;
    if (!changed) {
      out->clear();
      out->reserve(text.size() + text.size() / 8);
      changed = true;
    }
    out->append(text.data() + copied, segment_start - copied);
    out->append(normalized);
    copied = segment_end;
  }
  if (changed) out->append(text.data() + copied, text.size() - copied);
  return changed;
}

}  // namespace

absl::StatusOr<Normalizer> Normalizer::FromJson(const nlohmann::json& config) {
  std::vector<Form> forms;
  RETURN_IF_ERROR(AppendForms(config, &forms));
  return Normalizer(std::move(forms));
}

std::string Normalizer::Normalize(absl::string_view text) const {
  std::string storage;
  const absl::string_view normalized = Normalize(text, &storage);
  if (normalized.data() == storage.data()) return storage;
  return std::string(normalized);
}

absl::string_view Normalizer::Normalize(absl::string_view text,
                                        std::string* storage) const {
  absl::string_view current = text;
  std::string scratch;
  for (const Form form : forms_) {
    if (!NormalizeOneForm(current, form, &scratch)) continue;
    storage->swap(scratch);
    current = *storage;
  }
  return current;
}

std::string Normalizer::Describe() const {
  if (forms_.empty()) return "none";
  if (forms_.size() == 1) return std::string(FormName(forms_[0]));
  std::vector<std::string> names;
  for (Form form : forms_) names.emplace_back(FormName(form));
  return absl::StrCat("Sequence[", absl::StrJoin(names, ", "), "]");
}

}  // namespace blockserve::tokenizer
