// Every Backend op, on every backend built into this binary, against naive
// reference implementations written here from the op contracts in
// kernels/backend.h. The CPU backend always runs; a CUDA backend runs when
// one was built and a GPU is present (otherwise its cases are skipped with a
// message), so this one suite is also the CPU/GPU parity suite. It is built
// once per backend (BLOCKSERVE_TEST_DEVICE): backend_ops_test for "cpu",
// backend_ops_cuda_test (ctest label gpu) for "cuda".
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/backend.h"
#include "kernels/sampling_rng.h"

namespace blockserve {
namespace {

std::vector<float> RandomVector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

class BackendOpsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Backend>> backend =
        CreateBackend({.device = GetParam(), .threads = 2});
    if (!backend.ok()) GTEST_SKIP() << GetParam() << " backend unavailable: " << backend.status();
    backend_ = std::move(*backend);
    // Float tolerance: exact-ish on the CPU reference, BF16/TF32-level on GPUs.
    tolerance_ = backend_->device() == DeviceKind::kCpu ? 1e-4f : 2e-2f;
  }

  Tensor Upload(const std::vector<float>& values, Shape shape, DType dtype = DType::kF32) {
    Tensor t = *backend_->Empty(dtype, shape);
    std::vector<char> bytes(values.size() * DTypeSize(dtype));
    ConvertFromF32(dtype, values.data(), bytes.data(), values.size());
    backend_->CopyToDevice(bytes.data(), t);
    return t;
  }
  Tensor UploadInts(const std::vector<int32_t>& values) {
    Tensor t = *backend_->Empty(DType::kI32, {static_cast<int64_t>(values.size())});
    if (!values.empty()) backend_->CopyToDevice(values.data(), t);
    return t;
  }
  std::vector<float> Download(const Tensor& t) {
    std::vector<float> out(t.numel());
    backend_->CopyToHost(t, out.data());
    EXPECT_TRUE(backend_->Synchronize().ok());
    return out;
  }
  std::vector<int32_t> DownloadInts(const Tensor& t) {
    std::vector<int32_t> out(t.numel());
    backend_->CopyToHost(t, out.data());
    EXPECT_TRUE(backend_->Synchronize().ok());
    return out;
  }
  void ExpectNear(const std::vector<float>& actual, const std::vector<float>& expected,
                  float tolerance) {
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t i = 0; i < actual.size(); ++i) {
      ASSERT_NEAR(actual[i], expected[i], tolerance * std::max(1.0f, std::abs(expected[i])))
          << "at " << i;
    }
  }

  std::unique_ptr<Backend> backend_;
  float tolerance_ = 1e-4f;
};

TEST_P(BackendOpsTest, MatMulWithBiasActivationAndAccumulate) {
  for (auto [m, k, n] : {std::tuple{1, 7, 5}, {3, 64, 33}, {17, 96, 128}}) {
    const auto x = RandomVector(m * k, 1);
    const auto w = RandomVector(n * k, 2, 0.2f);
    const auto b = RandomVector(n, 3);
    const auto y0 = RandomVector(m * n, 4);
    for (int mode = 0; mode < 4; ++mode) {
      const bool with_bias = mode != 1;
      const Activation act = mode == 2 ? Activation::kGelu : Activation::kNone;
      const bool accumulate = mode == 3;
      Tensor y = Upload(y0, {m, n});
      backend_->MatMul(Upload(x, {m, k}), Upload(w, {n, k}), with_bias ? Upload(b, {n}) : Tensor(),
                       act, accumulate, y);
      std::vector<float> expected(m * n);
      for (int r = 0; r < m; ++r) {
        for (int c = 0; c < n; ++c) {
          double sum = with_bias ? b[c] : 0.0;
          for (int i = 0; i < k; ++i) sum += double{x[r * k + i]} * w[c * k + i];
          if (act == Activation::kGelu) sum = 0.5 * sum * (1.0 + std::erf(sum / std::sqrt(2.0)));
          expected[r * n + c] = static_cast<float>(sum + (accumulate ? y0[r * n + c] : 0.0));
        }
      }
      ExpectNear(Download(y), expected, tolerance_);
    }
  }
}

TEST_P(BackendOpsTest, MatMulRowsDoNotDependOnBatch) {
  const int k = 96, n = 80;
  const auto w = RandomVector(n * k, 5, 0.2f);
  const auto x = RandomVector(32 * k, 6);
  Tensor wt = Upload(w, {n, k});
  Tensor all = *backend_->Empty(DType::kF32, {32, n});
  backend_->MatMul(Upload(x, {32, k}), wt, Tensor(), Activation::kNone, false, all);
  const auto batched = Download(all);
  for (int r : {0, 13, 31}) {
    Tensor one = *backend_->Empty(DType::kF32, {1, n});
    backend_->MatMul(Upload(std::vector<float>(x.begin() + r * k, x.begin() + (r + 1) * k), {1, k}),
                     wt, Tensor(), Activation::kNone, false, one);
    const auto single = Download(one);
    for (int c = 0; c < n; ++c) {
      EXPECT_NEAR(single[c], batched[r * n + c], 1e-5f * std::max(1.0f, std::abs(single[c])));
    }
  }
}

