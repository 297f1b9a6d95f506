// AVX-512 twin of the RTN group loops in rtn.cpp: same IEEE operations in the same order per
// element (division, round-half-even, clamp), so the bytes are identical to the scalar path.
#include <immintrin.h>

#include "quant/rtn_group.h"

// GCC 12 warns about _mm512_undefined_*() inside its own intrinsics (a false positive).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

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

namespace rtnq::rtn_internal {
namespace {

// r[g] = max over the lanes of a[g], for 16 vectors: a transpose-and-max tree of 15 maxes and 30
// in-register shuffles instead of 16 separate horizontal reductions.
RTNQ_AVX512 inline __m512 HorizontalMax16(__m512 a[16]) {
  __m512 t[8], u[4], w[2];
  for (int i = 0; i < 8; ++i) {  // 256-bit halves: t[i] = [a[2i] partials x8, a[2i+1] partials x8]
    const __m512 lo = _mm512_insertf32x8(a[2 * i], _mm512_castps512_ps256(a[2 * i + 1]), 1);
    const __m512 hi = _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2));
    t[i] = _mm512_max_ps(lo, hi);
  }
  for (int i = 0; i < 4; ++i) {  // 128-bit lanes: u[i] lane j = group 4i + j, 4 partials
    const __m512 lo = _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 hi = _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1));
    u[i] = _mm512_max_ps(lo, hi);
  }
  for (int i = 0; i < 2; ++i) {  // w[i] lane j = [group 8i+j x2, group 8i+4+j x2]
    const __m512 lo = _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0));
    const __m512 hi = _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2));
    w[i] = _mm512_max_ps(lo, hi);
  }
  const __m512 lo = _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 hi = _mm512_shuffle_ps(w[0], w[1], _MM_SHUFFLE(3, 1, 3, 1));
  // Lane 4j + e now holds group j + 4e (j < 4, e < 4): put group g in lane g.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, _mm512_max_ps(lo, hi));
}

}  // namespace

constexpr int64_t kPrefetchAhead = 4096;

RTNQ_AVX512 bool QuantizeBlock16Avx512(const BlockArgs& a) {
  const size_t elem_bytes = a.src_dtype == DType::kF32 ? 4 : 2;
  __m512 amax_parts[kBlockGroups];
  __mmask16 bad = 0;
  for (int g = 0; g < kBlockGroups; ++g) {
    const void* group = static_cast<const uint8_t*>(a.src) + g * a.len * elem_bytes;
    __m512 m = _mm512_setzero_ps();
    for (int64_t i = 0; i < a.len; i += 16) {
      // The amax pass is the first read of the weights; it stalled on DRAM (65% of its samples
      // on the instruction after the load). Prefetches can't fault, so running past the end of
      // the matrix is harmless.
      if ((i * static_cast<int64_t>(elem_bytes)) % 64 == 0) {
        _mm_prefetch(static_cast<const char*>(group) + i * elem_bytes + kPrefetchAhead, _MM_HINT_T0);
      }
      const __m512 v = _mm512_abs_ps(Load16(group, a.src_dtype, i));
      bad |= _mm512_cmp_ps_mask(v, _mm512_set1_ps(__builtin_inff()), _CMP_NLT_UQ);  // NaN or Inf
      m = _mm512_max_ps(m, v);
    }
    amax_parts[g] = m;
  }
  if (bad != 0) return false;
  const __m512 amax = HorizontalMax16(amax_parts);
  const float levels = static_cast<float>(a.max_code);
  const __m512 twice = _mm512_mul_ps(amax, _mm512_set1_ps(2.0f));
  // Same operations as the scalar code: vLLM multiplies by the f32 reciprocal and rounds to the
  // weight dtype; fp32 divides. Both then round to the stored scale dtype.
  const __m512 scale = a.vllm ? RoundTo(a.work, _mm512_mul_ps(twice, _mm512_set1_ps(1.0f / levels)))
                              : _mm512_div_ps(twice, _mm512_set1_ps(levels));
  const __m512 stored = RoundTo(a.scale_dtype, scale);
  switch (a.scale_dtype) {
    case DType::kBF16:  // stored is a bf16 value: its top half is the encoding
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.scales),
                          _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(stored), 16)));
      break;
    case DType::kF16:
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.scales),
                          _mm512_cvtps_ph(stored, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      break;
    default:
      _mm512_storeu_ps(a.scales, stored);
  }
  alignas(64) float divisors[kBlockGroups];
  _mm512_store_ps(divisors, a.vllm ? scale : stored);
  const int64_t group_code_bytes = a.int4 ? a.len / 2 : a.len;
  for (int g = 0; g < kBlockGroups; ++g) {
    GroupArgs args{static_cast<const uint8_t*>(a.src) + g * a.len * elem_bytes, a.src_dtype, a.len,
                   divisors[g], a.work, a.bias, a.max_code, a.int4, a.codes + g * group_code_bytes};
    EncodeGroupAvx512(args);  // inlined: same translation unit
  }
  return true;
}

}  // namespace rtnq::rtn_internal
