// CudaBackend: the Backend op table on one GPU. Each op checks its Tensor
// arguments on the host (the same CHECKs as the CPU reference), then
// enqueues cuBLAS calls and the kernels of cuda_kernels.h on the backend's
// stream. Failures of CUDA / cuBLAS calls are recorded in an ErrorState and
// returned by the next Synchronize(), together with the device-side error
// word that kernels set when they meet out-of-range indices.
#include "kernels/cuda/cuda_backend.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cuda/cuda_allocator.h"
#include "kernels/cuda/cuda_error.h"
#include "kernels/cuda/cuda_kernels.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/host_staging.h"
#include "kernels/cuda/scoped_device.h"
#include "kernels/sampling_rng.h"
#include "shared/common/logging.h"
#include "shared/common/status_macros.h"

namespace blockserve {
namespace cuda {
namespace {

static_assert(sizeof(SampleRowParams) % sizeof(int32_t) == 0, "params upload as I32 words");

// Sorting works on groups of rows of at most this many (logit, id) pairs
// (or one row), so the sort buffers stay bounded: 4M pairs are 64 MiB with
// the double buffers. BLOCKSERVE_CUDA_SORT_ITEMS overrides it.
constexpr int64_t kDefaultSortItems = int64_t{1} << 22;

ElementType ToElementType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return ElementType::kF32;
    case DType::kF16:
      return ElementType::kF16;
    case DType::kBF16:
      return ElementType::kBF16;
    case DType::kI32:
      break;
  }
  LOG(FATAL) << "no floating element type for " << DTypeName(dtype);
  return ElementType::kF32;
}

cudaDataType_t ToCudaDataType(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kI32:
      break;
  }
  LOG(FATAL) << "no cuBLAS data type for " << DTypeName(dtype);
  return CUDA_R_32F;
}

bool EnvFlag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && (std::strcmp(value, "1") == 0 || std::strcmp(value, "true") == 0);
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* value = std::getenv(name);
  int64_t parsed = 0;
  if (value == nullptr || !absl::SimpleAtoi(value, &parsed) || parsed <= 0) return fallback;
  return parsed;
}

// Describes the bits of the device error word.
std::string DeviceErrorMessage(uint32_t bits) {
  std::vector<std::string> parts;
  if (bits & kErrorCopyRowsIndex) parts.push_back("CopyRows: source or target row out of range");
  if (bits & kErrorKvSlot) parts.push_back("Attention: slot_mapping entry outside the KV cache");
  if (bits & kErrorPageTable) parts.push_back("Attention: page_table entry outside the KV cache");
  if (bits & kErrorAttentionLayout) {
    parts.push_back("Attention: query_starts / kv_lens inconsistent with the rows or pages");
  }
  if (bits & kErrorTargetId) parts.push_back("TargetLogProbs: target id outside the vocabulary");
  return absl::StrCat(
      "CUDA kernels met out-of-range indices (the CPU backend CHECK-fails on "
      "these; the affected outputs are garbage): ",
      absl::StrJoin(parts, "; "));
}

void CheckOnDevice(const Tensor& t, const char* what) {
  CHECK(t.device() == DeviceKind::kCuda)
      << what << " must be on the CUDA device: " << t.DebugString();
}

class CudaBackend final : public Backend {
 public:
  static absl::StatusOr<std::unique_ptr<Backend>> Create(int ordinal);
  ~CudaBackend() override;

  DeviceKind device() const override { return DeviceKind::kCuda; }
  std::string Describe() const override { return description_; }
  Allocator& allocator() override { return *allocator_; }
  bool SupportsWeightType(DType dtype) const override {
    return dtype == DType::kF32 || dtype == DType::kF16 || (dtype == DType::kBF16 && bf16_);
  }

  void CopyToDevice(const void* src, const Tensor& dst) override;
  void CopyToHost(const Tensor& src, void* dst) override;
  absl::Status Synchronize() override;

