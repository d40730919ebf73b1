// blockserve generate: a client of the gateway's Generate call. Streams the
// text (or, with no tokenizer on the gateway, the token ids) to the terminal
// as it arrives; --json prints one JSON object at the end instead.
// --requests R --concurrency C sends R copies of the request, C at a time
// (copy i samples with seed S+i when --seed is given, like `run --batch`),
// and reports the throughput: the stack's counterpart of `run --batch`.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "blockserve/v1/generation.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "services/common/status_mapping.h"
#include "tools/cli/cli_common.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Outcome {
  grpc::Status status;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string text;
  v1::GenerationEnd end;
  uint64_t seed = 0;
  double first_token_s = -1;
  double elapsed_s = 0;
};

std::string FinishName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_EOS:
      return "eos";
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return "";
  }
}

// Runs one Generate call; `stream_out` prints pieces as they arrive.
Outcome RunOne(v1::Generation::Stub& stub, const v1::GenerateRequest& request, double timeout_s,
               bool stream_out) {
  Outcome out;
  const Clock::time_point start = Clock::now();
  grpc::ClientContext context;
  if (timeout_s > 0) {
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::microseconds(static_cast<int64_t>(timeout_s * 1e6)));
  }
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub.Generate(&context, request);
  v1::GenerateResponse response;
  bool have_text = false;
  while (reader->Read(&response)) {
    if (response.has_start()) out.seed = response.start().seed();
    if (response.token_ids_size() > 0 && out.first_token_s < 0) {
      out.first_token_s = std::chrono::duration<double>(Clock::now() - start).count();
    }
    out.tokens.insert(out.tokens.end(), response.token_ids().begin(), response.token_ids().end());
    out.logprobs.insert(out.logprobs.end(), response.logprobs().begin(), response.logprobs().end());
    out.text += response.text();
    have_text |= !response.text().empty();
    if (stream_out) {
      if (!response.text().empty()) {
        std::fputs(response.text().c_str(), stdout);
      } else if (response.token_ids_size() > 0 && !have_text && request.has_token_ids()) {
        for (int32_t id : response.token_ids()) std::printf("%d ", id);
      }
      std::fflush(stdout);
    }
    if (response.has_end()) out.end = response.end();
  }
  out.status = reader->Finish();
  out.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

nlohmann::json UsageJson(const v1::Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens()},
          {"generated_tokens", usage.generated_tokens()},
          {"time_to_first_token_s", usage.time_to_first_token_seconds()},
          {"total_s", usage.total_seconds()},
          {"queue_s", usage.queue_seconds()}};
}

}  // namespace

