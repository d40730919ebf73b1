#!/usr/bin/env bash
# Installs the Debian 12 packages Blockserve needs (only those missing) and
# builds everything into build/ (binaries in build/bin).
#
#   tools/setup.sh              install + configure + build
#   BUILD_DIR=out tools/setup.sh
#   BLOCKSERVE_CUDA=OFF tools/setup.sh   skip the CUDA backend even if nvcc exists
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  prometheus-cpp-dev nlohmann-json3-dev libutf8proc-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # The GEMM libraries bench/kernels/gemm_libraries compares our kernels with.
  libopenblas-pthread-dev libblis-openmp-dev libdnnl-dev libxsmm-dev libeigen3-dev
  python3-matplotlib
  # deploy/ checks (tests/deploy, tests/integration/observability_test.cc):
  # prometheus + promtool, YAML and JSON schema for the manifest test.
  prometheus python3-yaml python3-jsonschema
)
# `kubectl kustomize` renders deploy/k8s: Debian's kubectl, unless one is
# already installed (another vendor's kubectl package conflicts with it).
if ! command -v kubectl >/dev/null 2>&1; then
  PACKAGES+=(kubernetes-client)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DBLOCKSERVE_CUDA="${BLOCKSERVE_CUDA:-AUTO}" >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
