#!/usr/bin/env python3
"""Cross-checks the tokenizer references with HF `tokenizers` (needs the project venv).

1. Builds GPT-2's byte-level BPE from OpenAI's encoder.json + vocab.bpe with HF tokenizers and
   checks that it gives exactly llama.cpp's ggml-vocab-gpt-2.gguf.out ids for the 46 .inp strings
   (PROVENANCE.md notes the .out files were not re-checked against HF; this does).
2. With --compare FILE (and --pre llama-bpe / qwen2 to swap in those pre-tokenizers) (one line of space-separated ids per line of --text, e.g. written by a
   program using rtnq's tokenizer), checks rtnq's ids against HF's for every line.

Usage: .venv/bin/python scripts/reference/tokenizer_ref.py [--data DIR] [--text FILE --compare FILE]
"""
import argparse
import json
import os
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers

# HF's Split patterns for the other pre-tokenizers rtnq names (tokenizer.json of Llama-3 / Qwen2).
SPLIT_PATTERNS = {
    "llama-bpe": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
}


def gpt2_tokenizer(data, pre="gpt-2"):
    d = os.path.join(data, "tokenizer", "gpt2")
    with open(os.path.join(d, "encoder.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    merges = []
    with open(os.path.join(d, "vocab.bpe"), encoding="utf-8") as f:
        for i, line in enumerate(f.read().split("\n")):
            if not line or (i == 0 and line.startswith("#version")):
                continue
            left, right = line.split(" ")
            merges.append((left, right))
    tok = Tokenizer(models.BPE(vocab, merges))
    if pre == "gpt-2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:  # GPT-2's vocabulary behind another pre-tokenizer: checks rtnq's regex engine vs HF's
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(SPLIT_PATTERNS[pre]), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    return tok


def read_vocab_cases(path):
    with open(path + ".inp", encoding="utf-8", newline="") as f:
        raw = f.read()
    texts = raw.split("\n__ggml_vocab_test__\n")
    if texts and texts[-1] == "":
        texts.pop()
    with open(path + ".out", encoding="utf-8") as f:
        outs = [[int(t) for t in line.split()] for line in f.read().split("\n")[: len(texts)]]
    return list(zip(texts, outs))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.environ.get("RTNQ_DATA", os.path.join(here, "..", "..", "..", "shared", "data")))
    ap.add_argument("--pre", default="gpt-2", choices=["gpt-2"] + sorted(SPLIT_PATTERNS),
                    help="pre-tokenizer for --compare (GPT-2's vocabulary and merges either way)")
    ap.add_argument("--text", help="text file, one input per line")
    ap.add_argument("--compare", help="rtnq ids for --text, one line per input line")
    args = ap.parse_args()

    tok = gpt2_tokenizer(args.data)
    cases = read_vocab_cases(os.path.join(args.data, "tokenizer", "llama.cpp-vocab", "ggml-vocab-gpt-2.gguf"))
    bad = 0
    for text, expected in cases:
        got = tok.encode(text, add_special_tokens=False).ids
        if got != expected:
            bad += 1
            print(f"MISMATCH {text!r}: HF {got} vs .out {expected}")
    print(f"gpt-2 .out vs HF tokenizers: {len(cases) - bad}/{len(cases)} identical")

    tok = gpt2_tokenizer(args.data, args.pre)
    if args.text and args.compare:
        with open(args.text, encoding="utf-8", newline="") as f:
            lines = [l for l in f.read().split("\n")]
        if lines and lines[-1] == "":
            lines.pop()
        with open(args.compare, encoding="utf-8") as f:
            theirs = [[int(t) for t in l.split()] for l in f.read().split("\n")[: len(lines)]]
        diff = 0
        for i, (line, ids) in enumerate(zip(lines, theirs)):
            ref = tok.encode(line, add_special_tokens=False).ids
            if ref != ids:
                diff += 1
                if diff <= 5:
                    print(f"line {i + 1}: HF {ref[:20]}... vs rtnq {ids[:20]}...")
        print(f"{args.compare}: {len(lines) - diff}/{len(lines)} lines identical to HF ({args.pre})")
        bad += diff
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
