#include "model/rope.h"

#include <cmath>

namespace rtnq {

std::vector<float> RopeInvFreq(const ModelConfig& c) {
  const int64_t dim = c.head_dim, half = dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  // 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32.
  const float base = static_cast<float>(c.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[i] = 1.0f / std::pow(base, e);
  }
  const RopeScaling& rs = c.rope_scaling;
  const float factor = static_cast<float>(rs.factor);
  if (rs.type == RopeScalingType::kLinear) {
    for (float& f : inv) f /= factor;  // transformers >= 4.45: inv_freq /= factor
  } else if (rs.type == RopeScalingType::kLlama3) {
    // _compute_llama3_parameters: wavelen = 2*pi / inv_freq; long wavelengths divided by factor,
    // short ones kept, the band between blended by smooth_factor.
    const double low_wavelen = static_cast<double>(rs.original_max_position) / rs.low_freq_factor;
    const double high_wavelen = static_cast<double>(rs.original_max_position) / rs.high_freq_factor;
    const float two_pi = static_cast<float>(2.0 * M_PI);
    for (float& f : inv) {
      // torch evaluates scalar / tensor as reciprocal(tensor) * scalar.
      const float wavelen = (1.0f / f) * two_pi;
      const float llama = wavelen > static_cast<float>(low_wavelen) ? f / factor : f;
      const float smooth =
          ((1.0f / wavelen) * static_cast<float>(rs.original_max_position) -
           static_cast<float>(rs.low_freq_factor)) /
          static_cast<float>(rs.high_freq_factor - rs.low_freq_factor);
      const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;
      const bool medium = !(wavelen < static_cast<float>(high_wavelen)) &&
                          !(wavelen > static_cast<float>(low_wavelen));
      f = medium ? smoothed : llama;
    }
  }
  return inv;
}

RopeTable BuildRopeTable(const ModelConfig& config, int max_positions) {
  RopeTable t;
  const std::vector<float> inv = RopeInvFreq(config);
  t.half = static_cast<int64_t>(inv.size());
  t.cos.resize(static_cast<size_t>(max_positions) * t.half);
  t.sin.resize(t.cos.size());
  for (int p = 0; p < max_positions; ++p) {
    for (int64_t i = 0; i < t.half; ++i) {
      const float angle = static_cast<float>(p) * inv[i];
      t.cos[static_cast<size_t>(p) * t.half + i] = std::cos(angle);
      t.sin[static_cast<size_t>(p) * t.half + i] = std::sin(angle);
    }
  }
  return t;
}

}  // namespace rtnq
