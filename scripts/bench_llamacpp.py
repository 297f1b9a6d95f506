#!/usr/bin/env python3
"""rtnq RTN-4 / RTN-8 against llama.cpp Q4_0 / Q8_0: prefill and decode tokens/s on one CPU.

Run through scripts/bench_llamacpp.sh, which builds llama.cpp (llama-cpp-python) with AVX-512 first.
Not part of CI. What it does, in order:
  1. the model: a seeded Llama-3.2-1B-shaped BF16 checkpoint (`rtnq synth`, tied embeddings);
  2. llama.cpp's models: rtnq's own GGUF export, Q4_0 / Q8_0 for every matrix including the tied
     embedding (token_embd, which llama.cpp also uses as the output matrix);
  3. rtnq, RTN-4 / RTN-8 g128 with the embedding / lm_head quantized too (a plan rule), so that
     rtnq's weights (4.25 / 8.25 bits: codes + f32 group scales) are no larger than llama.cpp's
     (4.5 / 8.5 bits). Preferred: `rtnq bench e2e --plan P --act f32,int8 --json` (prefill = 512
     seeded ids as one Forward; decode = 128 greedy single-token steps after an 8-token seeded
     prompt; DRAM bandwidth measured in the same run). Without `bench e2e` (older binaries):
     `rtnq generate --json` on a prompt of exactly 512 ids (BOS + seeded words), decode = 128
     steps right after it, f32 activations only;
  4. llama.cpp through its C API (llama_decode on a llama_batch) doing the same work with the same
     token ids: e2e mode recomputes e2e's seeded ids (its xorshift) and decodes greedily after the
     same 8-token prompt; generate mode feeds the prompt ids and then the ids rtnq generated;
  5. medians over --repeats runs per engine / weights / thread count, load time never counted,
     and the three ratios the issue asks for, per thread count; text and --json.
Each llama.cpp configuration runs in a child process so that an illegal-instruction fault in the
AVX-512 build falls back to the project venv's AVX2 build (reported as such).
"""
import argparse
import json
import os
import platform
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# engine weights -> (rtnq plan, llama.cpp GGUF type). The embedding rule quantizes the tied
# embedding / lm_head: without it rtnq keeps 525 MB of BF16 there and is the larger model.
RTNQ_PLANS = {
    "rtn4": ("rtn4", "modules=embed -> int4"),
    "rtn8": ("rtn8", "modules=embed -> int8"),
}
GGUF_PLANS = {
    "q4_0": ("int4", "modules=embed -> int4"),
    "q8_0": ("int8", "modules=embed -> int8"),
}
# (rtnq weights, llama.cpp weights, what is compared, the issue's target)
RATIOS = [
    ("rtn4", "q4_0", "decode", 1.05),
    ("rtn8", "q8_0", "decode", 1.2),
    ("rtn4", "q4_0", "prefill", 1.5),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return -1.0


class LoadWatch:
    """1-minute load averages sampled around every timed run (the box may be shared)."""

    def __init__(self):
        self.samples = []

    def sample(self):
        self.samples.append(loadavg())

    def summary(self, cpus, own_threads):
        s = [x for x in self.samples if x >= 0]
        if not s:
            return {"samples": 0}
        # The benchmark's own T-thread runs lift the 1-minute average towards T (it decays over a
        # minute, so the samples between runs still carry it): more than T + 0.5 means other
        # processes competed for the CPUs.
        return {"samples": len(s), "min": min(s), "max": max(s), "cpus": cpus,
                "own_threads": own_threads, "busy": max(s) > own_threads + 0.5}


def run(cmd, quiet=False, **kw):
    if not quiet:
        log("+ " + " ".join(shlex.quote(c) if len(c) < 80 else "'" + c[:60] + "...'" for c in cmd))
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def median(xs):
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------------------------
# Inputs: model, GGUF exports, prompt


def ensure_model(rtnq, model_dir, shape, seed):
    if os.path.isfile(os.path.join(model_dir, "config.json")):
        return
    run([rtnq, "synth", "--shape", shape, "--seed", str(seed), "--dtype", "bf16", "-o", model_dir])


def gguf_plan(path):
    """The rtnq.plan string stored in an rtnq GGUF export (None if unreadable)."""
    try:
        import gguf  # gguf-py, in the project venv
        r = gguf.GGUFReader(path)
        f = r.fields.get("rtnq.plan")
        return bytes(f.parts[f.data[0]]).decode() if f else None
    except Exception:  # noqa: BLE001 - any failure means "re-export"
        return None


def gguf_summary(path):
    import gguf
    r = gguf.GGUFReader(path)
    types = {}
    for t in r.tensors:
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    embd = next((t.tensor_type.name for t in r.tensors if t.name == "token_embd.weight"), None)
    has_output = any(t.name == "output.weight" for t in r.tensors)
    return {"tensor_bytes": int(sum(int(t.n_bytes) for t in r.tensors)),
            "file_bytes": os.path.getsize(path), "tensor_types": types,
            "token_embd": embd, "separate_output": has_output}


def ensure_gguf(rtnq, model_dir, work, name, threads):
    quant, rule = GGUF_PLANS[name]
    path = os.path.join(work, f"model-{name}.gguf")
    src_mtime = os.path.getmtime(os.path.join(model_dir, "config.json"))
    plan = gguf_plan(path) if os.path.isfile(path) else None
    if plan is None or rule.split("->")[0].strip() not in plan or os.path.getmtime(path) < src_mtime:
        run([rtnq, "quantize", model_dir, "--quant", quant, "--rule", rule, "--format", "gguf",
             "-o", path, "--force", "-t", str(threads)])
    s = gguf_summary(path)
    want = name.upper()
    if s["token_embd"] != want or set(s["tensor_types"]) - {want, "F32"}:
        raise SystemExit(f"{path}: expected {want} matrices and token_embd, found {s}")
    return path, s


# Common English words; the synthetic tokenizer's merges come from an English paragraph.
WORDS = ("the of and to in is that it was for on are as with his they at be this from have or "
         "by one had not but what all were when we there can an your which their said if do will "
         "each about how up out them then she many some so these would other into has more her "
         "two like him see time could no make than first been its who now people my made over "
         "did down only way find use may water long little very after words called just where "
         "most know get through back much before go good new write our used me man too any day "
         "same right look think also around another came come work three word must because does "
         "part even place well such here take why things help put years different away again off "
         "went old number great tell men say small every found still between name should home "
         "big give air line set own under read last never us left end along while might next "
         "sound below saw something thought both few those always looked show large often "
         "together asked house world going want school important until form food keep children "
         "feet land side without boy once animals life enough took sometimes four head above "
         "kind began almost live page got earth need far hand high year mother light parts "
         "country father let night following picture being study second eyes soon times story "
         "boys since white days ever paper hard near sentence better best across during today "
         "others however sure means knew its try told young miles sun ways thing whole hear "
         "example heard several change answer room sea against top turned learn point city play "
         "toward five using himself usually").split()


def tokenize_ids(rtnq, model_dir, text):
    out = run([rtnq, "tokenize", model_dir, "-p", text, "--ids"], quiet=True).stdout
    return [int(x) for x in out.split()]


def make_prompt(rtnq, model_dir, n_tokens, seed, cache):
    """Seeded words whose rtnq tokenization (BOS included) is exactly n_tokens ids."""
    if os.path.isfile(cache):
        with open(cache) as f:
            c = json.load(f)
        if c.get("n_tokens") == n_tokens and c.get("seed") == seed and len(c["ids"]) == n_tokens:
            return c["text"], c["ids"]
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(n_tokens)]
    # Token count grows with the word count: find the most words that still fit...
    lo, hi = 1, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(tokenize_ids(rtnq, model_dir, " ".join(words[:mid]))) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(words[:lo])
    ids = tokenize_ids(rtnq, model_dir, text)
    # ...then top up one character at a time (a single letter adds at most one token).
    filler = "abcdefghijklmnopqrstuvwxyz"
    i = 0
    while len(ids) < n_tokens and i < 4 * n_tokens:
        cand = text + " " + filler[i % len(filler)]
        cand_ids = tokenize_ids(rtnq, model_dir, cand)
        if len(cand_ids) <= n_tokens:
            text, ids = cand, cand_ids
        i += 1
    if len(ids) != n_tokens:
        raise SystemExit(f"could not build a prompt of exactly {n_tokens} tokens (got {len(ids)})")
    with open(cache, "w") as f:
        json.dump({"n_tokens": n_tokens, "seed": seed, "text": text, "ids": ids}, f)
    return text, ids


