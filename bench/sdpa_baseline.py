#!/usr/bin/env python3
"""Outside baseline: PyTorch SDPA decode attention (one query token) on the same shapes as
bench/paged_decode_bench.cu, timed with the same protocol (CUDA events around the call only, a
256 MiB scratch write between iterations for a cold L2, 3 warm-ups, median of 30).

Needs a CUDA build of PyTorch (checking/benchmark tool only, not a dependency of latentkv).
Writes one JSON object per line: {"name", "backend", "model", "batch", "ctx", "median_us", ...}.
"""
import argparse
import re
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

MODELS = {"llama2": (32, 32), "llama3": (32, 8)}
BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}


def points():
    for model, (qo, kv) in MODELS.items():
        for batch in (1, 8, 64):
            for ctx in (4096, 16384, 65536, 131072):
                if ctx == 131072 and batch != 1:
                    continue
                if 4.0 * kv * 128 * batch * ctx / 1e9 > 24.0:
                    continue
                yield model, qo, kv, batch, ctx


def time_call(fn, scratch, reps=30, warmup=3):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    samples = []
    for i in range(reps):
        scratch.fill_(i & 0xFF)
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        samples.append(a.elapsed_time(b) * 1e3)
    return statistics.median(samples), min(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--filter", default="", help="regex on model/bBATCH/ctxCTX; only those points")
    args = ap.parse_args()
    keep = re.compile(args.filter)
    scratch = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    gpu = torch.cuda.get_device_name()
    peak = 4.8e12 if "H200" in gpu else 3.35e12  # datasheet HBM bandwidth
    info = {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(), "gpu": gpu,
            "peak_bw": peak}
    with open(args.out, "w") as f:
        f.write(json.dumps({"info": info}) + "\n")
        for model, qo, kv, batch, ctx in points():
            if not keep.search(f"{model}/b{batch}/ctx{ctx}"):
                continue
            gen = torch.Generator(device="cuda").manual_seed(0)
            q = torch.rand(batch, qo, 1, 128, device="cuda", dtype=torch.float16, generator=gen) * 2 - 1
            k = torch.rand(batch, kv, ctx, 128, device="cuda", dtype=torch.float16, generator=gen) * 2 - 1
            v = torch.rand(batch, kv, ctx, 128, device="cuda", dtype=torch.float16, generator=gen) * 2 - 1
            kv_bytes = 2 * k.numel() * 2
            for backend, be in BACKENDS.items():
                rec = {"name": f"sdpa_{backend}/{model}/b{batch}/ctx{ctx}", "backend": backend,
                       "model": model, "batch": batch, "ctx": ctx}
                try:
                    with sdpa_kernel([be]):
                        fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=(qo != kv))
                        med, mn = time_call(fn, scratch)
                    rec.update(median_us=med, min_us=mn, GBps=kv_bytes / med * 1e-3,
                               pct_peak_bw=100 * kv_bytes / (med * 1e-6) / peak)
                except Exception as e:  # backend refuses the shape: report it, keep going
                    rec["error"] = str(e).splitlines()[0][:160]
                f.write(json.dumps(rec) + "\n")
                f.flush()
            del q, k, v
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
