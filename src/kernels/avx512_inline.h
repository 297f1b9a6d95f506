// Small AVX-512 helpers shared by several kernel files. The vector ones carry their own target
// attribute, so they inline into any caller compiled for AVX-512 (attributes or #pragma GCC
// target alike).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "format/dtype.h"

namespace rtnq {

// Mask of the first min(left, 16) lanes (left >= 1): one code path for full and tail vectors.
inline __mmask16 TailMask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

// exp(x) for x <= 0 (Cephes expf: x = k ln2 + r, |r| <= ln2/2, degree-6 polynomial, then
// scaled by 2^k with VSCALEFPS), within 2 ulp of std::exp. Inputs below -87.3 give ~1e-38
// instead of a subnormal or 0, which neither a softmax sum >= 1 nor 1 + exp(-|x|) can notice.
__attribute__((target("avx512f,avx512vl,fma"))) inline __m512 ExpNonPositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 e = _mm512_add_ps(_mm512_fmadd_ps(p, r2, r), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(e, k);
}

// 16 RTN group scales from a panel's scale header (16 fp32, or 16 f16/bf16 on 32 bytes; the
// header is 64-byte aligned) as fp32.
__attribute__((target("avx512f,avx512vl,f16c"))) inline __m512 LoadScales16(DType dtype, const uint8_t* hdr) {
  if (dtype == DType::kF32) return _mm512_load_ps(reinterpret_cast<const float*>(hdr));
  const __m256i half = _mm256_load_si256(reinterpret_cast<const __m256i*>(hdr));
  if (dtype == DType::kF16) return _mm512_cvtph_ps(half);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

}  // namespace rtnq