# ---------------------------------------------------------------------------------------------
# rtnq


def rtnq_e2e_help(rtnq):
    try:
        p = subprocess.run([rtnq, "bench", "e2e", "--help"], text=True, capture_output=True)
    except OSError:
        return None
    text = p.stdout + p.stderr
    # An rtnq without `bench e2e` prints its top-level help (exit 0): look for e2e's own flags.
    if p.returncode != 0 or "--prefill" not in text or "--decode" not in text:
        return None
    return text


def seeded_tokens(count, vocab, seed):
    """bench e2e's SeededTokens (tools/rtnq/cmd_bench_e2e.cpp): xorshift64, ids >= 4."""
    m = (1 << 64) - 1
    x = (seed * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & m
    low = 4 if vocab > 16 else 0
    out = []
    for _ in range(count):
        x ^= (x << 13) & m
        x ^= x >> 7
        x ^= (x << 17) & m
        out.append(low + x % (vocab - low))
    return out


E2E_PROMPT_TOKENS = 8  # kPromptTokens in cmd_bench_e2e.cpp: decode starts after 8 seeded ids


def bench_rtnq_e2e(rtnq, model_dir, threads, args, work, watch):
    """One `rtnq bench e2e` per plan and repeat. e2e always runs the 16-bit model too (as its
    reference); those rows are reported as BF16 but take no part in the ratios."""
    out = {}
    for w, (quant, rule) in RTNQ_PLANS.items():
        plan = os.path.join(work, f"plan-{w}.txt")
        with open(plan, "w") as f:
            f.write(f"default {quant}\n{rule}\n")
        cmd = [rtnq, "bench", "e2e", model_dir, "--quant", "none", "--plan", plan, "--act", args.act,
               "--threads", ",".join(map(str, threads)), "--batch", "1",
               "--prefill", str(args.prefill), "--decode", str(args.decode),
               # The agreement score is not this benchmark's business: keep its stream minimal.
               "--agreement-tokens", "2", "--seed", str(args.e2e_seed), "--json"]
        reps = []
        for _ in range(args.repeats):
            watch.sample()
            doc = json.loads(run(cmd).stdout)
            watch.sample()
            reps.append(doc)
        out[w] = {"command": cmd, "runs": reps}
    return out


def e2e_rows(raw):
    """Per (weights, act, threads): medians over the repeats of `rtnq bench e2e --json` runs."""
    groups = {}
    for w, r in raw.items():
        for doc in r["runs"]:
            for run_ in doc["runs"]:
                weights = "bf16" if run_["quant"] == "none" else w
                d1 = next(d for d in run_["decode"] if d["batch"] == 1)
                groups.setdefault((weights, run_["act"], run_["threads"]), []).append(
                    {"prefill_tps": run_["prefill"]["tokens_per_second"],
                     "decode_tps": d1["tokens_per_second"],
                     "memory_bound_tps": d1["memory_bound_tokens_per_second"],
                     "bytes": run_["model_bytes"], "dram_gbps": run_["dram_read_gbps"]})
    rows = []
    for (weights, act, t), xs in sorted(groups.items()):
        rows.append({"weights": weights, "act": act, "threads": t,
                     "prefill_tps": median([x["prefill_tps"] for x in xs]),
                     "decode_tps": median([x["decode_tps"] for x in xs]),
                     "prefill_all": [x["prefill_tps"] for x in xs],
                     "decode_all": [x["decode_tps"] for x in xs],
                     "bytes": xs[0]["bytes"],
                     "dram_gbps": median([x["dram_gbps"] for x in xs]),
                     "memory_bound_tps": median([x["memory_bound_tps"] for x in xs])})
    return rows


def bench_rtnq_generate(rtnq, model_dir, weights, t, prompt_text, prompt_ids, args, watch):
    """`rtnq generate --json`: the prompt as one Forward, then decode+1 tokens sampled greedily,
    i.e. `decode` single-token Forward calls after the first sampled token."""
    quant, rule = RTNQ_PLANS[weights]
    cmd = [rtnq, "generate", model_dir, "--quant", quant, "--rule", rule, "-t", str(t),
           "-p", prompt_text, "-n", str(args.decode + 1), "--ignore-eos", "--json"]
    reps = []
    for _ in range(args.repeats):
        watch.sample()
        doc = json.loads(run(cmd).stdout)
        watch.sample()
        seq = doc["sequences"][0]
        if seq["prompt_tokens"] != prompt_ids:
            raise SystemExit("rtnq generate tokenized the prompt differently from rtnq tokenize")
        tm = doc["timing"]
        gen_forwards = tm["generated_tokens"] - 1  # the first token comes from the prefill logits
        reps.append({"prefill_tps": tm["prompt_tokens"] / tm["prompt_seconds"],
                     "decode_tps": gen_forwards / tm["generation_seconds"],
                     "load_seconds": doc["load"]["load_seconds"],
                     "weight_bytes": doc["load"]["weight_bytes"],
                     "bits_per_weight": doc["load"].get("bits_per_weight"),
                     "generated": seq["tokens"]})
    return {"method": "rtnq generate", "command": cmd, "repeats": reps}


def dram_bandwidth(rtnq, threads, watch):
    """DRAM read GB/s per thread count from bench_decode (a tiny run: 1-token prompt, 1 step)."""
    bench = os.environ.get("RTNQ_BENCH_DECODE") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(rtnq)))), "bench", "bench_decode")
    if not os.path.isfile(bench):
        log(f"no {bench}: the DRAM-bound limit is not reported")
        return {}, None
    watch.sample()
    doc = json.loads(run([bench, "--prompt", "1", "--gen", "1", "--quant", "rtn4",
                          "--threads", ",".join(map(str, threads)), "--json"]).stdout)
    watch.sample()
    return {int(r["threads"]): float(r["dram_read_gbps"]) for r in doc["runs"]}, bench


