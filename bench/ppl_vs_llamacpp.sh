#!/usr/bin/env bash
# Perplexity and prefill speed of latentkv-ppl against llama.cpp's llama-perplexity, same model,
# text, ctx, windows and threads, one after the other in the same run.
#
# llama.cpp is an outside baseline, never a dependency: build it out of tree, e.g. from the
# llama-cpp-python source distribution:
#   pip download --no-binary :all: --no-deps llama-cpp-python && tar xzf llama_cpp_python-*.tar.gz
#   cmake -S llama_cpp_python-*/vendor/llama.cpp -B /tmp/llamacpp-build -DCMAKE_BUILD_TYPE=Release \
#         -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
#   cmake --build /tmp/llamacpp-build -j --target llama-perplexity
#
# usage: LLAMA_PERPLEXITY=/tmp/llamacpp-build/bin/llama-perplexity \
#        bench/ppl_vs_llamacpp.sh [CTX] [CHUNKS] [THREADS]     (defaults 512 40 2)
# Environment: LATENTKV_BUILD_DIR (build), LATENTKV_MODEL, LATENTKV_TEXT. Raw logs are written
# to $OUT_DIR (default: a temporary directory) and their paths printed.
set -euo pipefail
cd "$(dirname "$0")/.."

ctx=${1:-512}
chunks=${2:-40}
threads=${3:-2}
build=${LATENTKV_BUILD_DIR:-build}
model=${LATENTKV_MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
text=${LATENTKV_TEXT:-../shared/data/wikitext-2/test.txt}
llama=${LLAMA_PERPLEXITY:?set LLAMA_PERPLEXITY to the llama-perplexity binary}
out=${OUT_DIR:-$(mktemp -d)}
mkdir -p "$out"

"$build/examples/latentkv-ppl" --model "$model" --text "$text" --ctx "$ctx" --chunks "$chunks" \
  --threads "$threads" --json >"$out/latentkv.log" 2>"$out/latentkv.err"
"$llama" -m "$model" -f "$text" -c "$ctx" -b "$ctx" --chunks "$chunks" -t "$threads" \
  >"$out/llamacpp.log" 2>&1

ours_json=$(tail -n 1 "$out/latentkv.log")
python3 - "$ours_json" "$out/llamacpp.log" "$ctx" "$chunks" <<'PY'
import json, re, sys
ours = json.loads(sys.argv[1])
log = open(sys.argv[2]).read()
# Log lines carry a "minutes.seconds.milliseconds.microseconds" timestamp; the evaluation runs
# from the "calculating perplexity" line to the "Final estimate" line.
stamp = r"^(\d+)\.(\d+)\.(\d+)\.(\d+) I "
m = re.search(stamp + r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log, re.M)
c = re.search(stamp + r"perplexity: calculating perplexity over (\d+) chunks, n_ctx=(\d+)", log, re.M)
if not m or not c:
    sys.exit("could not parse llama-perplexity output: see " + sys.argv[2])
secs = lambda g: int(g[0]) * 60 + int(g[1]) + int(g[2]) / 1e3 + int(g[3]) / 1e6
lc_ppl, lc_err = float(m.group(5)), float(m.group(6))
lc_secs = secs(m.groups()[:4]) - secs(c.groups()[:4])
lc_tokens = int(c.group(5)) * int(c.group(6))
lc_tps = lc_tokens / lc_secs
print(f"ctx {sys.argv[3]}, {ours['chunks']} windows, {ours['threads']} threads")
print(f"latentkv-ppl      ppl {ours['ppl']:.4f} +/- {ours['ppl_stderr']:.4f}   "
      f"{ours['tokens_per_second']:.1f} tokens/s ({ours['tokens_processed']} tokens, {ours['seconds']:.1f} s)")
print(f"llama-perplexity  ppl {lc_ppl:.4f} +/- {lc_err:.4f}   "
      f"{lc_tps:.1f} tokens/s ({lc_tokens} tokens, {lc_secs:.1f} s)")
print(f"speed ratio latentkv / llama.cpp: {ours['tokens_per_second'] / lc_tps:.3f}")
PY
echo "raw logs: $out/latentkv.log $out/latentkv.err $out/llamacpp.log"
