// IEEE binary16 (f16) and bfloat16 conversions. Round-to-nearest-even in both directions that
// lose precision; NaN stays NaN. Scalar only: SIMD code converts with VCVTPH2PS / VCVTNEPS2BF16.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace rtnq {

inline float Bf16ToF32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline uint16_t F32ToBf16(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round half to even
  return static_cast<uint16_t>(u >> 16);
}

inline float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: value = mant * 2^-24
      float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
      bits = sign | std::bit_cast<uint32_t>(v);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t F32ToF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in f16: round value * 2^24 to an integer
    const float v = std::bit_cast<float>(abs) * 16777216.0f;
    // nearbyint under the default rounding mode is round-half-even.
    const uint32_t m = static_cast<uint32_t>(__builtin_nearbyintf(v));
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t e = ((abs >> 23) - 112) << 10;
  uint32_t m = (abs >> 13) & 0x3ffu;
  uint32_t rest = abs & 0x1fffu;
  uint32_t h = e | m;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into exponent: correct
  return static_cast<uint16_t>(sign | h);
}

}  // namespace rtnq
