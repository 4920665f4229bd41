#!/usr/bin/env bash
# One call on a GPU machine for the GPU engine (issue 6): build, GPU tests, perplexity of the
# default model on the GPU vs the CPU (baseline and compressed), the end-to-end decode benchmark
# and the decode-step matrix-vector product against cuBLAS.
#   STEPS  comma list of build,tests,ppl,bench (default: build,tests,ppl,bench)
#   BENCH_FILTER  --benchmark_filter regex for engine_decode_bench (default: all)
#   CHUNKS perplexity windows (default 40)
# The default model is ~98 MB, more than one call may carry: carry .carry/model1 in one call and
# .carry/model2 in the next while the machine is warm (the first half waits in /tmp), or have it
# under models/ already. WikiText-2 comes from .carry/data (copies of ../shared/data/wikitext-2).
# Dependencies come from .carry/cuda-deps/usr (scripts/carry_gpu_deps.sh). Logs go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${OUT:-/tmp/latentkv-engine}
mkdir -p "$DEST"
BUILD=${BUILD_DIR:-build-gpu}
STEPS=${STEPS:-build,tests,ppl,bench}
CHUNKS=${CHUNKS:-40}
has() { [[ ",$STEPS," == *",$1,"* ]]; }
status=0
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# Model halves: keep the first one across calls, join when the second arrives.
[ -f .carry/model1/modelpart.00 ] && cp .carry/model1/modelpart.00 /tmp/lkv-modelpart.00
if [ ! -f "$MODEL" ] && [ -f .carry/model2/modelpart.01 ] && [ -f /tmp/lkv-modelpart.00 ]; then
  mkdir -p models
  cat /tmp/lkv-modelpart.00 .carry/model2/modelpart.01 >"$MODEL"
fi
if [ -f "$MODEL" ] && [ "$(sha256sum "$MODEL" | cut -d' ' -f1)" != "$MODEL_SHA256" ]; then
  echo "model: sha256 mismatch, removed"; rm -f "$MODEL"
fi

if has build; then
  deps=()
  [ -d .carry/cuda-deps/usr ] && deps=(-DCMAKE_PREFIX_PATH="$PWD/.carry/cuda-deps/usr")
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DLATENTKV_BUILD_EXAMPLES=ON "${deps[@]}" \
    >"$DEST/cmake.log" 2>&1 || { tail -20 "$DEST/cmake.log"; exit 1; }
  cmake --build "$BUILD" -j"$(nproc)" >"$DEST/build.log" 2>&1 ||
    { grep -E "error|Error" -A3 "$DEST/build.log" | head -60; exit 1; }
  echo "build: ok"
fi

if has tests; then
  ctest --test-dir "$BUILD" -L gpu -j4 --output-on-failure >"$DEST/ctest_gpu.log" 2>&1 || status=1
  grep -E "tests passed|tests failed|\*\*\*Failed|Failed  |Skipped" "$DEST/ctest_gpu.log" | head -40
  [ $status = 0 ] || grep -E "Failure|error:|Expected|Which is|actual|rel_diff" "$DEST/ctest_gpu.log" | head -60
fi

if has ppl; then
  if [ ! -f "$MODEL" ]; then
    echo "ppl: model missing (carry .carry/model1 then .carry/model2)"; status=1
  else
    BIN=$BUILD/examples
    TEXT=.carry/data/test.txt
    CALIB=.carry/data/valid.txt
    run_ppl() {  # name device args...
      local name=$1 dev=$2
      shift 2
      "$BIN/latentkv-ppl" --model "$MODEL" --text "$TEXT" --ctx 512 --chunks "$CHUNKS" \
        --device "$dev" --json "$@" >"$DEST/ppl_$name.txt" 2>"$DEST/ppl_$name.err" ||
        { status=1; tail -3 "$DEST/ppl_$name.err"; }
    }
    run_ppl gpu_fp16 cuda
    run_ppl cpu_fp16 cpu --kv-dtype f16
    for spec in "50 16" "20 3"; do
      set -- $spec
      lkv=/tmp/lkv-c$1-b$2.lkv
      [ -f "$lkv" ] || "$BIN/latentkv-compress" --model "$MODEL" --calib "$CALIB" \
        --budget "0.$1" --bits "$2" --out "$lkv" >"$DEST/compress_c$1.log" 2>&1 ||
        { status=1; tail -3 "$DEST/compress_c$1.log"; }
      run_ppl gpu_c$1_b$2 cuda --compressed "$lkv"
      run_ppl cpu_c$1_b$2 cpu --compressed "$lkv"
    done
    "$BIN/latentkv-generate" --model "$MODEL" --compressed /tmp/lkv-c20-b3.lkv --device cuda \
      --chat --prompt "What is the capital of France?" -n 32 >"$DEST/generate.txt" 2>&1 || status=1
    cat "$DEST/generate.txt"
    python3 - "$DEST" <<'PY'
import json, sys, os
d = sys.argv[1]
def last(name):
    p = os.path.join(d, f"ppl_{name}.txt")
    if not os.path.exists(p): return None
    lines = [l for l in open(p) if l.startswith("{")]
    return json.loads(lines[-1]) if lines else None
print("| cache | CPU ppl | GPU ppl | rel. diff | CPU tok/s | GPU tok/s | KV bytes/token |")
print("|---|---|---|---|---|---|---|")
for label, key in [("fp16", "fp16"), ("latentkv 50 %, fp16 latents", "c50_b16"),
                   ("latentkv 20 %, 3-bit latents", "c20_b3")]:
    c, g = last("cpu_" + key), last("gpu_" + key)
    if not c or not g:
        print(f"| {label} | missing | | | | | |"); continue
    rel = abs(g["ppl"] - c["ppl"]) / c["ppl"] * 100
    print(f"| {label} | {c['ppl']:.4f} | {g['ppl']:.4f} | {rel:.3f} % | "
          f"{c['tokens_per_second']:.0f} | {g['tokens_per_second']:.0f} | {g['kv_bytes_per_token']:.0f} |")
PY
  fi
fi

if has bench; then
  "$BUILD/bench/engine_decode_bench" --benchmark_filter="${BENCH_FILTER:-.}" \
    --benchmark_out="$DEST/engine.json" --benchmark_out_format=json >"$DEST/engine_bench.log" 2>&1 ||
    { status=1; tail -5 "$DEST/engine_bench.log"; }
  python3 bench/engine_table.py "$DEST/engine.json" | tee "$DEST/engine_table.md"
  "$BUILD/bench/decode_gemv_bench" --benchmark_out="$DEST/gemv.json" \
    --benchmark_out_format=json >"$DEST/gemv_bench.log" 2>&1 ||
    { status=1; tail -5 "$DEST/gemv_bench.log"; }
  python3 bench/gemv_table.py "$DEST/gemv.json" | tee "$DEST/gemv_table.md"
fi
exit $status
