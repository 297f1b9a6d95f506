#!/usr/bin/env python3
"""Golden references for rtnq's quantized exports, computed by the formats' own libraries.

Runs `rtnq synth` / `rtnq quantize` (the binary given by --rtnq) on deterministic inputs and writes
(schemas: tests/golden/README.md):

  tests/golden/export_compressed_tensors.json
      every quantized weight of rtnq's compressed-tensors exports decompressed by the
      `compressed-tensors` library (ModelCompressor.decompress into an HF LlamaForCausalLM built
      from the export's config.json, which also exercises the config groups' targets), hashed as
      the scales' dtype (bf16 / f16); plus HF transformers' AutoModelForCausalLM.from_pretrained on the export (does it load,
      same weights, logits of a few prompts in float32).
  tests/golden/export_gptq.json
      rtnq's GPTQ exports decoded by the independent numpy decoder below (written from the GPTQ
      checkpoint convention: qweight packed along K, qzeros "v1" (+1), fp16 scales, g_idx), hashed
      as f32.
  tests/golden/export_gguf.json
      stories260K-F32.gguf exported as Q8_0 / Q4_0: every quantized tensor's bytes against
      gguf-py's gguf.quants.quantize of the source weights, and llama.cpp's (llama-cpp-python)
      perplexity of the exports, llama-perplexity's definition (reusing llamacpp_ref.py).

Hashes are FNV-1a 64 over the little-endian bytes (as tests/golden/vllm_rtn.json), as 16 hex digits.
Run with the reference venv:
  .venv/bin/python scripts/reference/export_ref.py --rtnq build/release/tools/rtnq/rtnq
"""
import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_json import dump_golden, round_sig  # noqa: E402

# torch 1.13 (Debian) predates float8: compressed-tensors 0.9.4 only names torch.float8_e4m3fn as
# a module constant (FP8_DTYPE) at import; the int pack-quantized path never uses it. A unique
# placeholder (not a real dtype, so no dtype comparison can match it by accident) lets it import.
# 0.10+ also call torch.compile and torch.finfo(float8) at import, hence the 0.9.4 pin.
if not hasattr(torch, "float8_e4m3fn"):
    class _NoFloat8:
        def __repr__(self):
            return "<torch.float8_e4m3fn: missing in torch 1.13>"
    torch.float8_e4m3fn = _NoFloat8()

import compressed_tensors  # noqa: E402
import transformers  # noqa: E402
from compressed_tensors.compressors import ModelCompressor  # noqa: E402

SYNTH = {"shape": "tiny-llama3", "seed": 1, "dtype": "bf16"}

# rtnq quantize arguments per case (after MODEL; -o and --format are added). tiny-llama3's linear
# layers have 64 or 160 inputs, so g128 divides none of them: the rtn8:g128 case falls back to one
# group per row (compressed-tensors' "channel" strategy, GPTQ group_size -1).
CT_CASES = {
    "rtn4_g32_upcast_first1": ["--quant", "rtn4:g32", "--upcast-layers", "first:1"],
    "rtn8_g128_fallback_row": ["--quant", "rtn8:g128", "--group-fallback", "row"],
    "rtn4_g32_f16_down_int8_row": ["--quant", "rtn4:g32:f16", "--upcast-modules", "mlp_down",
                                   "--upcast-to", "int8:row:f16"],
}
GPTQ_CASES = CT_CASES
GGUF_CASES = {
    "rtn8_g32": ["--quant", "rtn8:g32"],
    "rtn4_g32": ["--quant", "rtn4:g32"],
}
PPL_N_CTX = 512
LOGITS_PROMPTS_SEED = 7
LOGITS_PROMPT_LENGTHS = (1, 9, 23)


def fnv1a64(data):
    """FNV-1a 64 of a bytes-like object (byte-serial; the tensors here are at most a few MB)."""
    h = 0xcbf29ce484222325
    prime = 0x100000001b3
    mask = 0xFFFFFFFFFFFFFFFF
    for b in bytes(data):
        h = ((h ^ b) * prime) & mask
    return f"{h:016x}"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def rtnq_export(rtnq, model, args, fmt, out):
    run([rtnq, "quantize", model, *args, "--format", fmt, "-o", out])