# ---------------------------------------------------------------------------------------------
# llama.cpp (child process)


def llama_worker(spec_path):
    """Runs inside a child process: loads one GGUF, times prefill/decode, prints one JSON line."""
    import ctypes
    import llama_cpp as L

    with open(spec_path) as f:
        spec = json.load(f)

    @L.llama_log_callback
    def quiet(level, text, user_data):  # llama.cpp logs every tensor at load: keep stderr readable
        return None

    L.llama_log_set(quiet, ctypes.c_void_p())
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    t0 = time.perf_counter()
    model = L.llama_model_load_from_file(spec["gguf"].encode(), mp)
    if not model:
        raise SystemExit(f"llama.cpp could not load {spec['gguf']}")
    load_s = time.perf_counter() - t0
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    import numpy as np

    prompt = spec["prefill_ids"]
    # Decode continues after `dec_prompt` (None: after the prefill, in the same sequence) and
    # feeds `dec` (None: greedy, the argmax taken outside the timed llama_decode calls).
    dec_prompt, dec, n_dec = spec["decode_prompt_ids"], spec["decode_ids"], spec["decode_steps"]
    n_prompt = len(prompt)
    result = {"llama_cpp_version": L.__version__, "llama_cpp_path": os.path.dirname(L.__file__),
              "system_info": L.llama_print_system_info().decode(errors="replace").strip(),
              "model_size_bytes": int(L.llama_model_size(model)),
              "n_params": int(L.llama_model_n_params(model)), "load_seconds": load_s, "threads": {}}

    def make_ctx(t):
        cp = L.llama_context_default_params()
        cp.n_ctx = max(640, n_prompt + n_dec + 16)
        cp.n_batch = max(512, n_prompt)
        cp.n_ubatch = max(512, n_prompt)  # the whole prompt in one micro-batch
        cp.n_threads = t
        cp.n_threads_batch = t
        cp.no_perf = False
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            raise SystemExit("llama_init_from_model failed")
        return ctx

    batch = L.llama_batch_init(max(n_prompt, 1), 0, 1)

    def decode(ctx, tokens, pos0):
        batch.n_tokens = len(tokens)
        for i, tok in enumerate(tokens):
            batch.token[i] = tok
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1 if i + 1 == len(tokens) else 0  # logits for the last token only
        t0 = time.perf_counter()
        rc = L.llama_decode(ctx, batch)
        L.llama_synchronize(ctx)
        dt = time.perf_counter() - t0
        if rc != 0:
            raise SystemExit(f"llama_decode returned {rc}")
        return dt

    def logits_last(ctx):
        return np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))

    def decode_run(ctx):
        """n_dec single-token steps; returns the per-step seconds and the ids fed."""
        pos = n_prompt
        if dec_prompt is not None:
            L.llama_memory_clear(L.llama_get_memory(ctx), True)
            decode(ctx, dec_prompt, 0)
            pos = len(dec_prompt)
        steps, fed = [], []
        for i in range(n_dec):
            tok = dec[i] if dec is not None else int(logits_last(ctx).argmax())
            fed.append(tok)
            steps.append(decode(ctx, [tok], pos + i))
        return steps, fed

    # Correctness check: greedy-generate a few tokens after the prompt.
    ctx = make_ctx(spec["threads"][-1])
    decode(ctx, prompt, 0)
    check, finite = [], True
    for i in range(spec["check_tokens"]):
        lg = logits_last(ctx)
        finite = finite and bool(np.isfinite(lg).all())
        nxt = int(lg.argmax())
        check.append(nxt)
        decode(ctx, [nxt], n_prompt + i)
    result["check"] = {"greedy_tokens": check, "logits_finite": finite}
    L.llama_free(ctx)

    for t in spec["threads"]:
        ctx = make_ctx(t)
        mem = L.llama_get_memory(ctx)
        # Warm-up (not timed): faults the weights in and sizes the compute buffers.
        decode(ctx, prompt[:32], 0)
        for i in range(4):
            decode(ctx, [prompt[i]], 32 + i)
        reps = []
        for _ in range(spec["repeats"]):
            L.llama_memory_clear(mem, True)
            L.llama_perf_context_reset(ctx)
            la0 = loadavg()
            prefill_s = decode(ctx, prompt, 0)
            steps, fed = decode_run(ctx)
            perf = L.llama_perf_context(ctx)
            reps.append({"prefill_tps": n_prompt / prefill_s, "decode_tps": n_dec / sum(steps),
                         "decode_ids_head": fed[:8],
                         "decode_median_step_ms": statistics.median(steps) * 1e3,
                         "loadavg": [la0, loadavg()],
                         "perf": {"prompt_ms": perf.t_p_eval_ms, "prompt_tokens": perf.n_p_eval,
                                  "eval_ms": perf.t_eval_ms, "eval_tokens": perf.n_eval}})
        result["threads"][str(t)] = reps
        L.llama_free(ctx)
    L.llama_batch_free(batch)
    L.llama_model_free(model)
    print(json.dumps(result), flush=True)


