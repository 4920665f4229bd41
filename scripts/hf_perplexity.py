#!/usr/bin/env python3
"""Perplexity of a GGUF model under HF transformers, with the protocol of latentkv-ppl.

Developer check, not part of CI; the independent reference for latentkv-ppl. Needs the oracle
venv (torch, transformers, gguf, accelerate):
    /opt/oracle/bin/python scripts/hf_perplexity.py \
        --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --text ../shared/data/wikitext-2/test.txt --ctx 512 --chunks 40

Protocol (llama.cpp's perplexity tool, as in latentkv/eval/perplexity.h): drop one trailing
newline, tokenize the whole text (BOS first when --bos is on; auto = the vocabulary's
add_bos_token), cut into non-overlapping windows of ctx tokens (first token replaced by BOS when
on), score the logits at positions ctx/2 .. ctx-2 against the next tokens; log-softmax in
float64; ppl = exp(mean NLL), stderr = ppl * sqrt((E[nll^2] - E[nll]^2) / (count - 1)).
"""
import argparse
import json
import math
import os
import time

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=0, help="first N windows (default: all)")
    ap.add_argument("--bos", choices=["auto", "on", "off"], default="auto")
    ap.add_argument("--batch", type=int, default=4, help="windows per forward call")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--ids-out", help="write the token ids of the text here (one line)")
    ap.add_argument("--json-out", help="write the result as JSON here")
    args = ap.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    mdir, mfile = os.path.split(os.path.abspath(args.model))
    tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mfile)
    model = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mfile, dtype=torch.float32)
    model.eval()

    with open(args.text, encoding="utf-8") as f:
        text = f.read()
    if text.endswith("\n"):
        text = text[:-1]
    add_bos = {"on": True, "off": False}.get(args.bos, bool(getattr(tok, "add_bos_token", False)))
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if add_bos:
        ids = [tok.bos_token_id] + ids
    if args.ids_out:
        with open(args.ids_out, "w") as f:
            f.write(" ".join(map(str, ids)) + "\n")

    ctx, first = args.ctx, args.ctx // 2
    n_windows = len(ids) // ctx
    if args.chunks > 0:
        n_windows = min(n_windows, args.chunks)
    nll_sum = nll_sq = 0.0
    count = 0
    t0 = time.time()
    for w0 in range(0, n_windows, args.batch):
        batch = []
        for w in range(w0, min(w0 + args.batch, n_windows)):
            win = list(ids[w * ctx:(w + 1) * ctx])
            if add_bos:
                win[0] = tok.bos_token_id
            batch.append(win)
        x = torch.tensor(batch)
        with torch.no_grad():
            logits = model(x[:, :-1]).logits[:, first:, :].double()
        logp = torch.log_softmax(logits, dim=-1)
        targets = x[:, first + 1:]
        nll = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1).numpy()
        nll_sum += nll.sum()
        nll_sq += (nll * nll).sum()
        count += nll.size
        done = min(w0 + args.batch, n_windows)
        print(f"[{done}/{n_windows}] running ppl {math.exp(nll_sum / count):.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    secs = time.time() - t0
    mean = nll_sum / count
    ppl = math.exp(mean)
    stderr = ppl * math.sqrt(max(nll_sq / count - mean * mean, 0.0) / (count - 1))
    result = {
        "ppl": ppl, "ppl_stderr": stderr, "mean_nll": mean, "ctx": ctx, "chunks": n_windows,
        "tokens_scored": count, "text_tokens": len(ids), "bos": add_bos, "seconds": secs,
        "tokens_per_second": n_windows * (ctx - 1) / secs, "threads": torch.get_num_threads(),
        "implementation": f"transformers {__import__('transformers').__version__}, torch {torch.__version__}",
    }
    print(f"perplexity: {ppl:.4f} +/- {stderr:.4f} over {count} tokens ({n_windows} windows of {ctx})")
    print(json.dumps(result))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
