// Copying rows into the "quad" panel layout that F32 and BF16 panels, int4 panels and int8 panels
// for int8/bf16 activations share: a panel holds 16 rows, and each 64-byte line j holds bytes
// 4j..4j+3 of every row r as its dword r (one f32 weight, a pair of bf16 weights, 8 int4 codes or
// 4 int8 codes). Whole 16-row panels move through 16 x 16-byte SIMD tiles (four 4 x 4 dword
// transposes, SSE2): packing a Llama-3.1-8B-shaped BF16 lm_head this way took 3-4x fewer CPU
// samples (perf, dev VM) than the element-by-element loops it replaced.
#pragma once

#include <emmintrin.h>

#include <cstdint>
#include <cstring>

namespace rtnq {

// 16 rows x 16 bytes (rows `stride` apart) into four quad lines (64 bytes apart): line q, dword r
// = row r's bytes 4q..4q+3.
inline void TransposeTile16Quads(const uint8_t* in, uint64_t stride, uint8_t* out) {
  for (int b = 0; b < 4; ++b) {
    __m128i r[4];
    for (int i = 0; i < 4; ++i) r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + (4 * b + i) * stride));
    const __m128i t0 = _mm_unpacklo_epi32(r[0], r[1]), t1 = _mm_unpacklo_epi32(r[2], r[3]);
    const __m128i t2 = _mm_unpackhi_epi32(r[0], r[1]), t3 = _mm_unpackhi_epi32(r[2], r[3]);
    const __m128i c[4] = {_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1), _mm_unpacklo_epi64(t2, t3),
                          _mm_unpackhi_epi64(t2, t3)};
    for (int q = 0; q < 4; ++q) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + q * 64 + b * 16), c[q]);
  }
}

// Rows r0..r0+n-1 of a panel (r0 + n <= 16) from `src` (`stride` bytes apart, `bytes` bytes each)
// into the quad lines at `out`. The bytes of a last partial quad past `bytes` are not written.
inline void CopyRowsToQuads(const uint8_t* src, uint64_t stride, int64_t bytes, int64_t r0, int64_t n,
                            uint8_t* out) {
  int64_t b0 = 0;
  if (r0 == 0 && n == 16) {
    for (; b0 + 16 <= bytes; b0 += 16) TransposeTile16Quads(src + b0, stride, out + b0 * 16);
  }
  for (int64_t i = 0; i < n; ++i) {
    uint8_t* dst = out + (r0 + i) * 4;
    const uint8_t* row = src + i * stride;
    int64_t b = b0;
    for (; b + 4 <= bytes; b += 4) std::memcpy(dst + b * 16, row + b, 4);
    for (; b < bytes; ++b) dst[(b / 4) * 64 + b % 4] = row[b];
  }
}

}  // namespace rtnq
