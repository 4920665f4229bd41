#!/usr/bin/env bash
# Setup, build, and run every test that can run on this machine (gpu-labelled tests skip without
# a GPU). The model and data are required: a missing one fails the run instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/build.sh
export LATENTKV_REQUIRE_MODEL=1
if [ -f ../shared/data/wikitext-2/test.txt ] || [ -n "${LATENTKV_DATA_DIR:-}" ]; then
  export LATENTKV_REQUIRE_DATA=1
fi
ctest --test-dir "${LATENTKV_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