TEST_P(BackendOpsTest, LayerNormMatchesDefinitionAndWorksInPlace) {
  const int m = 5, d = 48;
  const auto x = RandomVector(m * d, 7, 3.0f);
  const auto g = RandomVector(d, 8);
  const auto b = RandomVector(d, 9);
  std::vector<float> expected(m * d);
  for (int r = 0; r < m; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x[r * d + i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= d;
    for (int i = 0; i < d; ++i) {
      expected[r * d + i] =
          static_cast<float>((x[r * d + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i]);
    }
  }
  Tensor in = Upload(x, {m, d});
  Tensor out = *backend_->Empty(DType::kF32, {m, d});
  backend_->LayerNorm(in, Upload(g, {d}), Upload(b, {d}), 1e-5f, out);
  ExpectNear(Download(out), expected, tolerance_);
  backend_->LayerNorm(in, Upload(g, {d}), Upload(b, {d}), 1e-5f, in);
  ExpectNear(Download(in), expected, tolerance_);
}

TEST_P(BackendOpsTest, CopyRowsGathersScattersAndConverts) {
  const int rows = 10, width = 12;
  const auto table = RandomVector(rows * width, 10);
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    if (!backend_->SupportsWeightType(dtype) && dtype != DType::kF32) continue;
    Tensor src = Upload(table, {rows, width}, dtype);
    Tensor dst = Upload(std::vector<float>(6 * width, -1.0f), {6, width});
    backend_->CopyRows(src, UploadInts({3, 0, 9}), dst, UploadInts({5, 1, 2}));
    const auto out = Download(dst);
    const float tol = dtype == DType::kF32 ? 0.0f : 1e-2f;
    for (int c = 0; c < width; ++c) {
      EXPECT_NEAR(out[5 * width + c], table[3 * width + c], tol * std::abs(table[3 * width + c]));
      EXPECT_NEAR(out[1 * width + c], table[0 * width + c], tol * std::abs(table[0 * width + c]));
      EXPECT_NEAR(out[2 * width + c], table[9 * width + c], tol * std::abs(table[9 * width + c]));
      EXPECT_EQ(out[0 * width + c], -1.0f);  // untouched
    }
  }
}

TEST_P(BackendOpsTest, RotaryRotatesFirstDimsOfQAndKOnly) {
  const int heads = 3, hd = 16, rot = 8, m = 4;
  const auto qkv = RandomVector(m * 3 * heads * hd, 11);
  const std::vector<int32_t> positions = {0, 1, 7, 1000};
  Tensor t = Upload(qkv, {m, 3 * heads * hd});
  backend_->Rotary(t, UploadInts(positions), heads, hd, rot, 10000.0f);
  const auto out = Download(t);
  for (int r = 0; r < m; ++r) {
    for (int h = 0; h < heads; ++h) {
      for (int part = 0; part < 3; ++part) {
        const int base = r * 3 * heads * hd + (h * 3 + part) * hd;
        for (int i = 0; i < hd; ++i) {
          double expected = qkv[base + i];
          if (part < 2 && i < rot) {
            const int j = i % (rot / 2);
            const double angle = positions[r] * std::pow(10000.0, -2.0 * j / rot);
            const double x1 = qkv[base + j], x2 = qkv[base + j + rot / 2];
            expected = i < rot / 2 ? x1 * std::cos(angle) - x2 * std::sin(angle)
                                   : x2 * std::cos(angle) + x1 * std::sin(angle);
          }
          EXPECT_NEAR(out[base + i], expected, 2e-3)
              << "row " << r << " head " << h << " part " << part << " dim " << i;
        }
      }
    }
  }
}

// Causal attention over a paged cache with shuffled pages, three sequences
// of different lengths (one prefilling several rows, two decoding).
TEST_P(BackendOpsTest, PagedAttentionMatchesDenseCausalAttention) {
  const int heads = 2, hd = 8, page_size = 4, num_pages = 12;
  const std::vector<int> past = {0, 5, 9};
  const std::vector<int> new_rows = {6, 1, 2};
  const std::vector<std::vector<int32_t>> pages = {{7, 2}, {0, 11}, {5, 3, 9}};
  const int seqs = 3;
  Tensor k_cache = Upload(std::vector<float>(num_pages * heads * page_size * hd, 0.0f),
                          {num_pages, heads, page_size, hd});
  Tensor v_cache = Upload(std::vector<float>(num_pages * heads * page_size * hd, 0.0f),
                          {num_pages, heads, page_size, hd});
  KvCacheLayer cache{k_cache, v_cache, page_size};
  // Full per-sequence K/V histories (past entries were written by an earlier call).
  std::vector<std::vector<float>> seq_qkv(seqs);
  for (int s = 0; s < seqs; ++s)
    seq_qkv[s] = RandomVector((past[s] + new_rows[s]) * 3 * heads * hd, 20 + s);
  auto run = [&](const std::vector<int>& start, const std::vector<int>& count) {
    std::vector<float> qkv;
    std::vector<int32_t> query_starts = {0}, kv_lens, table(seqs * 3, 0), slots;
    for (int s = 0; s < seqs; ++s) {
      for (int i = start[s]; i < start[s] + count[s]; ++i) {
        qkv.insert(qkv.end(), seq_qkv[s].begin() + i * 3 * heads * hd,
                   seq_qkv[s].begin() + (i + 1) * 3 * heads * hd);
        slots.push_back(pages[s][i / page_size] * page_size + i % page_size);
      }
      query_starts.push_back(query_starts.back() + count[s]);
      kv_lens.push_back(start[s] + count[s]);
      std::copy(pages[s].begin(), pages[s].end(), table.begin() + s * 3);
    }
    AttentionLayout layout;
    layout.num_seqs = seqs;
    layout.max_pages_per_seq = 3;
    layout.max_query_len = *std::max_element(count.begin(), count.end());
    layout.max_kv_len = *std::max_element(kv_lens.begin(), kv_lens.end());
    layout.query_starts = UploadInts(query_starts);
    layout.kv_lens = UploadInts(kv_lens);
    layout.page_table = UploadInts(table);
    layout.slot_mapping = UploadInts(slots);
    const int64_t rows = query_starts.back();
    Tensor out = *backend_->Empty(DType::kF32, {rows, heads * hd});
    if (rows > 0) {
      backend_->Attention(Upload(qkv, {rows, 3 * heads * hd}), cache, layout, heads, hd, out);
    }
    return Download(out);
  };
  run({0, 0, 0}, past);  // fill the history
  const auto out = run(past, new_rows);
  int row = 0;
  for (int s = 0; s < seqs; ++s) {
    for (int i = past[s]; i < past[s] + new_rows[s]; ++i, ++row) {
      for (int h = 0; h < heads; ++h) {
        const float* q = &seq_qkv[s][i * 3 * heads * hd + h * 3 * hd];
        std::vector<double> scores(i + 1);
        double max_score = -1e30;
        for (int j = 0; j <= i; ++j) {
          const float* k = &seq_qkv[s][j * 3 * heads * hd + h * 3 * hd + hd];
          double dot = 0;
          for (int d = 0; d < hd; ++d) dot += double{q[d]} * k[d];
          scores[j] = dot / std::sqrt(double{hd});
          max_score = std::max(max_score, scores[j]);
        }
        double total = 0;
        for (double& sc : scores) total += (sc = std::exp(sc - max_score));
        for (int d = 0; d < hd; ++d) {
          double expected = 0;
          for (int j = 0; j <= i; ++j)
            expected +=
                scores[j] / total * seq_qkv[s][j * 3 * heads * hd + h * 3 * hd + 2 * hd + d];
          EXPECT_NEAR(out[row * heads * hd + h * hd + d], expected, tolerance_ * 10)
              << "seq " << s << " pos " << i << " head " << h;
        }
      }
    }
  }
}

TEST_P(BackendOpsTest, LogSoftmaxAndTargetLogProbs) {
  const int m = 3, v = 1000;
  auto logits = RandomVector(m * v, 30, 4.0f);
  Tensor in = Upload(logits, {m, v});
  Tensor out = *backend_->Empty(DType::kF32, {m, v});
  backend_->LogSoftmax(in, out);
  const auto log_probs = Download(out);
  std::vector<float> expected(m * v);
  for (int r = 0; r < m; ++r) {
    double max_logit = *std::max_element(logits.begin() + r * v, logits.begin() + (r + 1) * v);
    double sum = 0;
    for (int i = 0; i < v; ++i) sum += std::exp(logits[r * v + i] - max_logit);
    for (int i = 0; i < v; ++i)
      expected[r * v + i] = static_cast<float>(logits[r * v + i] - max_logit - std::log(sum));
  }
  ExpectNear(log_probs, expected, tolerance_);
  const std::vector<int32_t> targets = {0, 999, 500};
  Tensor picked = *backend_->Empty(DType::kF32, {m});
  backend_->TargetLogProbs(in, UploadInts(targets), picked);
  const auto p = Download(picked);
  for (int r = 0; r < m; ++r) EXPECT_NEAR(p[r], expected[r * v + targets[r]], tolerance_ * 10);
}

class SamplingTest : public BackendOpsTest {
 protected:
  // Samples `rows` (all over the same logits) and returns the tokens.
  std::vector<int32_t> SampleAll(const std::vector<float>& logits_row,
                                 const std::vector<SamplingRow>& rows) {
    const int64_t v = static_cast<int64_t>(logits_row.size());
    const int64_t m = static_cast<int64_t>(rows.size());
    std::vector<float> logits;
    for (int64_t i = 0; i < m; ++i)
      logits.insert(logits.end(), logits_row.begin(), logits_row.end());
    Tensor tokens = *backend_->Empty(DType::kI32, {m});
    Tensor logprobs = *backend_->Empty(DType::kF32, {m});
    backend_->Sample(Upload(logits, {m, v}), rows, tokens, logprobs);
    return DownloadInts(tokens);
  }
};

TEST_P(SamplingTest, GreedyPicksArgmaxWithLowestIdOnTies) {
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(SampleAll(logits, {SamplingRow{}})[0], 1);
}

TEST_P(SamplingTest, DrawDependsOnlyOnSeedAndPosition) {
  const auto logits = RandomVector(300, 40);
  std::vector<SamplingRow> rows;
  for (int i = 0; i < 64; ++i) rows.push_back({1.0f, 0, 1.0f, 1234, i});
  const auto batched = SampleAll(logits, rows);
  for (int i : {0, 17, 63}) {
    EXPECT_EQ(SampleAll(logits, {rows[i]})[0], batched[i]) << "position " << i;
  }
  std::set<int32_t> distinct(batched.begin(), batched.end());
  EXPECT_GT(distinct.size(), 10u) << "draws at different positions must differ";
}

TEST_P(SamplingTest, TopKAndTopPRestrictTheCandidates) {
  std::vector<float> logits(50, 0.0f);
  logits[7] = 3.0f;
  logits[9] = 2.9f;
  logits[11] = 2.8f;
  std::vector<SamplingRow> top_k, top_p;
  for (int i = 0; i < 200; ++i) {
    top_k.push_back({1.0f, 2, 1.0f, 99, i});
    top_p.push_back({1.0f, 0, 0.3f, 99, i});
  }
  std::set<int32_t> k_tokens, p_tokens;
  for (int32_t t : SampleAll(logits, top_k)) k_tokens.insert(t);
  for (int32_t t : SampleAll(logits, top_p)) p_tokens.insert(t);
  EXPECT_EQ(k_tokens, (std::set<int32_t>{7, 9}));
  // Masses of 7, 9, 11 are about 0.198, 0.179, 0.161: top_p 0.3 keeps 7 and 9.
  EXPECT_EQ(p_tokens, (std::set<int32_t>{7, 9}));
}

TEST_P(SamplingTest, FrequenciesFollowTheDistribution) {
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::vector<SamplingRow> rows;
  for (int i = 0; i < 4000; ++i) rows.push_back({1.0f, 0, 1.0f, 7, i});
  std::map<int32_t, int> counts;
  for (int32_t t : SampleAll(logits, rows)) ++counts[t];
  EXPECT_NEAR(counts[0] / 4000.0, 0.5, 0.03);
  EXPECT_NEAR(counts[1] / 4000.0, 0.3, 0.03);
  EXPECT_NEAR(counts[2] / 4000.0, 0.2, 0.03);
}

TEST_P(SamplingTest, LogprobIsUnderTheUnmodifiedDistribution) {
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  Tensor tokens = *backend_->Empty(DType::kI32, {1});
  Tensor logprobs = *backend_->Empty(DType::kF32, {1});
  std::vector<SamplingRow> rows = {{0.1f, 1, 1.0f, 1, 0}};  // sharp: must pick id 2
  backend_->Sample(Upload(logits, {1, 3}), rows, tokens, logprobs);
  EXPECT_EQ(DownloadInts(tokens)[0], 2);
  const double expected = 3.0 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(Download(logprobs)[0], expected, 1e-5);
}

// ---- Model-sized shapes, 16-bit weights, long KV, memory semantics ----

// `values` rounded to `dtype` and back (F32: unchanged).
std::vector<float> RoundTrip(const std::vector<float>& values, DType dtype) {
  if (dtype == DType::kF32) return values;
  std::vector<uint16_t> bits(values.size());
  std::vector<float> out(values.size());
  ConvertFromF32(dtype, values.data(), bits.data(), values.size());
  ConvertToF32(dtype, bits.data(), out.data(), values.size());
  return out;
}

double GeluReference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// MatMul of every mode against a double reference on the (rounded) weights.
// A backend may also round x to the weight type, so each output may be off
// by `input_eps` * sum_i |x_i w_i| (plus F32 accumulation error).
void CheckMatMulCase(Backend& backend,
                     const std::function<Tensor(const std::vector<float>&, Shape, DType)>& upload,
                     const std::function<std::vector<float>(const Tensor&)>& download, int m, int k,
                     int n, DType dtype, double input_eps) {
  SCOPED_TRACE(::testing::Message()
               << "m=" << m << " k=" << k << " n=" << n << " " << DTypeName(dtype));
  const auto x = RandomVector(size_t{1} * m * k, 50);
  const auto w = RoundTrip(RandomVector(size_t{1} * n * k, 51, 0.05f), dtype);
  const auto b = RandomVector(n, 52);
  const auto y0 = RandomVector(size_t{1} * m * n, 53);
  Tensor xt = upload(x, {m, k}, DType::kF32);
  absl::StatusOr<Tensor> wt_or = backend.PrepareMatMulWeight(upload(w, {n, k}, dtype));
  ASSERT_TRUE(wt_or.ok()) << wt_or.status();
  Tensor wt = *wt_or;
  Tensor bt = upload(b, {n}, DType::kF32);
  std::vector<double> dot(size_t{1} * m * n), magnitude(size_t{1} * m * n);
  for (int r = 0; r < m; ++r) {
    for (int c = 0; c < n; ++c) {
      double sum = 0.0, abs_sum = 0.0;
      for (int i = 0; i < k; ++i) {
        const double term = double{x[size_t{1} * r * k + i]} * w[size_t{1} * c * k + i];
        sum += term;
        abs_sum += std::abs(term);
      }
      dot[size_t{1} * r * n + c] = sum;
      magnitude[size_t{1} * r * n + c] = abs_sum;
    }
  }
  for (int mode = 0; mode < 3; ++mode) {
    const Activation act = mode == 1 ? Activation::kGelu : Activation::kNone;
    const bool accumulate = mode == 2;
    Tensor y = upload(y0, {m, n}, DType::kF32);
    backend.MatMul(xt, wt, bt, act, accumulate, y);
    const auto out = download(y);
    for (size_t i = 0; i < out.size(); ++i) {
      const double pre = dot[i] + b[i % n];
      double expected = act == Activation::kGelu ? GeluReference(pre) : pre;
      if (accumulate) expected += y0[i];
      const double bound =
          1.2 * (input_eps + k * 1e-7) * magnitude[i] + 2e-6 * (1.0 + std::abs(expected));
      ASSERT_NEAR(out[i], expected, bound) << "mode " << mode << " at " << i;
    }
  }
}

TEST_P(BackendOpsTest, MatMulModelSizedShapes) {
  auto upload = [&](const std::vector<float>& v, Shape s, DType d) { return Upload(v, s, d); };
  auto download = [&](const Tensor& t) { return Download(t); };
  // Attention/MLP projections and the vocabulary projection of the models.
  for (auto [m, k, n] : {std::tuple{5, 2048, 384}, {3, 512, 2048}, {2, 64, 50304}}) {
    CheckMatMulCase(*backend_, upload, download, m, k, n, DType::kF32, 0.0);
  }
}

// Weights of 16 MiB and more are streamed (the CPU GEMMs prefetch them
// non-temporal); one and two row tiles, F32 and 16-bit weights.
TEST_P(BackendOpsTest, MatMulWeightsPastTheStreamingSize) {
  auto upload = [&](const std::vector<float>& v, Shape s, DType d) { return Upload(v, s, d); };
  auto download = [&](const Tensor& t) { return Download(t); };
  for (int m : {5, 13}) {
    CheckMatMulCase(*backend_, upload, download, m, 512, 8256, DType::kF32, 0.0);  // 16.9 MB
    if (backend_->SupportsWeightType(DType::kBF16)) {
      CheckMatMulCase(*backend_, upload, download, m, 1024, 8256, DType::kBF16,
                      1.0 / 256);  // 16.9 MB as BF16
    }
  }
}

TEST_P(BackendOpsTest, MatMulSixteenBitWeights) {
  auto upload = [&](const std::vector<float>& v, Shape s, DType d) { return Upload(v, s, d); };
  auto download = [&](const Tensor& t) { return Download(t); };
  int checked = 0;
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    if (!backend_->SupportsWeightType(dtype)) continue;
    // Twice the unit roundoff of the type: 2^-8 (BF16), 2^-11 (F16).
    const double eps = dtype == DType::kBF16 ? 1.0 / 256 : 1.0 / 2048;
    for (auto [m, k, n] : {std::tuple{1, 64, 40}, {7, 384, 96}, {6, 2048, 2048}}) {
      CheckMatMulCase(*backend_, upload, download, m, k, n, dtype, eps);
    }
    ++checked;
  }
  if (checked == 0) GTEST_SKIP() << backend_->Describe() << " has no 16-bit weight types";
}

