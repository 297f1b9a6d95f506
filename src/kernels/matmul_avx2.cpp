// AVX2 register tiles: a 16-row panel is two ymm (rows 0-7, 8-15); otherwise the same scheme as
// matmul_avx512.cpp (broadcast activations, one FMA chain per output over ascending k).
#include <immintrin.h>

#include <array>

#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

#define RTNQ_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace rtnq {
namespace {

// 16 ymm registers: MR * NV * 2 accumulators must leave room for weights and broadcasts.
constexpr int kMrMax = 3, kNvMax = 1, kNvDecode = 3;

template <int MR, int NV>
RTNQ_TARGET_AVX2 void TileF32(const TileArgs& a) {
  __m256 acc[MR][NV][2];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h)
        acc[m][v][h] = a.load_acc ? _mm256_loadu_ps(a.acc + m * a.ldacc + v * 16 + h * 8)
                                  : _mm256_setzero_ps();
  const float* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const float*>(a.w + v * a.panel_bytes);
  for (int64_t k = a.k0; k < a.k1; ++k) {
    __m256 w[NV][2];
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h) w[v][h] = _mm256_load_ps(wp[v] + k * 16 + h * 8);
    for (int m = 0; m < MR; ++m) {
      const __m256 xb = _mm256_set1_ps(a.x[m * a.ldx + k]);
      for (int v = 0; v < NV; ++v)
        for (int h = 0; h < 2; ++h) acc[m][v][h] = _mm256_fmadd_ps(w[v][h], xb, acc[m][v][h]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(a.acc + m * a.ldacc + v * 16 + h * 8, acc[m][v][h]);
}

template <int MR, int NV>
RTNQ_TARGET_AVX2 void TileBf16(const TileArgs& a) {
  __m256 acc[MR][NV][2];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h)
        acc[m][v][h] = a.load_acc ? _mm256_loadu_ps(a.acc + m * a.ldacc + v * 16 + h * 8)
                                  : _mm256_setzero_ps();
  const __m256i* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const __m256i*>(a.w + v * a.panel_bytes);
  const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const int64_t j_end = a.k1 / 2;
  for (int64_t j = a.k0 / 2; j < j_end; ++j) {
    for (int v = 0; v < NV; ++v) {
      for (int h = 0; h < 2; ++h) {
        const __m256i wv = _mm256_load_si256(wp[v] + 2 * j + h);
        const __m256 lo = _mm256_castsi256_ps(_mm256_slli_epi32(wv, 16));
        const __m256 hi = _mm256_castsi256_ps(_mm256_and_si256(wv, hi_mask));
        for (int m = 0; m < MR; ++m) {
          const float* x = a.x + m * a.ldx + 2 * j;
          acc[m][v][h] = _mm256_fmadd_ps(lo, _mm256_set1_ps(x[0]), acc[m][v][h]);
          acc[m][v][h] = _mm256_fmadd_ps(hi, _mm256_set1_ps(x[1]), acc[m][v][h]);
        }
      }
    }
  }
  if (a.k1 & 1) {
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h) {
        const __m256 lo =
            _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_load_si256(wp[v] + 2 * j_end + h), 16));
        for (int m = 0; m < MR; ++m)
          acc[m][v][h] =
              _mm256_fmadd_ps(lo, _mm256_set1_ps(a.x[m * a.ldx + a.k1 - 1]), acc[m][v][h]);
      }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(a.acc + m * a.ldacc + v * 16 + h * 8, acc[m][v][h]);
}

#define RTNQ_TILE_TABLE(NAME, FN)                                                           \
  template <int MR>                                                                         \
  constexpr std::array<TileFn, kNvDecode + 1> NAME##Row() {                                 \
    return {nullptr, &FN<MR, 1>, MR == 1 ? &FN<1, 2> : nullptr, MR == 1 ? &FN<1, 3> : nullptr}; \
  }                                                                                         \
  constexpr std::array<std::array<TileFn, kNvDecode + 1>, kMrMax + 1> NAME##Table = {       \
      {{}, NAME##Row<1>(), NAME##Row<2>(), NAME##Row<3>()}};                                \
  void NAME(const TileArgs& a) { NAME##Table[a.mr][a.nv](a); }

RTNQ_TILE_TABLE(DispatchF32, TileF32)
RTNQ_TILE_TABLE(DispatchBf16, TileBf16)

}  // namespace

const MatmulKernel kAvx2Kernels[2] = {
    {"f32_avx2", DType::kF32, ActType::kF32, Isa::kAvx2, false, kMrMax, kNvMax, kNvDecode,
     DispatchF32},
    {"bf16_avx2", DType::kBF16, ActType::kF32, Isa::kAvx2, false, kMrMax, kNvMax, kNvDecode,
     DispatchBf16},
};

}  // namespace rtnq
