// blockserve bench: throughput and latency of the paper's scenarios.
#include <cstdio>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tools/bench/engine_bench.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

absl::StatusOr<std::vector<int>> ParseIntList(const std::string& text, const char* flag) {
  std::vector<int> values;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int value;
    if (!absl::SimpleAtoi(piece, &value) || value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": '", piece, "' is not a positive integer"));
    }
    values.push_back(value);
  }
  if (values.empty()) return absl::InvalidArgumentError(absl::StrCat("--", flag, " is empty"));
  return values;
}

}  // namespace

int BenchCommand(const Args& args) {
  ModelFlags model_flags;
  bool engine_target = false;
  std::string scenario = "custom";
  int prompt_len = 128;
  int gen_len = 128;
  std::string batches = "1";
  int repeat = 1;
  bool no_warmup = false;
  uint64_t seed = 0;
  int max_step_rows = 0;
  bool json = false;
  ArgParser parser(
      "blockserve bench",
      "Measures generation throughput and latency with random prompt ids and EOS off.\n"
      "Scenarios (the paper's): prefill-heavy = 2048 prompt + 128 generated tokens,\n"
      "decode-heavy = 128 prompt + 2048 generated; custom uses --prompt-len/--gen-len.\n"
      "--batch takes one size or a comma list (a sweep). With --json, one JSON object per\n"
      "point on stdout and, for a sweep, a JSON array of them on the last line.\n"
      "Progress goes to stderr. Throughput counts generated tokens only, prefill\n"
      "time included (the paper's definition); total_tokens_per_s adds prompt tokens.");
  parser.AddBool("engine", &engine_target, "benchmark the in-process engine (needs --model)");
  model_flags.Register(parser);
  parser.AddString("scenario", &scenario, "prefill-heavy, decode-heavy or custom");
  parser.AddInt("prompt-len", &prompt_len, "prompt tokens per request (custom scenario)");
  parser.AddInt("gen-len", &gen_len, "generated tokens per request (custom scenario)");
  parser.AddString("batch", &batches, "concurrent requests: N or a list N1,N2,...");
  parser.AddInt("repeat", &repeat, "measurements per point; the median throughput is reported");
  parser.AddBool("no-warmup", &no_warmup, "skip the short warm-up run");
  parser.AddUint64("seed", &seed, "seed of the random prompts");
  parser.AddInt("max-step-rows", &max_step_rows,
                "prefill rows (blocks or tokens) per engine step (0: engine default)");
  parser.AddBool("json", &json, "print JSON results");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (!engine_target) {
    std::fprintf(stderr, "blockserve bench: choose a target: --engine\n");
    return 2;
  }
  if (scenario == "prefill-heavy") {
    prompt_len = 2048;
    gen_len = 128;
  } else if (scenario == "decode-heavy") {
    prompt_len = 128;
    gen_len = 2048;
  } else if (scenario != "custom") {
    std::fprintf(stderr, "blockserve bench: unknown --scenario '%s'\n", scenario.c_str());
    return 2;
  }
  absl::StatusOr<std::vector<int>> batch_list = ParseIntList(batches, "batch");
  if (!batch_list.ok()) return Fail("bench", batch_list.status());
  if (repeat < 1) {
    std::fprintf(stderr, "blockserve bench: --repeat must be >= 1\n");
    return 2;
  }

  absl::StatusOr<LoadedModel> loaded = LoadModelFromFlags(model_flags);
  if (!loaded.ok()) return Fail("bench", loaded.status());
  const Model& model = *loaded->model;
  if (!no_warmup) {
    std::fprintf(stderr, "bench: warm-up\n");
    auto warm = bench::RunEngineBench(model, {.prompt_len = std::min(prompt_len, 64),
                                              .gen_len = 8, .batch = 2, .seed = seed});
    if (!warm.ok()) return Fail("bench", warm.status());
  }
  nlohmann::json points = nlohmann::json::array();
  for (int batch : *batch_list) {
    std::vector<nlohmann::json> runs;
    for (int r = 0; r < repeat; ++r) {
      std::fprintf(stderr, "bench: %s prompt %d gen %d batch %d (run %d/%d)\n",
                   model_flags.model_dir.c_str(), prompt_len, gen_len, batch, r + 1, repeat);
      auto result = bench::RunEngineBench(
          model, {.prompt_len = prompt_len, .gen_len = gen_len, .batch = batch,
                  .seed = seed + static_cast<uint64_t>(r), .max_step_rows = max_step_rows});
      if (!result.ok()) return Fail("bench", result.status());
      std::fprintf(stderr, "bench:   %.1f generated tokens/s, ttft p50 %.3f s, %.2f s\n",
                   (*result)["generated_tokens_per_s"].get<double>(),
                   (*result)["ttft_s"].get<double>(), (*result)["elapsed_s"].get<double>());
      runs.push_back(*std::move(result));
    }
    std::sort(runs.begin(), runs.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      return a["generated_tokens_per_s"].get<double>() < b["generated_tokens_per_s"].get<double>();
    });
    nlohmann::json point = runs[runs.size() / 2];  // median run
    point["repeat"] = repeat;
    point["weight_dtype"] = model_flags.weight_dtype;
    point["scenario"] = scenario;
    std::vector<double> all;
    for (const auto& run : runs) all.push_back(run["generated_tokens_per_s"]);
    point["generated_tokens_per_s_runs"] = all;
    if (json) {
      std::printf("%s\n", point.dump().c_str());
    } else {
      std::printf("batch %4d: %10.1f generated tok/s  %10.1f total tok/s  ttft p50 %.3f s  "
                  "itl p50 %.4f s  kv/seq %.2f MB\n",
                  batch, point["generated_tokens_per_s"].get<double>(),
                  point["total_tokens_per_s"].get<double>(), point["ttft_s"].get<double>(),
                  point["itl"]["p50"].get<double>(),
                  point["kv_bytes_per_seq"].get<double>() / 1e6);
    }
    std::fflush(stdout);
    points.push_back(std::move(point));
  }
  if (json && points.size() > 1) std::printf("%s\n", points.dump().c_str());
  return 0;
}

}  // namespace blockserve::cli