TEST_P(BackendOpsTest, LayerNormWideRows) {
  const int m = 3, d = 2048;
  auto x = RandomVector(m * d, 54, 3.0f);
  for (float& v : x) v += 5.0f;  // a large mean: the variance must not cancel
  const auto g = RandomVector(d, 55);
  const auto b = RandomVector(d, 56);
  std::vector<float> expected(m * d);
  for (int r = 0; r < m; ++r) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; ++i) mean += x[r * d + i];
    mean /= d;
    for (int i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= d;
    for (int i = 0; i < d; ++i) {
      expected[r * d + i] =
          static_cast<float>((x[r * d + i] - mean) / std::sqrt(var + 1e-5) * g[i] + b[i]);
    }
  }
  Tensor t = Upload(x, {m, d});
  backend_->LayerNorm(t, Upload(g, {d}), Upload(b, {d}), 1e-5f, t);
  ExpectNear(Download(t), expected, 1e-4f);
}

TEST_P(BackendOpsTest, CopyRowsWideSixteenBitTable) {
  const int rows = 64, width = 2048;
  const auto table = RandomVector(rows * width, 57);
  const std::vector<int32_t> picks = {63, 0, 17, 17, 42};
  for (DType dtype : {DType::kF32, DType::kBF16, DType::kF16}) {
    if (!backend_->SupportsWeightType(dtype)) continue;
    const auto rounded = RoundTrip(table, dtype);
    Tensor dst = *backend_->Empty(DType::kF32, {static_cast<int64_t>(picks.size()), width});
    backend_->CopyRows(Upload(table, {rows, width}, dtype), UploadInts(picks), dst, Tensor());
    const auto out = Download(dst);
    for (size_t i = 0; i < picks.size(); ++i) {
      for (int c = 0; c < width; ++c) {
        // 16-bit to F32 is exact: the copy must equal the rounded table.
        ASSERT_EQ(out[i * width + c], rounded[picks[i] * width + c])
            << DTypeName(dtype) << " row " << i << " col " << c;
      }
    }
  }
}

