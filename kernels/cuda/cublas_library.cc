#include "kernels/cuda/cublas_library.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace blockserve::cuda {
namespace {

absl::StatusOr<CublasLibrary> Load() {
  const std::string name = absl::StrCat("libcublas.so.", CUBLAS_VER_MAJOR);
  std::vector<std::string> candidates = {name};
#ifdef BLOCKSERVE_CUDA_LIBRARY_DIR
  candidates.push_back(absl::StrCat(BLOCKSERVE_CUDA_LIBRARY_DIR, "/", name));
#endif
  void* handle = nullptr;
  std::vector<std::string> errors;
  for (const std::string& candidate : candidates) {
    handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle != nullptr) break;
    const char* error = dlerror();
    errors.push_back(error != nullptr ? error : candidate);
  }
  if (handle == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot load cuBLAS: ", absl::StrJoin(errors, "; ")));
  }
  CublasLibrary library;
  auto resolve = [&](auto& function, const char* symbol) -> absl::Status {
    dlerror();
    void* address = dlsym(handle, symbol);
    if (address == nullptr) {
      return absl::UnavailableError(absl::StrCat(name, " has no symbol ", symbol));
    }
    function = reinterpret_cast<std::remove_reference_t<decltype(function)>>(address);
    return absl::OkStatus();
  };
  for (absl::Status status :
       {resolve(library.create, "cublasCreate_v2"), resolve(library.destroy, "cublasDestroy_v2"),
        resolve(library.set_stream, "cublasSetStream_v2"),
        resolve(library.set_workspace, "cublasSetWorkspace_v2"),
        resolve(library.gemm_ex, "cublasGemmEx")}) {
    if (!status.ok()) return status;
  }
  return library;
}

}  // namespace

absl::StatusOr<const CublasLibrary*> LoadCublas() {
  // Loaded once; a failure is remembered too (it will not change).
  static const absl::StatusOr<CublasLibrary>* const library =
      new absl::StatusOr<CublasLibrary>(Load());
  if (!library->ok()) return library->status();
  return &**library;
}

}  // namespace blockserve::cuda
