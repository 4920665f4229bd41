#!/usr/bin/env python3
"""Markdown table from decode_gemv_bench JSON: per Llama-2-7B projection shape and row count, the
time of cuBLAS and of our matrix-vector kernel in the same run, our speedup, and the weight bytes
streamed per second as % of the device-to-device copy bandwidth."""
import json
import sys


def main(path):
    runs = json.load(open(path))["benchmarks"]
    rows = {}
    for r in runs:
        name = r["name"].split("/iterations")[0]
        _, shape, m, impl = name.split("/")
        if r.get("error_occurred"):
            print(f"- {name}: {r.get('error_message', '')}")
            continue
        rows.setdefault((shape, int(m[1:])), {})[impl] = r
    print("| product | rows | cuBLAS us | ours us | speedup | ours GB/s | % of copy |")
    print("|---|---|---|---|---|---|---|")
    for (shape, m), d in rows.items():
        if "cublas" not in d or "ours" not in d:
            continue
        c, o = d["cublas"], d["ours"]
        print(f"| {shape} | {m} | {c['median_us']:.1f} | {o['median_us']:.1f} | "
              f"{c['median_us'] / o['median_us']:.2f}x | {o['GBps']:.0f} | "
              f"{o['pct_copy_bw']:.0f} % |")


if __name__ == "__main__":
    main(sys.argv[1])
