#include "kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace rtnq {
namespace {

TEST(Attention, RowMatchesDoubleSoftmaxOnEveryIsa) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    const AttentionKernel& kern = GetAttentionKernel(isa);
    for (int64_t hd : {8, 16, 24, 64, 128, 136}) {
      for (int64_t n : {1, 2, 15, 16, 17, 64, 100, 128, 300}) {
        const int64_t key_ctx = 320, ldv = hd + 5;
        std::vector<float> q(hd), kt(hd * key_ctx), v(n * ldv), out(hd), scratch(key_ctx + 16);
        for (auto& x : q) x = dist(rng);
        for (auto& x : kt) x = dist(rng);
        for (auto& x : v) x = dist(rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        kern.row(q.data(), kt.data(), v.data(), ldv, hd, n, scale, scratch.data(), out.data());
        std::vector<double> s(n);
        double mx = -1e300, sum = 0;
        for (int64_t p = 0; p < n; ++p) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += double(q[i]) * kt[KeyOffset(p, i, hd)];
          s[p] = d * scale;
          mx = std::max(mx, s[p]);
        }
        for (auto& e : s) sum += (e = std::exp(e - mx));
        for (int64_t i = 0; i < hd; ++i) {
          double want = 0, mag = 0;
          for (int64_t p = 0; p < n; ++p) {
            want += s[p] / sum * v[p * ldv + i];
            mag += std::fabs(s[p] / sum * v[p * ldv + i]);
          }
          ASSERT_NEAR(out[i], want, 1e-5 * (mag + 1e-3))
              << IsaName(kern.isa) << " hd=" << hd << " n=" << n << " d=" << i;
        }
      }
    }
  }
}

TEST(Attention, RowIgnoresPositionsPastN) {
  // Keys/values past n (other tokens of a batch not yet visible) must not change the result.
  const AttentionKernel& kern = GetAttentionKernel(SelectedIsa());
  const int64_t hd = 8, key_ctx = 2 * kKeyBlock;
  for (int64_t n : {int64_t{21}, kKeyBlock + 21}) {
    std::vector<float> q(hd, 0.5f), kt(hd * key_ctx), v(key_ctx * hd), a(hd), b(hd), scratch(key_ctx + 16);
    for (size_t i = 0; i < kt.size(); ++i) kt[i] = std::sin(0.1f * i);
    for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.3f * i);
    kern.row(q.data(), kt.data(), v.data(), hd, hd, n, 0.35f, scratch.data(), a.data());
    for (int64_t d = 0; d < hd; ++d)
      for (int64_t p = n; p < key_ctx; ++p) kt[KeyOffset(p, d, hd)] = 1e30f;
    for (int64_t p = n; p < key_ctx; ++p)
      for (int64_t d = 0; d < hd; ++d) v[p * hd + d] = NAN;
    kern.row(q.data(), kt.data(), v.data(), hd, hd, n, 0.35f, scratch.data(), b.data());
    for (int64_t d = 0; d < hd; ++d) EXPECT_EQ(a[d], b[d]) << "n=" << n << " d=" << d;
  }
}

}  // namespace
}  // namespace rtnq
