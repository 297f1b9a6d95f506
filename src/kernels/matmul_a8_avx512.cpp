// AVX-512 VNNI kernels for int8 activations (A8): VPDPBUSD multiplies the unsigned RTN codes of
// 16 panel rows (one dword lane each) by 4 broadcast int8 activations and adds into int32 lanes,
// so a group's dot products are exact integers; each group then costs one convert and one FMA
// per 16 outputs. Bitwise equal to the scalar tile in matmul_a8.cpp (see matmul.h).
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cstring>
#include <utility>

#include "kernels/avx512_inline.h"
#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

// GCC 12 warns about _mm512_undefined_epi32() inside its own intrinsics (a false positive).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

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

namespace rtnq {
namespace {

// Prefill tile: MR rows x NV panels of int32 dots plus as many f32 accumulators (16 of 32 zmm for
// 4 x 2). Decode (MR = 1) streams up to 8 panels at once: 8 independent weight streams keep
// enough cache misses in flight to run at DRAM speed.
constexpr int kMrMax = 4, kNvMax = 2, kNvDecode = 8;
constexpr int kDecodePrefetchBytes = 1024;
// Plus PREFETCHT1 2 KiB ahead (L2 keeps more misses in flight than L1's fill buffers): W4A8
// 4096x14336 1.76 -> 1.68 ms, W8A8 3.32 -> 3.13 ms, W4A8 g32 2.25 -> 2.15 ms (3072: 1.70 ms).
constexpr int kDecodePrefetchL2Bytes = 2048;

RTNQ_TARGET_AVX512 inline __m512i BroadcastDword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

template <int MR, int NV, bool kInt4>
RTNQ_TARGET_VNNI void TileA8(const TileArgs& a) {
  __m512 acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      acc[m][v] = a.load_acc ? _mm512_loadu_ps(a.acc + m * a.ldacc + v * 16) : _mm512_setzero_ps();
  const int64_t G = a.group;
  const int64_t chunks = kInt4 ? (G + 7) / 8 : (G + 3) / 4;
  const __m512i nibble = _mm512_set1_epi8(0x0f);
  const int pf = OverrideOr(g_matmul_overrides.prefetch_bytes, kDecodePrefetchBytes);
  const int pf2 = OverrideOr(g_matmul_overrides.prefetch_l2_bytes, kDecodePrefetchL2Bytes);
  for (int64_t g = a.k0 / G; g < a.k1 / G; ++g) {
    const uint8_t *codes[NV], *scales[NV];
    for (int v = 0; v < NV; ++v) {
      codes[v] = TileGroupCodes(a, a.w + v * a.panel_bytes, g);
      scales[v] = TileGroupScales(a, a.w + v * a.panel_bytes, g);
    }
    const int8_t* xq = a.xq + g * a.xq_group;
    __m512i dot[MR][NV];
    for (int m = 0; m < MR; ++m)
      for (int v = 0; v < NV; ++v) dot[m][v] = _mm512_setzero_si512();
    for (int64_t c = 0; c < chunks; ++c) {
      if constexpr (MR == 1) {
        // Decode: each panel is one weight stream; prefetching ahead keeps more misses in flight
        // than the hardware prefetcher alone. 4096x14336 W4A8 at M=1, 1 thread: 2.22 ms without,
        // 1.91 ms at 512 bytes, 1.85 ms at 1024, 1.88 ms at 2048 (BF16: 6.2 ms).
        for (int v = 0; v < NV; ++v) {
          const char* next = reinterpret_cast<const char*>(codes[v] + c * 64);
          if (pf) _mm_prefetch(next + pf, _MM_HINT_T0);
          if (pf2) _mm_prefetch(next + pf2, _MM_HINT_T1);
        }
      }
      if constexpr (kInt4) {
        // (dw & 0x0f..) = codes of k 0,2,4,6 per dword; ((dw >> 4) & 0x0f..) = k 1,3,5,7, matching
        // the activations' (0,2,4,6 | 1,3,5,7) order.
        __m512i lo[NV], hi[NV];
        for (int v = 0; v < NV; ++v) {
          const __m512i dw = _mm512_load_si512(codes[v] + c * 64);
          lo[v] = _mm512_and_si512(dw, nibble);
          hi[v] = _mm512_and_si512(_mm512_srli_epi32(dw, 4), nibble);
        }
        for (int m = 0; m < MR; ++m) {
          const int8_t* x = xq + m * a.ldxq + c * 8;
          const __m512i x0 = BroadcastDword(x), x1 = BroadcastDword(x + 4);
          for (int v = 0; v < NV; ++v) {
            dot[m][v] = _mm512_dpbusd_epi32(dot[m][v], lo[v], x0);
            dot[m][v] = _mm512_dpbusd_epi32(dot[m][v], hi[v], x1);
          }
        }
      } else {
        __m512i w[NV];
        for (int v = 0; v < NV; ++v) w[v] = _mm512_load_si512(codes[v] + c * 64);
        for (int m = 0; m < MR; ++m) {
          const __m512i xb = BroadcastDword(xq + m * a.ldxq + c * 4);
          for (int v = 0; v < NV; ++v) dot[m][v] = _mm512_dpbusd_epi32(dot[m][v], w[v], xb);
        }
      }
    }
    // dot - bias * sum(q) is exact (matmul_tiles.h, A8MaxGroup); then one rounding each for the
    // convert, s_w * s_x and the FMA, as in the scalar tile.
    for (int m = 0; m < MR; ++m) {
      const __m512i bsum = _mm512_set1_epi32(a.xbsum[m * a.ldxs + g]);
      const __m512 sx = _mm512_set1_ps(a.xs[m * a.ldxs + g]);
      for (int v = 0; v < NV; ++v) {
        const __m512 sw = LoadScales16(a.scale_dtype, scales[v]);
        const __m512 d = _mm512_cvtepi32_ps(_mm512_sub_epi32(dot[m][v], bsum));
        acc[m][v] = _mm512_fmadd_ps(d, _mm512_mul_ps(sw, sx), acc[m][v]);
      }
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, acc[m][v]);
}

template <bool kInt4, int MR, int NV>
constexpr TileFn PickTile() {
  if constexpr (NV <= kNvMax || MR == 1) {
    return &TileA8<MR, NV, kInt4>;
  } else {
    return nullptr;
  }
}

template <bool kInt4, int MR, int... NV>
constexpr std::array<TileFn, kNvDecode + 1> TileRow(std::integer_sequence<int, NV...>) {
  return {nullptr, PickTile<kInt4, MR, NV + 1>()...};
}

template <bool kInt4, int... MR>
constexpr std::array<std::array<TileFn, kNvDecode + 1>, kMrMax + 1> TileTable(
    std::integer_sequence<int, MR...>) {
  return {{{}, TileRow<kInt4, MR + 1>(std::make_integer_sequence<int, kNvDecode>())...}};
}

template <bool kInt4>
void DispatchA8(const TileArgs& a) {
  static constexpr auto kTable = TileTable<kInt4>(std::make_integer_sequence<int, kMrMax>());
  kTable[a.mr][a.nv](a);
}

}  // namespace

const MatmulKernel kAvx512A8Kernels[2] = {
    {"rtn8_a8_avx512vnni", WeightType::kRtnInt8, ActType::kInt8, Isa::kAvx512, false, true, kMrMax,
     kNvMax, kNvDecode, DispatchA8<false>},
    {"rtn4_a8_avx512vnni", WeightType::kRtnInt4, ActType::kInt8, Isa::kAvx512, false, true, kMrMax,
     kNvMax, kNvDecode, DispatchA8<true>},
};

}  // namespace rtnq
