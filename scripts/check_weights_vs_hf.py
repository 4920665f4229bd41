#!/usr/bin/env python3
"""Developer check: latentkv's load_llama against HF transformers loading the same GGUF.

Needs the oracle environment (torch, transformers, gguf), e.g. /opt/oracle/bin/python, and a
built latentkv-gguf-info. Not part of CI.

`latentkv-gguf-info --dump-llama DIR` writes our config and every weight (fp32, row-major,
W_q/W_k rows converted to HF half-split order). transformers dequantizes the GGUF itself and
undoes llama.cpp's Q/K row permutation on its own; this script checks that

  * the hyperparameters agree with the HF config built from the file, and
  * every weight equals its HF counterpart exactly (both sides dequantize the same blocks), in
    particular q_proj/k_proj, which only match if the row permutation was undone correctly
    (the script also confirms that the raw GGUF row order would NOT match, so the check is not
    vacuous).

  /opt/oracle/bin/python scripts/check_weights_vs_hf.py [--bin build/examples/latentkv-gguf-info]
      [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForCausalLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_ours(binary, model, tmp):
    subprocess.run([binary, "--model", model, "--dump-llama", tmp], check=True)
    with open(os.path.join(tmp, "config.json")) as f:
        return json.load(f)


def ours(tmp, name, shape):
    return np.fromfile(os.path.join(tmp, name + ".f32"), dtype=np.float32).reshape(shape)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "examples", "latentkv-gguf-info"))
    p.add_argument("--model", default=os.path.join(ROOT, "models",
                                                   "SmolLM2-135M-Instruct.Q4_1.gguf"))
    args = p.parse_args()
    model_dir, model_file = os.path.split(os.path.abspath(args.model))

    hf_cfg = AutoConfig.from_pretrained(model_dir, gguf_file=model_file)
    hf = AutoModelForCausalLM.from_pretrained(model_dir, gguf_file=model_file,
                                              torch_dtype=torch.float32)
    sd = {k: v.detach().numpy() for k, v in hf.state_dict().items()}

    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_ours(args.bin, args.model, tmp)
        pairs = [
            ("n_layers", hf_cfg.num_hidden_layers), ("d_model", hf_cfg.hidden_size),
            ("num_qo_heads", hf_cfg.num_attention_heads),
            ("num_kv_heads", hf_cfg.num_key_value_heads),
            ("head_dim", getattr(hf_cfg, "head_dim", None)
             or hf_cfg.hidden_size // hf_cfg.num_attention_heads),
            ("ffn_dim", hf_cfg.intermediate_size), ("vocab_size", hf_cfg.vocab_size),
            ("context_length", hf_cfg.max_position_embeddings),
            ("tied_embeddings", bool(hf_cfg.tie_word_embeddings)),
        ]
        rope_theta = getattr(hf_cfg, "rope_theta", None)
        if rope_theta is None:
            rope_theta = (getattr(hf_cfg, "rope_parameters", None) or {}).get("rope_theta")
        pairs.append(("rope_theta", rope_theta))
        for key, want in pairs:
            good = cfg[key] == want
            ok &= good
            print(f"{'ok  ' if good else 'FAIL'} config {key}: ours {cfg[key]}, HF {want}")
        eps_good = abs(cfg["rms_eps"] - hf_cfg.rms_norm_eps) <= 1e-6 * hf_cfg.rms_norm_eps + 1e-12
        ok &= eps_good
        print(f"{'ok  ' if eps_good else 'FAIL'} config rms_eps: ours {cfg['rms_eps']}, "
              f"HF {hf_cfg.rms_norm_eps} (the GGUF stores float32)")

        d, L = cfg["d_model"], cfg["n_layers"]
        q_dim = cfg["num_qo_heads"] * cfg["head_dim"]
        kv_dim = cfg["num_kv_heads"] * cfg["head_dim"]
        ffn, vocab = cfg["ffn_dim"], cfg["vocab_size"]
        names = [("token_embd.weight", "model.embed_tokens.weight", (vocab, d)),
                 ("output_norm.weight", "model.norm.weight", (d,))]
        if not cfg["tied_embeddings"]:
            names.append(("output.weight", "lm_head.weight", (vocab, d)))
        for l in range(L):
            g, h = f"blk.{l}.", f"model.layers.{l}."
            names += [(g + "attn_norm.weight", h + "input_layernorm.weight", (d,)),
                      (g + "attn_q.weight", h + "self_attn.q_proj.weight", (q_dim, d)),
                      (g + "attn_k.weight", h + "self_attn.k_proj.weight", (kv_dim, d)),
                      (g + "attn_v.weight", h + "self_attn.v_proj.weight", (kv_dim, d)),
                      (g + "attn_output.weight", h + "self_attn.o_proj.weight", (d, q_dim)),
                      (g + "ffn_norm.weight", h + "post_attention_layernorm.weight", (d,)),
                      (g + "ffn_gate.weight", h + "mlp.gate_proj.weight", (ffn, d)),
                      (g + "ffn_up.weight", h + "mlp.up_proj.weight", (ffn, d)),
                      (g + "ffn_down.weight", h + "mlp.down_proj.weight", (d, ffn))]
        n_exact, worst = 0, 0.0
        for ours_name, hf_name, shape in names:
            a, b = ours(tmp, ours_name, shape), sd[hf_name]
            if a.shape != b.shape:
                print(f"FAIL {ours_name}: shape {a.shape} vs HF {hf_name} {b.shape}")
                ok = False
                continue
            diff = float(np.max(np.abs(a - b)))
            worst = max(worst, diff)
            if np.array_equal(a, b):
                n_exact += 1
            else:
                ok = False
                print(f"FAIL {ours_name} vs {hf_name}: max |diff| {diff:.3g}")
        print(f"{'ok  ' if n_exact == len(names) else 'FAIL'} weights: {n_exact}/{len(names)} "
              f"tensors bit-identical to HF, max |diff| {worst:.3g}")

        # Not vacuous: the GGUF's own row order must differ from HF's for Q and K.
        hd = cfg["head_dim"]
        q = ours(tmp, "blk.0.attn_q.weight", (q_dim, d))
        gguf_order = q.reshape(-1, 2, hd // 2, d).swapaxes(1, 2).reshape(q_dim, d)
        differs = not np.array_equal(gguf_order, sd["model.layers.0.self_attn.q_proj.weight"])
        ok &= differs
        print(f"{'ok  ' if differs else 'FAIL'} llama.cpp row order differs from HF's "
              "(so the q/k comparison above is meaningful)")
    print("weights agree with HF transformers" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
