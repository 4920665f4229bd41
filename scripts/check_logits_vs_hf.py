#!/usr/bin/env python3
"""Compares the logits of latentkv's CPU reference with HF transformers on the same GGUF and ids.

Developer check, not part of CI. Needs the oracle venv (torch, transformers, gguf, accelerate):
    /opt/oracle/bin/python scripts/check_logits_vs_hf.py \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --text ../shared/data/wikitext-2/test.txt --n 512 \
        --logits-bin build/examples/latentkv-logits

Both sides get the same token ids: the first --n tokens of the text as tokenized by HF's
tokenizer for the GGUF (so a tokenizer difference cannot hide or cause a logit difference).
transformers dequantizes the GGUF to float32 and undoes llama.cpp's Q/K row permutation itself,
so it is an independent implementation of loading, dequantization and the forward pass.

Reported (per position i, logit vectors o_i = ours, h_i = HF, over the whole vocabulary):
  max_rel_err  = max_i ||o_i - h_i||_inf / ||h_i||_inf
  max_abs_err  = max_i ||o_i - h_i||_inf
  argmax_agree = fraction of positions whose arg-max tokens agree
  max_nll_diff = max_i |NLL_ours(t_{i+1}) - NLL_hf(t_{i+1})| (log-softmax in float64)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def log_softmax64(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--n", type=int, default=512, help="number of positions (default 512)")
    ap.add_argument("--logits-bin", required=True, help="path of the latentkv-logits binary")
    ap.add_argument("--chunk", type=int, default=0,
                    help="tokens per forward call on our side (1 = decode token by token)")
    ap.add_argument("--kv-dtype", default="f32")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json-out", help="also write the summary as JSON here")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    mdir, mfile = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mfile)
    with open(args.text, encoding="utf-8") as f:
        text = f.read(max(64 * args.n, 4096))  # plenty of characters for n tokens
    ids = tok(text, add_special_tokens=False)["input_ids"][: args.n]
    if len(ids) < args.n:
        sys.exit(f"error: text gives only {len(ids)} tokens, fewer than --n {args.n}")

    with tempfile.TemporaryDirectory() as tmp:
        ids_path = os.path.join(tmp, "ids.txt")
        out_path = os.path.join(tmp, "ours.bin")
        with open(ids_path, "w") as f:
            f.write(" ".join(map(str, ids)) + "\n")
        cmd = [args.logits_bin, "--model", args.model, "--tokens", ids_path, "--out", out_path,
               "--kv-dtype", args.kv_dtype, "--chunk", str(args.chunk), "--threads", str(args.threads)]
        t = time.time()
        shape = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.split()
        t_ours = time.time() - t
        n, vocab = int(shape[0]), int(shape[1])
        ours = np.fromfile(out_path, dtype=np.float32).reshape(n, vocab)

    model = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mfile, dtype=torch.float32)
    model.eval()
    t = time.time()
    with torch.no_grad():
        hf = model(torch.tensor([ids])).logits[0].float().numpy()
    t_hf = time.time() - t
    assert hf.shape == ours.shape, (hf.shape, ours.shape)

    diff = np.abs(ours.astype(np.float64) - hf.astype(np.float64)).max(axis=1)
    scale = np.abs(hf.astype(np.float64)).max(axis=1)
    rel = diff / scale
    targets = np.array(ids[1:])
    nll_o = -log_softmax64(ours[:-1])[np.arange(n - 1), targets]
    nll_h = -log_softmax64(hf[:-1])[np.arange(n - 1), targets]
    summary = {
        "positions": n,
        "vocab": vocab,
        "chunk": args.chunk,
        "kv_dtype": args.kv_dtype,
        "max_rel_err": float(rel.max()),
        "mean_rel_err": float(rel.mean()),
        "max_abs_err": float(diff.max()),
        "max_abs_logit": float(scale.max()),
        "argmax_agree": float((ours.argmax(1) == hf.argmax(1)).mean()),
        "max_nll_diff": float(np.abs(nll_o - nll_h).max()),
        "mean_nll_ours": float(nll_o.mean()),
        "mean_nll_hf": float(nll_h.mean()),
        "seconds_ours_incl_load": t_ours,
        "seconds_hf_forward": t_hf,
        "transformers": __import__("transformers").__version__,
        "torch": torch.__version__,
    }
    for k, v in summary.items():
        print(f"{k:24s} {v}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