TEST_P(BackendOpsTest, RotaryModelHeadDims) {
  const int heads = 2, m = 4;
  const std::vector<int32_t> positions = {0, 5, 511, 2047};
  for (int hd : {32, 64, 128}) {
    for (int rot : {hd, hd / 4}) {
      const auto qkv = RandomVector(m * 3 * heads * hd, 58 + hd + rot);
      Tensor t = Upload(qkv, {m, 3 * heads * hd});
      backend_->Rotary(t, UploadInts(positions), heads, hd, rot, 10000.0f);
      const auto out = Download(t);
      for (int r = 0; r < m; ++r) {
        for (int h = 0; h < heads; ++h) {
          for (int part = 0; part < 3; ++part) {
            const int base = r * 3 * heads * hd + (h * 3 + part) * hd;
            for (int i = 0; i < hd; ++i) {
              double expected = qkv[base + i];
              if (part < 2 && i < rot) {
                const int j = i % (rot / 2);
                const double angle = positions[r] * std::pow(10000.0, -2.0 * j / rot);
                const double x1 = qkv[base + j], x2 = qkv[base + j + rot / 2];
                expected = i < rot / 2 ? x1 * std::cos(angle) - x2 * std::sin(angle)
                                       : x2 * std::cos(angle) + x1 * std::sin(angle);
              }
              // Angles are float products (as the reference implementation).
              ASSERT_NEAR(out[base + i], expected, 4e-3)
                  << "hd " << hd << " rot " << rot << " row " << r << " dim " << i;
            }
          }
        }
      }
    }
  }
}

