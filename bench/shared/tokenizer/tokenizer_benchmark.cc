// Tokenizer throughput: Encode of English prose in MB/s, single-threaded
// and with several threads sharing one Tokenizer, plus Decode and the
// streaming detokenizer.
//
//   build/bench/tokenizer_benchmark --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
//
// The prose is generated at run time (english_prose.h), 1 MiB. Set
// BLOCKSERVE_BENCH_TEXT=FILE to encode the contents of FILE instead (for
// example a real English corpus). Run from anywhere; the tokenizer.json
// files come from tests/data/tokenizers.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bench/shared/tokenizer/english_prose.h"
#include "benchmark/benchmark.h"
#include "shared/tokenizer/streaming_detokenizer.h"
#include "shared/tokenizer/tokenizer.h"

namespace blockserve {
namespace {

const Tokenizer* LoadOrDie(const std::string& name) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromFile(std::string(BLOCKSERVE_TEST_DATA_DIR) +
                          "/tokenizers/" + name + "/tokenizer.json");
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", tokenizer.status().ToString().c_str());
    std::abort();
  }
  return tokenizer->release();  // kept for the whole run
}

const Tokenizer& LoadTokenizer(const std::string& name) {
  static const Tokenizer* neox = LoadOrDie("gpt-neox-20b");
  static const Tokenizer* gpt2 = LoadOrDie("gpt2");
  return name == "gpt2" ? *gpt2 : *neox;
}

const std::string& Text() {
  static const std::string* text = [] {
    if (const char* path = std::getenv("BLOCKSERVE_BENCH_TEXT")) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream buffer;
      buffer << in.rdbuf();
      return new std::string(buffer.str());
    }
    return new std::string(bench::GenerateEnglishProse(1 << 20));
  }();
  return *text;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const Tokenizer& tokenizer = LoadTokenizer(name);
  const std::string& text = Text();
  size_t tokens = 0;
  for (auto _ : state) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text);
    tokens = ids->size();
    benchmark::DoNotOptimize(ids);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK_CAPTURE(BM_Encode, neox, std::string("gpt-neox-20b"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, gpt2, std::string("gpt2"))
    ->Unit(benchmark::kMillisecond);

// Every thread encodes the whole text with the shared tokenizer; bytes per
// second are summed over threads.
void BM_EncodeThreads(benchmark::State& state) {
  const Tokenizer& tokenizer = LoadTokenizer("gpt-neox-20b");
  const std::string& text = Text();
  for (auto _ : state) {
    absl::StatusOr<std::vector<int32_t>> ids = tokenizer.Encode(text);
    benchmark::DoNotOptimize(ids);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_EncodeThreads)
    ->Threads(1)
    ->Threads(2)
    ->Threads(4)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const Tokenizer& tokenizer = LoadTokenizer("gpt-neox-20b");
  const std::vector<int32_t> ids = *tokenizer.Encode(Text());
  for (auto _ : state) {
    absl::StatusOr<std::string> text = tokenizer.Decode(ids, false);
    benchmark::DoNotOptimize(text);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(ids.size()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_StreamingDetokenizer(benchmark::State& state) {
  const Tokenizer& tokenizer = LoadTokenizer("gpt-neox-20b");
  const std::vector<int32_t> ids = *tokenizer.Encode(Text());
  for (auto _ : state) {
    StreamingDetokenizer detokenizer(tokenizer);
    size_t bytes = 0;
    for (const int32_t id : ids) bytes += detokenizer.Push(id)->size();
    bytes += detokenizer.Finish().size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(ids.size()));
}
BENCHMARK(BM_StreamingDetokenizer)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace blockserve

BENCHMARK_MAIN();
