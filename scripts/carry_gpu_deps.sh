#!/usr/bin/env bash
# Unpacks the Debian packages of the build dependencies (Eigen, GoogleTest, Google Benchmark) into
# .carry/cuda-deps/usr, for GPU machines that have no package registry: carry that folder with the
# working tree and bench/run_gpu.sh finds it (CMAKE_PREFIX_PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download libeigen3-dev libgtest-dev libgmock-dev googletest libbenchmark-dev \
  libbenchmark1debian >/dev/null)
rm -rf .carry/cuda-deps
mkdir -p .carry/cuda-deps
for deb in "$tmp"/*.deb; do dpkg -x "$deb" .carry/cuda-deps; done
# Sources and docs are not needed (libgtest.a is prebuilt) and every MiB counts against the carry.
rm -rf .carry/cuda-deps/usr/src .carry/cuda-deps/usr/share/doc
du -sh .carry/cuda-deps
