# CUDA backend switch. AUTO turns it on when nvcc is found (also in
# /usr/local/cuda, where the CUDA Toolkit installs), so CI compiles and links
# the CUDA backend even on machines without a GPU.
set(BLOCKSERVE_WITH_CUDA OFF)
if(NOT BLOCKSERVE_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(BLOCKSERVE_WITH_CUDA ON)
  elseif(BLOCKSERVE_CUDA STREQUAL "ON")
    message(FATAL_ERROR "BLOCKSERVE_CUDA=ON but no CUDA compiler (nvcc) was found")
  endif()
endif()
if(BLOCKSERVE_WITH_CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 80 90)
  endif()
  enable_language(CUDA)
  # C++17 for .cu files: CMake 3.25 knows no C++20 dialect flag for nvcc.
  # The kernels share only kernels/cuda/cuda_kernels.h (plain C++17) with
  # the C++20 host code, which the C++ compiler builds.
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  # One CUDA runtime per process, the shared one: every target (including the
  # executables that link CUDA objects through static libraries) links
  # libcudart.so, as CUDA::cudart and cuBLAS do.
  set(CMAKE_CUDA_RUNTIME_LIBRARY Shared)
  find_package(CUDAToolkit REQUIRED)
  message(STATUS "Blockserve: CUDA backend ON (${CMAKE_CUDA_COMPILER}, archs ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "Blockserve: CUDA backend OFF")
endif()
