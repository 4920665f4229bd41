#!/usr/bin/env bash
# WikiText-2 test perplexity (ctx 512, CHUNKS windows) versus KV-cache bytes per token on the
# default model, for: the fp16 baseline; the palu and recalkv presets at 70/50/30 % of the rank
# with fp16 latents and with 4/3/2-bit latents (Palu's convention, --rank-fraction); our default
# preset (latentkv) at the same rank fractions with fp16 and 4-bit latents and with byte budgets of
# 25 % (4-bit) and 20 % (3-bit) of the fp16 bytes (--budget); the KIVI-style
# quantization-only cache at 4 and 2 bits. Every compression reuses the cached calibration
# statistics and Fisher scores (~/.cache/latentkv), so each point costs its decomposition and one
# perplexity run. Points already measured (a JSON file under OUT) are skipped: the script can be
# stopped and resumed. Then bench/plot_ppl_vs_bytes.py writes the markdown table and the PNG.
#
# Usage: bench/ppl_vs_bytes.sh [BUILD_DIR]
# Environment: CHUNKS (default 40), OMP_NUM_THREADS (default 2), OUT (default
# bench/results/ppl_vs_bytes), PYTHON (with matplotlib, for the plot; default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${LATENTKV_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${LATENTKV_DATA_DIR:-../shared/data/wikitext-2}
CHUNKS=${CHUNKS:-40}
OUT=${OUT:-bench/results/ppl_vs_bytes}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
mkdir -p "$OUT"
BIN=$BUILD/examples

ppl() {  # name ppl-args...: one JSON line per point, with the compress JSON when there is one
  local name=$1
  shift
  [ -s "$OUT/$name.json" ] && return 0
  local t=$SECONDS
  "$BIN/latentkv-ppl" --model "$MODEL" --text "$DATA/test.txt" --ctx 512 --chunks "$CHUNKS" \
    --json "$@" 2>/dev/null | tail -n 1 >"$OUT/$name.json.tmp"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
  echo "$name: ppl $(python3 -c "import json; print(json.load(open('$OUT/$name.json'))['ppl'])") ($((SECONDS - t)) s)"
}

point() {  # preset rank-fraction bits [budget-flag]: --rank-fraction (r) or --budget (B, bytes)
  local flag=${4:---rank-fraction}
  local name="$1-$([ "$flag" = --budget ] && echo B || echo r)$2-b$3"
  [ -s "$OUT/$name.json" ] && return 0
  local t=$SECONDS
  "$BIN/latentkv-compress" --model "$MODEL" --calib "$DATA/valid.txt" --preset "$1" \
    "$flag" "$2" --bits "$3" --out "$OUT/$name.lkv" --json 2>/dev/null |
    tail -n 1 >"$OUT/$name.compress.json"
  echo "$name: compressed ($((SECONDS - t)) s)"
  ppl "$name" --compressed "$OUT/$name.lkv"
  rm -f "$OUT/$name.lkv"
}

# Most informative points first, so that a partial run is already useful.
ppl fp16 --kv-dtype f16
ppl kivi-b4 --kv-cache kivi --kivi-bits 4
ppl kivi-b2 --kv-cache kivi --kivi-bits 2
for bits in 16 4; do
  for preset in latentkv palu recalkv; do point "$preset" 0.5 "$bits"; done
done
for r in 0.7 0.3; do
  for bits in 16 4; do
    for preset in latentkv palu recalkv; do point "$preset" "$r" "$bits"; done
  done
done
for bits in 3 2; do
  for r in 0.7 0.5 0.3; do
    for preset in palu recalkv; do point "$preset" "$r" "$bits"; done
  done
done
# Our default with a bytes budget, where the allocator trades rank against bits itself.
point latentkv 0.25 4 --budget
point latentkv 0.2 3 --budget
PYTHON=${PYTHON:-$( [ -x /opt/oracle/bin/python ] && echo /opt/oracle/bin/python || echo python3)}
"$PYTHON" bench/plot_ppl_vs_bytes.py "$OUT" "$CHUNKS"
