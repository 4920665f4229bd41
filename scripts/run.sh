#!/usr/bin/env bash
# The main job on the default model (SmolLM2-135M-Instruct): setup, build, then the compression
# demo — baseline perplexity; compression with the default `latentkv` preset at 50 % of the fp16
# KV bytes (low rank only, fp16 latents) and at 20 % (low rank + 3-bit latents); perplexity with
# the latent cache of each; KV bytes per token before/after; a short generation that runs with the
# compressed cache. About 3 minutes on 2 idle CPU cores the first time (calibration statistics and
# Fisher scores are then cached under ~/.cache/latentkv, so later runs take about 2).
#
# Environment: LATENTKV_BUILD_DIR (default build), CHUNKS (perplexity windows, default 40),
# LATENTKV_RUN_DIR (outputs, default $LATENTKV_BUILD_DIR/run), OMP_NUM_THREADS.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${LATENTKV_BUILD_DIR:-build}
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
DATA=${LATENTKV_DATA_DIR:-../shared/data/wikitext-2}
CHUNKS=${CHUNKS:-40}
OUT=${LATENTKV_RUN_DIR:-$BUILD/run}

bash scripts/setup.sh
bash scripts/build.sh latentkv-ppl latentkv-compress latentkv-generate
mkdir -p "$OUT"
BIN=$BUILD/examples
field() { python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['$1'])"; }
stage() { echo; echo "=== $* ==="; }
ppl() {  # output-name ppl-args...
  local name=$1
  shift
  "$BIN/latentkv-ppl" --model "$MODEL" --text "$DATA/test.txt" --ctx 512 --chunks "$CHUNKS" \
    --json "$@" | tee "$OUT/$name.txt"
}

stage "1/4 baseline perplexity: WikiText-2 test, ctx 512, $CHUNKS windows, fp16 KV cache"
ppl baseline --kv-dtype f16

stage "2/4 compress with the latentkv preset (calibration on valid.txt): 50 % fp16 latents, 20 % 3-bit"
"$BIN/latentkv-compress" --model "$MODEL" --calib "$DATA/valid.txt" --budget 0.5 \
  --out "$OUT/smollm2-50.lkv"
"$BIN/latentkv-compress" --model "$MODEL" --calib "$DATA/valid.txt" --budget 0.2 --bits 3 \
  --out "$OUT/smollm2-20-3bit.lkv"

stage "3/4 perplexity with the latent cache (only latents are cached)"
ppl compressed-50 --compressed "$OUT/smollm2-50.lkv"
ppl compressed-20 --compressed "$OUT/smollm2-20-3bit.lkv"

stage "4/4 generation with the compressed cache (20 %, 3-bit latents)"
"$BIN/latentkv-generate" --model "$MODEL" --compressed "$OUT/smollm2-20-3bit.lkv" --chat \
  --prompt "What is the capital of France?" -n 48

echo
echo "=== summary (WikiText-2 test, ctx 512, $CHUNKS windows) ==="
printf "%-40s %10s %16s %8s\n" "KV cache" "ppl" "KV bytes/token" "kept"
row() {  # label output-name
  local p b base
  p=$(field ppl <"$OUT/$2.txt")
  b=$(field kv_bytes_per_token <"$OUT/$2.txt")
  base=$(field baseline_kv_bytes_per_token <"$OUT/$2.txt")
  python3 -c "print('%-40s %10.4f %16.0f %7.1f%%' % ('$1', $p, $b, 100 * $b / $base))"
}
row "fp16 (baseline)" baseline
row "latentkv, budget 50 %, fp16 latents" compressed-50
row "latentkv, budget 20 %, 3-bit latents" compressed-20
