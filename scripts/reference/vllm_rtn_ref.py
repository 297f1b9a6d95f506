#!/usr/bin/env python3
"""vLLM's RTN quantization, re-implemented in torch, on inputs rtnq can regenerate exactly.

Writes tests/golden/vllm_rtn.json: for each case the FNV-1a-64 hashes of the codes and scales that
vLLM's `rtn_quantize` produces (in rtnq's canonical layout), so that rtnq's `--arithmetic vllm` can be
checked bit for bit without torch at test time (tests/vllm_rtn_golden_test.cpp).

vLLM (vllm/model_executor/layers/quantization/rtn.py, rtn_quantize) runs on the GPU in the weight's
dtype. Per group of G consecutive inputs of a row:
    scale = amax * 2.0 / (2**bits - 1)          # bf16 tensor / Python scalar
    x     = w / scale                            # bf16 / bf16
    u     = clamp(round(x) + 2**(bits-1), 0, 2**bits - 1)
On CUDA, torch evaluates `tensor / python_scalar` as `tensor * (1 / scalar)` with the reciprocal in
float32 (BinaryDivTrueKernel.cu), and every bf16 op computes in float32 and rounds back to bf16.
This script reproduces those steps explicitly, op by op, so it gives the GPU result on the CPU.

Inputs (integer-exact, so C++ regenerates identical bf16 values):
  * synthetic bf16 matrices from splitmix64: random sign/exponent/mantissa bits, outlier columns,
    all-zero groups and groups built so w/scale lands exactly on .5 (ties);
  * every 2-D tensor of $RTNQ_DATA/models/stories260K/stories260K-F32.gguf rounded to bf16.
"""
import json
import os
import sys

import numpy as np
import torch

MASK64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def synthetic_bf16(rows, cols, seed, group):
    """bf16 bit patterns; mirrors SyntheticBf16() in tests/vllm_rtn_golden_test.cpp."""
    state = seed
    bits = np.zeros(rows * cols, dtype=np.uint16)
    for i in range(rows * cols):
        state, r = splitmix64(state)
        sign = (r >> 63) & 1
        exponent = 120 + (r >> 8) % 8          # magnitudes 2^-7 .. 2^0
        if (i % cols) % 37 == 5:
            exponent += 4                      # outlier input channels
        mantissa = r & 0x7F
        bits[i] = (sign << 15) | (exponent << 7) | mantissa
    bits = bits.reshape(rows, cols)
    # Row 1: its first group all zeros. Row 2: a group of exact ties (scale 0.25 at 4 bits,
    # 2^-7 at 8 bits); built in ties_group_bf16().
    bits[1, :group] = 0
    bits[2, :group] = ties_group_bf16(group)
    return bits


def ties_group_bf16(group):
    """amax 1.875 -> 4-bit scale 0.25; values k/8 give w/scale = k/2 (ties at odd k).
    For 8 bits amax 1.875 gives scale 1.875*2/255 (inexact): the ties then exercise rounding."""
    vals = [1.875] + [((k % 15) - 7) / 8.0 for k in range(group - 1)]
    t = torch.tensor(vals, dtype=torch.float32).to(torch.bfloat16)
    return t.view(torch.int16).numpy().astype(np.uint16)


def vllm_rtn(w_bf16, bits, group):
    """w_bf16: torch.bfloat16 [N, K]. Returns (codes uint8 [N, K], scales bf16 [N, K/G])."""
    n, k = w_bf16.shape
    g = k if group == 0 else group
    flat = w_bf16.reshape(-1, g)
    amax = torch.max(flat.min(dim=1, keepdim=True)[0].abs(), flat.max(dim=1, keepdim=True)[0].abs())
    two_amax = amax * 2.0                                            # exact in bf16
    inv = torch.tensor(1.0, dtype=torch.float32) / torch.tensor(float(2**bits - 1), dtype=torch.float32)
    scale = (two_amax.float() * inv).to(torch.bfloat16)              # CUDA: a * (1/b) in f32
    x = (flat.float() / scale.float()).to(torch.bfloat16)            # bf16 / bf16 -> rounded bf16
    r = torch.round(x.float())                                       # half to even
    u = torch.clamp(r + 2 ** (bits - 1), 0, 2**bits - 1)
    zero = scale.float() == 0
    u = torch.where(zero.expand_as(u), torch.full_like(u, 2 ** (bits - 1)), u)  # 0/0: level 0
    return u.to(torch.uint8).reshape(n, k), scale.reshape(n, k // g)


def canonical_codes(codes, bits):
    c = codes.numpy()
    if bits == 8:
        return c.tobytes()
    return (c[:, 0::2] | (c[:, 1::2] << 4)).astype(np.uint8).tobytes()


def fnv1a64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return f"{h:016x}"


def case(name, w_bf16, bits, group):
    codes, scales = vllm_rtn(w_bf16, bits, group)
    return {
        "name": name, "rows": w_bf16.shape[0], "cols": w_bf16.shape[1], "bits": bits, "group": group,
        "codes_fnv1a64": fnv1a64(canonical_codes(codes, bits)),
        "scales_fnv1a64": fnv1a64(scales.view(torch.int16).numpy().astype("<u2").tobytes()),
        "first_codes": codes[0, :8].tolist(),
    }


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    data = os.environ.get("RTNQ_DATA", os.path.join(root, "..", "shared", "data"))
    cases = []
    for bits in (8, 4):
        for group in (32, 128, 0):
            rows, cols = 24, 256
            w = torch.from_numpy(synthetic_bf16(rows, cols, 1000 + bits * 10 + group, group or cols).view(np.int16)).view(torch.bfloat16)
            cases.append(case(f"synthetic_b{bits}_g{group}", w, bits, group))
    import gguf
    reader = gguf.GGUFReader(os.path.join(data, "models/stories260K/stories260K-F32.gguf"))
    for t in reader.tensors:
        if len(t.shape) != 2:
            continue
        cols = int(t.shape[0])
        arr = np.array(t.data, dtype=np.float32).reshape(-1, cols)
        w = torch.from_numpy(arr).to(torch.bfloat16)  # round to nearest even
        for bits in (8, 4):
            group = 32 if cols % 32 == 0 else 0
            cases.append(case(f"stories260K/{t.name}_b{bits}_g{group}", w, bits, group))
    out = {
        "description": "vLLM rtn_quantize (CUDA semantics, bf16) codes/scales hashes; see scripts/reference/vllm_rtn_ref.py",
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
        "hash": "FNV-1a 64 over canonical codes (int8 [N][K]; int4 [N][K/2], even k low nibble) and bf16 scales [N][K/G] little-endian",
        "cases": cases,
    }
    path = os.path.join(root, "tests/golden/vllm_rtn.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
