// blockserve tokenize: encode standard input to token ids, or decode ids
// back to text, with a tokenizer.json.
//
//   blockserve tokenize --tokenizer tokenizer.json < text.txt
//       prints "15496 995\n" for "Hello world"
//   echo 15496 995 | blockserve tokenize --tokenizer tokenizer.json --decode
//       prints "Hello world"
//
// Encoding reads all of standard input as one text (newlines included, no
// trailing newline stripped) and prints its ids on one line, space
// separated, adding no special tokens (Hugging Face's
// encode(text, add_special_tokens=False)). Decoding reads ids separated by
// spaces, commas or newlines and writes the text exactly, with no newline
// added.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "shared/common/arg_parser.h"
#include "shared/tokenizer/tokenizer.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

absl::StatusOr<std::string> ReadAllStdin() {
  std::string input;
  char buffer[1 << 16];
  size_t got;
  while ((got = std::fread(buffer, 1, sizeof(buffer), stdin)) > 0) {
    input.append(buffer, got);
  }
  if (std::ferror(stdin)) {
    return absl::DataLossError("cannot read standard input");
  }
  return input;
}

}  // namespace

int TokenizeCommand(const Args& args) {
  std::string tokenizer_path;
  bool decode = false;
  bool skip_special = false;
  bool add_special = false;
  ArgParser parser("blockserve tokenize",
                   "Encode standard input to token ids (one line, space "
                   "separated), or with --decode turn ids back into text.");
  parser.AddString("tokenizer", &tokenizer_path,
                   "tokenizer.json (Hugging Face format, byte-level BPE)",
                   /*required=*/true);
  parser.AddBool("decode", &decode, "read token ids, write the text");
  parser.AddBool("skip-special-tokens", &skip_special,
                 "with --decode: leave special tokens out of the text");
  parser.AddBool("add-special-tokens", &add_special,
                 "when encoding: apply the post-processor's special tokens");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (decode && add_special) {
    std::fprintf(stderr,
                 "blockserve tokenize: --add-special-tokens applies to "
                 "encoding, not --decode\n");
    return 2;
  }
  if (!decode && skip_special) {
    std::fprintf(stderr, "blockserve tokenize: --skip-special-tokens needs --decode\n");
    return 2;
  }

  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromFile(tokenizer_path);
  if (!tokenizer.ok()) return Fail("tokenize", tokenizer.status());
  absl::StatusOr<std::string> input = ReadAllStdin();
  if (!input.ok()) return Fail("tokenize", input.status());

  if (decode) {
    absl::StatusOr<std::vector<int32_t>> ids = ParseTokenList(*input);
    if (!ids.ok()) return Fail("tokenize", ids.status());
    absl::StatusOr<std::string> text = (*tokenizer)->Decode(*ids, skip_special);
    if (!text.ok()) return Fail("tokenize", text.status());
    std::fwrite(text->data(), 1, text->size(), stdout);
  } else {
    EncodeOptions options;
    options.add_special_tokens = add_special;
    absl::StatusOr<std::vector<int32_t>> ids = (*tokenizer)->Encode(*input, options);
    if (!ids.ok()) return Fail("tokenize", ids.status());
    std::string line;
    line.reserve(ids->size() * 6 + 1);
    for (size_t i = 0; i < ids->size(); ++i) {
      if (i > 0) line.push_back(' ');
      absl::StrAppend(&line, (*ids)[i]);
    }
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  if (std::fflush(stdout) != 0) {
    return Fail("tokenize", absl::UnavailableError("cannot write standard output"));
  }
  return 0;
}

}  // namespace blockserve::cli
