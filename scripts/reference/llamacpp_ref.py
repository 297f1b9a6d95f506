#!/usr/bin/env python3
"""Golden reference outputs for stories260K, computed by llama.cpp (through llama-cpp-python).

Writes tests/golden/stories260K_llamacpp.json (schema: tests/golden/README.md):
  * greedy continuations of a few prompts on the F32, F16 and BF16 GGUFs;
  * perplexity on text/tinystories_val.txt exactly as llama.cpp's llama-perplexity computes it,
    for the F32, F16, BF16, Q8_0, Q4_0 (and Q4_1) GGUFs;
  * the raw logits of the first positions of one prompt (F32 GGUF).

Run with the reference venv: .venv/bin/python scripts/reference/llamacpp_ref.py
"""
import argparse
import ctypes
import hashlib
import json
import math
import os
import platform
import sys
import tempfile

import numpy as np
import llama_cpp
from llama_cpp import Llama

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_json import dump_golden, round_sig  # noqa: E402

PROMPTS = [
    "Once upon a time",
    "The little dog",
    "Lily wanted to",
    "One day, a girl named Sue",
    "Tom and his mom went to the park.",
    "",
]
GREEDY_NEW_TOKENS = 48
GREEDY_DTYPES = ["F32", "F16", "BF16"]
PPL_DTYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1"]
PPL_N_CTX = 512
LOGITS_PROMPT = "Tom and his mom went to the park."
LOGITS_POSITIONS = 8
# Also quantized here from the F32 GGUF with llama_model_quantize(pure=true), i.e.
# `llama-quantize --pure`: every 2-D tensor, output.weight included, gets the type (the shared
# Q4_0/Q4_1 GGUFs keep output.weight in Q8_0); ffn_down (172 columns) still falls back to F16.
PURE_TYPES = {"Q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "Q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
              "Q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1}
# llama-perplexity -c 512 values recorded in shared/data/PROVENANCE.md (llama.cpp 34af94cd9ab2).
# Its quantized values are for "all tensors", i.e. the pure quantizations above.
PROVENANCE_PPL = {"F32": 4.2961, "BF16": 4.2965, "Q8_0_pure": 4.3018, "Q4_1_pure": 4.6480,
                  "Q4_0_pure": 4.7238}


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_model(path, n_ctx, threads, kv_f32=False):
    # logits_all: llama.cpp returns logits for every position of every eval() call (needed for
    # perplexity and for the logits dump); greedy decoding reads only the last row.
    # The KV cache is F16 by default in llama.cpp (as in llama-perplexity and llama-cli);
    # kv_f32 keeps it in F32, which is what rtnq computes.
    kv = {"type_k": llama_cpp.GGML_TYPE_F32, "type_v": llama_cpp.GGML_TYPE_F32} if kv_f32 else {}
    return Llama(model_path=path, n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, logits_all=True,
                 n_threads=threads, n_threads_batch=threads, seed=0, verbose=False, **kv)


def quantize_pure(src, dst, ftype):
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.pure = True
    params.nthread = 1
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src} -> {dst}) failed: {rc}")


def tokenize(llm, text, add_bos=True):
    # As llama.cpp's common_tokenize(ctx, text, add_special=true, parse_special=false).
    return list(llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False))


def greedy(llm, prompt_ids, n_new):
    """Pure argmax decoding (ties -> lowest id), no penalties; stops after an end-of-generation
    token (which is kept in the output)."""
    llm.reset()
    llm.eval(prompt_ids)
    out = []
    for _ in range(n_new):
        row = np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        tok = int(np.argmax(row))
        out.append(tok)
        if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
            return out, True
        llm.eval([tok])
    return out, False


def chunk_nll(logits, targets):
    """-log softmax(logits)[target] per row, as perplexity.cpp's log_softmax(): max in float32,
    sum of expf(logit - max) accumulated in double, result in double."""
    logits = np.asarray(logits, dtype=np.float32)
    mx = logits.max(axis=1, keepdims=True)
    sum_exp = np.exp(logits - mx).astype(np.float64).sum(axis=1)
    picked = logits[np.arange(len(targets)), targets].astype(np.float64)
    return -(picked - mx[:, 0].astype(np.float64) - np.log(sum_exp))


