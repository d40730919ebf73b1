// blockserve init-model: writes a random-weight model of a named preset.
//
// DIR/model.safetensors holds every tensor of CheckpointLayout() for the
// preset, DIR/config.json its ModelConfig::ToJson(). Values (documented in
// docs/model-format.md): embeddings and matrices N(0, 0.02); biases and
// LayerNorm shifts N(0, 0.02); LayerNorm scales 1 + N(0, 0.02). Biases and
// norms are not the usual 0 / 1 so that a test model exercises every weight.
// Each tensor draws from its own generator seeded from (--seed, tensor name),
// so a value never depends on the dtype, the order of the tensors or the
// number of threads: the BF16 model is exactly the F32 model rounded. Values
// are generated in chunks on worker threads and streamed to the file, so
// memory stays small even for the 1.2B preset.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "shared/common/arg_parser.h"
#include "shared/common/status_macros.h"
#include "shared/model/checkpoint_layout.h"
#include "shared/model/model_config.h"
#include "shared/model/presets.h"
#include "shared/tensor/dtype.h"
#include "shared/weights/safetensors.h"
#include "tools/cli/commands.h"

namespace blockserve::cli {
namespace {

constexpr double kInitStd = 0.02;
constexpr int64_t kChunkElements = int64_t{1} << 20;

// SplitMix64's finalizer: a strong 64-bit mix.
uint64_t Mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Fnv1a64(absl::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (char c : text) {
    hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  }
  return hash;
}

// xoshiro256+ with Box-Muller: normal floats, fast and reproducible.
class NormalGenerator {
 public:
  // One independent stream per (seed, tensor name, chunk index).
  NormalGenerator(uint64_t seed, absl::string_view name, uint64_t chunk) {
    uint64_t state = Mix64(Mix64(Mix64(seed) ^ Fnv1a64(name)) ^ chunk);
    for (uint64_t& word : s_) word = state = Mix64(state);
  }

  // Fills `out` with N(mean, std) samples.
  void Fill(float* out, size_t count, float mean, float std) {
    size_t i = 0;
    for (; i + 1 < count; i += 2) Pair(out + i, mean, std);
    if (i < count) {
      float pair[2];
      Pair(pair, mean, std);
      out[i] = pair[0];
    }
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t Next() {
    const uint64_t result = s_[0] + s_[3];
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  void Pair(float* out, float mean, float std) {
    // Two 24-bit uniforms from one 64-bit draw (xoshiro256+'s high bits are the
    // good ones).
    const uint64_t bits = Next();
    const float u1 =
        (static_cast<float>(bits >> 40) + 1.0f) * 0x1.0p-24f;  // (0, 1]
    const float u2 =
        static_cast<float>((bits >> 16) & 0xffffff) * 0x1.0p-24f;  // [0, 1)
    const float radius = std * std::sqrt(-2.0f * std::log(u1));
    const float angle = 6.2831853071795864f * u2;
    out[0] = mean + radius * std::cos(angle);
    out[1] = mean + radius * std::sin(angle);
  }

  uint64_t s_[4];
};

// Generates the tensors' values in chunks on worker threads while the caller
// writes finished chunks in file order. Chunk k of a tensor comes from
// NormalGenerator(seed, name, k), so the values do not depend on the number
// of threads. A bounded ring of chunk buffers keeps memory small.
class ChunkPipeline {
 public:
  ChunkPipeline(const std::vector<CheckpointTensorSpec>& layout,
                const std::vector<size_t>& order, DType dtype, uint64_t seed,
                int threads)
      : layout_(layout), dtype_(dtype), seed_(seed) {
    for (size_t tensor : order) {
      int64_t numel = 1;
      for (int64_t d : layout[tensor].shape) numel *= d;
      for (int64_t begin = 0; begin < numel; begin += kChunkElements) {
        chunks_.push_back(
            {tensor, begin, std::min<int64_t>(kChunkElements, numel - begin)});
      }
    }
    const size_t slots = 2 * static_cast<size_t>(threads);
    slots_.assign(slots, std::vector<char>(kChunkElements * DTypeSize(dtype)));
    slot_chunk_.assign(slots, -1);
    for (int w = 0; w < threads; ++w) {
      workers_.emplace_back([this, w, threads] { Work(w, threads); });
    }
  }

  ~ChunkPipeline() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      cancelled_ = true;
    }
    changed_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  // Passes every chunk of `tensor`, the next tensor in file order, to `sink`.
  absl::Status WriteTensor(size_t tensor, SafetensorsByteSink sink) {
    const size_t slots = slots_.size();
    std::unique_lock<std::mutex> lock(mutex_);
    while (next_ < static_cast<int64_t>(chunks_.size()) &&
           chunks_[next_].tensor == tensor) {
      const int64_t k = next_;
      changed_.wait(lock, [&] { return slot_chunk_[k % slots] == k; });
      lock.unlock();
      RETURN_IF_ERROR(
          sink(slots_[k % slots].data(), chunks_[k].count * DTypeSize(dtype_)));
      lock.lock();
      slot_chunk_[k % slots] = -1;
      ++next_;
      changed_.notify_all();
    }
    return absl::OkStatus();
  }

 private:
  struct Chunk {
    size_t tensor;
    int64_t begin;
    int64_t count;
  };

  void Work(int worker, int threads) {
    const int64_t slots = static_cast<int64_t>(slots_.size());
    std::vector<float> values(kChunkElements);
    for (int64_t k = worker; k < static_cast<int64_t>(chunks_.size());
         k += threads) {
      {
        // Slot k % slots is free once chunk k - slots has been written.
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return cancelled_ || next_ > k - slots; });
        if (cancelled_) return;
      }
      const Chunk& chunk = chunks_[k];
      const CheckpointTensorSpec& spec = layout_[chunk.tensor];
      const float mean =
          spec.role == CheckpointTensorRole::kNormWeight ? 1.0f : 0.0f;
      NormalGenerator(seed_, spec.name,
                      static_cast<uint64_t>(chunk.begin / kChunkElements))
          .Fill(values.data(), chunk.count, mean, static_cast<float>(kInitStd));
      ConvertFromF32(dtype_, values.data(), slots_[k % slots].data(),
                     chunk.count);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot_chunk_[k % slots] = k;
      }
      changed_.notify_all();
    }
  }