using UploadFn = std::function<Tensor(const std::vector<float>&, Shape, DType)>;

// Appends `past` rows to each sequence, then `new_rows` more in one call,
// and checks the second call's output against dense causal attention in
// double. Pages are handed out in a shuffled order. With an F16 cache the
// reference uses the keys and values rounded to F16 (the one rounding the
// cache makes), so the tolerance is the same.
void PagedAttentionCase(Backend& backend, const UploadFn& upload,
                        const std::function<Tensor(const std::vector<int32_t>&)>& upload_ints,
                        const std::function<std::vector<float>(const Tensor&)>& download, int heads,
                        int hd, int page_size, const std::vector<int>& past,
                        const std::vector<int>& new_rows, DType kv_dtype = DType::kF32) {
  SCOPED_TRACE(::testing::Message() << "heads=" << heads << " head_dim=" << hd
                                    << " page_size=" << page_size << " kv " << DTypeName(kv_dtype));
  const int seqs = static_cast<int>(past.size());
  const int width = 3 * heads * hd;
  int max_pages = 1, total_pages = 0;
  for (int s = 0; s < seqs; ++s) {
    const int pages = (past[s] + new_rows[s] + page_size - 1) / page_size;
    max_pages = std::max(max_pages, pages);
    total_pages += pages;
  }
  const int num_pages = total_pages + 3;
  std::vector<int32_t> free_pages(num_pages);
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::shuffle(free_pages.begin(), free_pages.end(), std::mt19937(7));
  std::vector<std::vector<int32_t>> pages(seqs);
  for (int s = 0; s < seqs; ++s) {
    const int count = (past[s] + new_rows[s] + page_size - 1) / page_size;
    for (int i = 0; i < count; ++i) {
      pages[s].push_back(free_pages.back());
      free_pages.pop_back();
    }
  }
  const Shape cache_shape = {num_pages, heads, page_size, hd};
  const std::vector<float> zeros(size_t{1} * num_pages * heads * page_size * hd, 0.0f);
  KvCacheLayer cache{upload(zeros, cache_shape, kv_dtype), upload(zeros, cache_shape, kv_dtype),
                     page_size};
  std::vector<std::vector<float>> seq_qkv(seqs);
  for (int s = 0; s < seqs; ++s) {
    seq_qkv[s] = RandomVector(size_t{1} * (past[s] + new_rows[s]) * width, 70 + s);
  }
  auto run = [&](const std::vector<int>& start, const std::vector<int>& count) {
    std::vector<float> qkv;
    std::vector<int32_t> query_starts = {0}, kv_lens, table(size_t{1} * seqs * max_pages, 0), slots;
    for (int s = 0; s < seqs; ++s) {
      for (int i = start[s]; i < start[s] + count[s]; ++i) {
        qkv.insert(qkv.end(), seq_qkv[s].begin() + size_t{1} * i * width,
                   seq_qkv[s].begin() + size_t{1} * (i + 1) * width);
        slots.push_back(pages[s][i / page_size] * page_size + i % page_size);
      }
      query_starts.push_back(query_starts.back() + count[s]);
      kv_lens.push_back(start[s] + count[s]);
      const int used = (start[s] + count[s] + page_size - 1) / page_size;
      std::copy(pages[s].begin(), pages[s].begin() + used,
                table.begin() + size_t{1} * s * max_pages);
    }
    AttentionLayout layout;
    layout.num_seqs = seqs;
    layout.max_pages_per_seq = max_pages;
    layout.max_query_len = *std::max_element(count.begin(), count.end());
    layout.max_kv_len = *std::max_element(kv_lens.begin(), kv_lens.end());
    layout.query_starts = upload_ints(query_starts);
    layout.kv_lens = upload_ints(kv_lens);
    layout.page_table = upload_ints(table);
    layout.slot_mapping = upload_ints(slots);
    const int64_t rows = query_starts.back();
    Tensor out = *backend.Empty(DType::kF32, {rows, heads * hd});
    if (rows > 0) {
      backend.Attention(upload(qkv, {rows, width}, DType::kF32), cache, layout, heads, hd, out);
    }
    return download(out);
  };
  run(std::vector<int>(seqs, 0), past);  // prefill the history
  const auto out = run(past, new_rows);
  // What the cache holds of each k and v.
  const auto cached = [&](float x) { return kv_dtype == DType::kF16 ? F16ToF32(F32ToF16(x)) : x; };
  int row = 0;
  for (int s = 0; s < seqs; ++s) {
    for (int i = past[s]; i < past[s] + new_rows[s]; ++i, ++row) {
      for (int h = 0; h < heads; ++h) {
        const float* q = &seq_qkv[s][size_t{1} * i * width + h * 3 * hd];
        std::vector<double> scores(i + 1);
        double max_score = -1e30;
        for (int j = 0; j <= i; ++j) {
          const float* k = &seq_qkv[s][size_t{1} * j * width + h * 3 * hd + hd];
          double dot = 0;
          for (int d = 0; d < hd; ++d) dot += double{q[d]} * cached(k[d]);
          scores[j] = dot / std::sqrt(static_cast<double>(hd));
          max_score = std::max(max_score, scores[j]);
        }
        double total = 0;
        for (double& sc : scores) total += (sc = std::exp(sc - max_score));
        for (int d = 0; d < hd; ++d) {
          double expected = 0;
          for (int j = 0; j <= i; ++j) {
            expected += scores[j] / total *
                        cached(seq_qkv[s][size_t{1} * j * width + h * 3 * hd + 2 * hd + d]);
          }
          const double error = std::abs(out[size_t{1} * row * heads * hd + h * hd + d] - expected);
          ASSERT_LT(error, 1e-4 * std::max(1.0, std::abs(expected)))
              << "seq " << s << " pos " << i << " head " << h << " dim " << d;
        }
      }
    }
  }
}

