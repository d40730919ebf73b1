#include "shared/tokenizer/streaming_detokenizer.h"

#include "shared/common/status_macros.h"
#include "shared/tokenizer/utf8.h"

namespace blockserve {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer,
                                           bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

absl::StatusOr<std::string> StreamingDetokenizer::Push(int32_t id) {
  return Push(absl::MakeConstSpan(&id, 1));
}

absl::StatusOr<std::string> StreamingDetokenizer::Push(
    absl::Span<const int32_t> ids) {
  // Check every id first so that an error leaves the state as it was.
  std::string bytes;
  for (const int32_t id : ids) {
    RETURN_IF_ERROR(
        tokenizer_.AppendTokenBytes(id, skip_special_tokens_, &bytes));
  }
  pending_.append(bytes);
  std::string out;
  Drain(&out);
  return out;
}

void StreamingDetokenizer::Drain(std::string* out) {
  size_t pos = 0;
  size_t clean_start = 0;
  while (pos < pending_.size()) {
    if (static_cast<unsigned char>(pending_[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const tokenizer::Utf8PrefixStep prefix =
        tokenizer::DecodeUtf8Prefix(pending_, pos);
    if (prefix.incomplete) break;  // wait for more bytes
    if (prefix.step.valid) {
      pos += prefix.step.length;
      continue;
    }
    out->append(pending_, clean_start, pos - clean_start);
    out->append(tokenizer::kReplacementUtf8.data(),
                tokenizer::kReplacementUtf8.size());
    pos += prefix.step.length;
    clean_start = pos;
  }
  out->append(pending_, clean_start, pos - clean_start);
  pending_.erase(0, pos);
}

std::string StreamingDetokenizer::Finish() {
  std::string out;
  if (!pending_.empty()) {
    // A valid prefix of a character that never completed: one U+FFFD, as a
    // lossy decode of the whole stream gives.
    out.assign(tokenizer::kReplacementUtf8.data(),
               tokenizer::kReplacementUtf8.size());
    pending_.clear();
  }
  return out;
}

}  // namespace blockserve
