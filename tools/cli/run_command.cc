// blockserve run: in-process generation through the batching engine.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>

#include "nlohmann/json.hpp"
#include "shared/engine/engine.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Collects the updates of every copy and wakes the main thread when all
// have finished.
struct Collector {
  struct Output {
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    FinishReason reason = FinishReason::kNone;
    absl::Status status;
    double first_token_s = -1;
    double finish_s = 0;
  };
  std::mutex mutex;
  std::condition_variable done;
  std::vector<Output> outputs;
  int remaining = 0;
  Clock::time_point start;

  Engine::Callback For(int index) {
    return [this, index](GenerationUpdate update) {
      std::lock_guard<std::mutex> lock(mutex);
      Output& out = outputs[index];
      const double now = std::chrono::duration<double>(Clock::now() - start).count();
      if (!update.tokens.empty() && out.first_token_s < 0) out.first_token_s = now;
      out.tokens.insert(out.tokens.end(), update.tokens.begin(), update.tokens.end());
      out.logprobs.insert(out.logprobs.end(), update.logprobs.begin(), update.logprobs.end());
      if (update.finished) {
        out.reason = update.finish_reason;
        out.status = update.status;
        out.finish_s = now;
        if (--remaining == 0) done.notify_all();
      }
    };
  }
};

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : 0.5 * (values[mid - 1] + values[mid]);
}

}  // namespace