  void MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act, bool accumulate,
              const Tensor& y) override;
  void LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                 const Tensor& y) override;
  void CopyRows(const Tensor& src, const Tensor& src_rows, const Tensor& dst,
                const Tensor& dst_rows) override;
  void Rotary(const Tensor& qkv, const Tensor& positions, int num_heads, int head_dim,
              int rotary_dims, float base) override;
  void Attention(const Tensor& qkv, const KvCacheLayer& cache, const AttentionLayout& layout,
                 int num_heads, int head_dim, const Tensor& out) override;
  void LogSoftmax(const Tensor& logits, const Tensor& out) override;
  void TargetLogProbs(const Tensor& logits, const Tensor& targets, const Tensor& out) override;
  void Sample(const Tensor& logits, absl::Span<const SamplingRow> rows, const Tensor& tokens,
              const Tensor& logprobs) override;

 private:
  explicit CudaBackend(int ordinal) : ordinal_(ordinal), errors_(std::make_shared<ErrorState>()) {}
  absl::Status Init();

  // Stream-ordered scratch; empty (and the error recorded) when out of memory.
  Tensor Scratch(DType dtype, Shape shape);
  // Uploads host bytes into a new scratch tensor of I32 words.
  Tensor UploadScratch(const void* data, size_t bytes);
  // The inverse rotary frequencies for (rotary_dims, base), computed on the
  // host exactly as the CPU reference does and kept on the device.
  const Tensor& InverseFrequencies(int rotary_dims, float base);

  const int ordinal_;
  std::string description_;
  bool bf16_ = false;  // BF16 GEMMs need compute capability 8.0+
  int64_t sort_items_ = kDefaultSortItems;
  std::shared_ptr<ErrorState> errors_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<CudaAllocator> allocator_;
  std::unique_ptr<HostStaging> staging_;
  std::unique_ptr<CublasGemm> gemm_;
  uint32_t* error_word_ = nullptr;       // device
  uint32_t* error_word_host_ = nullptr;  // pinned
  std::map<std::pair<int, uint32_t>, Tensor> inverse_frequencies_;
};

// Records a failing CUDA call (or a launcher's status) of a CudaBackend method.
#define BS_RECORD(call) BS_CUDA_OK(*errors_, call)

absl::StatusOr<std::unique_ptr<Backend>> CudaBackend::Create(int ordinal) {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(
        absl::StrCat("no usable CUDA driver or device: cudaGetDeviceCount failed with ",
                     cudaGetErrorName(error), " (", cudaGetErrorString(error), ")"));
  }
  if (count == 0) return absl::UnavailableError("no CUDA device found (cudaGetDeviceCount is 0)");
  if (ordinal < 0 || ordinal >= count) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA device cuda:", ordinal,
                                                   " does not exist (", count, " device",
                                                   count == 1 ? "" : "s", " found)"));
  }
  std::unique_ptr<CudaBackend> backend(new CudaBackend(ordinal));
  RETURN_IF_ERROR(backend->Init());
  return std::unique_ptr<Backend>(std::move(backend));
}