int GenerateCommand(const Args& args) {
  std::string gateway;
  std::string prompt;
  std::string tokens_text;
  int max_new_tokens = 0;
  bool greedy = false;
  double temperature = 0.0;
  int top_k = 0;
  double top_p = 1.0;
  uint64_t seed = 0;
  bool ignore_eos = false;
  bool logprobs = false;
  bool keep_special = false;
  bool json = false;
  std::vector<std::string> stops;
  double timeout_s = 0;
  int requests = 1;
  int concurrency = 1;
  ArgParser parser("blockserve generate",
                   "Generates through a running stack's gateway (see `blockserve up`), "
                   "streaming the output as it arrives. Greedy unless a --temperature above 0 "
                   "is given; without --seed the gateway picks one and reports it.");
  parser.AddString("gateway", &gateway, "gateway address HOST:PORT", /*required=*/true);
  parser.AddString("prompt", &prompt, "prompt text (the gateway needs a tokenizer)");
  parser.AddString("tokens", &tokens_text, "prompt token ids, e.g. \"12 7 99\"");
  parser.AddInt("max-new-tokens", &max_new_tokens,
                "tokens to generate at most (0: the gateway's default)");
  parser.AddBool("greedy", &greedy, "greedy decoding (the default)");
  parser.AddDouble("temperature", &temperature, "sampling temperature (0 = greedy)");
  parser.AddInt("top-k", &top_k, "sample among the k most likely tokens (0 = all)");
  parser.AddDouble("top-p", &top_p, "nucleus sampling mass (1 = off)");
  parser.AddUint64("seed", &seed, "sampling seed (default: chosen by the gateway)");
  parser.AddBool("ignore-eos", &ignore_eos, "keep generating after the end-of-text token");
  parser.AddBool("logprobs", &logprobs, "report the log-probability of each generated token");
  parser.AddBool("keep-special-tokens", &keep_special, "include special tokens in the text");
  parser.AddRepeated("stop", &stops, "stop sequence (repeatable)");
  parser.AddDouble("timeout", &timeout_s, "deadline in seconds (0: none)");
  parser.AddInt("requests", &requests, "copies of the request to send (throughput mode)");
  parser.AddInt("concurrency", &concurrency, "copies in flight at once");
  parser.AddBool("json", &json,
                 "print one JSON object at the end: tokens, text, finish_reason, usage, seed "
                 "(with --requests > 1: the throughput and the first copy's output)");
  int exit_code = 0;
  if (!ParseOrExit(parser, args, exit_code)) return exit_code;
  if (prompt.empty() == tokens_text.empty()) {
    std::fprintf(stderr, "blockserve generate: give exactly one of --prompt and --tokens\n");
    return 2;
  }
  if (greedy && temperature > 0) {
    std::fprintf(stderr,
                 "blockserve generate: --greedy and --temperature > 0 contradict each other\n");
    return 2;
  }
  if (requests < 1 || concurrency < 1) {
    std::fprintf(stderr, "blockserve generate: --requests and --concurrency must be >= 1\n");
    return 2;
  }
  v1::GenerateRequest request;
  if (!prompt.empty()) {
    request.set_text(prompt);
  } else {
    absl::StatusOr<std::vector<int32_t>> ids = ParseTokenList(tokens_text);
    if (!ids.ok()) return Fail("generate", ids.status());
    request.mutable_token_ids()->mutable_ids()->Assign(ids->begin(), ids->end());
  }
  if (max_new_tokens > 0) request.set_max_new_tokens(max_new_tokens);
  request.mutable_sampling()->set_temperature(static_cast<float>(temperature));
  request.mutable_sampling()->set_top_k(top_k);
  if (top_p != 1.0) request.mutable_sampling()->set_top_p(static_cast<float>(top_p));
  const bool seeded = parser.WasSet("seed");
  if (seeded) request.mutable_sampling()->set_seed(seed);
  request.set_ignore_eos(ignore_eos);
  request.set_logprobs(logprobs);
  request.set_keep_special_tokens(keep_special);
  for (const std::string& stop : stops) request.add_stop_sequences(stop);

  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto channel =
      grpc::CreateCustomChannel(gateway, grpc::InsecureChannelCredentials(), channel_args);
  auto stub = v1::Generation::NewStub(channel);

  if (requests == 1) {
    Outcome out = RunOne(*stub, request, timeout_s, /*stream_out=*/!json);
    if (!out.status.ok()) {
      if (!json) std::printf("\n");
      std::fprintf(stderr, "blockserve generate: %s: %s\n",
                   std::string(services::StatusCodeName(out.status.error_code())).c_str(),
                   out.status.error_message().c_str());
      return 1;
    }
    if (json) {
      nlohmann::json result;
      result["tokens"] = out.tokens;
      result["text"] = out.text;
      if (logprobs) result["logprobs"] = out.logprobs;
      result["finish_reason"] = FinishName(out.end.finish_reason());
      if (!out.end.stop_sequence().empty()) result["stop_sequence"] = out.end.stop_sequence();
      result["seed"] = out.end.seed();
      result["usage"] = UsageJson(out.end.usage());
      std::printf("%s\n", result.dump().c_str());
    } else {
      std::printf("\n");
      std::fflush(stdout);  // the text, then the summary, when both go to a terminal
      std::fprintf(stderr,
                   "[%d tokens, finish: %s, seed %llu, time to first token %.3f s, "
                   "total %.3f s]\n",
                   out.end.usage().generated_tokens(), FinishName(out.end.finish_reason()).c_str(),
                   static_cast<unsigned long long>(out.end.seed()),
                   out.end.usage().time_to_first_token_seconds(), out.end.usage().total_seconds());
    }
    return 0;
  }

  // Throughput mode: R copies, C at a time.
  std::vector<Outcome> outcomes(requests);
  std::atomic<int> next{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < std::min(concurrency, requests); ++t) {
    threads.emplace_back([&] {
      for (int i = next.fetch_add(1); i < requests; i = next.fetch_add(1)) {
        v1::GenerateRequest copy = request;
        if (seeded) copy.mutable_sampling()->set_seed(seed + static_cast<uint64_t>(i));
        outcomes[i] = RunOne(*stub, copy, timeout_s, /*stream_out=*/false);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  int64_t generated = 0;
  int failed = 0;
  std::vector<double> ttfts;
  for (const Outcome& out : outcomes) {
    if (!out.status.ok()) {
      if (failed++ == 0) {
        std::fprintf(stderr, "blockserve generate: %s: %s\n",
                     std::string(services::StatusCodeName(out.status.error_code())).c_str(),
                     out.status.error_message().c_str());
      }
      continue;
    }
    generated += static_cast<int64_t>(out.tokens.size());
    ttfts.push_back(out.end.usage().time_to_first_token_seconds());
  }
  std::sort(ttfts.begin(), ttfts.end());
  const double median_ttft = ttfts.empty() ? 0 : ttfts[ttfts.size() / 2];
  const double tokens_per_s = elapsed > 0 ? generated / elapsed : 0;
  if (json) {
    nlohmann::json result;
    result["requests"] = requests;
    result["concurrency"] = concurrency;
    result["failed"] = failed;
    result["generated_tokens"] = generated;
    result["elapsed_s"] = elapsed;
    result["generated_tokens_per_s"] = tokens_per_s;
    result["ttft_s"] = median_ttft;
    result["tokens"] = outcomes[0].tokens;
    result["text"] = outcomes[0].text;
    result["finish_reason"] = FinishName(outcomes[0].end.finish_reason());
    std::printf("%s\n", result.dump().c_str());
  } else {
    std::printf(
        "%d requests (%d at a time): %lld tokens in %.3f s: %.1f tokens/s, median time "
        "to first token %.3f s%s\n",
        requests, concurrency, static_cast<long long>(generated), elapsed, tokens_per_s,
        median_ttft, failed ? absl::StrCat(", ", failed, " failed").c_str() : "");
  }
  return failed ? 1 : 0;
}

}  // namespace blockserve::cli