TEST_P(BackendOpsTest, PagedAttentionLongKvManySequencesModelHeadDims) {
  auto upload = [&](const std::vector<float>& v, Shape s, DType d) { return Upload(v, s, d); };
  auto upload_ints = [&](const std::vector<int32_t>& v) { return UploadInts(v); };
  auto download = [&](const Tensor& t) { return Download(t); };
  // One long sequence (600 cached entries over many pages), decode rows,
  // prefill chunks, an empty history and single-row sequences.
  const std::vector<int> past = {600, 0, 37, 5, 120, 1, 15, 63};
  const std::vector<int> new_rows = {1, 9, 1, 40, 1, 16, 1, 2};
  for (int hd : {32, 64, 128, 48}) {
    PagedAttentionCase(*backend_, upload, upload_ints, download, 2, hd, 16, past, new_rows);
  }
}

TEST_P(BackendOpsTest, PagedAttentionWithAnF16Cache) {
  auto upload = [&](const std::vector<float>& v, Shape s, DType d) { return Upload(v, s, d); };
  auto upload_ints = [&](const std::vector<int32_t>& v) { return UploadInts(v); };
  auto download = [&](const Tensor& t) { return Download(t); };
  // Decode rows, prefill tiles (16 rows and a remainder), an empty history;
  // head dims for both vector paths (64, 48), the prefill tiles with a
  // masked F16 tail (40) and the portable path (20).
  const std::vector<int> past = {300, 0, 37, 5, 1};
  const std::vector<int> new_rows = {1, 21, 1, 40, 16};
  for (int hd : {64, 48, 40, 20}) {
    PagedAttentionCase(*backend_, upload, upload_ints, download, 2, hd, 16, past, new_rows,
                       DType::kF16);
  }
}