absl::Status CudaBackend::Init() {
  ScopedDevice scoped(ordinal_);
  RETURN_IF_ERROR(CudaStatus(scoped.status(), "cudaSetDevice", __FILE__, __LINE__));
  cudaDeviceProp prop;
  RETURN_IF_ERROR(CudaStatus(cudaGetDeviceProperties(&prop, ordinal_), "cudaGetDeviceProperties",
                             __FILE__, __LINE__));
  bf16_ = prop.major >= 8;
  description_ = absl::StrCat("cuda:", ordinal_, " (", prop.name, ", sm_", prop.major, prop.minor,
                              ", ", prop.totalGlobalMem >> 20, " MiB)");
  RETURN_IF_ERROR(CudaStatus(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                             "cudaStreamCreateWithFlags", __FILE__, __LINE__));

  int pools = 0;
  RETURN_IF_ERROR(
      CudaStatus(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, ordinal_),
                 "cudaDeviceGetAttribute(cudaDevAttrMemoryPoolsSupported)", __FILE__, __LINE__));
  if (pools != 0) {
    // Keep freed memory in the pool: the model allocates per-forward
    // workspaces, which then never go back to the driver.
    cudaMemPool_t pool;
    RETURN_IF_ERROR(CudaStatus(cudaDeviceGetDefaultMemPool(&pool, ordinal_),
                               "cudaDeviceGetDefaultMemPool", __FILE__, __LINE__));
    uint64_t threshold = UINT64_MAX;
    RETURN_IF_ERROR(
        CudaStatus(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold),
                   "cudaMemPoolSetAttribute(cudaMemPoolAttrReleaseThreshold)", __FILE__, __LINE__));
  }
  allocator_ = std::make_unique<CudaAllocator>(ordinal_, stream_, pools != 0, errors_);
  ASSIGN_OR_RETURN(staging_, HostStaging::Create(stream_, errors_.get()));
  const bool tf32 = EnvFlag("BLOCKSERVE_CUDA_TF32");
  sort_items_ = std::min<int64_t>(EnvInt("BLOCKSERVE_CUDA_SORT_ITEMS", kDefaultSortItems), INT_MAX);
  ASSIGN_OR_RETURN(gemm_, CublasGemm::Create(stream_, tf32));
  RETURN_IF_ERROR(CudaStatus(cudaMalloc(reinterpret_cast<void**>(&error_word_), sizeof(uint32_t)),
                             "cudaMalloc", __FILE__, __LINE__));
  RETURN_IF_ERROR(CudaStatus(cudaHostAlloc(reinterpret_cast<void**>(&error_word_host_),
                                           sizeof(uint32_t), cudaHostAllocDefault),
                             "cudaHostAlloc", __FILE__, __LINE__));
  *error_word_host_ = 0;

  // The first kernel launch: proves this binary has code for the device.
  cudaError_t probe = LaunchResetErrorWord(error_word_, stream_);
  if (probe == cudaSuccess) probe = cudaStreamSynchronize(stream_);
  if (probe == cudaErrorNoKernelImageForDevice || probe == cudaErrorInvalidDeviceFunction) {
    cudaGetLastError();
    return absl::UnavailableError(absl::StrCat(
        "this build has no CUDA kernels for ", prop.name, " (sm_", prop.major, prop.minor,
        "): configure with -DCMAKE_CUDA_ARCHITECTURES including ", prop.major, prop.minor));
  }
  RETURN_IF_ERROR(CudaStatus(probe, "the start-up kernel", __FILE__, __LINE__));
  if (tf32) LOG(INFO) << description_ << ": F32 GEMMs use TF32 tensor cores";
  return absl::OkStatus();
}

CudaBackend::~CudaBackend() {
  ScopedDevice scoped(ordinal_);
  if (stream_ != nullptr) BS_RECORD(cudaStreamSynchronize(stream_));
  inverse_frequencies_.clear();
  gemm_.reset();
  staging_.reset();
  if (error_word_ != nullptr) BS_RECORD(cudaFree(error_word_));
  if (error_word_host_ != nullptr) BS_RECORD(cudaFreeHost(error_word_host_));
  if (stream_ != nullptr) BS_RECORD(cudaStreamSynchronize(stream_));
  CudaAllocator::Retire(std::move(allocator_));
  if (stream_ != nullptr) BS_RECORD(cudaStreamDestroy(stream_));
  const absl::Status status = errors_->Take();
  if (!status.ok()) LOG(WARNING) << "CUDA backend " << description_ << " shut down: " << status;
}

Tensor CudaBackend::Scratch(DType dtype, Shape shape) {
  absl::StatusOr<Tensor> tensor = Tensor::Empty(*allocator_, dtype, std::move(shape));
  if (!tensor.ok()) {
    errors_->Record(tensor.status());
    return Tensor();
  }
  return *std::move(tensor);
}

Tensor CudaBackend::UploadScratch(const void* data, size_t bytes) {
  Tensor tensor = Scratch(DType::kI32, {static_cast<int64_t>((bytes + 3) / 4)});
  if (!tensor.empty() && bytes > 0) staging_->CopyToDevice(data, tensor.data(), bytes);
  return tensor;
}

void CudaBackend::CopyToDevice(const void* src, const Tensor& dst) {
  CheckOnDevice(dst, "CopyToDevice destination");
  if (dst.nbytes() == 0) return;
  ScopedDevice scoped(ordinal_);
  staging_->CopyToDevice(src, dst.data(), dst.nbytes());
}

void CudaBackend::CopyToHost(const Tensor& src, void* dst) {
  CheckOnDevice(src, "CopyToHost source");
  if (src.nbytes() == 0) return;
  ScopedDevice scoped(ordinal_);
  BS_RECORD(cudaMemcpyAsync(dst, src.data(), src.nbytes(), cudaMemcpyDeviceToHost, stream_));
}

