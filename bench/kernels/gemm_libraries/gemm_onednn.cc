// oneDNN 2.6 (Debian's libdnnl2, OpenMP threads): the matmul primitive,
// its weight reordered once into the layout the primitive asks for
// (format_tag::any), like a framework that keeps weights pre-packed. BF16
// weights use BF16 activations (oneDNN has no F32 x BF16 matmul), converted
// in every call, with an F32 output.
#include <omp.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "bench/kernels/gemm_libraries/gemm_library.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace blockserve {
namespace {

using dnnl::memory;

class OneDnnGemm : public HostGemmCall {
 public:
  explicit OneDnnGemm(const GemmProblem& problem)
      : HostGemmCall(problem), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {}

  absl::Status Init(const float* w) {
    const auto& p = problem_;
    const memory::data_type in_type =
        p.bf16_weights ? memory::data_type::bf16 : memory::data_type::f32;
    const memory::desc src_md({p.m, p.k}, in_type, memory::format_tag::ab);
    const memory::desc dst_md({p.m, p.n}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc any_weights_md({p.k, p.n}, in_type, memory::format_tag::any);
    try {
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_weights_md, dst_md), engine_);
      matmul_ = dnnl::matmul(pd);
      // w [n, k] row-major is the [k, n] weights matrix in format `ba`.
      std::vector<uint16_t> w16;
      const void* w_data = w;
      if (p.bf16_weights) {
        w16 = ToBf16(w, p.n * p.k);
        w_data = w16.data();
      }
      memory plain(memory::desc({p.k, p.n}, in_type, memory::format_tag::ba), engine_,
                   const_cast<void*>(w_data));
      weights_ = memory(pd.weights_desc(), engine_);
      dnnl::reorder(plain, weights_).execute(stream_, plain, weights_);
      stream_.wait();
      if (p.bf16_weights) {
        src_ = memory(src_md, engine_);
      } else {
        src_ = memory(src_md, engine_, x_.data());
      }
      dst_ = memory(dst_md, engine_, y_.data());
    } catch (const dnnl::error& e) {
      return absl::UnimplementedError(absl::StrCat("oneDNN: ", e.what()));
    }
    return absl::OkStatus();
  }

  void Run() override {
    if (problem_.bf16_weights) {
      ConvertFromF32(DType::kBF16, x_.data(), src_.get_data_handle(), x_.size());
    }
    matmul_.execute(stream_,
                    {{DNNL_ARG_SRC, src_}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst_}});
    stream_.wait();
  }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::matmul matmul_;
  memory weights_, src_, dst_;
};

}  // namespace

const char* GemmLibraryName() {
  static const std::string name = [] {
    const dnnl_version_t* v = dnnl_version();
    return absl::StrCat("oneDNN ", v->major, ".", v->minor, ".", v->patch);
  }();
  return name.c_str();
}

absl::StatusOr<std::unique_ptr<GemmCall>> PrepareGemm(const GemmProblem& problem, const float* w) {
  omp_set_num_threads(problem.threads);
  auto call = std::make_unique<OneDnnGemm>(problem);
  if (absl::Status status = call->Init(w); !status.ok()) return status;
  return call;
}

}  // namespace blockserve