def perplexity(llm, tokens, n_ctx):
    """llama-perplexity (tools/perplexity/perplexity.cpp, perplexity()): n_chunk = n_tokens / n_ctx
    non-overlapping chunks; the first token of each chunk is replaced by BOS (the model adds BOS);
    logits at positions [n_ctx/2, n_ctx-2] score tokens [n_ctx/2+1, n_ctx-1] of the chunk."""
    bos = llm.token_bos()
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll_sum = 0.0
    nll2_sum = 0.0
    count = 0
    running = []
    for i in range(n_chunk):
        start = i * n_ctx
        chunk = list(tokens[start:start + n_ctx])
        chunk[0] = bos
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[first:n_ctx - 1], dtype=np.float32)
        targets = np.asarray(tokens[start + first + 1:start + n_ctx], dtype=np.int64)
        v = chunk_nll(logits, targets)
        nll_sum += float(v.sum())
        nll2_sum += float((v * v).sum())
        count += len(v)
        running.append(math.exp(nll_sum / count))
    mean = nll_sum / count
    var = nll2_sum / count - mean * mean
    ppl = math.exp(mean)
    stderr = ppl * math.sqrt(var / (count - 1)) if var > 0 else 0.0
    return {"n_chunk": n_chunk, "tokens_scored": count, "mean_nll": mean, "ppl": ppl,
            "ppl_stderr": stderr, "chunk_ppl": [round_sig(x, 8) for x in running]}


