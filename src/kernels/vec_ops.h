// Small vector primitives (dot products, axpy, the SwiGLU activation), with an ISA chosen once
// per process. The summation order and the exp are fixed per ISA, and each element of
// silu_mul's output depends only on its own inputs (never on n or its position in the array), so
// results do not depend on the caller's batch or thread split.
#pragma once

#include <cstdint>

#include "base/cpu_features.h"

namespace rtnq {

struct VecOps {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);  // y += alpha * x
  // out = silu(gate) * up = gate / (1 + exp(-gate)) * up; the AVX-512 exp is within 2 ulp of
  // std::exp (attention's): ~6 us instead of ~24 us for Llama-3.2-1B's 8192 per layer and token.
  void (*silu_mul)(const float* gate, const float* up, float* out, int64_t n);
  Isa isa;
};

const VecOps& GetVecOps(Isa isa);
inline const VecOps& DefaultVecOps() {
  static const VecOps& ops = GetVecOps(SelectedIsa());
  return ops;
}

}  // namespace rtnq
