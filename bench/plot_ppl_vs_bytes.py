#!/usr/bin/env python3
"""Markdown table and PNG plot of bench/ppl_vs_bytes.sh's results (dev-only: needs matplotlib,
e.g. /opt/oracle/bin/python; the library does not depend on Python).

Usage: plot_ppl_vs_bytes.py RESULTS_DIR CHUNKS
Writes RESULTS_DIR/table.md and bench/results/ppl_vs_bytes.png (next to RESULTS_DIR)."""
import glob
import json
import os
import sys


def load(results):
    rows = []
    for path in sorted(glob.glob(os.path.join(results, "*.json"))):
        if path.endswith(".compress.json"):
            continue
        name = os.path.basename(path)[: -len(".json")]
        with open(path) as f:
            ppl = json.load(f)
        row = {"name": name, "ppl": ppl["ppl"], "stderr": ppl["ppl_stderr"],
               "bytes": ppl["kv_bytes_per_token"], "base": ppl["baseline_kv_bytes_per_token"],
               "chunks": ppl["chunks"], "seconds": ppl["seconds"]}
        if name.startswith("fp16"):
            row.update(method="fp16 baseline", rank="-", bits=16)
        elif name.startswith("kivi"):
            row.update(method="KIVI (quantization only)", rank="-", bits=int(name.split("-b")[1]))
        else:
            preset, budget, bits = name.split("-")
            # r<fraction>: --rank-fraction; B<fraction>: --budget (bytes), ranks chosen to fit
            rank = budget[1:] if budget[0] == "r" else f"budget {float(budget[1:]) * 100:.0f} % bytes"
            row.update(method=preset, rank=rank, bits=int(bits[1:]))
            cpath = os.path.join(results, name + ".compress.json")
            if os.path.exists(cpath):
                with open(cpath) as f:
                    c = json.load(f)
                row["decompose_s"] = c["decompose_seconds"] + c["sequential_seconds"]
        rows.append(row)
    order = {"fp16 baseline": 0, "KIVI (quantization only)": 1, "palu": 2, "recalkv": 3,
             "latentkv": 4}
    rows.sort(key=lambda r: (order.get(r["method"], 9), -r["bits"], r["rank"]))
    return rows


def table(rows, chunks):
    out = [f"WikiText-2 test perplexity, ctx 512, {chunks} windows ({chunks * 255} tokens scored); "
           "KV bytes per cached token over all 30 layers, K and V, scale/zero included "
           "(fp16 residual window of 128 tokens not counted).", "",
           "| method | rank kept | latent bits | KV bytes/token | % of fp16 | ppl | ± |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        rank = r["rank"]
        if rank[0].isdigit():
            rank = f"{float(rank) * 100:.0f} %"
        out.append(f'| {r["method"]} | {rank} | {r["bits"]} | {r["bytes"]:.0f} | '
                   f'{100 * r["bytes"] / r["base"]:.1f} | {r["ppl"]:.3f} | {r["stderr"]:.3f} |')
    return "\n".join(out) + "\n"


def plot(rows, chunks, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, ax = plt.subplots(figsize=(8, 5))
    styles = {"palu": ("tab:blue", "o"), "recalkv": ("tab:orange", "s"),
              "latentkv": ("tab:green", "^"), "KIVI (quantization only)": ("tab:red", "D")}
    for method, (color, marker) in styles.items():
        pts = sorted((r["bytes"], r["ppl"], r["bits"]) for r in rows if r["method"] == method)
        if not pts:
            continue
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], color=color, marker=marker,
                   label=method)
        for x, y, b in pts:
            ax.annotate(f"{b}b", (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7,
                        color=color)
    for r in rows:
        if r["method"] == "fp16 baseline":
            ax.axhline(r["ppl"], color="gray", ls="--", lw=1)
            ax.scatter([r["bytes"]], [r["ppl"]], color="black", marker="*", s=120,
                       label=f'fp16 baseline ({r["ppl"]:.2f})')
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_yticks([18, 20, 22, 25, 30, 35, 40, 50])
    ax.set_xticks([1000, 2000, 4000, 8000, 16000, 23040])
    ax.set_xlabel("KV cache bytes per token (all layers, K+V, metadata included)")
    ax.set_ylabel(f"WikiText-2 test perplexity (ctx 512, {chunks} windows)")
    ax.set_title("SmolLM2-135M-Instruct Q4_1: perplexity vs KV bytes")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    results, chunks = sys.argv[1], int(sys.argv[2])
    rows = load(results)
    md = table(rows, chunks)
    with open(os.path.join(results, "table.md"), "w") as f:
        f.write(md)
    print(md)
    plot(rows, chunks, os.path.join(os.path.dirname(results.rstrip("/")), "ppl_vs_bytes.png"))


if __name__ == "__main__":
    main()