TEST_P(BackendOpsTest, TokenDecoderShapedAttention) {
  // The token decoder's local attention: many tiny sequences (R + L_B - 1
  // positions at most), one page each.
  auto upload = [&](const std::vector<float>& v, Shape s, DType d) { return Upload(v, s, d); };
  auto upload_ints = [&](const std::vector<int32_t>& v) { return UploadInts(v); };
  auto download = [&](const Tensor& t) { return Download(t); };
  std::vector<int> past, new_rows;
  for (int s = 0; s < 300; ++s) {
    past.push_back(s % 7);
    new_rows.push_back(1 + s % 3);
  }
  PagedAttentionCase(*backend_, upload, upload_ints, download, 4, 64, 10, past, new_rows);
}

TEST_P(BackendOpsTest, LogitsOpsAtVocabularySize) {
  const int m = 2, v = 50304;
  const auto logits = RandomVector(size_t{1} * m * v, 80, 3.0f);
  Tensor in = Upload(logits, {m, v});
  Tensor out = *backend_->Empty(DType::kF32, {m, v});
  backend_->LogSoftmax(in, out);
  const auto log_probs = Download(out);
  std::vector<float> expected(size_t{1} * m * v);
  for (int r = 0; r < m; ++r) {
    const auto begin = logits.begin() + size_t{1} * r * v;
    const double max_logit = *std::max_element(begin, begin + v);
    double sum = 0;
    for (int i = 0; i < v; ++i) sum += std::exp(begin[i] - max_logit);
    for (int i = 0; i < v; ++i) {
      expected[size_t{1} * r * v + i] = static_cast<float>(begin[i] - max_logit - std::log(sum));
    }
  }
  ExpectNear(log_probs, expected, 1e-5f);
  const std::vector<int32_t> targets = {v - 1, 12345};
  Tensor picked = *backend_->Empty(DType::kF32, {m});
  backend_->TargetLogProbs(in, UploadInts(targets), picked);
  const auto p = Download(picked);
  for (int r = 0; r < m; ++r) {
    EXPECT_NEAR(p[r], expected[size_t{1} * r * v + targets[r]], 1e-4);
  }
}

// The sampling rules (kernels/cpu/sampling.cc's header), written out plainly:
// weights expf((logit - max) * (1 / temperature)) summed in double; the
// top_k best by (logit desc, id asc); the shortest prefix of those reaching
// top_p of their mass; the first candidate whose running mass exceeds u times
// the kept mass (in id order when nothing is cut).
int32_t ReferenceSample(const std::vector<float>& row, const SamplingRow& p) {
  const int64_t v = static_cast<int64_t>(row.size());
  int32_t best = 0;
  for (int64_t i = 1; i < v; ++i) {
    if (row[i] > row[best]) best = static_cast<int32_t>(i);
  }
  if (p.temperature <= 0.0f) return best;
  const float max_logit = row[best];
  const float inv_t = 1.0f / p.temperature;
  const double u = SamplingDraw(p.seed, p.position);
  auto weight = [&](int64_t id) { return double{std::exp((row[id] - max_logit) * inv_t)}; };
  const bool cut_k = p.top_k > 0 && p.top_k < v;
  const bool cut_p = p.top_p < 1.0f;
  std::vector<int32_t> order(v);
  std::iota(order.begin(), order.end(), 0);
  if (cut_k || cut_p) {
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  }
  int64_t keep = cut_k ? p.top_k : v;
  if (cut_p) {
    double total = 0;
    for (int64_t i = 0; i < keep; ++i) total += weight(order[i]);
    const double needed = double{p.top_p} * total;
    double mass = 0;
    int64_t i = 0;
    while (i < keep) {
      mass += weight(order[i++]);
      if (mass >= needed) break;
    }
    keep = std::max<int64_t>(1, i);
  }
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += weight(order[i]);
  double running = 0;
  for (int64_t i = 0; i < keep; ++i) {
    running += weight(order[i]);
    if (running > u * total) return order[i];
  }
  return order[keep - 1];
}

// Every combination of temperature, top_k and top_p, on logits with many
// exact ties and on vocabulary-sized logits; tokens must follow the rules
// exactly and logprobs be those of the unmodified distribution.
TEST_P(SamplingTest, FollowsTheReferenceRulesOnEveryCombination) {
  struct Case {
    int v;
    uint32_t seed;
    float scale;
    bool ties;
  };
  for (const Case& c : {Case{1000, 90, 2.0f, true}, Case{50304, 91, 2.5f, false}}) {
    SCOPED_TRACE(::testing::Message() << "V=" << c.v);
    auto logits = RandomVector(c.v, c.seed, c.scale);
    if (c.ties) {
      for (float& x : logits) x = std::round(x * 4.0f) / 4.0f;  // many exact ties
    }
    std::vector<SamplingRow> rows;
    int i = 0;
    for (float temperature : {0.0f, 0.6f, 1.0f, 1.7f}) {
      for (int32_t top_k : {0, 1, 3, 40, c.v, c.v + 7}) {
        for (float top_p : {1.0f, 0.95f, 0.5f, 0.0f}) {
          if (c.v > 1000 && (i++ % 4) != 0) continue;  // a quarter of them at V = 50304
          rows.push_back({temperature, top_k, top_p, 1000u + rows.size(),
                          static_cast<int64_t>(rows.size() * 13)});
        }
      }
    }
    const int64_t m = static_cast<int64_t>(rows.size());
    std::vector<float> all;
    for (int64_t r = 0; r < m; ++r) all.insert(all.end(), logits.begin(), logits.end());
    Tensor tokens = *backend_->Empty(DType::kI32, {m});
    Tensor logprobs = *backend_->Empty(DType::kF32, {m});
    backend_->Sample(Upload(all, {m, c.v}), rows, tokens, logprobs);
    const auto got = DownloadInts(tokens);
    const auto got_logprobs = Download(logprobs);
    if (backend_->device() == DeviceKind::kCuda) {
      // The CUDA sampler sorts the cut rows a group at a time (bounded by
      // BLOCKSERVE_CUDA_SORT_ITEMS): groups of two rows must agree.
      setenv("BLOCKSERVE_CUDA_SORT_ITEMS", std::to_string(2 * c.v).c_str(), 1);
      absl::StatusOr<std::unique_ptr<Backend>> grouped = CreateBackend({.device = GetParam()});
      unsetenv("BLOCKSERVE_CUDA_SORT_ITEMS");
      ASSERT_TRUE(grouped.ok()) << grouped.status();
      std::swap(backend_, *grouped);
      Tensor grouped_tokens = *backend_->Empty(DType::kI32, {m});
      Tensor grouped_logprobs = *backend_->Empty(DType::kF32, {m});
      backend_->Sample(Upload(all, {m, c.v}), rows, grouped_tokens, grouped_logprobs);
      EXPECT_EQ(DownloadInts(grouped_tokens), got);
      std::swap(backend_, *grouped);
    }
    double max_logit = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float x : logits) sum += std::exp(x - max_logit);
    for (int64_t r = 0; r < m; ++r) {
      const SamplingRow& p = rows[r];
      EXPECT_EQ(got[r], ReferenceSample(logits, p))
          << "temperature " << p.temperature << " top_k " << p.top_k << " top_p " << p.top_p;
      ASSERT_GE(got[r], 0);
      ASSERT_LT(got[r], c.v);
      EXPECT_NEAR(got_logprobs[r], logits[got[r]] - max_logit - std::log(sum), 1e-4);
    }
  }
}

