// AVX-512 register tiles: 16 output rows of a panel per zmm, activations broadcast, one FMA chain
// per output lane over ascending k. Compiled with per-function target attributes so the binary
// still runs on any x86-64; the registry only selects these when CPUID reports the features.
#include <immintrin.h>

#include <array>

#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

// GCC 12 warns about _mm512_undefined_epi32() inside its own shift intrinsics (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#define RTNQ_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define RTNQ_TARGET_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

namespace rtnq {
namespace {

constexpr int kMrMax = 8, kNvMax = 2, kNvDecode = 4;

template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileF32(const TileArgs& a) {
  __m512 acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      acc[m][v] = a.load_acc ? _mm512_loadu_ps(a.acc + m * a.ldacc + v * 16) : _mm512_setzero_ps();
  const float* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const float*>(a.w + v * a.panel_bytes);
  for (int64_t k = a.k0; k < a.k1; ++k) {
    __m512 w[NV];
    for (int v = 0; v < NV; ++v) w[v] = _mm512_load_ps(wp[v] + k * 16);
    for (int m = 0; m < MR; ++m) {
      const __m512 xb = _mm512_set1_ps(a.x[m * a.ldx + k]);
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(w[v], xb, acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, acc[m][v]);
}

// bf16 panel: dword lane r of k-pair j holds (w[r][2j] low, w[r][2j+1] high). Shifting left by
// 16 gives w[r][2j] as f32 exactly; masking the low half gives w[r][2j+1].
template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileBf16(const TileArgs& a) {
  __m512 acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      acc[m][v] = a.load_acc ? _mm512_loadu_ps(a.acc + m * a.ldacc + v * 16) : _mm512_setzero_ps();
  const __m512i* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const __m512i*>(a.w + v * a.panel_bytes);
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  const int64_t j_end = a.k1 / 2;
  for (int64_t j = a.k0 / 2; j < j_end; ++j) {
    __m512 lo[NV], hi[NV];
    for (int v = 0; v < NV; ++v) {
      const __m512i wv = _mm512_load_si512(wp[v] + j);
      lo[v] = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
      hi[v] = _mm512_castsi512_ps(_mm512_and_si512(wv, hi_mask));
    }
    for (int m = 0; m < MR; ++m) {
      const float* x = a.x + m * a.ldx + 2 * j;
      const __m512 x0 = _mm512_set1_ps(x[0]);
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(lo[v], x0, acc[m][v]);
      const __m512 x1 = _mm512_set1_ps(x[1]);
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(hi[v], x1, acc[m][v]);
    }
  }
  if (a.k1 & 1) {  // odd K: the last pair holds one real weight
    for (int v = 0; v < NV; ++v) {
      const __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_load_si512(wp[v] + j_end), 16));
      for (int m = 0; m < MR; ++m)
        acc[m][v] = _mm512_fmadd_ps(lo, _mm512_set1_ps(a.x[m * a.ldx + a.k1 - 1]), acc[m][v]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, acc[m][v]);
}

// VDPBF16PS on bf16-rounded activations (padded to an even K with a zero).
template <int MR, int NV>
RTNQ_TARGET_AVX512BF16 void TileBf16Dot(const TileArgs& a) {
  __m512 acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      acc[m][v] = a.load_acc ? _mm512_loadu_ps(a.acc + m * a.ldacc + v * 16) : _mm512_setzero_ps();
  const __m512i* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const __m512i*>(a.w + v * a.panel_bytes);
  const int64_t j_end = (a.k1 + 1) / 2;
  for (int64_t j = a.k0 / 2; j < j_end; ++j) {
    __m512i w[NV];
    for (int v = 0; v < NV; ++v) w[v] = _mm512_load_si512(wp[v] + j);
    for (int m = 0; m < MR; ++m) {
      int32_t pair;
      __builtin_memcpy(&pair, a.xbf + m * a.ldxbf + 2 * j, 4);
      const __m512i xb = _mm512_set1_epi32(pair);
      for (int v = 0; v < NV; ++v)
        acc[m][v] = _mm512_dpbf16_ps(acc[m][v], (__m512bh)w[v], (__m512bh)xb);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, acc[m][v]);
}

#define RTNQ_TILE_TABLE(NAME, FN)                                                          \
  template <int MR>                                                                        \
  constexpr std::array<TileFn, kNvDecode + 1> NAME##Row() {                                \
    return {nullptr, &FN<MR, 1>, &FN<MR, 2>, MR == 1 ? &FN<1, 3> : nullptr,                \
            MR == 1 ? &FN<1, 4> : nullptr};                                                \
  }                                                                                        \
  constexpr std::array<std::array<TileFn, kNvDecode + 1>, kMrMax + 1> NAME##Table = {      \
      {{}, NAME##Row<1>(), NAME##Row<2>(), NAME##Row<3>(), NAME##Row<4>(), NAME##Row<5>(), \
       NAME##Row<6>(), NAME##Row<7>(), NAME##Row<8>()}};                                   \
  void NAME(const TileArgs& a) { NAME##Table[a.mr][a.nv](a); }

RTNQ_TILE_TABLE(DispatchF32, TileF32)
RTNQ_TILE_TABLE(DispatchBf16, TileBf16)
RTNQ_TILE_TABLE(DispatchBf16Dot, TileBf16Dot)

}  // namespace

const MatmulKernel kAvx512Kernels[3] = {
    {"f32_avx512", DType::kF32, ActType::kF32, Isa::kAvx512, false, kMrMax, kNvMax, kNvDecode,
     DispatchF32},
    {"bf16_avx512", DType::kBF16, ActType::kF32, Isa::kAvx512, false, kMrMax, kNvMax, kNvDecode,
     DispatchBf16},
    {"bf16_bf16act_avx512bf16", DType::kBF16, ActType::kBF16, Isa::kAvx512, true, kMrMax, kNvMax,
     kNvDecode, DispatchBf16Dot},
};

}  // namespace rtnq
