#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

namespace rtnq {
namespace {

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  Sampler s({});
  const float logits[] = {0.5f, 2.0f, -1.0f, 2.0f, 1.9f};
  EXPECT_EQ(s.Sample(logits, 5), 1);
  const float single[] = {-3.0f};
  EXPECT_EQ(s.Sample(single, 1), 0);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDiffers) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 0.7f);
  auto draw = [&](uint64_t seed) {
    Sampler s({1.0f, 0, 1.0f, seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) out.push_back(s.Sample(logits.data(), 50));
    return out;
  };
  EXPECT_EQ(draw(7), draw(7));
  EXPECT_NE(draw(7), draw(8));
}

TEST(Sampler, FrequenciesFollowTheTemperatureSoftmax) {
  const float logits[] = {0.0f, 1.0f, 2.0f};
  const float temp = 0.7f;
  Sampler s({temp, 0, 1.0f, 123});
  std::map<int32_t, int> counts;
  const int n = 60000;
  for (int i = 0; i < n; ++i) counts[s.Sample(logits, 3)]++;
  double z = 0;
  for (float l : logits) z += std::exp(l / temp);
  for (int i = 0; i < 3; ++i) {
    const double p = std::exp(logits[i] / temp) / z;
    EXPECT_NEAR(counts[i] / double(n), p, 4 * std::sqrt(p * (1 - p) / n)) << i;
  }
}

TEST(Sampler, TopKAndTopPRestrictTheCandidates) {
  // probs at temperature 1 over {3, 2, 1, 0, -1} (sorted): .636 .234 .086 .032 .012
  const float logits[] = {1.0f, 3.0f, -1.0f, 2.0f, 0.0f};
  Sampler k2({1.0f, 2, 1.0f, 5});
  Sampler p80({1.0f, 0, 0.8f, 5});   // .636 < .8 <= .870: ids 1 and 3
  Sampler p50({1.0f, 0, 0.5f, 5});   // first token alone reaches .5
  std::map<int32_t, int> ck, cp, cp50;
  for (int i = 0; i < 5000; ++i) {
    ck[k2.Sample(logits, 5)]++;
    cp[p80.Sample(logits, 5)]++;
    cp50[p50.Sample(logits, 5)]++;
  }
  EXPECT_EQ(ck.size(), 2u);
  EXPECT_TRUE(ck.count(1) && ck.count(3));
  EXPECT_EQ(cp.size(), 2u);
  EXPECT_TRUE(cp.count(1) && cp.count(3));
  EXPECT_EQ(cp50.size(), 1u);
  EXPECT_EQ(cp50.begin()->first, 1);
  // Renormalized over {1, 3}: P(1) = e^3 / (e^3 + e^2) = .731
  EXPECT_NEAR(ck[1] / 5000.0, 0.731, 0.03);
}

}  // namespace
}  // namespace rtnq