int RunCommand(const Args& args) {
  ModelFlags model_flags;
  std::string prompt;
  std::string tokens_text;
  std::string tokenizer_path;
  int max_new_tokens = 32;
  bool greedy = false;
  double temperature = 0.0;
  int top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  int batch = 1;
  bool ignore_eos = false;
  std::string kv_dtype_text = "f32";
  bool logprobs = false;
  bool json = false;
  ArgParser parser("blockserve run",
                   "Generates a continuation in-process (no services). Greedy unless a "
                   "--temperature above 0 is given. --batch B runs B copies of the prompt as one "
                   "batch (copy i samples with seed S+i) and reports throughput.");
  model_flags.Register(parser);
  parser.AddString("prompt", &prompt, "prompt text (needs a tokenizer)");
  parser.AddString("tokens", &tokens_text, "prompt token ids, e.g. \"12 7 99\"");
  parser.AddString("tokenizer", &tokenizer_path,
                   "tokenizer.json (default: the one in the model directory)");
  parser.AddInt("max-new-tokens", &max_new_tokens, "tokens to generate at most");
  parser.AddBool("greedy", &greedy, "greedy decoding (the default)");
  parser.AddDouble("temperature", &temperature, "sampling temperature (0 = greedy)");
  parser.AddInt("top-k", &top_k, "sample among the k most likely tokens (0 = all)");
  parser.AddDouble("top-p", &top_p, "nucleus sampling mass (1 = off)");
  parser.AddUint64("seed", &seed, "sampling seed");
  parser.AddInt("batch", &batch, "copies of the prompt generated together");
  parser.AddBool("ignore-eos", &ignore_eos, "keep generating after the end-of-text token");
  parser.AddString("kv-dtype", &kv_dtype_text, kKvDTypeHelp);
  parser.AddBool("logprobs", &logprobs, "report the log-probability of each generated token");
  parser.AddBool("json", &json,
                 "print one JSON object: tokens and text of the first copy, finish_reason, "
                 "timing and throughput");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (prompt.empty() == tokens_text.empty()) {
    std::fprintf(stderr, "blockserve run: give exactly one of --prompt and --tokens\n");
    return 2;
  }
  if (greedy && temperature > 0) {
    std::fprintf(stderr, "blockserve run: --greedy and --temperature > 0 contradict each other\n");
    return 2;
  }
  if (batch < 1) {
    std::fprintf(stderr, "blockserve run: --batch must be at least 1\n");
    return 2;
  }

  absl::StatusOr<DType> kv_dtype = ParseKvDType(kv_dtype_text);
  if (!kv_dtype.ok()) return Fail("run", kv_dtype.status());
  absl::StatusOr<LoadedModel> loaded = LoadModelFromFlags(model_flags);
  if (!loaded.ok()) return Fail("run", loaded.status());
  const Model& model = *loaded->model;
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      LoadTokenizer(model_flags.model_dir, tokenizer_path, /*required=*/!prompt.empty());
  if (!tokenizer.ok()) return Fail("run", tokenizer.status());
  absl::StatusOr<std::vector<int32_t>> prompt_ids =
      tokens_text.empty() ? (*tokenizer)->Encode(prompt) : ParseTokenList(tokens_text);
  if (!prompt_ids.ok()) return Fail("run", prompt_ids.status());

  EngineOptions options;
  options.context.kv_dtype = *kv_dtype;
  options.vanilla.kv_dtype = *kv_dtype;
  options.context.max_sessions = std::max(options.context.max_sessions, batch);
  options.token_decoder.max_active_blocks =
      std::max(options.token_decoder.max_active_blocks, batch);
  options.vanilla.max_sessions = std::max(options.vanilla.max_sessions, batch);
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(model, options);
  if (!engine.ok()) return Fail("run", engine.status());

  Collector collector;
  collector.outputs.resize(batch);
  collector.remaining = batch;
  collector.start = Clock::now();
  for (int i = 0; i < batch; ++i) {
    GenerationRequest request;
    request.prompt = *prompt_ids;
    request.max_new_tokens = max_new_tokens;
    request.sampling = {.temperature = static_cast<float>(temperature),
                        .top_k = top_k,
                        .top_p = static_cast<float>(top_p),
                        .seed = seed + static_cast<uint64_t>(i)};
    request.stop_at_eos = !ignore_eos;
    request.return_logprobs = logprobs;
    absl::StatusOr<uint64_t> id = (*engine)->Enqueue(std::move(request), collector.For(i));
    if (!id.ok()) return Fail("run", id.status());
  }
  {
    std::unique_lock<std::mutex> lock(collector.mutex);
    collector.done.wait(lock, [&] { return collector.remaining == 0; });
  }
  (*engine)->Shutdown();
  const double elapsed = std::chrono::duration<double>(Clock::now() - collector.start).count();

  int64_t generated = 0;
  std::vector<double> ttfts;
  for (const Collector::Output& out : collector.outputs) {
    if (!out.status.ok()) return Fail("run", out.status);
    generated += static_cast<int64_t>(out.tokens.size());
    if (out.first_token_s >= 0) ttfts.push_back(out.first_token_s);
  }
  const Collector::Output& first = collector.outputs[0];
  std::string text;
  if (*tokenizer != nullptr) {
    absl::StatusOr<std::string> decoded =
        (*tokenizer)->Decode(first.tokens, /*skip_special=*/false);
    if (!decoded.ok()) return Fail("run", decoded.status());
    text = *decoded;
  }
  const double tokens_per_s = elapsed > 0 ? generated / elapsed : 0;
  if (json) {
    nlohmann::json out;
    out["tokens"] = first.tokens;
    if (*tokenizer != nullptr) out["text"] = text;
    if (logprobs) out["logprobs"] = first.logprobs;
    out["finish_reason"] = std::string(FinishReasonName(first.reason));
    out["prompt_tokens"] = prompt_ids->size();
    out["batch"] = batch;
    out["generated_tokens"] = generated;
    out["elapsed_s"] = elapsed;
    out["generated_tokens_per_s"] = tokens_per_s;
    out["ttft_s"] = Median(ttfts);
    std::printf("%s\n", out.dump().c_str());
  } else {
    if (*tokenizer != nullptr) {
      std::printf("%s%s\n", prompt.empty() ? "" : prompt.c_str(), text.c_str());
    } else {
      for (size_t i = 0; i < first.tokens.size(); ++i) {
        std::printf(i ? " %d" : "%d", first.tokens[i]);
      }
      std::printf("\n");
    }
    std::fprintf(stderr,
                 "generated %lld tokens (batch %d) in %.3f s: %.1f tokens/s, time to first "
                 "token %.3f s, finish: %s\n",
                 static_cast<long long>(generated), batch, elapsed, tokens_per_s, Median(ttfts),
                 std::string(FinishReasonName(first.reason)).c_str());
  }
  return 0;
}

}  // namespace blockserve::cli
