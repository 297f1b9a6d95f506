// llama.cpp's own round-to-nearest block types, produced bit-for-bit as ggml's reference
// quantizers (and gguf-py's gguf.quants.quantize) produce them:
//   Q8_0: d = max|x| / 127, q = round-half-away(x / d)              (block of 32, f16 d)
//   Q4_0: m = the x with largest |x| (first on ties), d = m / -8,
//         q = min(15, trunc(x * (1/d) + 8.5))                       (block of 32, f16 d)
// Q4_0's "x * id + 8.5" is evaluated in double and rounded to f32 before truncation, exactly as
// gguf-py does (the C reference's result depends on whether the compiler fuses the multiply-add).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rtnq {

// Quantizes n floats (n a multiple of 32) into n/32 blocks at dst.
void QuantizeRowQ8_0(const float* src, uint8_t* dst, size_t n);
void QuantizeRowQ4_0(const float* src, uint8_t* dst, size_t n);

}  // namespace rtnq