  const std::vector<CheckpointTensorSpec>& layout_;
  const DType dtype_;
  const uint64_t seed_;
  std::vector<Chunk> chunks_;  // every chunk of every tensor, in file order
  std::vector<std::vector<char>> slots_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<int64_t>
      slot_chunk_;    // the finished chunk a slot holds, -1 when none
  int64_t next_ = 0;  // the next chunk to write
  bool cancelled_ = false;
  std::vector<std::thread> workers_;
};

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  if (name == "f32") return DType::kF32;
  if (name == "bf16") return DType::kBF16;
  if (name == "f16") return DType::kF16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype: expected f32, bf16 or f16, got '", name, "'"));
}

std::string PresetList() {
  std::vector<std::string> lines = {"presets (non-embedding parameters):"};
  for (const std::string& name : PresetNames()) {
    const ModelConfig config = *PresetConfig(name);
    lines.push_back(absl::StrFormat("  %-20s %-8s %8.1fM", name,
                                    ModelKindName(config.kind),
                                    config.NonEmbeddingParameters() / 1e6));
  }
  return absl::StrJoin(lines, "\n");
}

// Writes `text` to `path` through a temporary file and a rename.
absl::Status WriteTextFile(const std::filesystem::path& path,
                           const std::string& text) {
  const std::filesystem::path temp = path.string() + ".tmp";
  std::FILE* file = std::fopen(temp.c_str(), "wb");
  if (file == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create ", temp.string()));
  }
  const bool written =
      std::fwrite(text.data(), 1, text.size(), file) == text.size();
  if (std::fclose(file) != 0 || !written) {
    std::filesystem::remove(temp);
    return absl::InternalError(absl::StrCat("cannot write ", temp.string()));
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

struct InitStats {
  int64_t parameters = 0;
  size_t tensors = 0;
};

absl::StatusOr<InitStats> WriteRandomModel(
    const ModelConfig& config, DType dtype, uint64_t seed, int threads,
    const std::filesystem::path& directory) {
  const std::vector<CheckpointTensorSpec> layout = CheckpointLayout(config);
  std::vector<SafetensorsWriteEntry> entries;
  InitStats stats;
  for (const CheckpointTensorSpec& spec : layout) {
    entries.push_back({.name = spec.name, .dtype = dtype, .shape = spec.shape});
    int64_t numel = 1;
    for (int64_t d : spec.shape) numel *= d;
    stats.parameters += numel;
  }
  stats.tensors = entries.size();

  ChunkPipeline pipeline(layout, SafetensorsFileOrder(entries), dtype, seed,
                         threads);
  RETURN_IF_ERROR(WriteSafetensorsStreamed(
      (directory / "model.safetensors").string(), entries,
      [&](size_t index, SafetensorsByteSink sink) {
        return pipeline.WriteTensor(index, sink);
      },
      {{"format", "pt"}, {"blockserve_init_seed", absl::StrCat(seed)}}));
  RETURN_IF_ERROR(
      WriteTextFile(directory / "config.json", config.ToJson().dump(2) + "\n"));
  return stats;
}

}  // namespace

int InitModelCommand(const Args& args) {
  std::string preset;
  std::string out_dir;
  uint64_t seed = 0;
  std::string dtype_name = "f32";
  bool force = false;
  int threads = 0;
  ArgParser parser(
      "blockserve init-model",
      absl::StrCat(
          "Writes a model with random weights: DIR/model.safetensors and "
          "DIR/config.json.\n\n",
          PresetList()));
  parser.AddString("preset", &preset, "model preset (listed above)",
                   /*required=*/true);
  parser.AddString("out", &out_dir, "output directory (created if missing)",
                   /*required=*/true);
  parser.AddUint64("seed", &seed,
                   "random seed; the same seed gives the same weights");
  parser.AddString("dtype", &dtype_name, "weight dtype: f32, bf16 or f16");
  parser.AddBool("force", &force, "overwrite an existing model in DIR");
  parser.AddInt("threads", &threads,
                "generator threads (0: one per core, at most 8); no effect on "
                "the values");

  absl::Status usage = parser.Parse(args);
  if (parser.help_requested()) {
    std::fputs(parser.Usage().c_str(), stdout);
    return 0;
  }
  const absl::StatusOr<DType> dtype = ParseDType(dtype_name);
  const absl::StatusOr<ModelConfig> config = PresetConfig(preset);
  if (usage.ok() && !dtype.ok()) usage = dtype.status();
  if (usage.ok() && !config.ok()) usage = config.status();
  if (usage.ok() && threads < 0) {
    usage = absl::InvalidArgumentError("--threads must be >= 0");
  }
  if (!usage.ok()) {
    std::fprintf(stderr, "blockserve init-model: %s\n\n%s",
                 std::string(usage.message()).c_str(), parser.Usage().c_str());
    return 2;
  }

  const std::filesystem::path directory(out_dir);
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) {
    std::fprintf(stderr, "blockserve init-model: cannot create %s: %s\n",
                 out_dir.c_str(), error.message().c_str());
    return 1;
  }
  for (const char* name : {"model.safetensors", "config.json"}) {
    if (!force && std::filesystem::exists(directory / name, error)) {
      std::fprintf(stderr,
                   "blockserve init-model: %s already exists (use --force to "
                   "overwrite)\n",
                   (directory / name).c_str());
      return 1;
    }
  }

  const auto start = std::chrono::steady_clock::now();
  if (threads == 0) {
    threads =
        std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 8);
  }
  absl::StatusOr<InitStats> stats =
      WriteRandomModel(*config, *dtype, seed, threads, directory);
  if (!stats.ok()) {
    std::fprintf(stderr, "blockserve init-model: %s\n",
                 std::string(stats.status().message()).c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::printf(
      "wrote %s: preset %s, %zu tensors, %.1fM parameters (%.1fM "
      "non-embedding), %s, "
      "%.2f s\n",
      out_dir.c_str(), preset.c_str(), stats->tensors, stats->parameters / 1e6,
      config->NonEmbeddingParameters() / 1e6,
      std::string(DTypeName(*dtype)).c_str(), seconds);
  return 0;
}

}  // namespace blockserve::cli
