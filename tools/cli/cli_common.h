// Helpers shared by the blockserve subcommands: loading a model on a backend
// from the common flags, parsing token lists, and printing errors.
// Not thread-safe; for the CLI's main thread.
#ifndef BLOCKSERVE_TOOLS_CLI_CLI_COMMON_H_
#define BLOCKSERVE_TOOLS_CLI_CLI_COMMON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/backend.h"
#include "shared/common/arg_parser.h"
#include "shared/model/model.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve::cli {

// --model, --device, --threads, --weight-dtype.
struct ModelFlags {
  std::string model_dir;
  std::string device = "cpu";
  int threads = 0;
  std::string weight_dtype = "f32";

  // `model_required` false: --model may be left out (bench --gateway).
  void Register(ArgParser& parser, bool model_required = true);
};

// A backend and a model loaded on it (the model refers to the backend).
struct LoadedModel {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
};
absl::StatusOr<LoadedModel> LoadModelFromFlags(const ModelFlags& flags,
                                               const ModelLoadOptions& base = {});

// Parses a --kv-dtype value: "f32" or "f16".
absl::StatusOr<DType> ParseKvDType(absl::string_view text);
inline constexpr char kKvDTypeHelp[] =
    "KV cache entries: f32 or f16 (half the cache memory and the bytes attention reads per "
    "token; entries rounded to f16 once)";

// Parses "12 34 56" (spaces, commas or newlines between ids).
absl::StatusOr<std::vector<int32_t>> ParseTokenList(absl::string_view text);

// Parses the arguments; on --help prints usage and returns 0 through
// `exit_code`, on a usage error prints it and returns 2. Returns true when
// the command should go on.
bool ParseOrExit(ArgParser& parser, const std::vector<std::string>& args, int& exit_code);

// Prints "blockserve COMMAND: message" to stderr and returns 1.
int Fail(absl::string_view command, const absl::Status& status);

absl::StatusOr<std::string> ReadFile(const std::string& path);

// Loads `explicit_path`, or else MODEL_DIR/tokenizer.json. Returns nullptr
// when neither exists and `required` is false.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir,
                                                         const std::string& explicit_path,
                                                         bool required);

// Reads and tokenizes a text file with the model's (or the given) tokenizer.
absl::StatusOr<std::vector<int32_t>> EncodeTextFile(const Model& model,
                                                    const std::string& tokenizer_path,
                                                    const std::string& text_file);

}  // namespace blockserve::cli

#endif  // BLOCKSERVE_TOOLS_CLI_CLI_COMMON_H_
