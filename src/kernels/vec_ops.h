// Element-wise vector primitives of the forward pass (the SwiGLU activation), with an ISA chosen
// once per process. The exp is fixed per ISA, and each element of silu_mul's output depends only
// on its own inputs (never on n or its position in the array), so results do not depend on the
// caller's batch or thread split.
#pragma once

#include <cstdint>

#include "base/cpu_features.h"

namespace rtnq {

struct VecOps {
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
