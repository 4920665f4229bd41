#!/usr/bin/env bash
# Configures and builds into build/ (Release); `build.sh TARGET...` builds only those targets.
# CUDA code is compiled for the GPU of this machine, or for sm_90a only when there is none
# (compile check, as in CI). Without nvcc the CUDA parts are switched off with a warning.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${LATENTKV_BUILD_DIR:-build}
args=(-DCMAKE_BUILD_TYPE=Release)
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
if command -v nvcc >/dev/null; then
  arch=${LATENTKV_CUDA_ARCH:-}
  if [ -z "$arch" ] && command -v nvidia-smi >/dev/null; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d .)
    case "$cap" in
      90) arch=90a ;;
      "") ;;
      *) arch=$cap ;;
    esac
  fi
  args+=(-DCMAKE_CUDA_ARCHITECTURES="${arch:-90a}")
else
  echo "build: warning: nvcc not found, building without CUDA kernels" >&2
  args+=(-DLATENTKV_WITH_CUDA=OFF)
fi
cmake -S . -B "$BUILD_DIR" "${args[@]}" >/dev/null
# Optional arguments name the targets to build (default: everything).
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build "$BUILD_DIR" -j "$(nproc)" "${targets[@]}"