absl::Status CudaBackend::Synchronize() {
  ScopedDevice scoped(ordinal_);
  BS_RECORD(scoped.status());
  BS_RECORD(cudaMemcpyAsync(error_word_host_, error_word_, sizeof(uint32_t), cudaMemcpyDeviceToHost,
                            stream_));
  if (BS_RECORD(cudaStreamSynchronize(stream_)) && *error_word_host_ != 0) {
    errors_->Record(absl::InternalError(DeviceErrorMessage(*error_word_host_)));
    *error_word_host_ = 0;
    BS_RECORD(cudaMemsetAsync(error_word_, 0, sizeof(uint32_t), stream_));
  }
  return errors_->Take();
}

void CudaBackend::MatMul(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act,
                         bool accumulate, const Tensor& y) {
  const int64_t m = x.rows();
  const int64_t k = x.cols();
  const int64_t n = w.dim(0);
  CHECK(x.dtype() == DType::kF32 && y.dtype() == DType::kF32);
  CHECK(SupportsWeightType(w.dtype()) && w.layout() == TensorLayout::kRowMajor)
      << "CUDA MatMul weights of " << w.DebugString();
  CHECK_EQ(w.rank(), 2) << w.DebugString();
  CHECK_EQ(w.cols(), k) << x.DebugString() << " x " << w.DebugString();
  CHECK_EQ(y.rows(), m);
  CHECK_EQ(y.cols(), n);
  CHECK(bias.empty() || (bias.dtype() == DType::kF32 && bias.numel() == n));
  CHECK(!(accumulate && act != Activation::kNone)) << "accumulate with an activation";
  CheckOnDevice(x, "MatMul x");
  CheckOnDevice(w, "MatMul w");
  CheckOnDevice(y, "MatMul y");
  if (!bias.empty()) CheckOnDevice(bias, "MatMul bias");
  if (m == 0 || n == 0) return;
  ScopedDevice scoped(ordinal_);
  float* out = y.data<float>();
  if (k == 0) {
    if (!accumulate) BS_RECORD(cudaMemsetAsync(out, 0, y.nbytes(), stream_));
  } else {
    const void* a = x.data();
    Tensor converted;  // x in the weights' 16-bit type, freed (stream-ordered) on return
    if (w.dtype() != DType::kF32) {
      converted = Scratch(w.dtype(), {m, k});
      if (converted.empty()) return;
      BS_RECORD(LaunchConvertF32To16(x.data<float>(), m * k, ToElementType(w.dtype()),
                                     converted.data(), stream_));
      a = converted.data();
    }
    errors_->Record(gemm_->Run(a, w.data(), ToCudaDataType(w.dtype()), m, n, k, accumulate, out));
  }
  BS_RECORD(LaunchBiasActivation(out, bias.empty() ? nullptr : bias.data<float>(), m, n,
                                 act == Activation::kGelu, stream_));
}

void CudaBackend::LayerNorm(const Tensor& x, const Tensor& gamma, const Tensor& beta, float eps,
                            const Tensor& y) {
  const int64_t m = x.rows();
  const int64_t d = x.cols();
  CHECK(x.dtype() == DType::kF32 && y.dtype() == DType::kF32);
  CHECK(gamma.dtype() == DType::kF32 && beta.dtype() == DType::kF32);
  CHECK_EQ(gamma.numel(), d);
  CHECK_EQ(beta.numel(), d);
  CHECK_EQ(y.rows(), m);
  CHECK_EQ(y.cols(), d);
  CheckOnDevice(x, "LayerNorm x");
  CheckOnDevice(y, "LayerNorm y");
  CheckOnDevice(gamma, "LayerNorm gamma");
  CheckOnDevice(beta, "LayerNorm beta");
  ScopedDevice scoped(ordinal_);
  BS_RECORD(LaunchLayerNorm(x.data<float>(), gamma.data<float>(), beta.data<float>(), eps, m, d,
                            y.data<float>(), stream_));
}

