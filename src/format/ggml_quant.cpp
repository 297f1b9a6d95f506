#include "format/ggml_quant.h"

#include <cmath>
#include <cstring>

#include "base/half.h"

namespace rtnq {

void QuantizeRowQ8_0(const float* src, uint8_t* dst, size_t n) {
  for (size_t b = 0; b < n / 32; ++b, src += 32, dst += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(src[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = F32ToF16(d);
    std::memcpy(dst, &dh, 2);
    for (int j = 0; j < 32; ++j) {
      dst[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(std::round(src[j] * id)));  // half away
    }
  }
}

void QuantizeRowQ4_0(const float* src, uint8_t* dst, size_t n) {
  for (size_t b = 0; b < n / 32; ++b, src += 32, dst += 18) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(src[j])) {
        amax = std::fabs(src[j]);
        max = src[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t dh = F32ToF16(d);
    std::memcpy(dst, &dh, 2);
    auto code = [&](float x) {
      // gguf-py: np.trunc(f64(x) * f64(id) + 8.5, dtype=float32) rounds to f32 before truncating.
      const float t = std::trunc(static_cast<float>(static_cast<double>(x) * static_cast<double>(id) + 8.5));
      return static_cast<uint8_t>(t < 0.0f ? 0.0f : t > 15.0f ? 15.0f : t);
    };
    for (int j = 0; j < 16; ++j) dst[2 + j] = static_cast<uint8_t>(code(src[j]) | (code(src[16 + j]) << 4));
  }
}

}  // namespace rtnq
