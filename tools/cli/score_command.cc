// blockserve score: per-token log-probabilities and perplexity of a text.
#include <cmath>
#include <cstdio>

#include "nlohmann/json.hpp"
#include "shared/engine/scorer.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {

int ScoreCommand(const Args& args) {
  ModelFlags model_flags;
  std::string tokens_text;
  std::string text_file;
  std::string tokenizer_path;
  bool json = false;
  ArgParser parser("blockserve score",
                   "Scores a sequence with the model: the log-probability of every token given "
                   "the ones before it, and the perplexity over the scored tokens.\n"
                   "Block models do not score the first block (after left padding); vanilla "
                   "models do not score the first token.");
  model_flags.Register(parser);
  parser.AddString("tokens", &tokens_text, "token ids to score, e.g. \"12 7 99\"");
  parser.AddString("text-file", &text_file, "a text file to score (needs a tokenizer)");
  parser.AddString("tokenizer", &tokenizer_path,
                   "tokenizer.json (default: the one in the model directory)");
  parser.AddBool("json", &json,
                 "print one JSON object: logprobs (null where not scored), nll (mean per scored "
                 "token), nll_sum, ppl, scored_tokens");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (tokens_text.empty() == text_file.empty()) {
    std::fprintf(stderr, "blockserve score: give exactly one of --tokens and --text-file\n");
    return 2;
  }

  absl::StatusOr<LoadedModel> loaded = LoadModelFromFlags(model_flags);
  if (!loaded.ok()) return Fail("score", loaded.status());
  absl::StatusOr<std::vector<int32_t>> tokens =
      !tokens_text.empty()
          ? ParseTokenList(tokens_text)
          : EncodeTextFile(*loaded->model, tokenizer_path, text_file);
  if (!tokens.ok()) return Fail("score", tokens.status());

  absl::StatusOr<ScoreResult> result = ScoreTokens(*loaded->model, *tokens);
  if (!result.ok()) return Fail("score", result.status());
  const double mean_nll =
      result->scored_tokens > 0 ? result->nll / result->scored_tokens : std::nan("");
  if (json) {
    nlohmann::json out;
    out["logprobs"] = nlohmann::json::array();
    for (const std::optional<float>& logprob : result->logprobs) {
      out["logprobs"].push_back(logprob.has_value() ? nlohmann::json(*logprob) : nlohmann::json());
    }
    out["tokens"] = tokens->size();
    out["scored_tokens"] = result->scored_tokens;
    out["nll_sum"] = result->nll;
    out["nll"] = result->scored_tokens > 0 ? nlohmann::json(mean_nll) : nlohmann::json();
    out["ppl"] = result->scored_tokens > 0 ? nlohmann::json(result->perplexity()) : nlohmann::json();
    std::printf("%s\n", out.dump().c_str());
  } else {
    std::printf("tokens: %zu, scored: %lld, nll per token: %.6f, perplexity: %.4f\n",
                tokens->size(), static_cast<long long>(result->scored_tokens), mean_nll,
                result->perplexity());
  }
  return 0;
}

}  // namespace blockserve::cli
