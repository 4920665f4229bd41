#!/usr/bin/env python3
"""Markdown tables from engine_decode_bench JSON: decode step time per (model, batch, context) for
the fp16 cache and each latent cache, speedup over the fp16 engine of the same run, how close the
fp16 engine is to its memory bound, and the capacity points."""
import json
import sys

CACHES = ["fp16", "c50_f16", "c50_b4", "c75_f16", "c75_b4"]


def main(path):
    runs = json.load(open(path))["benchmarks"]
    points, caps, errors = {}, [], []
    for r in runs:
        name = r["name"].split("/iterations")[0].split("/manual_time")[0]
        parts = name.split("/")
        if r.get("error_occurred"):
            errors.append(f"{name}: {r.get('error_message', '')}")
            continue
        if parts[0] == "engine":
            _, model, cache, b, ctx = parts
            points[(model, int(b[1:]), int(ctx[3:]), cache)] = r
        elif parts[0] == "capacity":
            caps.append((parts[1], parts[2], parts[3], r))
    copy = next((r["copy_GBps"] for r in runs if "copy_GBps" in r), 0)
    print(f"Device-to-device copy bandwidth in the same run: {copy:.0f} GB/s (read + write).\n")
    print("| model | batch | ctx | fp16 step (ms) | fp16 bound_x | " +
          " | ".join(f"{c} ms (x fp16)" for c in CACHES[1:]) + " |")
    print("|---|---|---|---|---|" + "---|" * (len(CACHES) - 1))
    for key in sorted({k[:3] for k in points}):
        base = points.get(key + ("fp16",))
        cells = []
        for c in CACHES[1:]:
            p = points.get(key + (c,))
            if not p:
                cells.append("-")
            elif base:
                cells.append(f"{p['step_us'] / 1e3:.2f} ({base['step_us'] / p['step_us']:.2f}x)")
            else:
                cells.append(f"{p['step_us'] / 1e3:.2f}")
        b = f"{base['step_us'] / 1e3:.2f} | {base['bound_x']:.2f}" if base else "- | -"
        print(f"| {key[0]} | {key[1]} | {key[2]} | {b} | " + " | ".join(cells) + " |")
    if caps:
        print("\n| model | cache | point | value | step (ms) | tok/s | engine GiB |")
        print("|---|---|---|---|---|---|---|")
        for model, cache, what, r in caps:
            v = r.get("max_ctx", r.get("max_batch", 0))
            print(f"| {model} | {cache} | {what} | {v:.0f} | {r['step_us'] / 1e3:.2f} | "
                  f"{r['tok_per_s']:.0f} | {r['engine_GiB']:.1f} |")
    if errors:
        print("\nNot run:")
        for e in errors:
            print(f"- {e}")


if __name__ == "__main__":
    main(sys.argv[1])
