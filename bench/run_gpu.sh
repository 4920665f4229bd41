#!/usr/bin/env bash
# One call on a GPU machine: build the CUDA targets (Release, sm_90a), run the GPU tests, the
# benches and the PyTorch SDPA baselines, print one table. Results and logs go to $OUT.
#   STEPS  comma list of build,tests,sanitize,bench,sdpa,table,ncu (default: build,tests,bench,sdpa,table)
#   BENCH_FILTER  --benchmark_filter regex for the latent/paged benches (default: all)
#   BUILD_DIR     build directory (default: build-gpu)
#   NCU_FILTERS   space-separated benchmark names profiled by the ncu step
# Logs and JSON go to a work directory; at the end they are packed into $OUT/results.tgz and the
# table is copied to $OUT/table.md.
# Dependencies (Eigen, GoogleTest, Google Benchmark) are taken from .carry/cuda-deps/usr when
# present (carried to machines that lack them).
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${OUT:-/tmp/latentkv-gpu}
OUT=$(mktemp -d /tmp/latentkv-run.XXXX)
BUILD=${BUILD_DIR:-build-gpu}
STEPS=${STEPS:-build,tests,bench,sdpa,table}
FILTER=${BENCH_FILTER:-.}
mkdir -p "$DEST"
finish() { tar czf "$DEST/results.tgz" -C "$OUT" . ; [ -f "$OUT/table.md" ] && cp "$OUT/table.md" "$DEST/"; }
trap finish EXIT
has() { [[ ",$STEPS," == *",$1,"* ]]; }
status=0

if has build; then
  deps=()
  [ -d .carry/cuda-deps/usr ] && deps=(-DCMAKE_PREFIX_PATH="$PWD/.carry/cuda-deps/usr")
  cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DLATENTKV_BUILD_EXAMPLES=OFF "${deps[@]}" >"$OUT/cmake.log" 2>&1 || { tail -20 "$OUT/cmake.log"; exit 1; }
  cmake --build "$BUILD" -j"$(nproc)" --target paged_decode_gpu_test latent_decode_gpu_test \
    latent_append_gpu_test decode_support_test paged_decode_bench latent_decode_bench \
    latent_append_bench >"$OUT/build.log" 2>&1 || { grep -E "error" -A3 "$OUT/build.log" | head -40; exit 1; }
  echo "build: ok"
fi

if has tests; then
  for t in decode_support_test paged_decode_gpu_test latent_append_gpu_test latent_decode_gpu_test; do
    if "$BUILD/tests/$t" >"$OUT/$t.log" 2>&1; then
      echo "$t: $(grep -E '^\[  PASSED' "$OUT/$t.log")"
    else
      status=1
      echo "$t: FAILED"; grep -E "Failure|FAILED|error" -A4 "$OUT/$t.log" | head -40
    fi
    grep -E "^\[.*(rel err|key error)" "$OUT/$t.log" | head -40
    grep -E "^key error" "$OUT/$t.log"
  done
fi

if has sanitize; then
  for tool in memcheck racecheck; do
    for t in paged_decode_gpu_test latent_append_gpu_test latent_decode_gpu_test; do
      timeout "${SANITIZE_TIMEOUT:-240}" compute-sanitizer --tool "$tool" --error-exitcode 9 "$BUILD/tests/$t" \
        --gtest_filter="${SANITIZE_FILTER:-*}" >"$OUT/san_${tool}_$t.log" 2>&1
      echo "compute-sanitizer $tool $t: rc=$? $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/san_${tool}_$t.log" | tail -1)"
    done
  done
fi

if has bench; then
  "$BUILD/bench/paged_decode_bench" --benchmark_filter="$FILTER" --benchmark_out="$OUT/paged.json" \
    --benchmark_out_format=json >"$OUT/paged_bench.log" 2>&1 || { status=1; tail -5 "$OUT/paged_bench.log"; }
  "$BUILD/bench/latent_decode_bench" --benchmark_filter="$FILTER" --benchmark_out="$OUT/latent.json" \
    --benchmark_out_format=json >"$OUT/latent_bench.log" 2>&1 || { status=1; tail -5 "$OUT/latent_bench.log"; }
  "$BUILD/bench/latent_append_bench" --benchmark_out="$OUT/append.json" \
    --benchmark_out_format=json >"$OUT/append_bench.log" 2>&1 || { status=1; tail -5 "$OUT/append_bench.log"; }
  echo "bench: done"
fi

if has sdpa; then
  PYTHONUNBUFFERED=1 python3 bench/sdpa_baseline.py --out "$OUT/sdpa.jsonl" >"$OUT/sdpa.log" 2>&1 ||
    { status=1; tail -5 "$OUT/sdpa.log"; }
fi

if has ncu; then
  # Where the time of the key kernels goes (memory vs tensor pipes vs issue / latency).
  i=0
  for name in ${NCU_FILTERS:-paged_fp16/llama2/b1/ctx65536 latent/llama2/b1/ctx65536/c50/g4/bits16 latent/llama2/b1/ctx65536/c75/g4/bits4}; do
    i=$((i + 1))
    bin=latent_decode_bench; kern="latent_decode_(wgmma_)?kernel"
    [[ $name == paged* ]] && { bin=paged_decode_bench; kern=paged_decode_kernel; }
    ncu --clock-control none -k regex:"$kern" --launch-skip 2 --launch-count 1 \
      --section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
      --section Occupancy --section SchedulerStats --section WarpStateStats --section SourceCounters \
      --section LaunchStats \
      --metrics "regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,regex:sm__pipe_tensor_op.*_cycles_active\.avg\.pct_of_peak_sustained_active,regex:sm__inst_executed_pipe_.*\.avg\.pct_of_peak_sustained_active" \
      "$BUILD/bench/$bin" --benchmark_filter="^$name\$|^$name/" >"$OUT/ncu_$i.log" 2>&1
    echo "== ncu $name"
    grep -E "^    (Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Issue Slots Busy|Executed Ipc A|No Eligible|One or More|Warp Cycles Per Issued|Avg. Active Threads)" "$OUT/ncu_$i.log" | head -20
    grep -E "issue_stalled|pipe_tensor|inst_executed_pipe" "$OUT/ncu_$i.log" | awk '$NF+0 > 0.05' | sort -k3 -gr | head -16
  done
fi

if has table; then
  files=()
  for f in paged.json latent.json append.json sdpa.jsonl; do [ -f "$OUT/$f" ] && files+=("$OUT/$f"); done
  echo "commit: ${COMMIT:-unknown} date: $(date -u +%F)"
  python3 bench/make_table.py --md "$OUT/table.md" "${files[@]}"
fi
exit $status
