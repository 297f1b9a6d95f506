#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace rtnq {

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::Sample(const float* logits, int32_t vocab_size) {
  if (vocab_size <= 0) return -1;
  if (params_.temperature <= 0.0f) {
    int32_t best = 0;  // strict > keeps the lowest id among ties
    for (int32_t i = 1; i < vocab_size; ++i) {
      if (logits[i] > logits[best]) best = i;
    }
    return best;
  }
  scratch_.clear();
  scratch_.reserve(static_cast<size_t>(vocab_size));
  for (int32_t i = 0; i < vocab_size; ++i) scratch_.emplace_back(logits[i], i);
  // Descending by logit, ascending id on ties: a total order, so the result is reproducible.
  auto by_logit = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = scratch_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = static_cast<size_t>(params_.top_k);
    std::partial_sort(scratch_.begin(), scratch_.begin() + keep, scratch_.end(), by_logit);
  } else {
    std::sort(scratch_.begin(), scratch_.end(), by_logit);
  }
  // Softmax over the kept tokens at the temperature (in double: stable for any vocab size).
  const double max_logit = scratch_[0].first;
  std::vector<double> probs(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((static_cast<double>(scratch_[i].first) - max_logit) / params_.temperature);
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;
  if (params_.top_p < 1.0f) {
    // Smallest prefix of the sorted distribution with cumulative probability >= top_p.
    double cum = 0;
    size_t n = 0;
    while (n < keep) {
      cum += probs[n++];
      if (cum >= params_.top_p) break;
    }
    keep = std::max<size_t>(1, n);
    sum = 0;
    for (size_t i = 0; i < keep; ++i) sum += probs[i];
    for (size_t i = 0; i < keep; ++i) probs[i] /= sum;
  }
  // Inverse CDF with a 53-bit uniform from the seeded generator.
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += probs[i];
    if (u < cum) return scratch_[i].second;
  }
  return scratch_[keep - 1].second;
}

}  // namespace rtnq
