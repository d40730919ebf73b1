// blockserve bench: throughput and latency of the paper's scenarios, on two
// targets with one report: the in-process engine (--engine --model DIR) or a
// running stack through its gateway (--gateway HOST:PORT).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tools/bench/engine_bench.h"
#include "tools/bench/gateway_bench.h"
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

// One measurement of one point: (batch, run index) -> its JSON object.
using MeasureFn = std::function<absl::StatusOr<nlohmann::json>(int batch, int run)>;

}  // namespace

int BenchCommand(const Args& args) {
  ModelFlags model_flags;
  bool engine_target = false;
  std::string gateway;
  std::string scenario = "custom";
  int prompt_len = 128;
  int gen_len = 128;
  std::string batches = "1";
  int repeat = 1;
  bool no_warmup = false;
  uint64_t seed = 0;
  int max_step_rows = 0;
  std::string kv_dtype_text = "f32";
  int requests = 0;
  double duration_s = 0;
  double timeout_s = 600;
  int channels = 0;
  std::string out_file;
  bool json = false;
  ArgParser parser(
      "blockserve bench",
      "Measures generation throughput and latency with random prompt ids and EOS off, on\n"
      "one of two targets: --engine --model DIR (the engine in this process) or\n"
      "--gateway HOST:PORT (a running stack, through the public Generate call; --batch\n"
      "streams at once, each call with a --timeout deadline, the run bounded by --requests\n"
      "and --duration).\n"
      "Scenarios (the paper's): prefill-heavy = 2048 prompt + 128 generated tokens,\n"
      "decode-heavy = 128 prompt + 2048 generated; custom uses --prompt-len/--gen-len.\n"
      "--batch takes one size or a comma list (a sweep). With --json, one JSON object per\n"
      "point on stdout and, for a sweep, a JSON array of them on the last line.\n"
      "Progress goes to stderr. Throughput counts generated tokens only, prefill\n"
      "time included (the paper's definition); total_tokens_per_s adds prompt tokens.\n"
      "Fields: docs/benchmarks.md; charts: tools/bench/plot_bench.py.");
  parser.AddBool("engine", &engine_target, "benchmark the in-process engine (needs --model)");
  parser.AddString("gateway", &gateway, "benchmark a running stack through this gateway");
  model_flags.Register(parser, /*model_required=*/false);
  parser.AddString("scenario", &scenario, "prefill-heavy, decode-heavy or custom");
  parser.AddInt("prompt-len", &prompt_len, "prompt tokens per request (custom scenario)");
  parser.AddInt("gen-len", &gen_len, "generated tokens per request (custom scenario)");
  parser.AddString("batch", &batches,
                   "concurrent requests (--gateway: streams): N or a list N1,N2,...");
  parser.AddInt("repeat", &repeat, "measurements per point; the median throughput is reported");
  parser.AddBool("no-warmup", &no_warmup, "skip the short warm-up run");
  parser.AddUint64("seed", &seed, "seed of the random prompts");
  parser.AddString("kv-dtype", &kv_dtype_text, absl::StrCat("--engine: ", kKvDTypeHelp));
  parser.AddInt("max-step-rows", &max_step_rows,
                "--engine: prefill rows (blocks or tokens) per engine step (0: engine default)");
  parser.AddInt("requests", &requests,
                "--gateway: calls per measurement (0: one per stream, like --engine)");
  parser.AddDouble("duration", &duration_s,
                   "--gateway: no call starts after this many seconds (0: no bound)");
  parser.AddDouble("timeout", &timeout_s, "--gateway: deadline of every call, in seconds");
  parser.AddInt("channels", &channels,
                "--gateway: HTTP/2 connections to the gateway (0: one per 16 streams)");
  parser.AddString("out", &out_file, "also write every point, as a JSON array, to this file");
  parser.AddBool("json", &json, "print JSON results");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (engine_target == !gateway.empty()) {
    std::fprintf(stderr, "blockserve bench: choose one target: --engine or --gateway HOST:PORT\n");
    return 2;
  }
  if (engine_target && model_flags.model_dir.empty()) {
    std::fprintf(stderr, "blockserve bench: --engine needs --model DIR\n");
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
  if (!batch_list.ok()) {
    std::fprintf(stderr, "blockserve bench: %s\n",
                 std::string(batch_list.status().message()).c_str());
    return 2;
  }
  if (repeat < 1 || requests < 0 || duration_s < 0 || timeout_s <= 0 || channels < 0) {
    std::fprintf(stderr,
                 "blockserve bench: --repeat must be >= 1, --requests, --duration and "
                 "--channels >= 0, --timeout > 0\n");
    return 2;
  }

  // The target: a measurement function and a short warm-up.
  std::optional<LoadedModel> loaded;
  std::unique_ptr<bench::GatewayClient> client;
  std::optional<ModelConfig> gateway_config;
  MeasureFn measure;
  std::function<absl::Status()> warm_up;
  std::string label;
  if (engine_target) {
    absl::StatusOr<DType> kv_dtype = ParseKvDType(kv_dtype_text);
    if (!kv_dtype.ok()) return Fail("bench", kv_dtype.status());
    absl::StatusOr<LoadedModel> model = LoadModelFromFlags(model_flags);
    if (!model.ok()) return Fail("bench", model.status());
    loaded = *std::move(model);
    const Model* m = loaded->model.get();
    label = model_flags.model_dir;
    measure = [&, m, kv = *kv_dtype](int batch, int run) {
      return bench::RunEngineBench(*m, {.prompt_len = prompt_len,
                                        .gen_len = gen_len,
                                        .batch = batch,
                                        .seed = seed + static_cast<uint64_t>(run),
                                        .max_step_rows = max_step_rows,
                                        .kv_dtype = kv,
                                        .progress = true});
    };
    warm_up = [&, m, kv = *kv_dtype]() -> absl::Status {
      return bench::RunEngineBench(*m, {.prompt_len = std::min(prompt_len, 64),
                                        .gen_len = 8,
                                        .batch = 2,
                                        .seed = seed,
                                        .kv_dtype = kv})
          .status();
    };
  } else {
    if (!model_flags.model_dir.empty()) {
      // Only the configuration: kv_bytes_per_seq and the parameter count.
      absl::StatusOr<ModelConfig> config = LoadModelConfig(model_flags.model_dir);
      if (!config.ok()) return Fail("bench", config.status());
      gateway_config = *config;
    }
    const int max_batch = *std::max_element(batch_list->begin(), batch_list->end());
    client =
        bench::GatewayClient::Connect(gateway, channels > 0 ? channels : (max_batch + 15) / 16);
    label = gateway;
    measure = [&](int batch, int run) {
      return bench::RunGatewayBench(*client,
                                    {.prompt_len = prompt_len,
                                     .gen_len = gen_len,
                                     .concurrency = batch,
                                     .requests = requests,
                                     .duration_s = duration_s,
                                     .timeout_s = timeout_s,
                                     .seed = seed + static_cast<uint64_t>(run),
                                     .progress = true},
                                    gateway_config);
    };
    warm_up = [&]() -> absl::Status {
      absl::StatusOr<nlohmann::json> warm =
          bench::RunGatewayBench(*client,
                                 {.prompt_len = std::min(prompt_len, 64),
                                  .gen_len = 8,
                                  .concurrency = std::min(max_batch, 4),
                                  .timeout_s = timeout_s,
                                  .seed = seed},
                                 gateway_config);
      if (!warm.ok()) return warm.status();
      if ((*warm)["failed_requests"].get<int64_t>() > 0) {
        return absl::UnavailableError(
            absl::StrCat("warm-up failed: ", (*warm)["first_error"].get<std::string>()));
      }
      return absl::OkStatus();
    };
  }

  if (!no_warmup) {
    std::fprintf(stderr, "bench: warm-up\n");
    if (absl::Status status = warm_up(); !status.ok()) return Fail("bench", status);
  }
  nlohmann::json points = nlohmann::json::array();
  int64_t failed_requests = 0;
  for (int batch : *batch_list) {
    std::vector<nlohmann::json> runs;
    for (int r = 0; r < repeat; ++r) {
      std::fprintf(stderr, "bench: %s prompt %d gen %d batch %d (run %d/%d)\n", label.c_str(),
                   prompt_len, gen_len, batch, r + 1, repeat);
      absl::StatusOr<nlohmann::json> result = measure(batch, r);
      if (!result.ok()) return Fail("bench", result.status());
      std::fprintf(stderr, "bench:   %.1f generated tokens/s, ttft p50 %.3f s, %.2f s\n",
                   (*result)["generated_tokens_per_s"].get<double>(),
                   (*result)["ttft_s"].get<double>(), (*result)["elapsed_s"].get<double>());
      if (result->contains("failed_requests")) {
        const int64_t failed = (*result)["failed_requests"].get<int64_t>();
        if (failed > 0) {
          std::fprintf(stderr, "bench:   %lld requests failed; first: %s\n",
                       static_cast<long long>(failed),
                       (*result)["first_error"].get<std::string>().c_str());
        }
        failed_requests += failed;
      }
      runs.push_back(*std::move(result));
    }
    std::sort(runs.begin(), runs.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
      return a["generated_tokens_per_s"].get<double>() < b["generated_tokens_per_s"].get<double>();
    });
    nlohmann::json point = runs[runs.size() / 2];  // median run
    point["repeat"] = repeat;
    if (engine_target) point["weight_dtype"] = model_flags.weight_dtype;
    point["scenario"] = scenario;
    std::vector<double> all;
    for (const auto& run : runs) all.push_back(run["generated_tokens_per_s"]);
    point["generated_tokens_per_s_runs"] = all;
    if (json) {
      std::printf("%s\n", point.dump().c_str());
    } else {
      const nlohmann::json& kv = point["kv_bytes_per_seq"];
      std::printf(
          "batch %4d: %10.1f generated tok/s  %10.1f total tok/s  ttft p50 %.3f s  "
          "itl p50 %.4f s  kv/seq %s\n",
          batch, point["generated_tokens_per_s"].get<double>(),
          point["total_tokens_per_s"].get<double>(), point["ttft_s"].get<double>(),
          point["itl"]["p50"].get<double>(),
          kv.is_null() ? "unknown (no --model)"
                       : absl::StrCat(kv.get<double>() / 1e6, " MB").c_str());
    }
    std::fflush(stdout);
    points.push_back(std::move(point));
  }
  if (json && points.size() > 1) std::printf("%s\n", points.dump().c_str());
  if (!out_file.empty()) {
    std::ofstream out(out_file);
    out << points.dump(1) << "\n";
    if (!out) return Fail("bench", absl::InternalError("cannot write " + out_file));
  }
  if (failed_requests > 0) {
    std::fprintf(stderr, "blockserve bench: %lld requests failed\n",
                 static_cast<long long>(failed_requests));
    return 1;
  }
  return 0;
}

}  // namespace blockserve::cli
