// Token sampling: greedy (temperature 0), or temperature with top-k and top-p (nucleus)
// filtering, from a seeded generator so runs are reproducible.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace rtnq {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int top_k = 0;             // 0: no limit
  float top_p = 1.0f;        // 1: no limit
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  int32_t Sample(const float* logits, int32_t vocab_size);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

}  // namespace rtnq