TEST_P(BackendOpsTest, CopyToDeviceSourceMayBeReusedAtOnce) {
  // Larger than the CUDA backend's pinned staging blocks, then many small
  // uploads from one reused host buffer.
  std::vector<float> host = RandomVector(size_t{3} << 20, 92);
  const std::vector<float> original = host;
  Tensor big = *backend_->Empty(DType::kF32, {static_cast<int64_t>(host.size())});
  backend_->CopyToDevice(host.data(), big);
  std::fill(host.begin(), host.end(), -7.0f);
  std::vector<Tensor> small;
  std::vector<float> buffer(1000);
  for (int i = 0; i < 300; ++i) {
    std::fill(buffer.begin(), buffer.end(), static_cast<float>(i));
    small.push_back(*backend_->Empty(DType::kF32, {1000}));
    backend_->CopyToDevice(buffer.data(), small.back());
  }
  EXPECT_TRUE(Download(big) == original);
  for (int i = 0; i < 300; ++i) {
    const auto values = Download(small[i]);
    ASSERT_TRUE(std::all_of(values.begin(), values.end(), [&](float x) { return x == i; }))
        << "upload " << i;
  }
}

TEST_P(BackendOpsTest, DroppedTensorsDoNotDisturbPendingOps) {
  // The model frees inputs right after enqueuing the ops that read them;
  // their memory is then reused by the next uploads. Results must be those
  // of the inputs at enqueue time.
  const int m = 16, k = 256, n = 192;
  const auto w = RandomVector(n * k, 93, 0.1f);
  Tensor wt = Upload(w, {n, k});
  std::vector<Tensor> outputs;
  std::vector<std::vector<float>> inputs;
  for (int iter = 0; iter < 12; ++iter) {
    inputs.push_back(RandomVector(m * k, 100 + iter));
    Tensor x = Upload(inputs.back(), {m, k});
    Tensor y = *backend_->Empty(DType::kF32, {m, n});
    backend_->MatMul(x, wt, Tensor(), Activation::kNone, false, y);
    outputs.push_back(y);
  }  // each x is dropped right after its MatMul was enqueued
  for (int iter = 0; iter < 12; ++iter) {
    const auto out = Download(outputs[iter]);
    for (int r = 0; r < m; r += 5) {
      for (int c = 0; c < n; c += 7) {
        double expected = 0;
        for (int i = 0; i < k; ++i) expected += double{inputs[iter][r * k + i]} * w[c * k + i];
        ASSERT_NEAR(out[r * n + c], expected, 1e-4 * std::max(1.0, std::abs(expected)))
            << "iteration " << iter;
      }
    }
  }
}

TEST_P(BackendOpsTest, DeviceIndexErrorsAreReportedBySynchronize) {
  if (backend_->device() == DeviceKind::kCpu) {
    GTEST_SKIP() << "the CPU backend CHECK-fails on out-of-range indices";
  }
  Tensor table = Upload(RandomVector(40, 94), {10, 4});
  Tensor dst = *backend_->Empty(DType::kF32, {2, 4});
  backend_->CopyRows(table, UploadInts({3, 99}), dst, Tensor());
  const absl::Status status = backend_->Synchronize();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("CopyRows"), std::string::npos) << status;
  EXPECT_TRUE(backend_->Synchronize().ok()) << "an error is reported once";
  backend_->CopyRows(table, UploadInts({3, 9}), dst, Tensor());  // the backend still works
  const auto out = Download(dst);
  EXPECT_EQ(out[0], Download(table)[12]);
}

TEST(SamplingDrawTest, IsUniformInUnitInterval) {
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = SamplingDraw(42, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
  EXPECT_NE(SamplingDraw(1, 5), SamplingDraw(2, 5));
}

// Each test binary names its backend (tests/kernels/CMakeLists.txt builds one
// for "cpu" and one, labelled gpu, for "cuda"); without a name, both.
#ifdef BLOCKSERVE_TEST_DEVICE
#define BS_TEST_DEVICES BLOCKSERVE_TEST_DEVICE
#else
#define BS_TEST_DEVICES "cpu", "cuda"
#endif
INSTANTIATE_TEST_SUITE_P(AllBackends, BackendOpsTest, ::testing::Values(BS_TEST_DEVICES));
INSTANTIATE_TEST_SUITE_P(AllBackends, SamplingTest, ::testing::Values(BS_TEST_DEVICES));

}  // namespace
}  // namespace blockserve
