#!/usr/bin/env bash
# Chooses the `latentkv` preset's defaults by measurement on a held-out slice of WikiText-2 VALID
# (never on test): the first 80 % of valid.txt's lines calibrate (Gram statistics and Fisher
# scores), the last 20 % are held out, and every candidate allocation is compressed from the
# calibration part and scored by perplexity on the held-out part (ctx 512, CHUNKS windows).
#
# Usage: bench/select_default.sh [BUILD_DIR]   (env: CHUNKS=10, OMP_NUM_THREADS=2)
# Writes bench/results/select_default.md.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${LATENTKV_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${LATENTKV_DATA_DIR:-../shared/data/wikitext-2}
CHUNKS=${CHUNKS:-10}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

lines=$(wc -l <"$DATA/valid.txt")
split=$((lines * 4 / 5))
head -n "$split" "$DATA/valid.txt" >"$WORK/calib.txt"
tail -n +"$((split + 1))" "$DATA/valid.txt" >"$WORK/heldout.txt"

json_field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['$1'])"; }

OUT=bench/results/select_default.md
{
  echo "Held-out selection of the default preset: calibration = first $split of $lines lines of"
  echo "WikiText-2 valid.txt, held-out = the rest; perplexity on the held-out part, ctx 512, $CHUNKS windows."
  echo
  echo "| budget | bits | candidate | KV bytes/token | held-out ppl |"
  echo "|---|---|---|---|---|"
} >"$OUT"
base=$("$BUILD/examples/latentkv-ppl" --model "$MODEL" --text "$WORK/heldout.txt" --ctx 512 \
  --chunks "$CHUNKS" --kv-dtype f16 --json 2>/dev/null | json_field ppl)
echo "| - | 16 | fp16 baseline | 23040 | $base |" >>"$OUT"

run() {  # budget bits name compress-args...
  local budget=$1 bits=$2 name=$3
  shift 3
  "$BUILD/examples/latentkv-compress" --model "$MODEL" --calib "$WORK/calib.txt" \
    --budget "$budget" --bits "$bits" --out "$WORK/c.lkv" "$@" >/dev/null 2>"$WORK/err" ||
    { cat "$WORK/err"; exit 1; }
  local json ppl bytes
  json=$("$BUILD/examples/latentkv-ppl" --model "$MODEL" --text "$WORK/heldout.txt" --ctx 512 \
    --chunks "$CHUNKS" --compressed "$WORK/c.lkv" --json 2>/dev/null | tail -1)
  ppl=$(echo "$json" | json_field ppl)
  bytes=$(echo "$json" | json_field kv_bytes_per_token)
  echo "| $budget | $bits | $name | $bytes | $ppl |" | tee -a "$OUT"
}

for point in "0.5 16" "0.3 16" "0.25 4"; do
  set -- $point
  run "$1" "$2" "uniform" --allocator uniform
  run "$1" "$2" "palu (Fisher-proportional, RMS)" --preset palu
  run "$1" "$2" "greedy_error, weight none" --allocator greedy_error --error-weight none
  run "$1" "$2" "greedy_error, weight fisher" --allocator greedy_error --error-weight fisher
  run "$1" "$2" "greedy_error, weight fisher_per_input" --allocator greedy_error \
    --error-weight fisher_per_input
done
