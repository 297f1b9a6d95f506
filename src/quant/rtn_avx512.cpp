// AVX-512 twin of the RTN group loops in rtn.cpp: same IEEE operations in the same order per
// element (division, round-half-even, clamp), so the bytes are identical to the scalar path.
#include <immintrin.h>

#include "quant/rtn_group.h"

#define RTNQ_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma")))

namespace rtnq::rtn_internal {
namespace {

RTNQ_AVX512 inline __m512 Load16(const void* src, DType dtype, int64_t i) {
  switch (dtype) {
    case DType::kBF16: {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(src) + i));
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case DType::kF16: {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(src) + i));
      return _mm512_cvtph_ps(h);
    }
    default:
      return _mm512_loadu_ps(static_cast<const float*>(src) + i);
  }
}

// Rounds f32 lanes to `dtype` and back (round to nearest even), for finite values.
RTNQ_AVX512 inline __m512 RoundTo(DType dtype, __m512 v) {
  if (dtype == DType::kBF16) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  if (dtype == DType::kF16) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  return v;
}

}  // namespace

RTNQ_AVX512 float GroupAmaxAvx512(const void* src, DType dtype, int64_t len) {
  __m512 m = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int64_t i = 0; i < len; i += 16) {
    const __m512 v = Load16(src, dtype, i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    m = _mm512_max_ps(m, _mm512_abs_ps(v));
  }
  // max_ps does not propagate NaN the way fmax does: report it so the caller uses the scalar path.
  if (nan != 0) return __builtin_nanf("");
  return _mm512_reduce_max_ps(m);
}

RTNQ_AVX512 void EncodeGroupAvx512(const GroupArgs& a) {
  const __m512 divisor = _mm512_set1_ps(a.divisor);
  const __m512 bias = _mm512_set1_ps(static_cast<float>(a.bias));
  const __m512 max_code = _mm512_set1_ps(static_cast<float>(a.max_code));
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t i = 0; i < a.len; i += 16) {
    __m512i code;
    if (a.divisor == 0.0f) {
      code = _mm512_set1_epi32(a.bias);
    } else {
      const __m512 x = RoundTo(a.work, _mm512_div_ps(Load16(a.src, a.src_dtype, i), divisor));
      const __m512 q = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      const __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q, bias), zero), max_code);
      code = _mm512_cvttps_epi32(c);
    }
    if (!a.int4) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(a.codes + i), _mm512_cvtepi32_epi8(code));
    } else {
      // Lane pairs (2j, 2j+1) -> one byte: low nibble from the even lane, high from the odd one.
      const __m512i pairs = _mm512_or_si512(_mm512_and_si512(code, _mm512_set1_epi64(0xffffffff)),
                                            _mm512_slli_epi64(_mm512_srli_epi64(code, 32), 4));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(a.codes + i / 2), _mm512_cvtepi64_epi8(pairs));
    }
  }
}

}  // namespace rtnq::rtn_internal
