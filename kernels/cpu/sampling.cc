// Token sampling, the reference rules every backend follows:
//  - temperature <= 0: greedy, the largest logit, lowest id on ties;
//  - otherwise p_i = softmax(logit_i / temperature) over the candidates:
//    all ids, or the top_k largest (ties to the lower id) when top_k > 0;
//  - top_p < 1 keeps the shortest prefix of the candidates sorted by
//    probability (descending, ties to the lower id) whose mass reaches top_p;
//  - with a draw u = SamplingDraw(seed, position) in [0, 1), the token is the
//    first candidate (in id order when neither top_k nor top_p cuts, else in
//    sorted order) at which the running mass exceeds u * total mass.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
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

int32_t Argmax(const float* row, int64_t v) {
  int32_t best = 0;
  for (int64_t i = 1; i < v; ++i) {
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

int32_t SampleRow(const float* row, int64_t v, const SamplingRow& params,
                  std::vector<Candidate>& scratch, std::vector<double>& weights) {
  if (params.temperature <= 0.0f) return Argmax(row, v);
  const double inv_t = 1.0 / params.temperature;
  const double u = SamplingDraw(params.seed, params.position);
  const bool cut_k = params.top_k > 0 && params.top_k < v;
  const bool cut_p = params.top_p < 1.0f;
  const float max_logit = row[Argmax(row, v)];

  if (!cut_k && !cut_p) {
    weights.resize(v);
    double total = 0.0;
    for (int64_t i = 0; i < v; ++i) {
      weights[i] = std::exp((static_cast<double>(row[i]) - max_logit) * inv_t);
      total += weights[i];
    }
    const double target = u * total;
    double running = 0.0;
    for (int64_t i = 0; i < v; ++i) {
      running += weights[i];
      if (running > target) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(v - 1);
  }

  scratch.resize(v);
  for (int64_t i = 0; i < v; ++i) scratch[i] = {row[i], static_cast<int32_t>(i)};
  int64_t keep = cut_k ? params.top_k : v;
  if (cut_k) {
    std::partial_sort(scratch.begin(), scratch.begin() + keep, scratch.end(), Before);
  } else {
    // Sort lazily: grow the sorted prefix until it holds top_p of the mass.
    keep = 0;
  }
  double total = 0.0;
  if (cut_k) {
    weights.resize(keep);
    for (int64_t i = 0; i < keep; ++i) {
      weights[i] = std::exp((static_cast<double>(scratch[i].logit) - max_logit) * inv_t);
      total += weights[i];
    }
  } else {
    weights.resize(v);
    for (int64_t i = 0; i < v; ++i) {
      total += std::exp((static_cast<double>(row[i]) - max_logit) * inv_t);
    }
  }
  if (cut_p) {
    const double mass_needed = static_cast<double>(params.top_p) * total;
    double mass = 0.0;
    int64_t sorted = cut_k ? keep : 0;
    int64_t limit = cut_k ? keep : v;
    int64_t i = 0;
    for (; i < limit; ++i) {
      if (i >= sorted) {  // extend the sorted prefix (only without top_k)
        const int64_t grow = std::min<int64_t>(v, std::max<int64_t>(64, sorted * 2));
        std::partial_sort(scratch.begin() + sorted, scratch.begin() + grow, scratch.end(), Before);
        sorted = grow;
      }
      if (!cut_k) {
        weights[i] = std::exp((static_cast<double>(scratch[i].logit) - max_logit) * inv_t);
      }
      mass += weights[i];
      if (mass >= mass_needed) {
        ++i;
        break;
      }
    }
    keep = std::max<int64_t>(1, i);
    total = 0.0;
    for (int64_t j = 0; j < keep; ++j) total += weights[j];
  }
  const double target = u * total;
  double running = 0.0;
  for (int64_t i = 0; i < keep; ++i) {
    running += weights[i];
    if (running > target) return scratch[i].id;
  }
  return scratch[keep - 1].id;
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
    std::vector<Candidate> scratch;
    std::vector<double> weights;
    for (int64_t r = begin; r < end; ++r) {
      const float* row = logits.data<float>() + r * v;
      const int32_t token = SampleRow(row, v, rows[r], scratch, weights);
      float max_logit = row[Argmax(row, v)];
      double sum = 0.0;
      for (int64_t i = 0; i < v; ++i) sum += std::exp(row[i] - max_logit);
      tokens.data<int32_t>()[r] = token;
      logprobs.data<float>()[r] = row[token] - max_logit - static_cast<float>(std::log(sum));
    }
  });
}

}  // namespace blockserve::cpu
