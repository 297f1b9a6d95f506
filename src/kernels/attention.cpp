#include "kernels/attention.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "kernels/avx512_inline.h"

#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#define RTNQ_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma")))

namespace rtnq {
namespace {

void RowScalar(const float* q, const float* kt, const float* v, int64_t ldv, int64_t hd, int64_t n,
               float scale, float* s, float* out) {
  float max_s = -INFINITY;
  for (int64_t p = 0; p < n; ++p) {
    float acc = 0.0f;
    for (int64_t d = 0; d < hd; ++d) acc = std::fma(q[d], kt[KeyOffset(p, d, hd)], acc);
    s[p] = acc * scale;
    max_s = std::max(max_s, s[p]);
  }
  float sum = 0.0f;
  for (int64_t p = 0; p < n; ++p) sum += (s[p] = std::exp(s[p] - max_s));
  for (int64_t p = 0; p < n; ++p) s[p] /= sum;
  for (int64_t d = 0; d < hd; ++d) {
    float acc = 0.0f;
    for (int64_t p = 0; p < n; ++p) acc = std::fma(s[p], v[p * ldv + d], acc);
    out[d] = acc;
  }
}

RTNQ_TARGET_AVX512 void RowAvx512(const float* q, const float* kt, const float* v, int64_t ldv,
                                  int64_t hd, int64_t n, float scale, float* s, float* out) {
  const __m512 vscale = _mm512_set1_ps(scale);
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  // Scores, a whole key block per pass: four independent FMA chains instead of one latency-bound
  // chain (each position still sums over ascending d from +0).
  static_assert(kKeyBlock == 64, "the block loop below holds 64 positions in 4 zmm");
  int64_t p0 = 0;
  for (; p0 + kKeyBlock <= n; p0 += kKeyBlock) {
    const float* block = kt + p0 * hd;
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    for (int64_t d = 0; d < hd; ++d) {
      const __m512 qd = _mm512_set1_ps(q[d]);
      for (int c = 0; c < 4; ++c) acc[c] = _mm512_fmadd_ps(qd, _mm512_loadu_ps(block + d * kKeyBlock + 16 * c), acc[c]);
    }
    for (int c = 0; c < 4; ++c) {
      acc[c] = _mm512_mul_ps(acc[c], vscale);
      _mm512_storeu_ps(s + p0 + 16 * c, acc[c]);
      vmax = _mm512_max_ps(vmax, acc[c]);
    }
  }
  for (; p0 < n; p0 += 16) {  // the last, partial block
    const __mmask16 mask = TailMask(n - p0);
    const float* keys = kt + KeyOffset(p0, 0, hd);
    __m512 acc = _mm512_setzero_ps();
    for (int64_t d = 0; d < hd; ++d)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), _mm512_maskz_loadu_ps(mask, keys + d * kKeyBlock), acc);
    acc = _mm512_mul_ps(acc, vscale);
    _mm512_storeu_ps(s + p0, acc);
    vmax = _mm512_mask_max_ps(vmax, mask, vmax, acc);
  }
  const __m512 max_s = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t p0 = 0; p0 < n; p0 += 16) {
    const __mmask16 mask = TailMask(n - p0);
    const __m512 e = _mm512_maskz_mov_ps(mask, ExpNonPositive(_mm512_sub_ps(_mm512_loadu_ps(s + p0), max_s)));
    _mm512_storeu_ps(s + p0, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  const __m512 sum = _mm512_set1_ps(_mm512_reduce_add_ps(vsum));
  for (int64_t p0 = 0; p0 < n; p0 += 16) _mm512_storeu_ps(s + p0, _mm512_div_ps(_mm512_loadu_ps(s + p0), sum));
  // Weighted values: up to 8 zmm of head dimensions per pass over the positions.
  for (int64_t d0 = 0; d0 < hd; d0 += 128) {
    const int64_t dn = std::min<int64_t>(128, hd - d0);
    const int chunks = static_cast<int>((dn + 15) / 16);
    __m512 acc[8];
    __mmask16 masks[8];
    for (int c = 0; c < chunks; ++c) {
      acc[c] = _mm512_setzero_ps();
      masks[c] = TailMask(dn - 16 * c);
    }
    const float* vp = v + d0;
    if (chunks == 1) {
      for (int64_t p = 0; p < n; ++p)
        acc[0] = _mm512_fmadd_ps(_mm512_set1_ps(s[p]), _mm512_maskz_loadu_ps(masks[0], vp + p * ldv), acc[0]);
    } else {
      for (int64_t p = 0; p < n; ++p) {
        const __m512 w = _mm512_set1_ps(s[p]);
        for (int c = 0; c < chunks; ++c)
          acc[c] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(masks[c], vp + p * ldv + 16 * c), acc[c]);
      }
    }
    for (int c = 0; c < chunks; ++c) _mm512_mask_storeu_ps(out + d0 + 16 * c, masks[c], acc[c]);
  }
}

const AttentionKernel kScalar{RowScalar, Isa::kScalar};
const AttentionKernel kAvx512{RowAvx512, Isa::kAvx512};

}  // namespace

const AttentionKernel& GetAttentionKernel(Isa isa) {
  const Isa best = HostCpu().BestIsa();
  if (static_cast<int>(isa) > static_cast<int>(best)) isa = best;
  return IsaAtLeast(isa, Isa::kAvx512) ? kAvx512 : kScalar;
}

}  // namespace rtnq
