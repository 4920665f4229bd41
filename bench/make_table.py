#!/usr/bin/env python3
"""Merges the Google Benchmark JSON files of the CUDA benches and the PyTorch SDPA baseline
(bench/sdpa_baseline.py) into one table: targets first, then every measured point.
Usage: make_table.py --md OUT.md BENCH.json... SDPA.jsonl"""
import argparse
import json
import re


def load(paths):
    rows, info = {}, {}
    for path in paths:
        with open(path) as f:
            text = f.read()
        if path.endswith(".jsonl"):
            for line in text.splitlines():
                rec = json.loads(line)
                if "info" in rec:
                    info.update(rec["info"])
                else:
                    rows[rec["name"]] = rec
        else:
            data = json.loads(text)
            info.setdefault("context", data.get("context", {}))
            for b in data.get("benchmarks", []):
                name = re.sub(r"/iterations:.*$", "", b["name"])
                if "error_message" in b:
                    rows[name] = {"error": b["error_message"]}
                else:
                    rows[name] = b
    return rows, info


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--md", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    rows, info = load(args.files)
    out = []
    copy = rows.get("hbm_copy/2GiB", {})
    copy_bw = copy.get("GBps")
    out.append(f"GPU: {info.get('gpu', '?')}, torch {info.get('torch', '?')}, cuDNN {info.get('cudnn', '?')}; "
               f"device-to-device copy: {fmt(copy_bw, '.0f')} GB/s (read+write) = "
               f"{fmt(copy and copy.get('pct_peak_bw'), '.1f')} % of the datasheet "
               f"{info.get('peak_bw', 3.35e12) / 1e12:.2f} TB/s")
    out.append("")

    def us(name):
        r = rows.get(name)
        return None if r is None or "error" in r else r.get("median_us")

    # Targets: Llama-2-7B shape, group size 4.
    out.append("| target point | ours (us) | cuDNN (us) | result | target | met |")
    out.append("|---|---|---|---|---|---|")
    for b, ctx in ((1, 65536), (8, 16384)):
        cud = us(f"sdpa_cudnn/llama2/b{b}/ctx{ctx}")
        base = rows.get(f"paged_fp16/llama2/b{b}/ctx{ctx}", {})
        pct = base.get("pct_peak_bw")
        out.append(f"| fp16 baseline, b{b} {ctx // 1024}K | {fmt(base.get('median_us'), '.1f')} | {fmt(cud, '.1f')} | "
                   f"{fmt(pct, '.1f')} % of peak BW | >= 88 % | {'yes' if pct and pct >= 88 else 'no'} |")
        for label, comp, bits, target in (("50 %, fp16 latents", 50, 16, 1.8), ("50 %, 4-bit", 50, 4, 2.1),
                                          ("75 %, 4-bit", 75, 4, 4.0)):
            t = us(f"latent/llama2/b{b}/ctx{ctx}/c{comp}/g4/bits{bits}")
            sp = cud / t if cud and t else None
            out.append(f"| {label}, g4, b{b} {ctx // 1024}K | {fmt(t, '.1f')} | {fmt(cud, '.1f')} | "
                       f"{fmt(sp, '.2f')}x | >= {target}x | {'yes' if sp and sp >= target else 'no'} |")
    out.append("")
    out.append("| model | batch | ctx | setting | us | GB/s | % peak BW | TFLOP/s | KV B/token | x cuDNN | x flash | x ours fp16 |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    points = sorted({tuple(n.split("/")[1:4]) for n in rows if n.startswith("paged_fp16/")},
                    key=lambda p: (p[0], int(p[1][1:]), int(p[2][3:])))
    for model, b, ctx in points:
        key = f"{model}/{b}/{ctx}"
        cud, fla, ours = us(f"sdpa_cudnn/{key}"), us(f"sdpa_flash/{key}"), us(f"paged_fp16/{key}")
        settings = [("sdpa cuDNN fp16", f"sdpa_cudnn/{key}"), ("sdpa flash fp16", f"sdpa_flash/{key}"),
                    ("ours fp16 paged", f"paged_fp16/{key}")]
        for comp in (50, 75):
            for g in (1, 2, 4):
                for bits in (16, 4, 2):
                    settings.append((f"latent c{comp} g{g} {'fp16' if bits == 16 else f'{bits}-bit'}",
                                     f"latent/{key}/c{comp}/g{g}/bits{bits}"))
        for label, name in settings:
            r = rows.get(name)
            if r is None:
                continue
            if "error" in r:
                out.append(f"| {model} | {b[1:]} | {ctx[3:]} | {label} | error: {r['error']} | | | | | | | |")
                continue
            t = r.get("median_us")
            out.append(
                f"| {model} | {b[1:]} | {ctx[3:]} | {label} | {fmt(t, '.1f')} | {fmt(r.get('GBps'), '.0f')} | "
                f"{fmt(r.get('pct_peak_bw'), '.1f')} | {fmt(r.get('TFLOPs'), '.1f')} | "
                f"{fmt(r.get('kv_bytes_per_token'), '.0f')} | {fmt(cud / t if cud and t else None, '.2f')} | "
                f"{fmt(fla / t if fla and t else None, '.2f')} | {fmt(ours / t if ours and t else None, '.2f')} |")
    extra = [n for n in rows
             if n.startswith(("paged_fp16_layout", "value_up_projection", "latent_append"))]
    if extra:
        out.append("")
        out.append("| op | us | GB/s | % peak BW | TFLOP/s |")
        out.append("|---|---|---|---|---|")
        for n in extra:
            r = rows[n]
            out.append(f"| {n} | {fmt(r.get('median_us'), '.1f')} | {fmt(r.get('GBps'), '.0f')} | "
                       f"{fmt(r.get('pct_peak_bw'), '.1f')} | {fmt(r.get('TFLOPs'), '.2f')} |")
    text = "\n".join(out)
    print(text)
    with open(args.md, "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