void CudaBackend::CopyRows(const Tensor& src, const Tensor& src_rows, const Tensor& dst,
                           const Tensor& dst_rows) {
  const int64_t width = src.cols();
  const int64_t n = src_rows.numel();
  CHECK(dst.dtype() == DType::kF32);
  CHECK(src.dtype() != DType::kI32 && src.layout() == TensorLayout::kRowMajor)
      << "CopyRows source must be floating and row-major: " << src.DebugString();
  CHECK_EQ(dst.cols(), width) << src.DebugString() << " -> " << dst.DebugString();
  CHECK(src_rows.dtype() == DType::kI32);
  CHECK(dst_rows.empty() || (dst_rows.dtype() == DType::kI32 && dst_rows.numel() == n));
  CHECK(!dst_rows.empty() || n <= dst.rows());
  CheckOnDevice(src, "CopyRows src");
  CheckOnDevice(dst, "CopyRows dst");
  if (n == 0) return;
  CheckOnDevice(src_rows, "CopyRows src_rows");
  if (!dst_rows.empty()) CheckOnDevice(dst_rows, "CopyRows dst_rows");
  ScopedDevice scoped(ordinal_);
  BS_RECORD(LaunchCopyRows(src.data(), ToElementType(src.dtype()), src.rows(), width,
                           src_rows.data<int32_t>(), n, dst.data<float>(), dst.rows(),
                           dst_rows.empty() ? nullptr : dst_rows.data<int32_t>(), error_word_,
                           stream_));
}

const Tensor& CudaBackend::InverseFrequencies(int rotary_dims, float base) {
  uint32_t base_bits;
  std::memcpy(&base_bits, &base, sizeof(base_bits));
  const std::pair<int, uint32_t> key(rotary_dims, base_bits);
  auto it = inverse_frequencies_.find(key);
  if (it != inverse_frequencies_.end()) return it->second;
  const int half = rotary_dims / 2;
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {  // as kernels/cpu/rotary.cc
    inv_freq[i] =
        1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(rotary_dims));
  }
  Tensor table = Scratch(DType::kF32, {half});
  if (!table.empty()) staging_->CopyToDevice(inv_freq.data(), table.data(), table.nbytes());
  // A failed allocation is not cached, so a later call tries again.
  if (table.empty()) {
    static const Tensor* const kEmpty = new Tensor();
    return *kEmpty;
  }
  return inverse_frequencies_.emplace(key, std::move(table)).first->second;
}

void CudaBackend::Rotary(const Tensor& qkv, const Tensor& positions, int num_heads, int head_dim,
                         int rotary_dims, float base) {
  const int64_t m = qkv.rows();
  CHECK(qkv.dtype() == DType::kF32);
  CHECK_EQ(qkv.cols(), int64_t{3} * num_heads * head_dim);
  CHECK(positions.dtype() == DType::kI32 && positions.numel() == m);
  CHECK(rotary_dims % 2 == 0 && rotary_dims >= 0 && rotary_dims <= head_dim);
  CheckOnDevice(qkv, "Rotary qkv");
  if (rotary_dims == 0 || m == 0) return;
  CheckOnDevice(positions, "Rotary positions");
  ScopedDevice scoped(ordinal_);
  const Tensor& inv_freq = InverseFrequencies(rotary_dims, base);
  if (inv_freq.empty()) return;
  BS_RECORD(LaunchRotary(qkv.data<float>(), m, positions.data<int32_t>(), inv_freq.data<float>(),
                         num_heads, head_dim, rotary_dims, stream_));
}

