// AVX2 register tiles: a 16-row panel is two ymm (rows 0-7, 8-15); otherwise the same scheme as
// matmul_avx512.cpp (broadcast activations, one FMA chain per output over ascending k).
#include <immintrin.h>

#include <algorithm>
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

// RTN tiles: same dequantization as matmul_avx512.cpp (magic-float int4 codes, fma(code, s, -8 s);
// int8 float(level) * s), on two ymm halves (rows 0-7, 8-15) of the same panel layout.
template <int MR, int NV, bool kInt4>
RTNQ_TARGET_AVX2 void TileRtn(const TileArgs& a) {
  __m256 acc[MR][NV][2];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h)
        acc[m][v][h] = a.load_acc ? _mm256_loadu_ps(a.acc + m * a.ldacc + v * 16 + h * 8)
                                  : _mm256_setzero_ps();
  const int64_t G = a.group;
  for (int64_t g = a.k0 / G; g * G < a.k1; ++g) {
    const int64_t kb = std::max(a.k0, g * G), ke = std::min(a.k1, (g + 1) * G);
    const uint8_t* codes[NV];
    __m256 s[NV][2], neg8s[NV][2];
    for (int v = 0; v < NV; ++v) {
      const uint8_t* grp = a.w + v * a.panel_bytes + g * a.group_bytes;
      for (int h = 0; h < 2; ++h) {
        s[v][h] = _mm256_load_ps(reinterpret_cast<const float*>(grp) + h * 8);
        neg8s[v][h] = _mm256_mul_ps(s[v][h], _mm256_set1_ps(-8.0f));
      }
      codes[v] = grp + 64;
    }
    for (int64_t k = kb; k < ke; ++k) {
      const int64_t kk = k - g * G;
      __m256 w[NV][2];
      for (int v = 0; v < NV; ++v)
        for (int h = 0; h < 2; ++h) {
          if constexpr (kInt4) {
            const int j = static_cast<int>(kk % 8), pos = j < 5 ? j : j - 4;
            __m256i dw = _mm256_load_si256(
                reinterpret_cast<const __m256i*>(codes[v] + (kk / 8) * 64 + h * 32));
            if (j >= 5) dw = _mm256_srli_epi32(dw, 16);
            const __m256i magic = _mm256_set1_epi32((127 + 23 - 4 * pos) << 23);
            const __m256i bits =
                _mm256_or_si256(_mm256_and_si256(dw, _mm256_set1_epi32(0xf << (4 * pos))), magic);
            const __m256 code = _mm256_sub_ps(_mm256_castsi256_ps(bits), _mm256_castsi256_ps(magic));
            w[v][h] = _mm256_fmadd_ps(code, s[v][h], neg8s[v][h]);
          } else {
            const __m128i b =
                _mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes[v] + kk * 16 + h * 8));
            w[v][h] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), s[v][h]);
          }
        }
      for (int m = 0; m < MR; ++m) {
        const __m256 xb = _mm256_set1_ps(a.x[m * a.ldx + k]);
        for (int v = 0; v < NV; ++v)
          for (int h = 0; h < 2; ++h) acc[m][v][h] = _mm256_fmadd_ps(w[v][h], xb, acc[m][v][h]);
      }
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(a.acc + m * a.ldacc + v * 16 + h * 8, acc[m][v][h]);
}

template <int MR, int NV>
RTNQ_TARGET_AVX2 void TileRtn8(const TileArgs& a) { TileRtn<MR, NV, false>(a); }
template <int MR, int NV>
RTNQ_TARGET_AVX2 void TileRtn4(const TileArgs& a) { TileRtn<MR, NV, true>(a); }

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
RTNQ_TILE_TABLE(DispatchRtn8, TileRtn8)
RTNQ_TILE_TABLE(DispatchRtn4, TileRtn4)

}  // namespace

const MatmulKernel kAvx2Kernels[4] = {
    {"f32_avx2", WeightType::kF32, ActType::kF32, Isa::kAvx2, false, false, kMrMax, kNvMax, kNvDecode,
     DispatchF32},
    {"bf16_avx2", WeightType::kBF16, ActType::kF32, Isa::kAvx2, false, false, kMrMax, kNvMax, kNvDecode,
     DispatchBf16},
    {"rtn8_avx2", WeightType::kRtnInt8, ActType::kF32, Isa::kAvx2, false, false, kMrMax, kNvMax,
     kNvDecode, DispatchRtn8},
    {"rtn4_avx2", WeightType::kRtnInt4, ActType::kF32, Isa::kAvx2, false, false, kMrMax, kNvMax,
     kNvDecode, DispatchRtn4},
};

}  // namespace rtnq
