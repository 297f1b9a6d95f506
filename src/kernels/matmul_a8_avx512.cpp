// AVX-512 VNNI kernels for int8 activations (A8): VPDPBUSD multiplies the unsigned RTN codes of
// 16 panel rows (one dword lane each) by 4 broadcast int8 activations and adds into int32 lanes,
// so a group's dot products are exact integers; each group then costs one convert and one FMA
// per 16 outputs. Bitwise equal to the scalar tile in matmul_a8.cpp (see matmul.h).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cstring>

#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

#define RTNQ_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define RTNQ_TARGET_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace rtnq {

// Same arithmetic as QuantizeActivationsA8Scalar: max|x| is order-independent, x * (1/s) is one
// rounding, the clamp happens in f32 and VCVTPS2DQ rounds half to even (MXCSR default).
RTNQ_TARGET_AVX512 void QuantizeActivationsA8Avx512(const float* x, int64_t k, int64_t group,
                                                    int64_t group_stride, bool permute8,
                                                    A8Row out) {
  const __m512 lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
  const __m128i perm = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
  for (int64_t g = 0; g < k / group; ++g) {
    const float* xg = x + g * group;
    __m512 amax = _mm512_setzero_ps();
    for (int64_t c = 0; c < group; c += 16) {
      const __mmask16 m = group - c >= 16 ? __mmask16(0xffff) : __mmask16((1u << (group - c)) - 1);
      amax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, xg + c)), amax);
    }
    float s = _mm512_reduce_max_ps(amax) / 127.0f;
    float inv = 1.0f / s;
    if (!(inv <= FLT_MAX)) s = inv = 0.0f;
    const __m512 vinv = _mm512_set1_ps(inv);
    int8_t* q = out.q + g * group_stride;
    __m512i sum = _mm512_setzero_si512();
    for (int64_t c = 0; c < group_stride; c += 16) {
      const int64_t left = group - c;
      const __mmask16 m = left >= 16 ? __mmask16(0xffff) : left <= 0 ? 0 : __mmask16((1u << left) - 1);
      __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xg + c), vinv);
      v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
      const __m512i qi = _mm512_cvtps_epi32(v);
      sum = _mm512_add_epi32(sum, qi);
      __m128i b = _mm512_cvtepi32_epi8(qi);
      if (permute8) b = _mm_shuffle_epi8(b, perm);
      const int64_t room = group_stride - c;
      _mm_mask_storeu_epi8(q + c, room >= 16 ? __mmask16(0xffff) : __mmask16((1u << room) - 1), b);
    }
    out.scale[g] = s;
    out.sum[g] = _mm512_reduce_add_epi32(sum);
  }
}

}  // namespace rtnq