void CudaBackend::Attention(const Tensor& qkv, const KvCacheLayer& cache,
                            const AttentionLayout& layout, int num_heads, int head_dim,
                            const Tensor& out) {
  const int64_t rows = qkv.rows();
  CHECK(qkv.dtype() == DType::kF32 && out.dtype() == DType::kF32);
  CHECK_EQ(qkv.cols(), int64_t{3} * num_heads * head_dim);
  CHECK_EQ(out.rows(), rows);
  CHECK_EQ(out.cols(), int64_t{num_heads} * head_dim);
  CHECK_LE(head_dim, kMaxAttentionHeadDim)
      << "the CUDA attention kernel handles head_dim <= " << kMaxAttentionHeadDim;
  CHECK_EQ(cache.k.rank(), 4);
  CHECK((cache.k.dtype() == DType::kF32 || cache.k.dtype() == DType::kF16) &&
        cache.v.dtype() == cache.k.dtype())
      << "KV cache entries must be F32 or F16";
  CHECK(cache.k.shape() == cache.v.shape());
  CHECK_EQ(cache.k.dim(1), num_heads);
  CHECK_EQ(cache.k.dim(2), cache.page_size);
  CHECK_EQ(cache.k.dim(3), head_dim);
  CHECK_GT(cache.page_size, 0);
  CHECK_EQ(layout.slot_mapping.numel(), rows);
  if (rows == 0) return;
  CHECK_GE(layout.num_seqs, 1);
  CHECK_EQ(layout.query_starts.numel(), layout.num_seqs + 1);
  CHECK_EQ(layout.kv_lens.numel(), layout.num_seqs);
  CHECK_EQ(layout.page_table.numel(), int64_t{layout.num_seqs} * layout.max_pages_per_seq);
  CHECK(layout.query_starts.dtype() == DType::kI32 && layout.kv_lens.dtype() == DType::kI32 &&
        layout.page_table.dtype() == DType::kI32 && layout.slot_mapping.dtype() == DType::kI32);
  for (const Tensor* t : {&qkv, &out, &cache.k, &cache.v, &layout.query_starts, &layout.kv_lens,
                          &layout.page_table, &layout.slot_mapping}) {
    CheckOnDevice(*t, "Attention argument");
  }
  ScopedDevice scoped(ordinal_);
  PagedAttentionArgs args;
  args.qkv = qkv.data<float>();
  args.k_cache = cache.k.data();
  args.v_cache = cache.v.data();
  args.kv_f16 = cache.k.dtype() == DType::kF16;
  args.query_starts = layout.query_starts.data<int32_t>();
  args.kv_lens = layout.kv_lens.data<int32_t>();
  args.page_table = layout.page_table.data<int32_t>();
  args.slot_mapping = layout.slot_mapping.data<int32_t>();
  args.out = out.data<float>();
  args.rows = rows;
  args.num_seqs = layout.num_seqs;
  args.max_pages_per_seq = layout.max_pages_per_seq;
  args.num_pages = cache.k.dim(0);
  args.page_size = cache.page_size;
  args.num_heads = num_heads;
  args.head_dim = head_dim;
  args.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));  // as the CPU reference
  args.error_word = error_word_;
  BS_RECORD(LaunchPagedAttention(args, stream_));
}

void CudaBackend::LogSoftmax(const Tensor& logits, const Tensor& out) {
  const int64_t m = logits.rows();
  const int64_t v = logits.cols();
  CHECK(logits.dtype() == DType::kF32 && out.dtype() == DType::kF32);
  CHECK_EQ(out.rows(), m);
  CHECK_EQ(out.cols(), v);
  CheckOnDevice(logits, "LogSoftmax logits");
  CheckOnDevice(out, "LogSoftmax out");
  ScopedDevice scoped(ordinal_);
  BS_RECORD(LaunchLogSoftmax(logits.data<float>(), m, v, out.data<float>(), nullptr, nullptr,
                             error_word_, stream_));
}

void CudaBackend::TargetLogProbs(const Tensor& logits, const Tensor& targets, const Tensor& out) {
  const int64_t m = logits.rows();
  const int64_t v = logits.cols();
  CHECK(logits.dtype() == DType::kF32);
  CHECK(targets.dtype() == DType::kI32 && targets.numel() == m);
  CHECK(out.dtype() == DType::kF32 && out.numel() == m);
  CheckOnDevice(logits, "TargetLogProbs logits");
  CheckOnDevice(out, "TargetLogProbs out");
  if (m == 0) return;
  CheckOnDevice(targets, "TargetLogProbs targets");
  ScopedDevice scoped(ordinal_);
  BS_RECORD(LaunchLogSoftmax(logits.data<float>(), m, v, nullptr, targets.data<int32_t>(),
                             out.data<float>(), error_word_, stream_));
}

