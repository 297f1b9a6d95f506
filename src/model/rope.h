// Rotary position embedding in HF's rotate-half form, with HF's float32 numerics: inv_freq is
// computed in float32 in the order of transformers' rope init functions (default, linear,
// llama3), angles are float32 position * inv_freq, and cos/sin are taken of the float32 angle.
#pragma once

#include <cstdint>
#include <vector>

#include "arch/model_config.h"

namespace rtnq {

// HF's inv_freq (head_dim / 2 values) for `config`, in float32.
std::vector<float> RopeInvFreq(const ModelConfig& config);

struct RopeTable {
  int64_t half = 0;         // head_dim / 2
  std::vector<float> cos;   // [position][half]
  std::vector<float> sin;
};

RopeTable BuildRopeTable(const ModelConfig& config, int max_positions);

// x[i], x[i + half] <- x[i] * cos - x[i + half] * sin, x[i + half] * cos + x[i] * sin.
inline void ApplyRope(const RopeTable& t, int pos, float* x, int64_t head_dim) {
  const float* c = t.cos.data() + static_cast<size_t>(pos) * t.half;
  const float* s = t.sin.data() + static_cast<size_t>(pos) * t.half;
  for (int64_t i = 0; i < t.half; ++i) {
    const float a = x[i], b = x[i + t.half];
    // Products rounded separately, as torch's q * cos + rotate_half(q) * sin does.
    const float ac = a * c[i], bs = b * s[i], bc = b * c[i], as = a * s[i];
    x[i] = ac - bs;
    x[i + t.half] = bc + as;
  }
}

}  // namespace rtnq