def bench_llama(python, builds, gguf, threads, workload, args, work, watch):
    """Tries each llama.cpp build in order; a crash (e.g. SIGILL) falls through to the next."""
    spec = dict(workload, gguf=gguf, threads=threads, repeats=args.repeats, check_tokens=8)
    spec_path = os.path.join(work, "llama_spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    failures = []
    for name, pythonpath in builds:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        cmd = [python, os.path.abspath(__file__), "--llama-worker", spec_path]
        log(f"+ [{name}] {' '.join(cmd)}  ({os.path.basename(gguf)}, threads {threads})")
        watch.sample()
        p = subprocess.run(cmd, env=env, text=True, capture_output=True)
        watch.sample()
        if p.returncode == 0:
            res = json.loads(p.stdout.strip().splitlines()[-1])
            res["build"] = name
            res["fallbacks"] = failures
            return res
        why = (f"signal {signal.Signals(-p.returncode).name}" if p.returncode < 0
               else f"exit {p.returncode}")
        log(f"llama.cpp build '{name}' failed ({why}): {p.stderr.strip()[-400:]}")
        failures.append({"build": name, "failure": why, "stderr_tail": p.stderr.strip()[-400:]})
    raise SystemExit(f"every llama.cpp build failed on {gguf}: {failures}")


# ---------------------------------------------------------------------------------------------
# Report


def fmt_bytes(b):
    return f"{b / 1e6:,.1f} MB" if b else "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llama-worker", help=argparse.SUPPRESS)
    ap.add_argument("--rtnq-bin", default=os.environ.get("RTNQ_BIN", "build/release/tools/rtnq/rtnq"))
    ap.add_argument("--model", default="out/synth-llama-3.2-1b", help="HF model dir (made if missing)")
    ap.add_argument("--shape", default="llama-3.2-1b")
    ap.add_argument("--seed", type=int, default=0, help="model and prompt seed")
    ap.add_argument("--work", default="out/bench_llamacpp", help="GGUF exports and scratch files")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--prefill", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--act", default="f32,int8", help="rtnq bench e2e activation types")
    ap.add_argument("--e2e-seed", type=int, default=1, help="rtnq bench e2e --seed (its token ids)")
    ap.add_argument("--llama-avx512", default="out/llamacpp-avx512",
                    help="pip --target dir of the AVX-512 llama-cpp-python build ('' to skip)")
    ap.add_argument("--rtnq-method", choices=["auto", "e2e", "generate"], default="auto")
    ap.add_argument("--json", default="out/bench_llamacpp.json", help="where to write the results")
    args = ap.parse_args()
    if args.llama_worker:
        return llama_worker(args.llama_worker)

    os.chdir(REPO)
    rtnq = args.rtnq_bin
    if not os.path.isfile(rtnq):
        raise SystemExit(f"no rtnq binary at {rtnq} (set RTNQ_BIN or build build/release)")
    threads = [int(x) for x in args.threads.split(",")]
    os.makedirs(args.work, exist_ok=True)
    watch = LoadWatch()
    watch.sample()
    started = time.strftime("%Y-%m-%d %H:%M:%S")

    ensure_model(rtnq, args.model, args.shape, args.seed)
    ggufs = {n: ensure_gguf(rtnq, args.model, args.work, n, max(threads)) for n in GGUF_PLANS}
    vocab = json.load(open(os.path.join(args.model, "config.json")))["vocab_size"]

    # ---- rtnq
    help_text = rtnq_e2e_help(rtnq)
    method = args.rtnq_method
    if method == "auto":
        # e2e must take a plan: without the embedding rule rtnq's model is the larger one.
        method = "e2e" if help_text and ("--plan" in help_text or "--rule" in help_text) else "generate"
    if method == "e2e" and not help_text:
        raise SystemExit(f"{rtnq} has no `bench e2e`")
    log(f"rtnq method: {method}" + ("" if help_text else " (this rtnq has no `bench e2e`)"))
    if method == "e2e":
        rtnq_raw = bench_rtnq_e2e(rtnq, args.model, threads, args, args.work, watch)
        rtnq_rows = e2e_rows(rtnq_raw)
        stream = next(iter(rtnq_raw.values()))["runs"][0]["agreement_stream"]["tokens"]
        if stream[:2] != seeded_tokens(2, vocab, args.e2e_seed):
            raise SystemExit("seeded_tokens() no longer reproduces bench e2e's SeededTokens: "
                             f"{stream[:2]} vs {seeded_tokens(2, vocab, args.e2e_seed)}")
        workload = {"prefill_ids": seeded_tokens(args.prefill, vocab, args.e2e_seed + 100),
                    "decode_prompt_ids": seeded_tokens(E2E_PROMPT_TOKENS, vocab, args.e2e_seed + 200),
                    "decode_ids": None, "decode_steps": args.decode}
    else:
        prompt_text, prompt_ids = make_prompt(rtnq, args.model, args.prefill, args.seed,
                                              os.path.join(args.work, f"prompt-{args.prefill}.json"))
        log(f"prompt: {len(prompt_ids)} token ids (BOS + seeded words)")
        rtnq_rows, rtnq_raw, decode_ids = [], {}, None
        for w in RTNQ_PLANS:
            for t in threads:
                r = bench_rtnq_generate(rtnq, args.model, w, t, prompt_text, prompt_ids, args, watch)
                rtnq_raw[f"{w}/t{t}"] = r
                reps = r["repeats"]
                if decode_ids is None:
                    decode_ids = reps[0]["generated"][: args.decode]
                rtnq_rows.append({"weights": w, "act": "f32", "threads": t,
                                  "prefill_tps": median([x["prefill_tps"] for x in reps]),
                                  "decode_tps": median([x["decode_tps"] for x in reps]),
                                  "prefill_all": [x["prefill_tps"] for x in reps],
                                  "decode_all": [x["decode_tps"] for x in reps],
                                  "bytes": reps[0]["weight_bytes"],
                                  "bits_per_weight": reps[0]["bits_per_weight"]})
        workload = {"prefill_ids": prompt_ids, "decode_prompt_ids": None, "decode_ids": decode_ids,
                    "decode_steps": args.decode}

    # ---- DRAM bandwidth (for the memory-bound decode limit)
    bw = {}
    for row in rtnq_rows:
        if row.get("dram_gbps"):
            bw[row["threads"]] = row["dram_gbps"]
    bw_source = "rtnq bench e2e" if bw else None
    if not bw:
        bw, bw_source = dram_bandwidth(rtnq, threads, watch)

    # ---- llama.cpp
    builds = []
    if args.llama_avx512 and os.path.isdir(os.path.join(args.llama_avx512, "llama_cpp")):
        builds.append(("avx512", os.path.abspath(args.llama_avx512)))
    builds.append(("venv-avx2", None))
    llama = {}
    llama_rows = []
    for name, (path, summary) in ggufs.items():
        res = bench_llama(sys.executable, builds, path, threads, workload, args, args.work, watch)
        res["gguf"] = summary
        llama[name] = res
        for t in threads:
            reps = res["threads"][str(t)]
            llama_rows.append({"weights": name, "threads": t, "build": res["build"],
                               "prefill_tps": median([x["prefill_tps"] for x in reps]),
                               "decode_tps": median([x["decode_tps"] for x in reps]),
                               "prefill_all": [x["prefill_tps"] for x in reps],
                               "decode_all": [x["decode_tps"] for x in reps],
                               "bytes": summary["tensor_bytes"],
                               "perf_counters": [x["perf"] for x in reps]})
    watch.sample()

    # ---- ratios
    ratios = []
    acts = sorted({r["act"] for r in rtnq_rows})
    for t in threads:
        for act in acts:
            for rw, lw, what, target in RATIOS:
                a = next((r for r in rtnq_rows if r["weights"] == rw and r["threads"] == t
                          and r["act"] == act), None)
                if act == "-":  # the 16-bit reference rows of bench e2e
                    continue
                b = next((r for r in llama_rows if r["weights"] == lw and r["threads"] == t), None)
                if not a or not b:
                    continue
                ratio = a[f"{what}_tps"] / b[f"{what}_tps"]
                ratios.append({"threads": t, "act": act, "rtnq": rw, "llama_cpp": lw, "what": what,
                               "ratio": ratio, "target": target, "met": ratio >= target,
                               "size_ok": (a["bytes"] or 0) <= b["bytes"]})
    for row in rtnq_rows + llama_rows:
        gbps = bw.get(row["threads"])
        if gbps and row["bytes"]:
            row["memory_bound_tps"] = row.get("memory_bound_tps") or gbps * 1e9 / row["bytes"]
            row["decode_fraction_of_bound"] = row["decode_tps"] / row["memory_bound_tps"]

    load = watch.summary(os.cpu_count(), max(threads))
    doc = {"started": started, "host": {"cpu": cpu_name(), "cpus": os.cpu_count(),
                                        "python": platform.python_version()},
           "load": load, "model": args.model, "prefill_tokens": args.prefill,
           "decode_tokens": args.decode, "repeats": args.repeats, "rtnq_bin": rtnq,
           "rtnq_method": method, "dram_read_gbps": bw, "dram_source": bw_source,
           "workload": workload,
           "rtnq": rtnq_rows, "llama_cpp": llama_rows, "ratios": ratios,
           "llama_cpp_detail": {k: {kk: vv for kk, vv in v.items() if kk != "threads"}
                                for k, v in llama.items()},
           "rtnq_detail": rtnq_raw}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=1)
    print_report(doc)
    log(f"wrote {args.json}")


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def print_report(doc):
    load = doc["load"]
    print(f"rtnq vs llama.cpp, {doc['model']}: prefill {doc['prefill_tokens']} tokens as one batch, "
          f"decode {doc['decode_tokens']} single-token steps, median of {doc['repeats']}")
    print(f"host: {doc['host']['cpu']}, {doc['host']['cpus']} CPUs; load average during the runs "
          f"{load.get('min', '?')}-{load.get('max', '?')}"
          + ("  ** MEASURED UNDER LOAD: rerun on a quiet machine **" if load.get("busy") else ""))
    for name, d in doc["llama_cpp_detail"].items():
        print(f"llama.cpp {d['llama_cpp_version']} ({d['build']} build: {d['llama_cpp_path']}) "
              f"{name}: {d['gguf']['tensor_types']}, token_embd {d['gguf']['token_embd']}; "
              f"greedy check {d['check']['greedy_tokens']} (logits finite: {d['check']['logits_finite']})")
        for fb in d.get("fallbacks", []):
            print(f"  ** fell back from the {fb['build']} build: {fb['failure']}")
    first = next(iter(doc["llama_cpp_detail"].values()), None)
    if first:
        print(f"llama.cpp system info: {first['system_info']}")
    wl = doc["workload"]
    print(f"rtnq: {doc['rtnq_bin']} via {doc['rtnq_method']}; prefill ids start {wl['prefill_ids'][:6]}; "
          + (f"decode after {wl['decode_prompt_ids']}, greedy" if wl["decode_ids"] is None
             else f"decode right after the prefill, feeding rtnq's ids {wl['decode_ids'][:6]}..."))
    print()
    hdr = ("engine", "weights", "act", "bytes", "threads", "prefill tok/s", "decode tok/s", "% of DRAM bound")
    rows = []
    for r in doc["llama_cpp"]:
        rows.append(("llama.cpp", r["weights"].upper(), "q8_0",  # ggml quantizes activations to Q8_0
                     fmt_bytes(r["bytes"]), r["threads"], f"{r['prefill_tps']:.1f}",
                     f"{r['decode_tps']:.2f}", pct(r)))
    for r in doc["rtnq"]:
        rows.append(("rtnq", {"rtn4": "RTN-4 g128", "rtn8": "RTN-8 g128", "bf16": "BF16"}[r["weights"]], r["act"],
                     fmt_bytes(r["bytes"]), r["threads"], f"{r['prefill_tps']:.1f}",
                     f"{r['decode_tps']:.2f}", pct(r)))
    rows.sort(key=lambda x: (x[4], x[0] != "llama.cpp", x[1]))
    widths = [max(len(str(x[i])) for x in rows + [hdr]) for i in range(len(hdr))]
    print("  ".join(str(h).ljust(w) for h, w in zip(hdr, widths)))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    if doc["dram_read_gbps"]:
        print("DRAM read GB/s (" + str(doc["dram_source"]) + "): "
              + ", ".join(f"{t} thread(s) {g:.1f}" for t, g in sorted(doc["dram_read_gbps"].items())))
    print()
    print("ratios (rtnq / llama.cpp), issue targets:")
    for r in doc["ratios"]:
        print(f"  threads {r['threads']} act {r['act']}: {r['rtnq']} / {r['llama_cpp']} {r['what']:7s} "
              f"{r['ratio']:.3f}x  (target >= {r['target']}x: {'met' if r['met'] else 'NOT met'}"
              f"{'' if r['size_ok'] else '; rtnq model LARGER in bytes'})")


def pct(r):
    f = r.get("decode_fraction_of_bound")
    return f"{100 * f:.0f}%" if f else "-"


if __name__ == "__main__":
    sys.exit(main())
