#!/usr/bin/env python3
"""Developer check: latentkv's GGUF dequantization against the `gguf` Python package.

Needs the oracle environment (numpy + gguf), e.g.  /opt/oracle/bin/python, and a built
latentkv-gguf-info. Not part of CI. Two checks:

1. Real model: dequantizes tensors of a GGUF file (default: the default model; a selection of
   each type, or every tensor with --all) with `latentkv-gguf-info --dequant` and with
   gguf.quants.dequantize, and compares them.
2. Synthetic: writes a GGUF with random blocks of every format latentkv supports (f32, f16, bf16,
   q4_0, q4_1, q5_0, q5_1, q8_0, q2_K, q3_K, q4_K, q5_K, q6_K, q8_K; the scale fields are set to
   finite values, everything else is random bytes) and compares the same way.

Values must agree bit for bit, except that fused multiply-add contraction may change the last
bit of formats with an offset term (d*q + m); the script reports the number of differing
elements and the largest difference in units in the last place (ulp). Exit status 1 on any
difference above 1 ulp.

  /opt/oracle/bin/python scripts/check_gguf_dequant.py [--bin build/examples/latentkv-gguf-info]
      [--model models/SmolLM2-135M-Instruct.Q4_1.gguf] [--all]
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Byte offsets of the fp16 scale fields inside one block (so random blocks stay finite).
HALF_FIELDS = {
    Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
    Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208],
}


def ours(binary, model, name, tmp):
    out = os.path.join(tmp, "t.f32")
    subprocess.run([binary, "--model", model, "--dequant", name, "--out", out], check=True,
                   stdout=subprocess.DEVNULL)
    return np.fromfile(out, dtype=np.float32)


def reference(tensor):
    return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type),
                      dtype=np.float32).reshape(-1)


def ulp_diff(a, b):
    """Largest distance in float32 ulps (ordered-integer representation)."""
    def ordered(x):
        i = x.view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return int(np.max(np.abs(ordered(a) - ordered(b)))) if a.size else 0


def compare(label, a, b):
    if a.shape != b.shape:
        print(f"FAIL {label}: {a.size} elements vs reference {b.size}")
        return False
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if not np.array_equal(nan_a, nan_b):
        print(f"FAIL {label}: NaN positions differ")
        return False
    a, b = a[~nan_a], b[~nan_b]
    n_diff = int(np.count_nonzero(a.view(np.uint32) != b.view(np.uint32)))
    ulps = ulp_diff(a, b)
    ok = ulps <= 1
    print(f"{'ok  ' if ok else 'FAIL'} {label}: {a.size} elements, {n_diff} differ, "
          f"max {ulps} ulp, max |diff| {float(np.max(np.abs(a - b))) if a.size else 0:.3g}")
    return ok


def check_model(binary, model, all_tensors, tmp):
    reader = gguf.GGUFReader(model)
    chosen, seen_types = [], {}
    for t in reader.tensors:
        if all_tensors or seen_types.get(t.tensor_type, 0) < 3:
            chosen.append(t)
            seen_types[t.tensor_type] = seen_types.get(t.tensor_type, 0) + 1
    ok = True
    for t in chosen:
        ok &= compare(f"{t.name} ({t.tensor_type.name})", ours(binary, model, t.name, tmp),
                      reference(t))
    return ok


def random_blocks(qtype, n_rows, n_cols, rng):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = n_rows * n_cols // block
    if qtype == Q.F32:
        return rng.standard_normal((n_rows, n_cols)).astype(np.float32), None
    if qtype == Q.F16:
        return rng.standard_normal((n_rows, n_cols)).astype(np.float16), None
    if qtype == Q.BF16:
        bits = (rng.standard_normal(n_rows * n_cols).astype(np.float32).view(np.uint32) >> 16)
        return bits.astype(np.uint16).view(np.uint8).reshape(n_rows, -1), qtype
    data = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    if qtype == Q.Q8_K:
        scale = (rng.standard_normal(n_blocks) * 0.01).astype(np.float32)
        data[:, 0:4] = scale.view(np.uint8).reshape(n_blocks, 4)
    for off in HALF_FIELDS.get(qtype, []):
        scale = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        data[:, off:off + 2] = scale.view(np.uint8).reshape(n_blocks, 2)
    return data.reshape(n_rows, -1), qtype


def check_synthetic(binary, tmp):
    rng = np.random.default_rng(2024)
    types = [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K,
             Q.Q4_K, Q.Q5_K, Q.Q6_K, Q.Q8_K]
    path = os.path.join(tmp, "synthetic.gguf")
    writer = gguf.GGUFWriter(path, "synthetic")
    for qtype in types:
        data, raw = random_blocks(qtype, 16, 512, rng)
        writer.add_tensor(qtype.name, data, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = gguf.GGUFReader(path)
    ok = True
    for t in reader.tensors:
        if t.tensor_type == Q.Q8_K:
            # gguf.quants has no q8_K dequantizer; its definition is y = d * q (float32 d).
            raw = np.asarray(t.data).reshape(-1, 292)
            d = raw[:, 0:4].copy().view(np.float32)
            q = raw[:, 4:260].copy().view(np.int8).astype(np.float32)
            want = (d * q).reshape(-1)
        else:
            want = reference(t)
        ok &= compare(f"synthetic {t.name}", ours(binary, path, t.name, tmp), want)
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "examples", "latentkv-gguf-info"))
    p.add_argument("--model", default=os.path.join(ROOT, "models",
                                                   "SmolLM2-135M-Instruct.Q4_1.gguf"))
    p.add_argument("--all", action="store_true", help="check every tensor of the model")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ok = check_model(args.bin, args.model, args.all, tmp)
        ok &= check_synthetic(args.bin, tmp)
    print("all tensors agree" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