def main():
    data_default = os.environ.get("RTNQ_DATA", os.path.join(REPO, "..", "shared", "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=data_default, help="shared data dir (default: $RTNQ_DATA)")
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "golden", "stories260K_llamacpp.json"))
    ap.add_argument("--threads", type=int, default=1,
                    help="llama.cpp threads (1: deterministic, and fastest for this tiny model)")
    ap.add_argument("--max-chunks", type=int, default=0, help="debug: limit perplexity chunks")
    args = ap.parse_args()

    model_dir = os.path.join(args.data, "models", "stories260K")
    gguf = {d: os.path.join(model_dir, f"stories260K-{d}.gguf") for d in PPL_DTYPES}
    text_path = os.path.join(args.data, "text", "tinystories_val.txt")

    result = {
        "description": "llama.cpp reference outputs for stories260K (see tests/golden/README.md)",
        "generator": "scripts/reference/llamacpp_ref.py",
        "versions": {"llama_cpp_python": llama_cpp.__version__, "numpy": np.__version__,
                     "python": platform.python_version(),
                     "llama_system_info": llama_cpp.llama_print_system_info().decode().strip()},
        "models": {d: {"file": os.path.relpath(p, args.data), "sha256": sha256_file(p)}
                   for d, p in gguf.items()},
    }

    # Greedy continuations, with llama.cpp's default F16 KV cache (as llama-cli), plus the F32
    # model once more with an F32 KV cache (rtnq's arithmetic).
    variants = [(d, d, False) for d in GREEDY_DTYPES] + [("F32_kv_f32", "F32", True)]
    greedy_out = {"max_new_tokens": GREEDY_NEW_TOKENS, "kv_cache": "f16 (llama.cpp default)",
                  "sampling": "argmax, ties to lowest id, no penalties",
                  "stop": "after an end-of-generation token (kept in generated_ids)", "prompts": []}
    runs = {}
    for label, d, kv_f32 in variants:
        llm = open_model(gguf[d], 512, args.threads, kv_f32)
        runs[label] = []
        for p in PROMPTS:
            ids = tokenize(llm, p)
            gen, stopped = greedy(llm, ids, GREEDY_NEW_TOKENS)
            runs[label].append((ids, gen, stopped))
        if label == "F32":
            detok = [llm.detokenize(gen).decode("utf-8", errors="replace") for _, gen, _ in runs[label]]
        del llm
    for k, p in enumerate(PROMPTS):
        ids, gen, stopped = runs["F32"][k]
        entry = {"prompt": p, "prompt_ids": ids, "generated_ids": gen, "stopped_on_eog": stopped,
                 "generated_text": detok[k]}
        for label, _, _ in variants[1:]:
            ids_v, gen_v, _ = runs[label][k]
            assert ids_v == ids, f"tokenization differs between F32 and {label}"
            entry[f"generated_ids_{label.lower()}"] = gen_v
            entry[f"{label.lower()}_identical_to_f32"] = gen_v == gen
        greedy_out["prompts"].append(entry)
        print(f"greedy {p!r}: {len(gen)} tokens; identical to F32: " +
              ", ".join(f"{l}={entry[l.lower() + '_identical_to_f32']}" for l, _, _ in variants[1:]),
              flush=True)
    result["greedy"] = greedy_out

    # Logits of the first positions of one prompt (F32 GGUF, F32 KV cache).
    rows = {}
    for kv_f32 in (True, False):
        llm = open_model(gguf["F32"], 512, args.threads, kv_f32)
        ids = tokenize(llm, LOGITS_PROMPT)[:LOGITS_POSITIONS]
        assert len(ids) == LOGITS_POSITIONS, ids
        llm.reset()
        llm.eval(ids)
        rows[kv_f32] = np.asarray(llm.scores[:LOGITS_POSITIONS], dtype=np.float32)
    result["logits"] = {"model": "F32", "kv_cache": "f32", "prompt": LOGITS_PROMPT, "token_ids": ids,
                        "n_vocab": int(rows[True].shape[1]), "significant_digits": 7,
                        "max_abs_diff_vs_kv_f16": float(np.abs(rows[True] - rows[False]).max()),
                        "rows": [[round_sig(float(x), 7) for x in row] for row in rows[True]]}

    # Perplexity, as llama-perplexity -c 512 (F16 KV cache), plus F32 with an F32 KV cache.
    with open(text_path, "rb") as f:
        text = f.read().decode("utf-8")
    if text.endswith("\n"):
        text = text[:-1]  # llama.cpp's -f drops one trailing newline (common/arg.cpp)
    tokens = tokenize(llm, text)
    del llm
    ppl_out = {"text": os.path.relpath(text_path, args.data), "text_sha256": sha256_file(text_path),
               "n_ctx": PPL_N_CTX, "first": PPL_N_CTX // 2, "add_bos": True,
               "trailing_newline_stripped": True, "n_tokens": len(tokens),
               "token_ids_head": tokens[:16], "token_ids_sha256":
                   hashlib.sha256(np.asarray(tokens, dtype="<i4").tobytes()).hexdigest(),
               "kv_cache": "f16 (llama.cpp default) unless the key ends in _kv_f32",
               "results": {}}
    if args.max_chunks:
        tokens = tokens[:args.max_chunks * PPL_N_CTX]
    tmp = tempfile.TemporaryDirectory(prefix="rtnq_ref_")
    runs = [(d, gguf[d], False) for d in PPL_DTYPES] + [("F32_kv_f32", gguf["F32"], True)]
    for name, ftype in PURE_TYPES.items():
        path = os.path.join(tmp.name, f"stories260K-{name}-pure.gguf")
        quantize_pure(gguf["F32"], path, ftype)
        result["models"][f"{name}_pure"] = {"file": f"(made here) llama_model_quantize(F32, {name}, pure)",
                                            "sha256": sha256_file(path)}
        runs.append((f"{name}_pure", path, False))
    for label, path, kv_f32 in runs:
        llm = open_model(path, PPL_N_CTX, args.threads, kv_f32)
        r = perplexity(llm, tokens, PPL_N_CTX)
        del llm
        if label in PROVENANCE_PPL:
            r["provenance_llama_perplexity"] = PROVENANCE_PPL[label]
            r["matches_provenance_4dp"] = round(r["ppl"], 4) == PROVENANCE_PPL[label]
        ppl_out["results"][label] = r
        print(f"ppl {label}: {r['ppl']:.6f} +/- {r['ppl_stderr']:.5f} over {r['n_chunk']} chunks "
              f"(PROVENANCE {PROVENANCE_PPL.get(label, '-')})", flush=True)
    tmp.cleanup()
    result["perplexity"] = ppl_out

    dump_golden(result, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
