#!/usr/bin/env python3
"""Golden reference logits from HF transformers for rtnq's synthetic models.

For each (shape, seed, dtype) in MODELS, runs `rtnq synth` into a temp dir, loads the result with
transformers (AutoModelForCausalLM, eager attention, weights as stored converted to float32,
float32 activations, CPU) and writes tests/golden/hf_synth_<shape>_s<seed>_<dtype>.json with the
full logits of every position of a few fixed token-id prompts (schema: tests/golden/README.md).

  .venv/bin/python scripts/reference/hf_ref.py [--rtnq build/release/tools/rtnq/rtnq]
  .venv/bin/python scripts/reference/hf_ref.py --dev-models --out-dir /tmp/x   # no rtnq needed
"""
import argparse
import hashlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile

import torch
import transformers
import safetensors
from transformers import AutoModelForCausalLM

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_json import dump_golden, round_sig  # noqa: E402

MODELS = [("tiny-llama3", 1, "f32"), ("tiny-llama3", 1, "bf16"),
          ("tiny-qwen2", 2, "f32"), ("tiny-qwen2", 2, "bf16")]
PROMPT_LENGTHS = [1, 7, 19, 33]
PROMPT_SEED = 20240601
SIG_DIGITS = 7


def prompts(vocab_size):
    rng = random.Random(PROMPT_SEED)
    return [[rng.randrange(vocab_size) for _ in range(n)] for n in PROMPT_LENGTHS]


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_synth(rtnq, shape, seed, dtype, out_dir):
    cmd = [rtnq, "synth", "--shape", shape, "--seed", str(seed), "--dtype", dtype, "-o", out_dir]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def write_dev_model(shape, seed, dtype, out_dir):
    """A stand-in for `rtnq synth` (same config layout, different random weights) so this script
    can be exercised without the rtnq binary. Never used for committed goldens."""
    from safetensors.torch import save_file
    llama = shape == "tiny-llama3"
    inter, layers = (160, 3) if llama else (96, 2)
    cfg = {"architectures": ["LlamaForCausalLM" if llama else "Qwen2ForCausalLM"],
           "model_type": "llama" if llama else "qwen2", "vocab_size": 320, "hidden_size": 64,
           "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": 4,
           "num_key_value_heads": 2, "head_dim": 16, "hidden_act": "silu",
           "rms_norm_eps": 1e-5 if llama else 1e-6, "rope_theta": 500000.0 if llama else 1e6,
           "max_position_embeddings": 512, "tie_word_embeddings": llama,
           "attention_bias": not llama, "eos_token_id": 319,
           "torch_dtype": {"f32": "float32", "bf16": "bfloat16"}[dtype]}
    if llama:
        cfg["bos_token_id"] = 318
        cfg["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g) * 0.1  # noqa: E731
    t = {"model.embed_tokens.weight": rnd(320, 64), "model.norm.weight": 1 + rnd(64)}
    if not llama:
        t["lm_head.weight"] = rnd(320, 64)
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = 1 + rnd(64)
        t[p + "post_attention_layernorm.weight"] = 1 + rnd(64)
        for name, rows in (("q", 64), ("k", 32), ("v", 32)):
            t[p + f"self_attn.{name}_proj.weight"] = rnd(rows, 64)
            if not llama:
                t[p + f"self_attn.{name}_proj.bias"] = rnd(rows)
        t[p + "self_attn.o_proj.weight"] = rnd(64, 64)
        t[p + "mlp.gate_proj.weight"] = rnd(inter, 64)
        t[p + "mlp.up_proj.weight"] = rnd(inter, 64)
        t[p + "mlp.down_proj.weight"] = rnd(64, inter)
    torch_dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[dtype]
    save_file({k: v.to(torch_dtype).contiguous() for k, v in t.items()},
              os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def rope_inv_freq(model):
    rotary = getattr(model.model, "rotary_emb", None)
    if rotary is None:  # older transformers keep it per layer
        rotary = model.model.layers[0].self_attn.rotary_emb
    return [float(x) for x in rotary.inv_freq], float(getattr(rotary, "attention_scaling", 1.0))


def reference(model_dir, shape, seed, dtype):
    # torch_dtype=float32: bf16 weights are upcast exactly; all arithmetic is float32.
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    inv_freq, attention_scaling = rope_inv_freq(model)
    print(f"{shape} s{seed} {dtype}: {type(model).__name__}, rope_scaling={config.get('rope_scaling')}, "
          f"inv_freq={['%.4g' % x for x in inv_freq]}", flush=True)
    entries = []
    for ids in prompts(config["vocab_size"]):
        with torch.no_grad():
            logits = model(torch.tensor([ids], dtype=torch.long), use_cache=False).logits[0]
        assert logits.dtype == torch.float32
        entries.append({"token_ids": ids,
                        "argmax": [int(x) for x in logits.argmax(dim=-1)],
                        "logits": [[round_sig(x, SIG_DIGITS) for x in row.tolist()] for row in logits]})
    return {
        "description": f"HF transformers logits for `rtnq synth --shape {shape} --seed {seed} --dtype {dtype}`",
        "generator": "scripts/reference/hf_ref.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "safetensors": safetensors.__version__, "python": platform.python_version()},
        "synth": {"shape": shape, "seed": seed, "dtype": dtype},
        "model_class": type(model).__name__,
        "compute": "CPU, float32 weights (as stored, upcast) and activations, eager attention, no KV cache",
        "model_safetensors_sha256": sha256_file(os.path.join(model_dir, "model.safetensors")),
        "config_json_sha256": sha256_file(os.path.join(model_dir, "config.json")),
        "config": config,
        "rope_inv_freq": inv_freq,
        "rope_attention_scaling": attention_scaling,
        "significant_digits": SIG_DIGITS,
        "vocab_size": config["vocab_size"],
        "prompts": entries,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtnq", default=os.path.join(REPO, "build", "release", "tools", "rtnq", "rtnq"))
    ap.add_argument("--out-dir", default=os.path.join(REPO, "tests", "golden"))
    ap.add_argument("--dev-models", action="store_true",
                    help="use this script's own stand-in models instead of rtnq synth (development only)")
    args = ap.parse_args()
    golden_dir = os.path.realpath(os.path.join(REPO, "tests", "golden"))
    if args.dev_models and os.path.realpath(args.out_dir) == golden_dir:
        sys.exit("--dev-models output must not go to tests/golden: pass --out-dir")
    if not args.dev_models and not os.access(args.rtnq, os.X_OK):
        sys.exit(f"rtnq binary not found at {args.rtnq} (build it, or pass --rtnq)")
    torch.manual_seed(0)
    torch.set_num_threads(2)
    for shape, seed, dtype in MODELS:
        with tempfile.TemporaryDirectory(prefix="rtnq_synth_") as tmp:
            model_dir = os.path.join(tmp, "model")
            os.makedirs(model_dir)
            if args.dev_models:
                write_dev_model(shape, seed, dtype, model_dir)
            else:
                run_synth(args.rtnq, shape, seed, dtype, model_dir)
            golden = reference(model_dir, shape, seed, dtype)
        if args.dev_models:
            golden["dev_model"] = True
        out = os.path.join(args.out_dir, f"hf_synth_{shape}_s{seed}_{dtype}.json")
        dump_golden(golden, out)
        print(f"wrote {out} ({os.path.getsize(out)} bytes)", flush=True)


if __name__ == "__main__":
    main()
