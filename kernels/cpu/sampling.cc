// Token sampling, the reference rules every backend follows:
//  - temperature <= 0: greedy, the largest logit, lowest id on ties;
//  - otherwise p_i = softmax(logit_i / temperature) over the candidates:
//    all ids, or the top_k largest (ties to the lower id) when top_k > 0;
//  - top_p < 1 keeps the shortest prefix of the candidates sorted by
//    probability (descending, ties to the lower id) whose mass reaches top_p;
//  - with a draw u = SamplingDraw(seed, position) in [0, 1), the token is the
//    first candidate (in id order when neither top_k nor top_p cuts, else in
//    sorted order) at which the running mass (a double sum of the float
//    weights exp((logit - max) / temperature)) exceeds u * total mass.
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/sampling_rng.h"
#include "shared/common/logging.h"

namespace blockserve::cpu {
namespace {

struct Candidate {
  float logit;
  int32_t id;
};

bool Before(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

struct Scratch {
  std::vector<Candidate> candidates;
  std::vector<float> weights;
};

int32_t SampleRow(const float* row, int64_t v, const SamplingRow& params, float max_logit,
                  int32_t argmax, Scratch& scratch) {
  if (params.temperature <= 0.0f) return argmax;
  const float inv_t = 1.0f / params.temperature;
  const double u = SamplingDraw(params.seed, params.position);
  const bool cut_k = params.top_k > 0 && params.top_k < v;
  const bool cut_p = params.top_p < 1.0f;
  std::vector<float>& weights = scratch.weights;

  if (!cut_k && !cut_p) {  // the whole distribution, in id order
    weights.resize(v);
    ExpInto(row, v, max_logit, inv_t, weights.data());
    double total = 0.0;
    for (int64_t i = 0; i < v; ++i) total += weights[i];
    const double target = u * total;
    double running = 0.0;
    for (int64_t i = 0; i < v; ++i) {
      running += weights[i];
      if (running > target) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(v - 1);
  }

  std::vector<Candidate>& sorted = scratch.candidates;
  sorted.resize(v);
  for (int64_t i = 0; i < v; ++i) sorted[i] = {row[i], static_cast<int32_t>(i)};
  auto weight = [&](const Candidate& c) { return std::exp((c.logit - max_logit) * inv_t); };
  int64_t keep = v;
  int64_t sorted_prefix = 0;
  // Sorts lazily: grows the sorted prefix only as far as it is needed.
  auto ensure_sorted = [&](int64_t count) {
    if (count <= sorted_prefix) return;
    const int64_t grow = std::min<int64_t>(v, std::max<int64_t>({count, 64, sorted_prefix * 2}));
    std::partial_sort(sorted.begin() + sorted_prefix, sorted.begin() + grow, sorted.end(), Before);
    sorted_prefix = grow;
  };
  if (cut_k) {
    keep = params.top_k;
    ensure_sorted(keep);
  }
  double total = cut_k ? 0.0 : SumExp(row, v, max_logit, inv_t);
  weights.clear();
  if (cut_k) {
    for (int64_t i = 0; i < keep; ++i) {
      weights.push_back(weight(sorted[i]));
      total += weights.back();
    }
  }
  if (cut_p) {
    const double mass_needed = static_cast<double>(params.top_p) * total;
    double mass = 0.0;
    int64_t i = 0;
    while (i < keep) {
      ensure_sorted(i + 1);
      if (static_cast<int64_t>(weights.size()) <= i) weights.push_back(weight(sorted[i]));
      mass += weights[i++];
      if (mass >= mass_needed) break;
    }
    keep = std::max<int64_t>(1, i);
    total = 0.0;
    for (int64_t j = 0; j < keep; ++j) total += weights[j];
  }
  const double target = u * total;
  double running = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    running += weights[i];
    if (running > target) return sorted[i].id;
  }
  return sorted[keep - 1].id;
}

}  // namespace

void Sample(ThreadPool& pool, const Tensor& logits, absl::Span<const SamplingRow> rows,
            const Tensor& tokens, const Tensor& logprobs) {
  const int64_t m = logits.rows();
  const int64_t v = logits.cols();
  CHECK_EQ(static_cast<int64_t>(rows.size()), m);
  CHECK(tokens.dtype() == DType::kI32 && tokens.numel() == m);
  CHECK(logprobs.dtype() == DType::kF32 && logprobs.numel() == m);
  pool.ParallelFor(m, 1, [&](int64_t begin, int64_t end) {
    Scratch scratch;
    for (int64_t r = begin; r < end; ++r) {
      const float* row = logits.data<float>() + r * v;
      const MaxAndIndex best = ArgMax(row, v);
      const int32_t token =
          SampleRow(row, v, rows[r], best.value, static_cast<int32_t>(best.index), scratch);
      const double sum = SumExp(row, v, best.value);
      tokens.data<int32_t>()[r] = token;
      logprobs.data<float>()[r] = row[token] - best.value - static_cast<float>(std::log(sum));
    }
  });
}

}  // namespace blockserve::cpu
