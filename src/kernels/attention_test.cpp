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
      for (int64_t n : {1, 2, 15, 16, 17, 100, 300}) {
        const int64_t ldk = 320, ldv = hd + 5;
        std::vector<float> q(hd), kt(hd * ldk), v(n * ldv), out(hd), scratch(ldk + 16);
        for (auto& x : q) x = dist(rng);
        for (auto& x : kt) x = dist(rng);
        for (auto& x : v) x = dist(rng);
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        kern.row(q.data(), kt.data(), ldk, v.data(), ldv, hd, n, scale, scratch.data(), out.data());
        std::vector<double> s(n);
        double mx = -1e300, sum = 0;
        for (int64_t p = 0; p < n; ++p) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += double(q[i]) * kt[i * ldk + p];
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
  const int64_t hd = 8, ldk = 64, n = 21;
  std::vector<float> q(hd, 0.5f), kt(hd * ldk), v(ldk * hd), a(hd), b(hd), scratch(ldk + 16);
  for (size_t i = 0; i < kt.size(); ++i) kt[i] = std::sin(0.1f * i);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.3f * i);
  kern.row(q.data(), kt.data(), ldk, v.data(), hd, hd, n, 0.35f, scratch.data(), a.data());
  for (int64_t d = 0; d < hd; ++d)
    for (int64_t p = n; p < ldk; ++p) kt[d * ldk + p] = 1e30f;
  for (int64_t p = n; p < ldk; ++p)
    for (int64_t d = 0; d < hd; ++d) v[p * hd + d] = NAN;
  kern.row(q.data(), kt.data(), ldk, v.data(), hd, hd, n, 0.35f, scratch.data(), b.data());
  for (int64_t d = 0; d < hd; ++d) EXPECT_EQ(a[d], b[d]);
}

}  // namespace
}  // namespace rtnq
