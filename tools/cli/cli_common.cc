#include "tools/cli/cli_common.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "shared/common/status_macros.h"

namespace blockserve::cli {

void ModelFlags::Register(ArgParser& parser, bool model_required) {
  parser.AddString("model", &model_dir, "model directory (model.safetensors [+ config.json])",
                   model_required);
  parser.AddString("device", &device, "compute device: cpu or cuda[:N]");
  parser.AddInt("threads", &threads, "CPU threads (0 = all cores)");
  parser.AddString("weight-dtype", &weight_dtype, "weight storage: f32, bf16 or f16");
}

absl::StatusOr<LoadedModel> LoadModelFromFlags(const ModelFlags& flags,
                                               const ModelLoadOptions& base) {
  LoadedModel loaded;
  ASSIGN_OR_RETURN(loaded.backend,
                   CreateBackend({.device = flags.device, .threads = flags.threads}));
  ModelLoadOptions options = base;
  if (flags.weight_dtype == "f32") {
    options.weight_dtype = DType::kF32;
  } else if (flags.weight_dtype == "bf16") {
    options.weight_dtype = DType::kBF16;
  } else if (flags.weight_dtype == "f16") {
    options.weight_dtype = DType::kF16;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--weight-dtype must be f32, bf16 or f16, got '", flags.weight_dtype, "'"));
  }
  ASSIGN_OR_RETURN(loaded.model, Model::Load(flags.model_dir, *loaded.backend, options));
  return loaded;
}

absl::StatusOr<DType> ParseKvDType(absl::string_view text) {
  if (text == "f32") return DType::kF32;
  if (text == "f16") return DType::kF16;
  return absl::InvalidArgumentError(
      absl::StrCat("--kv-dtype must be f32 or f16, got '", text, "'"));
}

absl::StatusOr<std::vector<int32_t>> ParseTokenList(absl::string_view text) {
  std::vector<int32_t> ids;
  for (absl::string_view piece :
       absl::StrSplit(text, absl::ByAnyChar(" ,\n\t\r"), absl::SkipEmpty())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("'", piece, "' is not a token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

bool ParseOrExit(ArgParser& parser, const std::vector<std::string>& args, int& exit_code) {
  absl::Status status = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    exit_code = 0;
    return false;
  }
  if (!status.ok()) {
    std::fprintf(stderr, "%s\n\n%s", std::string(status.message()).c_str(), parser.Usage().c_str());
    exit_code = 2;
    return false;
  }
  return true;
}

int Fail(absl::string_view command, const absl::Status& status) {
  std::fprintf(stderr, "blockserve %s: %s\n", std::string(command).c_str(),
               std::string(status.message()).c_str());
  return 1;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_dir,
                                                         const std::string& explicit_path,
                                                         bool required) {
  std::string path = explicit_path;
  if (path.empty()) {
    path = (std::filesystem::path(model_dir) / "tokenizer.json").string();
    std::error_code error;
    if (!std::filesystem::exists(path, error)) {
      if (!required) return std::unique_ptr<Tokenizer>();
      return absl::NotFoundError(absl::StrCat("no tokenizer.json in ", model_dir,
                                              ": pass --tokenizer FILE or give token ids"));
    }
  }
  return Tokenizer::FromFile(path);
}

absl::StatusOr<std::vector<int32_t>> EncodeTextFile(const Model& model,
                                                    const std::string& tokenizer_path,
                                                    const std::string& text_file) {
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                   LoadTokenizer(model.directory(), tokenizer_path, /*required=*/true));
  ASSIGN_OR_RETURN(std::string text, ReadFile(text_file));
  return tokenizer->Encode(text);
}

}  // namespace blockserve::cli
