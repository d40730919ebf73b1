# Build options. Every option has a safe default for a CPU-only Debian 12 machine.
set(BLOCKSERVE_CUDA "AUTO" CACHE STRING
    "Build the CUDA backend: ON, OFF or AUTO (on when nvcc is found)")
set_property(CACHE BLOCKSERVE_CUDA PROPERTY STRINGS AUTO ON OFF)
option(BLOCKSERVE_BUILD_TESTS "Build the GoogleTest suites" ON)
option(BLOCKSERVE_BUILD_BENCHMARKS "Build the Google Benchmark micro-benchmarks" ON)
option(BLOCKSERVE_NATIVE "Compile for the build machine's CPU (-march=native)" OFF)
