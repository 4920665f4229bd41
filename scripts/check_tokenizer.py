#!/usr/bin/env python3
"""Checks latentkv's tokenizer against independent reference tokenizers, on whole files.

For each text file, the token ids written by `latentkv-tokenize --ids-out` must equal those of:

  reference   a HF `tokenizers` tokenizer with the same vocabulary and merges (read from the GGUF)
              and the pipeline of SmolLM2's original tokenizer.json: no normalizer, pre-tokenizer
              Sequence[Digits(individual_digits=true), ByteLevel(add_prefix_space=false,
              use_regex=true)], BPE, the GGUF's control tokens as special added tokens. This is
              what the model was trained with, so a mismatch here fails the check.
  transformers   transformers' own GGUF loader: AutoTokenizer.from_pretrained(dir, gguf_file=...).
              Reported for information only: it rebuilds the tokenizer from GGUF metadata, does
              not know llama.cpp's "smollm" pre-tokenizer and falls back to plain GPT-2 ByteLevel
              without the Digits split. The vocabulary has no multi-digit tokens, so ASCII digit
              runs still come out one digit per token, but it differs from the model's training
              pipeline on non-ASCII numbers ("x ½": [104, 3351, 138] instead of [104, 216, 16738])
              and on space runs before a digit ("a  1": [81, 216, 216, 33] instead of [81, 256,
              33]).

With --random N, N generated texts (seeded; ~600 KB each) mixing ASCII, controls, CR LF, space
runs, contractions, digits and code points of every plane are compared with the reference too.
They leave out what the two sides are known to treat differently: characters needing a byte the
vocabulary has no token for (we reject those, HF drops them) and the 13 number code points new in
Unicode 17 (U+11DE0..U+11DE9, U+16FF4..U+16FF6), which HF's Digits step (Rust's Unicode 17)
isolates but its regex (Oniguruma, Unicode 16) and our Unicode 16 table do not know.

Neither reference adds BOS here (SmolLM2's GGUF says add_bos_token=false); ids compared are those
of the text alone. Exit status 0 when every file matches the reference.

Needs the packages of the /opt/oracle venv (tokenizers, transformers, gguf; PyPI). Not run in CI.

Usage:
  /opt/oracle/bin/python scripts/check_tokenizer.py --model models/SmolLM2-135M-Instruct.Q4_1.gguf \
      --tool build/examples/latentkv-tokenize \
      /work/shared/data/wikitext-2/test.txt /work/shared/data/wikitext-2/valid.txt
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile

import gguf
from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers
from tokenizers.models import BPE

CONTROL = 3  # tokenizer.ggml.token_type value of control (special) tokens


def read_gguf_vocab(path):
    """tokens, token types, merges and the model/pre names from tokenizer.ggml.*."""
    reader = gguf.GGUFReader(path)

    def field(key):
        return reader.fields[key]

    def strings(key):
        f = field(key)
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def scalar_string(key):
        f = field(key)
        return bytes(f.parts[f.data[0]]).decode("utf-8")

    types = [int(field("tokenizer.ggml.token_type").parts[i][0])
             for i in field("tokenizer.ggml.token_type").data]
    return {
        "model": scalar_string("tokenizer.ggml.model"),
        "pre": scalar_string("tokenizer.ggml.pre"),
        "tokens": strings("tokenizer.ggml.tokens"),
        "types": types,
        "merges": strings("tokenizer.ggml.merges"),
    }


def reference_tokenizer(vocab):
    """SmolLM2's tokenizer.json pipeline over the GGUF's vocabulary and merges."""
    if vocab["model"] != "gpt2" or vocab["pre"] != "smollm":
        sys.exit(f"reference covers gpt2/smollm only, file has {vocab['model']}/{vocab['pre']}")
    ids = {t: i for i, t in enumerate(vocab["tokens"])}
    merges = [tuple(m.split(" ")) for m in vocab["merges"]]
    tok = Tokenizer(BPE(vocab=ids, merges=merges, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(vocab["tokens"], vocab["types"]) if ty == CONTROL])
    return tok


def transformers_tokenizer(model_path):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(model_path)),
                                         gguf_file=os.path.basename(model_path))


UNICODE17_NUMBERS = set(range(0x11DE0, 0x11DEA)) | set(range(0x16FF4, 0x16FF7))
RANDOM_POOLS = [(0x20, 0x7E), (0x00, 0x1F), (0xA0, 0x24F), (0x300, 0x36F), (0x370, 0x52F),
                (0x600, 0x6FF), (0x900, 0xDFF), (0x2000, 0x2BFF), (0x3000, 0x30FF), (0x4E00, 0x9FFF),
                (0xAC00, 0xD7A3), (0xFF00, 0xFFEF), (0x10000, 0x1FFFF), (0x1F300, 0x1FAFF),
                (0x20000, 0x3134F), (0xE0000, 0x10FFFF)]
RANDOM_SNIPPETS = ["the ", "  ", "\n", "\r\n", " 12", "'s ", "'RE", "x  1", " \t ", "...",
                   "   \n\n", "<|im_start|>", "½"]


def random_text(seed, vocab):
    """~600 KB of mixed text (see the module doc for what is left out)."""
    alphabet = set(bytes_to_unicode_map().values())
    have = {t for t in vocab["tokens"] if len(t) == 1 and t in alphabet}
    missing = {b for b, ch in bytes_to_unicode_map().items() if ch not in have}
    rng = random.Random(seed)
    parts = []
    for _ in range(200000):
        if rng.random() < 0.3:
            parts.append(rng.choice(RANDOM_SNIPPETS))
            continue
        lo, hi = rng.choice(RANDOM_POOLS)
        cp = rng.randint(lo, hi)
        if 0xD800 <= cp <= 0xDFFF or cp in UNICODE17_NUMBERS:
            continue
        if missing.intersection(chr(cp).encode("utf-8")):
            continue
        parts.append(chr(cp))
    return "".join(parts)


def bytes_to_unicode_map():
    """GPT-2's byte -> character map (the byte-level alphabet)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) +
                 list(range(0xAE, 0x100)))
    out, extra = {}, 0
    for b in range(256):
        if b in printable:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def our_ids(tool, model, text_path):
    with tempfile.NamedTemporaryFile(suffix=".ids", delete=False) as f:
        ids_path = f.name
    try:
        # HF matches added tokens in text by default; --parse-special does the same on our side.
        run = subprocess.run([tool, "--model", model, "--text", text_path, "--ids-out", ids_path,
                              "--parse-special"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f"{tool} failed ({run.returncode}): {run.stderr.strip()}")
        print(f"  latentkv-tokenize: {run.stdout.strip()}")
        with open(ids_path) as f:
            return [int(x) for x in f.read().split()]
    finally:
        os.unlink(ids_path)


def compare(name, ours, theirs, tokens):
    if ours == theirs:
        print(f"  {name}: identical ({len(theirs)} tokens)")
        return True
    first = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                 min(len(ours), len(theirs)))
    lo = max(0, first - 3)
    show = lambda ids: " ".join(f"{i}:{tokens[i]!r}" for i in ids[lo:first + 4])
    # Position-wise count; meaningful only while the two sequences stay aligned (same length).
    differing = (f"{sum(a != b for a, b in zip(ours, theirs))} positions differ"
                 if len(ours) == len(theirs) else "lengths differ")
    print(f"  {name}: DIFFERENT: ours {len(ours)} tokens, theirs {len(theirs)} ({differing}); "
          f"first difference at token {first}\n    ours:   {show(ours)}\n    theirs: {show(theirs)}")
    return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="GGUF file")
    ap.add_argument("--tool", required=True, help="path of the latentkv-tokenize binary")
    ap.add_argument("--skip-transformers", action="store_true",
                    help="do not load transformers' GGUF tokenizer")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="also compare N generated texts with the reference")
    ap.add_argument("files", nargs="*", help="UTF-8 text files")
    args = ap.parse_args()

    vocab = read_gguf_vocab(args.model)
    reference = reference_tokenizer(vocab)
    hf = None if args.skip_transformers else transformers_tokenizer(args.model)
    ok = True
    for path in args.files:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
        print(f"{path}: {len(text.encode('utf-8'))} bytes")
        ours = our_ids(args.tool, args.model, path)
        ok &= compare("reference (SmolLM2 tokenizer.json pipeline)", ours,
                      reference.encode(text, add_special_tokens=False).ids, vocab["tokens"])
        if hf is not None:
            compare("transformers GGUF loader (informational)", ours,
                    hf(text, add_special_tokens=False)["input_ids"], vocab["tokens"])
    for seed in range(args.random):
        text = random_text(seed, vocab)
        with tempfile.NamedTemporaryFile("wb", suffix=".txt", delete=False) as f:
            f.write(text.encode("utf-8"))
        try:
            print(f"random text {seed}: {len(text.encode('utf-8'))} bytes")
            ours = our_ids(args.tool, args.model, f.name)
        finally:
            os.unlink(f.name)
        ok &= compare("reference (SmolLM2 tokenizer.json pipeline)", ours,
                      reference.encode(text, add_special_tokens=False).ids, vocab["tokens"])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
