// Attention of one query row against the cached keys/values of one KV head, vectorized over
// positions. Keys are stored transposed in blocks of kKeyBlock positions: element (position p,
// head dimension d) at kt[(p / kKeyBlock) * head_dim * kKeyBlock + d * kKeyBlock + p % kKeyBlock],
// so 16 scores come from head_dim broadcast-FMAs with no horizontal sums, and a head's keys are
// one contiguous run of 16 KiB blocks (head_dim 64) instead of head_dim rows a context apart
// (which cost a TLB walk and a prefetcher restart per row). Values are rows: v[p * ldv + d].
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

// Positions per block of the transposed key cache (a multiple of 16).
constexpr int64_t kKeyBlock = 64;

// Offset of key (position p, dimension d) in a head's blocked, transposed key cache.
inline int64_t KeyOffset(int64_t p, int64_t d, int64_t head_dim) {
  return (p / kKeyBlock) * head_dim * kKeyBlock + d * kKeyBlock + p % kKeyBlock;
}

struct AttentionKernel {
  // scratch: at least n rounded up to 16 floats.
  void (*row)(const float* q, const float* kt, const float* v, int64_t ldv, int64_t head_dim, int64_t n,
              float scale, float* scratch, float* out);
  Isa isa;
};

// Best kernel at most `isa` that the host runs (AVX2 uses the scalar kernel).
const AttentionKernel& GetAttentionKernel(Isa isa);

}  // namespace rtnq
