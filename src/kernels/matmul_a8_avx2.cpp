// AVX2 kernels for int8 activations (A8), no VNNI: VPMADDUBSW (u8 x s8 pairs to saturating
// int16) + VPMADDWD (pairs to int32). Bitwise equal to the scalar A8 tile: the int32 group dots
// are the same integers, and the group epilogue is the same three roundings.
//   int4: codes <= 15, so a pair sum is <= 2 * 15 * 127 and two of them (the lo and hi nibble
//     halves) <= 7620: never saturates; the dot is sum(code * q), minus bias * sum(q) per group.
//   int8: codes up to 255 would saturate (2 * 255 * 127 > 32767). The sign trick multiplies
//     |level| (u8, <= 128) by q carrying the level's sign (VPSIGNB): pairs <= 2 * 128 * 127 = 32512,
//     and the dot is sum(level * q) directly (no bias correction).
#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

#define RTNQ_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace rtnq {
namespace {

// 16 ymm: a panel is two ymm halves, so MR x NV x 2 int32 dots plus as many f32 accumulators.
constexpr int kMrMax = 2, kNvMax = 1, kNvDecode = 2;

RTNQ_TARGET_AVX2 inline __m256i BroadcastDword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Scales of panel rows 8h..8h+7 from a group header: f32, or bf16 / f16 widened exactly.
RTNQ_TARGET_AVX2 inline __m256 LoadScales8(DType dtype, const uint8_t* hdr, int h) {
  if (dtype == DType::kF32) return _mm256_load_ps(reinterpret_cast<const float*>(hdr) + h * 8);
  const __m128i half = _mm_load_si128(reinterpret_cast<const __m128i*>(hdr + h * 16));
  if (dtype == DType::kF16) return _mm256_cvtph_ps(half);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
}

template <int MR, int NV, bool kInt4>
RTNQ_TARGET_AVX2 void TileA8(const TileArgs& a) {
  __m256 acc[MR][NV][2];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h)
        acc[m][v][h] = a.load_acc ? _mm256_loadu_ps(a.acc + m * a.ldacc + v * 16 + h * 8)
                                  : _mm256_setzero_ps();
  const int64_t G = a.group;
  const int64_t chunks = kInt4 ? (G + 7) / 8 : (G + 3) / 4;
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t g = a.k0 / G; g < a.k1 / G; ++g) {
    const uint8_t *codes[NV], *scales[NV];
    for (int v = 0; v < NV; ++v) {
      codes[v] = TileGroupCodes(a, a.w + v * a.panel_bytes, g);
      scales[v] = TileGroupScales(a, a.w + v * a.panel_bytes, g);
    }
    const int8_t* xq = a.xq + g * a.xq_group;
    __m256i dot[MR][NV][2];
    for (int m = 0; m < MR; ++m)
      for (int v = 0; v < NV; ++v)
        for (int h = 0; h < 2; ++h) dot[m][v][h] = _mm256_setzero_si256();
    for (int64_t c = 0; c < chunks; ++c) {
      for (int v = 0; v < NV; ++v) {
        for (int h = 0; h < 2; ++h) {
          const __m256i dw = _mm256_load_si256(reinterpret_cast<const __m256i*>(codes[v] + c * 64 + h * 32));
          if constexpr (kInt4) {
            const __m256i lo = _mm256_and_si256(dw, nibble);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(dw, 4), nibble);
            for (int m = 0; m < MR; ++m) {
              const int8_t* x = xq + m * a.ldxq + c * 8;
              const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, BroadcastDword(x)),
                                                 _mm256_maddubs_epi16(hi, BroadcastDword(x + 4)));
              dot[m][v][h] = _mm256_add_epi32(dot[m][v][h], _mm256_madd_epi16(p, ones));
            }
          } else {
            const __m256i level = _mm256_xor_si256(dw, flip);
            const __m256i mag = _mm256_abs_epi8(level);
            for (int m = 0; m < MR; ++m) {
              const __m256i xs = _mm256_sign_epi8(BroadcastDword(xq + m * a.ldxq + c * 4), level);
              dot[m][v][h] = _mm256_add_epi32(dot[m][v][h], _mm256_madd_epi16(_mm256_maddubs_epi16(mag, xs), ones));
            }
          }
        }
      }
    }
    for (int m = 0; m < MR; ++m) {
      const __m256i bsum = _mm256_set1_epi32(kInt4 ? a.xbsum[m * a.ldxs + g] : 0);
      const __m256 sx = _mm256_set1_ps(a.xs[m * a.ldxs + g]);
      for (int v = 0; v < NV; ++v)
        for (int h = 0; h < 2; ++h) {
          const __m256 sw = LoadScales8(a.scale_dtype, scales[v], h);
          const __m256 d = _mm256_cvtepi32_ps(_mm256_sub_epi32(dot[m][v][h], bsum));
          acc[m][v][h] = _mm256_fmadd_ps(d, _mm256_mul_ps(sw, sx), acc[m][v][h]);
        }
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      for (int h = 0; h < 2; ++h) _mm256_storeu_ps(a.acc + m * a.ldacc + v * 16 + h * 8, acc[m][v][h]);
}

template <bool kInt4>
void DispatchA8(const TileArgs& a) {
  static constexpr std::array<std::array<TileFn, kNvDecode + 1>, kMrMax + 1> kTable = {{
      {},
      {nullptr, &TileA8<1, 1, kInt4>, &TileA8<1, 2, kInt4>},
      {nullptr, &TileA8<2, 1, kInt4>, nullptr},
  }};
  kTable[a.mr][a.nv](a);
}

}  // namespace

const MatmulKernel kAvx2A8Kernels[2] = {
    {"rtn8_a8_avx2", WeightType::kRtnInt8, ActType::kInt8, Isa::kAvx2, false, false, kMrMax, kNvMax,
     kNvDecode, DispatchA8<false>},
    {"rtn4_a8_avx2", WeightType::kRtnInt4, ActType::kInt8, Isa::kAvx2, false, false, kMrMax, kNvMax,
     kNvDecode, DispatchA8<true>},
};

}  // namespace rtnq
