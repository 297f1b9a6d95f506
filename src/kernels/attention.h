// Attention of one query row against the cached keys/values of one KV head, vectorized over
// positions. Keys are stored transposed (kt[d * ldk + p]: for each head dimension, the positions
// are contiguous), so 16 scores come from head_dim broadcast-FMAs with no horizontal sums.
//
//   s[p]   = (sum over ascending d of q[d] * k[p][d], one FMA chain from +0) * scale
//   w[p]   = exp(s[p] - max s) / sum exp(s - max s)       (f32)
//   out[d] = sum over ascending p of w[p] * v[p][d]       (one FMA chain from +0)
//
// A row's result depends only on (q, its n keys and values), never on other rows of a batch or on
// the thread that computes it. The exp and the order of the softmax sum are fixed per ISA (the
// AVX-512 path uses a polynomial exp within 2 ulp of std::exp and a 16-lane tree sum).
#pragma once

#include <cstdint>

#include "base/cpu_features.h"

namespace rtnq {

struct AttentionKernel {
  // scratch: at least n rounded up to 16 floats.
  void (*row)(const float* q, const float* kt, int64_t ldk, const float* v, int64_t ldv,
              int64_t head_dim, int64_t n, float scale, float* scratch, float* out);
  Isa isa;
};

// Best kernel at most `isa` that the host runs (AVX2 uses the scalar kernel).
const AttentionKernel& GetAttentionKernel(Isa isa);

}  // namespace rtnq