void CudaBackend::Sample(const Tensor& logits, absl::Span<const SamplingRow> rows,
                         const Tensor& tokens, const Tensor& logprobs) {
  const int64_t m = logits.rows();
  const int64_t v = logits.cols();
  CHECK(logits.dtype() == DType::kF32);
  CHECK_EQ(static_cast<int64_t>(rows.size()), m);
  CHECK(tokens.dtype() == DType::kI32 && tokens.numel() == m);
  CHECK(logprobs.dtype() == DType::kF32 && logprobs.numel() == m);
  CheckOnDevice(logits, "Sample logits");
  CheckOnDevice(tokens, "Sample tokens");
  CheckOnDevice(logprobs, "Sample logprobs");
  if (m == 0) return;
  CHECK_GT(v, 0);
  CHECK_LE(v, INT_MAX) << "vocabulary too large for the CUDA sampler";
  ScopedDevice scoped(ordinal_);

  // Per-row settings, decided on the host as kernels/cpu/sampling.cc does.
  std::vector<SampleRowParams> params(m);
  std::vector<int32_t> sorted_rows;
  for (int64_t r = 0; r < m; ++r) {
    const SamplingRow& row = rows[r];
    SampleRowParams& p = params[r];
    if (row.temperature <= 0.0f) {
      p.mode = SampleMode::kGreedy;
      continue;
    }
    p.inv_temperature = 1.0f / row.temperature;
    p.draw = SamplingDraw(row.seed, row.position);
    const bool cut_k = row.top_k > 0 && row.top_k < v;
    const bool cut_p = row.top_p < 1.0f;
    if (!cut_k && !cut_p) {
      p.mode = SampleMode::kPlain;
      continue;
    }
    p.mode = SampleMode::kSorted;
    p.top_k = cut_k ? row.top_k : 0;
    p.top_p = row.top_p;
    p.cut_p = cut_p ? 1 : 0;
    sorted_rows.push_back(static_cast<int32_t>(r));
  }
  const Tensor params_dev = UploadScratch(params.data(), params.size() * sizeof(SampleRowParams));
  const Tensor row_max = Scratch(DType::kF32, {m});
  const Tensor row_log_sum = Scratch(DType::kF32, {m});
  if (params_dev.empty() || row_max.empty() || row_log_sum.empty()) return;
  const auto* params_ptr = reinterpret_cast<const SampleRowParams*>(params_dev.data());
  BS_RECORD(LaunchSampleRows(logits.data<float>(), m, v, params_ptr, tokens.data<int32_t>(),
                             logprobs.data<float>(), row_max.data<float>(),
                             row_log_sum.data<float>(), stream_));
  if (sorted_rows.empty()) return;

  // Rows with a top-k / top-p cut: sort their (logit, id) pairs, a group of
  // rows at a time, then walk the sorted candidates.
  const int count = static_cast<int>(sorted_rows.size());
  const int group = static_cast<int>(std::clamp<int64_t>(sort_items_ / v, 1, count));
  const Tensor rows_dev = UploadScratch(sorted_rows.data(), sorted_rows.size() * sizeof(int32_t));
  const Tensor keys_in = Scratch(DType::kF32, {int64_t{group} * v});
  const Tensor keys_out = Scratch(DType::kF32, {int64_t{group} * v});
  const Tensor ids_in = Scratch(DType::kI32, {int64_t{group} * v});
  const Tensor ids_out = Scratch(DType::kI32, {int64_t{group} * v});
  const Tensor offsets = Scratch(DType::kI32, {int64_t{group} + 1});
  for (const Tensor* t : {&rows_dev, &keys_in, &keys_out, &ids_in, &ids_out, &offsets}) {
    if (t->empty()) return;
  }
  for (int start = 0; start < count; start += group) {
    const int g = std::min(group, count - start);
    const int32_t* group_rows = rows_dev.data<int32_t>() + start;
    BS_RECORD(LaunchGatherSortInput(logits.data<float>(), v, group_rows, g, keys_in.data<float>(),
                                    ids_in.data<int32_t>(), offsets.data<int32_t>(), stream_));
    size_t temp_bytes = 0;
    if (!BS_RECORD(SortSegmentsDescending(nullptr, &temp_bytes, keys_in.data<float>(),
                                          keys_out.data<float>(), ids_in.data<int32_t>(),
                                          ids_out.data<int32_t>(), g, v, offsets.data<int32_t>(),
                                          stream_))) {
      return;
    }
    const Tensor temp = Scratch(DType::kI32, {static_cast<int64_t>(temp_bytes / 4 + 1)});
    if (temp.empty()) return;
    BS_RECORD(SortSegmentsDescending(
        temp.data(), &temp_bytes, keys_in.data<float>(), keys_out.data<float>(),
        ids_in.data<int32_t>(), ids_out.data<int32_t>(), g, v, offsets.data<int32_t>(), stream_));
    BS_RECORD(LaunchSampleSortedRows(logits.data<float>(), v, params_ptr, group_rows, g,
                                     keys_out.data<float>(), ids_out.data<int32_t>(),
                                     row_max.data<float>(), row_log_sum.data<float>(),
                                     tokens.data<int32_t>(), logprobs.data<float>(), stream_));
  }
}

#undef BS_RECORD

}  // namespace
}  // namespace cuda

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(int ordinal) {
  return cuda::CudaBackend::Create(ordinal);
}

}  // namespace blockserve