def prompts(vocab_size):
    rng = np.random.default_rng(LOGITS_PROMPTS_SEED)
    return [[int(x) for x in rng.integers(0, vocab_size, n)] for n in LOGITS_PROMPT_LENGTHS]


# --- compressed-tensors -----------------------------------------------------------------------

def half_hash(t):
    """FNV-1a 64 of a bf16 or f16 tensor's little-endian bytes."""
    assert t.dtype in (torch.bfloat16, torch.float16), t.dtype
    return fnv1a64(t.contiguous().view(torch.int16).numpy().astype("<i2").tobytes())


def scale_dtype(export_dir):
    """The dtype of the export's weight_scale tensors (all cases here use one scale dtype), which is
    the dtype compressed-tensors decompresses to (dequantize() computes in the scale's dtype)."""
    from safetensors import safe_open
    with safe_open(os.path.join(export_dir, "model.safetensors"), framework="pt") as f:
        dtypes = {f.get_tensor(n).dtype for n in f.keys() if n.endswith(".weight_scale")}
    assert len(dtypes) == 1, dtypes
    return dtypes.pop()


def quantized_modules(export_dir):
    from safetensors import safe_open
    mods = {}
    with safe_open(os.path.join(export_dir, "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            if name.endswith(".weight_packed"):
                mods[name[:-len(".weight_packed")]] = list(f.get_slice(name).get_shape())
    return mods


def model_from_config(export_dir, dtype):
    config = transformers.AutoConfig.from_pretrained(export_dir)
    del config.quantization_config  # a plain model: ModelCompressor applies the scheme itself
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config, torch_dtype=dtype,
                                                         attn_implementation="eager").eval()


def logits_of(model, prompt_ids):
    out = []
    with torch.no_grad():
        for ids in prompt_ids:
            logits = model(torch.tensor([ids])).logits[0].float()
            out.append({"token_ids": ids, "argmax": [int(x) for x in logits.argmax(-1)],
                        "logits": [[round_sig(float(x), 7) for x in row] for row in logits]})
    return out


def f32_dequantized_model(export_dir):
    """The export with level * scale computed in float32 (no 16-bit rounding of the products, as
    rtnq computes them): codes from compressed-tensors' own unpack_from_int32."""
    from safetensors import safe_open
    from compressed_tensors.compressors.quantized_compressors.pack_quantized import unpack_from_int32
    m = model_from_config(export_dir, torch.float32)
    sd = m.state_dict()
    with safe_open(os.path.join(export_dir, "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            if name.endswith(".weight_packed"):
                mod = name[:-len(".weight_packed")]
                n, k = (int(x) for x in f.get_tensor(mod + ".weight_shape"))
                packed = f.get_tensor(name)
                bits = 8 if packed.shape[1] == (k * 8 + 31) // 32 else 4
                levels = unpack_from_int32(packed, bits, torch.Size([n, k])).float()
                scale = f.get_tensor(mod + ".weight_scale").float()
                sd[mod + ".weight"] = levels * scale.repeat_interleave(k // scale.shape[1], dim=1)
            elif not name.endswith((".weight_scale", ".weight_shape")):
                sd[name] = f.get_tensor(name).float()
    if m.config.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    m.load_state_dict(sd, strict=True)
    return m


def compressed_tensors_case(export_dir, qcfg):
    mods = quantized_modules(export_dir)
    # 1. The library's decompression: ModelCompressor.decompress into a LlamaForCausalLM.
    #    apply_quantization_config matches the config groups' targets against the module names,
    #    so a module matched by the wrong group would be unpacked with the wrong bit width.
    # The model gets the scales' dtype so that ModelCompressor's copy into the parameters does not
    # round the decompressed values a second time.
    dtype = scale_dtype(export_dir)
    compressor = ModelCompressor.from_pretrained(export_dir)
    model = model_from_config(export_dir, dtype)
    compressor.decompress(export_dir, model)
    params = dict(model.named_parameters())
    tensors = []
    for module in sorted(mods):
        w = params[module + ".weight"].detach()
        scheme = model.get_submodule(module).quantization_scheme.weights
        tensors.append({"module": module, "shape": list(w.shape), "num_bits": scheme.num_bits,
                        "strategy": str(scheme.strategy.value if hasattr(scheme.strategy, "value") else scheme.strategy),
                        "group_size": scheme.group_size,
                        "dtype": str(w.dtype).replace("torch.", ""), "fnv1a64": half_hash(w)})
    lib_hashes = {t["module"]: t["fnv1a64"] for t in tensors}
    del model

    # 2. HF transformers loading the export as a quantized checkpoint (compressed-tensors
    #    HfQuantizer, run_compressed=False: weights decompressed at load).
    hf = {"api": "transformers.AutoModelForCausalLM.from_pretrained(dir, quantization_config="
                 "CompressedTensorsConfig(run_compressed=False), torch_dtype=<scale dtype>, low_cpu_mem_usage=False)"}
    try:
        cfg = transformers.CompressedTensorsConfig(run_compressed=False)
        m = transformers.AutoModelForCausalLM.from_pretrained(export_dir, quantization_config=cfg,
                                                              torch_dtype=dtype,
                                                              attn_implementation="eager",
                                                              low_cpu_mem_usage=False).eval()
        p = dict(m.named_parameters())
        same = all(half_hash(p[mod + ".weight"].detach()) == h for mod, h in lib_hashes.items())
        hf["loads"] = True
        hf["weights_identical_to_decompress"] = same
        # The model as loaded (16-bit activations, compressed-tensors' forward hooks) against the
        # f32 copy below: shows it runs and that no module got a stray quantization scheme.
        ids = prompts(m.config.vocab_size)[-1]
        try:
            with torch.no_grad():
                native = m(torch.tensor([ids])).logits[0].float()
        except RuntimeError as e:  # torch 1.13 has no f16 clamp on CPU
            native = None
            hf["as_loaded_forward_error"] = f"{type(e).__name__}: {e}"[:300]
        hf["modules_with_scheme"] = sorted(n for n, mod in m.named_modules()
                                           if getattr(mod, "quantization_scheme", None) is not None)
        # transformers refuses .float() on a quantized model: copy its (decompressed) state into a
        # plain float32 model (16-bit -> f32 is exact); f32 activations, as hf_ref.py.
        plain = model_from_config(export_dir, torch.float32)
        want = plain.state_dict()
        plain.load_state_dict({k: v.float() for k, v in m.state_dict().items() if k in want}, strict=True)
        m = plain
        hf["compute"] = ("CPU, decompressed 16-bit weights converted to float32 (exact), float32 "
                         "activations, attention " + str(m.config._attn_implementation))
        hf["significant_digits"] = 7
        hf["prompts"] = logits_of(m, prompts(m.config.vocab_size))
        with torch.no_grad():
            ref = m(torch.tensor([ids])).logits[0]
        if native is not None:
            hf["as_loaded_16bit_max_abs_diff_vs_f32"] = float((native - ref).abs().max())
        hf["f32_max_abs_logit"] = float(ref.abs().max())
        del m
    except Exception as e:  # recorded, not fatal: the decompression above is the main reference
        hf["loads"] = False
        hf["error"] = f"{type(e).__name__}: {e}"[:500]
    f32 = f32_dequantized_model(export_dir)
    hf["prompts_f32_products"] = logits_of(f32, prompts(f32.config.vocab_size))
    return tensors, hf


# --- GPTQ -------------------------------------------------------------------------------------

def gptq_bits_group(qcfg, module):
    """bits/group_size of `module` per the GPTQ config's `dynamic` (first match wins, re.match:
    anchored at the start; "-:" = not quantized), else the base values."""
    for pattern, over in qcfg.get("dynamic", {}).items():
        if pattern.startswith("-:"):
            if re.match(pattern[2:], module):
                return None
            continue
        body = pattern[2:] if pattern.startswith("+:") else pattern
        if re.match(body, module):
            return over.get("bits", qcfg["bits"]), over.get("group_size", qcfg["group_size"])
    return qcfg["bits"], qcfg["group_size"]


def gptq_decode(qweight, qzeros, scales, g_idx, bits):
    """W[N, K] in float32 from GPTQ tensors: qweight int32 [K/pf, N], codes of k = r*pf + i at bits
    bits*i of word (r, n); qzeros int32 [K/G, N/pf] packed along N the same way, stored minus one
    (the "v1" checkpoint format: W = (q - (z + 1)) * s); scales fp16 [K/G, N]; g_idx int32 [K]."""
    pf = 32 // bits
    mask = (1 << bits) - 1
    qw = qweight.astype(np.int64) & 0xFFFFFFFF
    shifts = (np.arange(pf) * bits)[None, :, None]
    q = ((qw[:, None, :] >> shifts) & mask).reshape(-1, qw.shape[1])            # [K, N]
    qz = qzeros.astype(np.int64) & 0xFFFFFFFF
    z = ((qz[:, :, None] >> (np.arange(pf) * bits)[None, None, :]) & mask).reshape(qz.shape[0], -1) + 1
    g = g_idx.astype(np.int64)
    level = (q - z[g, :]).astype(np.float32)                                    # exact small ints
    w = level * scales.astype(np.float32)[g, :]                                 # one f32 rounding
    return np.ascontiguousarray(w.T), z


def gptq_case(export_dir):
    from safetensors import safe_open
    st = {}
    with safe_open(os.path.join(export_dir, "model.safetensors"), framework="pt") as f:
        for name in f.keys():  # numpy has no bf16: only the GPTQ tensors are needed
            if name.rsplit(".", 1)[-1] in ("qweight", "qzeros", "scales", "g_idx"):
                st[name] = f.get_tensor(name).numpy()
    with open(os.path.join(export_dir, "config.json")) as f:
        qcfg = json.load(f)["quantization_config"]
    with open(os.path.join(export_dir, "quantize_config.json")) as f:
        same_qc = json.load(f) == qcfg
    tensors = []
    for name in sorted(n for n in st if n.endswith(".qweight")):
        module = name[:-len(".qweight")]
        bg = gptq_bits_group(qcfg, module)
        assert bg is not None, f"{module}: quantized tensors but config says not quantized"
        bits, group = bg
        qweight, qzeros = st[module + ".qweight"], st[module + ".qzeros"]
        scales, g_idx = st[module + ".scales"], st[module + ".g_idx"]
        assert scales.dtype == np.float16 and qweight.dtype == np.int32, module
        k, n = qweight.shape[0] * (32 // bits), qweight.shape[1]
        glen = k if group == -1 else group
        assert scales.shape == (k // glen, n), (module, scales.shape, k, n, glen)
        w, z = gptq_decode(qweight, qzeros, scales, g_idx, bits)
        tensors.append({"module": module, "shape": [n, k], "bits": bits, "group_size": group,
                        "g_idx_is_k_div_group": bool((g_idx == np.arange(k) // glen).all()),
                        "zero_points": sorted(int(v) for v in np.unique(z)),
                        "f32_fnv1a64": fnv1a64(w.astype("<f4").tobytes()),
                        "max_abs": float(np.abs(w).max())})
    return {"quantize_config_json_equals_config": same_qc,
            "bits": qcfg["bits"], "group_size": qcfg["group_size"],
            "dynamic": qcfg.get("dynamic", {})}, tensors


# --- GGUF -------------------------------------------------------------------------------------

def gguf_case(src_path, export_path):
    import gguf
    src = {t.name: t for t in gguf.GGUFReader(src_path).tensors}
    out = gguf.GGUFReader(export_path)
    tensors = []
    for t in out.tensors:
        qtype = gguf.GGMLQuantizationType(t.tensor_type)
        entry = {"name": t.name, "type": qtype.name, "shape_ggml": [int(x) for x in t.shape]}
        if qtype in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0):
            s = src[t.name]
            assert gguf.GGMLQuantizationType(s.tensor_type) == gguf.GGMLQuantizationType.F32, t.name
            w = np.asarray(s.data, dtype=np.float32)          # [rows, cols], GGUF row order
            ref = gguf.quants.quantize(w, qtype)
            mine = np.asarray(t.data).tobytes()
            entry["gguf_quantize_fnv1a64"] = fnv1a64(ref.tobytes())
            entry["rtnq_bytes_equal"] = mine == ref.tobytes()
            entry["nbytes"] = len(ref.tobytes())
        tensors.append(entry)
    return tensors


def main():
    data_default = os.environ.get("RTNQ_DATA", os.path.join(REPO, "..", "shared", "data"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rtnq", required=True, help="the rtnq binary")
    ap.add_argument("--data", default=data_default, help="shared data dir (default: $RTNQ_DATA)")
    ap.add_argument("--out-dir", default=os.path.join(REPO, "tests", "golden"))
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    ap.add_argument("--max-chunks", type=int, default=0, help="debug: limit perplexity chunks")
    ap.add_argument("--only", choices=["ct", "gptq", "gguf"], action="append",
                    help="debug: write only these files")
    args = ap.parse_args()
    only = set(args.only or ["ct", "gptq", "gguf"])
    rtnq = os.path.abspath(args.rtnq)
    tmp = tempfile.TemporaryDirectory(prefix="rtnq_export_ref_")
    synth_dir = os.path.join(tmp.name, "synth")
    run([rtnq, "synth", "--shape", SYNTH["shape"], "--seed", str(SYNTH["seed"]), "--dtype", SYNTH["dtype"],
         "-o", synth_dir])
    synth_sha = sha256_file(os.path.join(synth_dir, "model.safetensors"))
    versions = {"compressed_tensors": compressed_tensors.__version__, "transformers": transformers.__version__,
                "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}

    if "ct" in only:
        cases = {}
        for label, qargs in CT_CASES.items():
            d = os.path.join(tmp.name, "ct_" + label)
            rtnq_export(rtnq, synth_dir, qargs, "compressed-tensors", d)
            with open(os.path.join(d, "config.json")) as f:
                qcfg = json.load(f)["quantization_config"]
            tensors, hf = compressed_tensors_case(d, qcfg)
            cases[label] = {"rtnq_args": qargs, "config_groups": {
                g: {"targets": v["targets"], "num_bits": v["weights"]["num_bits"],
                    "strategy": v["weights"]["strategy"], "group_size": v["weights"]["group_size"]}
                for g, v in qcfg["config_groups"].items()}, "ignore": qcfg["ignore"],
                "tensors": tensors, "hf_transformers": hf}
            print(f"ct {label}: {len(tensors)} tensors; bits used " +
                  str(sorted({t['num_bits'] for t in tensors})) + f"; HF loads: {hf['loads']}" +
                  (f", same weights: {hf.get('weights_identical_to_decompress')}" if hf["loads"] else
                   f" ({hf.get('error')})"), flush=True)
        dump_golden({
            "description": "rtnq compressed-tensors exports decompressed by the compressed-tensors library "
                           "(see tests/golden/README.md)",
            "generator": "scripts/reference/export_ref.py", "versions": versions,
            "decompress_api": "compressed_tensors.compressors.ModelCompressor.from_pretrained(dir)"
                              ".decompress(dir, LlamaForCausalLM.from_config(config, torch_dtype=<scale dtype>))",
            "hash": "FNV-1a 64 of the decompressed weight [N, K] as little-endian bytes of its dtype "
                    "(the scales' dtype: level * scale rounded once to it)",
            "synth": SYNTH, "model_safetensors_sha256": synth_sha, "cases": cases},
            os.path.join(args.out_dir, "export_compressed_tensors.json"))

    if "gptq" in only:
        cases = {}
        for label, qargs in GPTQ_CASES.items():
            d = os.path.join(tmp.name, "gptq_" + label)
            rtnq_export(rtnq, synth_dir, qargs, "gptq", d)
            config, tensors = gptq_case(d)
            cases[label] = {"rtnq_args": qargs, "config": config, "tensors": tensors}
            print(f"gptq {label}: {len(tensors)} tensors, bits " + str(sorted({t['bits'] for t in tensors})),
                  flush=True)
        dump_golden({
            "description": "rtnq GPTQ exports decoded by an independent numpy GPTQ decoder "
                           "(see tests/golden/README.md)",
            "generator": "scripts/reference/export_ref.py", "versions": versions,
            "decoder": "W[n][k] = f32(q[k][n] - (z[g_idx[k]][n] + 1)) * f32(scales[g_idx[k]][n]), "
                       "one f32 rounding; bits/group per module from quantization_config (dynamic: "
                       "first re.match wins)",
            "hash": "FNV-1a 64 of W [N, K] as f32 little-endian bytes",
            "synth": SYNTH, "model_safetensors_sha256": synth_sha, "cases": cases},
            os.path.join(args.out_dir, "export_gptq.json"))

    if "gguf" in only:
        import gguf
        import llama_cpp
        import llamacpp_ref as lr
        src = os.path.join(args.data, "models", "stories260K", "stories260K-F32.gguf")
        text_path = os.path.join(args.data, "text", "tinystories_val.txt")
        with open(text_path, "rb") as f:
            text = f.read().decode("utf-8")
        if text.endswith("\n"):
            text = text[:-1]  # llama.cpp's -f drops one trailing newline
        llm = lr.open_model(src, PPL_N_CTX, args.threads, kv_f32=True)
        src_tokens = lr.tokenize(llm, text)
        del llm
        cases = {}
        for label, qargs in GGUF_CASES.items():
            path = os.path.join(tmp.name, f"stories260K-{label}.gguf")
            rtnq_export(rtnq, src, qargs, "gguf", path)
            tensors = gguf_case(src, path)
            llm = lr.open_model(path, PPL_N_CTX, args.threads, kv_f32=True)
            tokens = lr.tokenize(llm, text)
            if args.max_chunks:
                tokens = tokens[:args.max_chunks * PPL_N_CTX]
            r = lr.perplexity(llm, tokens, PPL_N_CTX)
            del llm
            r["tokenization_identical_to_source_gguf"] = (
                tokens == (src_tokens[:len(tokens)] if args.max_chunks else src_tokens))
            quantized = [t for t in tensors if "rtnq_bytes_equal" in t]
            cases[label] = {"rtnq_args": qargs, "tensors": tensors, "perplexity": r,
                            "all_quantized_bytes_equal": all(t["rtnq_bytes_equal"] for t in quantized)}
            print(f"gguf {label}: {len(quantized)} quantized tensors, bytes equal to gguf.quants: "
                  f"{cases[label]['all_quantized_bytes_equal']}; llama.cpp ppl {r['ppl']:.6f} "
                  f"({r['n_chunk']} chunks)", flush=True)
        dump_golden({
            "description": "rtnq GGUF exports of stories260K-F32.gguf checked against gguf-py's quantizer "
                           "and llama.cpp's perplexity (see tests/golden/README.md)",
            "generator": "scripts/reference/export_ref.py",
            "versions": {"gguf": gguf.__version__ if hasattr(gguf, "__version__") else
                         __import__("importlib.metadata").metadata.version("gguf"),
                         "llama_cpp_python": llama_cpp.__version__, "numpy": np.__version__,
                         "python": platform.python_version(),
                         "llama_system_info": llama_cpp.llama_print_system_info().decode().strip()},
            "source": {"file": "models/stories260K/stories260K-F32.gguf", "sha256": sha256_file(src)},
            "hash": "FNV-1a 64 of gguf.quants.quantize(source f32 weights [rows, cols] in GGUF row order, type)",
            "perplexity_settings": {"text": os.path.relpath(text_path, args.data),
                                    "text_sha256": sha256_file(text_path), "n_ctx": PPL_N_CTX,
                                    "first": PPL_N_CTX // 2, "kv_cache": "f32", "threads": args.threads,
                                    "max_chunks": args.max_chunks},
            "cases": cases},
            os.path.join(args.out_dir, "export_gguf.json"))
    tmp.cleanup()


if __name__ == "__main__":
    main()
