// Int8-activation (A8) RTN kernels: the activation quantizer of every ISA against the scalar one,
// every A8 kernel against the scalar oracle MatmulReferenceRtn(..., ActType::kInt8) bitwise, and
// the A8 result against the exact f32-activation oracle within a bound derived from the int8 step.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <random>

#include "base/half.h"
#include "kernels/matmul.h"
#include "kernels/matmul_test_util.h"
#include "kernels/matmul_tiles.h"

namespace rtnq {
namespace {

struct A8Problem {
  RtnFormat format;
  int64_t n, k, m;
  std::vector<uint8_t> codes, scales;
  std::vector<float> x, bias;
};

// Random codes; scales over many binades with some all-zero groups; activations N(0,1) with
// outlier channels (x30) and some all-zero and denormal-only groups per row.
A8Problem MakeA8Problem(const RtnFormat& f, int64_t n, int64_t k, int64_t m, uint64_t seed) {
  A8Problem p{f, n, k, m, {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  p.codes.resize(f.CodeBytes(n, k));
  for (auto& c : p.codes) c = static_cast<uint8_t>(rng());
  const int64_t group = f.GroupLength(k), groups = k / group;
  p.scales.resize(f.ScaleBytes(n, k));
  std::uniform_real_distribution<float> mag(-12.0f, 2.0f);
  for (int64_t i = 0; i < n * groups; ++i) {
    const float s = i % 9 == 4 ? 0.0f : std::exp2(mag(rng));
    if (f.scale_dtype == DType::kF32) {
      std::memcpy(&p.scales[i * 4], &s, 4);
    } else {
      const uint16_t h = f.scale_dtype == DType::kBF16 ? F32ToBf16(s) : F32ToF16(s);
      std::memcpy(&p.scales[i * 2], &h, 2);
    }
  }
  std::normal_distribution<float> dist(0.0f, 1.0f);
  p.x.resize(m * k);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c = 0; c < k; ++c) {
      const int64_t g = c / group;
      float v = dist(rng) * (c % 37 == 5 ? 30.0f : 1.0f);
      if (groups > 1 && (i + g) % 5 == 2) v = 0.0f;                // all-zero group
      if (groups > 2 && (i + g) % 7 == 3) v *= 1e-39f;             // denormal-only group
      p.x[i * k + c] = v;
    }
  p.bias.resize(n);
  for (float& v : p.bias) v = dist(rng);
  return p;
}

using testing::BitEqual;

// The registered A8 kernel of each ISA this host runs.
std::vector<const MatmulKernel*> A8Kernels(WeightType w) {
  std::vector<const MatmulKernel*> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (static_cast<int>(isa) > static_cast<int>(HostCpu().BestIsa())) continue;
    const MatmulKernel* k = FindMatmulKernel(w, ActType::kInt8, isa);
    if (k != nullptr && k->isa == isa) out.push_back(k);
  }
  return out;
}

TEST(A8Matmul, ActTypeNamesRoundTrip) {
  for (ActType a : {ActType::kF32, ActType::kBF16, ActType::kInt8}) {
    ActType back = ActType::kF32;
    ASSERT_TRUE(ParseActType(ActTypeName(a), &back));
    EXPECT_EQ(back, a);
  }
  EXPECT_STREQ(ActTypeName(ActType::kInt8), "int8");
  ActType out;
  EXPECT_FALSE(ParseActType("int4", &out));
}

TEST(A8Matmul, RegistryHasAnA8KernelPerIsa) {
  const size_t expected = 1 + static_cast<int>(HostCpu().BestIsa());
  EXPECT_EQ(A8Kernels(WeightType::kRtnInt8).size(), expected);
  EXPECT_EQ(A8Kernels(WeightType::kRtnInt4).size(), expected);
}

TEST(A8Matmul, QuantizerSemanticsAndEveryIsaBitwise) {
  std::mt19937_64 rng(5);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (int64_t group : {1, 3, 8, 30, 32, 64, 128, 130, 600}) {
    for (bool permute8 : {false, true}) {
      const int64_t groups = 3, k = group * groups, stride = (group + 7) / 8 * 8;
      std::vector<float> x(k);
      for (float& v : x) v = dist(rng);
      for (int64_t c = 0; c < group; ++c) x[group + c] = 0.0f;  // group 1 all zero
      x[2 * group] = -50.0f;                                    // an outlier sets group 2's scale
      std::vector<int8_t> q(groups * stride, 99), q512(groups * stride, 98);
      std::vector<float> s(groups), s512(groups);
      std::vector<int32_t> sum(groups), sum512(groups);
      QuantizeActivationsA8(x.data(), k, group, stride, permute8, {q.data(), s.data(), sum.data()},
                            Isa::kScalar);
      for (int64_t g = 0; g < groups; ++g) {
        float amax = 0;
        for (int64_t c = 0; c < group; ++c) amax = std::max(amax, std::fabs(x[g * group + c]));
        EXPECT_EQ(s[g], amax / 127.0f);
        int32_t total = 0;
        for (int64_t c = 0; c < stride; ++c) {
          const int64_t j = c & 7;
          const int64_t src = permute8 ? (c & ~int64_t{7}) + (j < 4 ? 2 * j : 2 * (j - 4) + 1) : c;
          const int8_t got = q[g * stride + c];
          total += got;
          if (src >= group) {
            EXPECT_EQ(got, 0) << "padding";
            continue;
          }
          EXPECT_GE(got, -127);
          const float xv = x[g * group + src];
          // q * s reproduces x within half a step (plus the rounding of 1/s and x * (1/s)).
          EXPECT_LE(std::fabs(got * s[g] - xv), 0.5f * s[g] * (1 + 1e-5f) + 1e-30f) << xv;
        }
        EXPECT_EQ(total, sum[g]);
      }
      EXPECT_EQ(q[2 * stride], -127);  // the outlier is k = 0 of its group: position 0 either way
      if (IsaAtLeast(HostCpu().BestIsa(), Isa::kAvx512)) {
        QuantizeActivationsA8(x.data(), k, group, stride, permute8,
                              {q512.data(), s512.data(), sum512.data()}, Isa::kAvx512);
        EXPECT_EQ(q, q512) << group << " " << permute8;
        EXPECT_EQ(std::memcmp(s.data(), s512.data(), groups * 4), 0);
        EXPECT_EQ(sum, sum512);
      }
    }
  }
}

TEST(A8Matmul, TinyGroupsQuantizeToZeroInEveryIsa) {
  // amax / 127 underflows or 1/s overflows: the group counts as all-zero (s = 0, q = 0).
  for (float tiny : {1e-45f, 1e-40f, 3e-39f}) {
    std::vector<float> x(16, tiny);
    x[3] = -tiny;
    for (Isa isa : {Isa::kScalar, HostCpu().BestIsa()}) {
      std::vector<int8_t> q(16, 1);
      float s = 1;
      int32_t sum = 1;
      QuantizeActivationsA8(x.data(), 16, 16, 16, false, {q.data(), &s, &sum}, isa);
      if (s == 0.0f) {
        EXPECT_EQ(sum, 0);
        for (int8_t v : q) EXPECT_EQ(v, 0);
      } else {
        EXPECT_TRUE(std::isfinite(1.0f / s));
        EXPECT_EQ(q[0], 127);
      }
    }
  }
}

TEST(A8Matmul, EveryKernelMatchesOracleBitwise) {
  const DType scale_types[] = {DType::kBF16, DType::kF16, DType::kF32};
  const int64_t ns[] = {1, 15, 17, 40};
  std::vector<int64_t> ms;
  for (int64_t m = 1; m <= 20; ++m) ms.push_back(m);
  for (int64_t m : {37, 64, 130}) ms.push_back(m);
  int64_t checked = 0;
  for (WeightType wt : {WeightType::kRtnInt8, WeightType::kRtnInt4}) {
    const RtnScheme scheme = wt == WeightType::kRtnInt8 ? RtnScheme::kInt8 : RtnScheme::kInt4;
    for (const MatmulKernel* kern : A8Kernels(wt)) {
      uint64_t seed = 1000;
      int variant = 0;
      for (int32_t group : kRtnGroupSizes) {
        // Several groups, A8 k blocks of 512 split inside the row; row groups with K % 8 != 0
        // (int4: partial 8-k chunk) and odd K (int8: partial k-quad).
        std::vector<int64_t> ks;
        if (group == 0) {
          ks = scheme == RtnScheme::kInt8 ? std::vector<int64_t>{1, 7, 30, 130, 523, 96, 544}
                                          : std::vector<int64_t>{2, 6, 30, 130, 522, 96, 544};
        } else {
          ks = {group, 3 * group, 1024 / group * group + group};
        }
        for (int64_t k : ks) {
          const RtnFormat f{scheme, group, scale_types[variant++ % 3]};
          for (int64_t n : ns)
            for (int64_t m : ms) {
              if (kern->isa == Isa::kScalar && n * k * m > 200000) continue;
              if (n * k * m > 2000000) continue;
              if (kern->k_unit > 0 && f.GroupLength(k) % kern->k_unit != 0) continue;
              A8Problem p = MakeA8Problem(f, n, k, m, seed++);
              auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k,
                                               ActType::kInt8, kern->isa);
              ASSERT_TRUE(packed.ok()) << packed.status().message();
              ASSERT_EQ(packed->kernel(), kern);
              ASSERT_EQ(packed->act(), ActType::kInt8);
              const float* bias = (n + m) % 2 ? p.bias.data() : nullptr;
              const int64_t ldy = n + 3, ldx = k + (m % 3);
              std::vector<float> x(m * ldx, 1e9f);
              for (int64_t i = 0; i < m; ++i) std::memcpy(&x[i * ldx], &p.x[i * k], k * 4);
              std::vector<float> got(m * ldy, -7.0f), want(m * ldy, -7.0f);
              Matmul(*packed, x.data(), m, ldx, got.data(), ldy, bias, nullptr);
              MatmulReferenceRtn(f, p.codes.data(), p.scales.data(), n, k, x.data(), m, ldx,
                                 want.data(), ldy, bias, ActType::kInt8);
              ASSERT_TRUE(BitEqual(got, want))
                  << kern->name << " " << f.Name() << " n=" << n << " k=" << k << " m=" << m;
              ++checked;
            }
        }
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

// Full 8-panel decode tiles (N = 2 x 128 + 5: two whole tiles and a tail) with the decode
// prefetches at their defaults, off, and at other L1 / L2 distances: bitwise the oracle.
TEST(A8Matmul, WideDecodeTilesAndPrefetchDistancesKeepTheBits) {
  for (WeightType wt : {WeightType::kRtnInt8, WeightType::kRtnInt4}) {
    const RtnScheme scheme = wt == WeightType::kRtnInt8 ? RtnScheme::kInt8 : RtnScheme::kInt4;
    for (const MatmulKernel* kern : A8Kernels(wt)) {
      for (const RtnFormat f : {RtnFormat{scheme, 128, DType::kBF16}, RtnFormat{scheme, 0, DType::kF16}}) {
        const int64_t n = 261, k = f.group == 0 ? 202 : 384;
        for (int64_t m : {1, 3}) {
          A8Problem p = MakeA8Problem(f, n, k, m, 4242 + m + k);
          auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, ActType::kInt8, kern->isa);
          ASSERT_TRUE(packed.ok()) << packed.status().message();
          std::vector<float> want(m * n);
          MatmulReferenceRtn(f, p.codes.data(), p.scales.data(), n, k, p.x.data(), m, k, want.data(), n,
                             p.bias.data(), ActType::kInt8);
          for (const auto& [pf, pf2] : {std::pair{-1, -1}, std::pair{0, 0}, std::pair{64, 2048}, std::pair{4096, 0}}) {
            g_matmul_overrides = MatmulOverrides{};
            g_matmul_overrides.prefetch_bytes = pf;
            g_matmul_overrides.prefetch_l2_bytes = pf2;
            std::vector<float> got(m * n);
            Matmul(*packed, p.x.data(), m, k, got.data(), n, p.bias.data(), nullptr);
            g_matmul_overrides = MatmulOverrides{};
            EXPECT_TRUE(BitEqual(got, want))
                << kern->name << " " << f.Name() << " m=" << m << " pf=" << pf << " pf2=" << pf2;
          }
        }
      }
    }
  }
}

TEST(A8Matmul, ThreadCountAndBatchInvariance) {
  const int64_t n = 300, m = 29;  // 19 panels: uneven splits
  for (WeightType wt : {WeightType::kRtnInt8, WeightType::kRtnInt4}) {
    const RtnScheme scheme = wt == WeightType::kRtnInt8 ? RtnScheme::kInt8 : RtnScheme::kInt4;
    for (const MatmulKernel* kern : A8Kernels(wt)) {
      if (kern->isa == Isa::kScalar) continue;
      for (int32_t group : {32, 128, 0}) {
        const int64_t k = group == 0 ? 1056 : 1152;  // more than one k block
        const RtnFormat f{scheme, group, DType::kBF16};
        SCOPED_TRACE(::testing::Message() << kern->name << " " << f.Name());
        A8Problem p = MakeA8Problem(f, n, k, m, 42);
        auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, ActType::kInt8,
                                         kern->isa);
        ASSERT_TRUE(packed.ok());
        testing::ExpectThreadCountAndBatchInvariance(*packed, p.x, m, p.bias.data());
      }
    }
  }
}

// Against the exact f32-activation oracle. Per element x = q * s + e with |e| <= s / 2 (one int8
// step of the group's scale s = amax / 127, plus ~1e-7 relative from rounding 1/s and x / s), so
//   |y_a8 - y_f32| <= sum over groups of (s_g / 2) * sum_{k in g} |w_k|   (*)
// plus fp32 accumulation error of both chains (bounded by 1e-5 * sum |w x| for these K).
// (groups flushed to zero because 1/s overflows, |x| < ~1e-36: amax * sum |w| instead).
// (*) is a worst case; for Gaussian x the observed relative L2 error is about 1% (g128) and is
// also checked, loosely, to catch a systematically wrong but in-bound result.
TEST(A8Matmul, CloseToExactF32ActivationsWithinInt8StepBound) {
  for (RtnScheme scheme : {RtnScheme::kInt8, RtnScheme::kInt4}) {
    for (int32_t group : {32, 128, 0}) {
      const RtnFormat f{scheme, group, DType::kF32};
      const int64_t n = 64, k = 1024, m = 4, G = f.GroupLength(k);
      A8Problem p = MakeA8Problem(f, n, k, m, 77);
      auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, ActType::kInt8);
      ASSERT_TRUE(packed.ok());
      std::vector<float> got(m * n), exact(m * n);
      Matmul(*packed, p.x.data(), m, k, got.data(), n, nullptr, nullptr);
      MatmulReferenceRtn(f, p.codes.data(), p.scales.data(), n, k, p.x.data(), m, k, exact.data(), n,
                         nullptr);
      std::vector<float> w(k);
      double err2 = 0, ref2 = 0;
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          RtnDequantizeRow(f, p.codes.data() + j * f.CodeBytes(1, k), p.scales.data() + j * f.ScaleBytes(1, k),
                           k, w.data());
          double bound = 0, mag = 0;
          for (int64_t g = 0; g < k / G; ++g) {
            double amax = 0, wsum = 0;
            for (int64_t c = g * G; c < (g + 1) * G; ++c) {
              amax = std::max(amax, std::fabs(static_cast<double>(p.x[i * k + c])));
              wsum += std::fabs(w[c]);
              mag += std::fabs(static_cast<double>(w[c]) * p.x[i * k + c]);
            }
            // A group whose 1/s overflows is flushed to zero: its error is up to amax * sum |w|.
            const bool flushed = !(1.0f / (static_cast<float>(amax) / 127.0f) <= FLT_MAX);
            bound += (flushed ? amax : 0.5 * (amax / 127.0)) * wsum * (1 + 1e-5);
          }
          const double diff = std::fabs(static_cast<double>(got[i * n + j]) - exact[i * n + j]);
          ASSERT_LE(diff, bound + 1e-5 * mag) << f.Name() << " row " << i << " out " << j;
          err2 += diff * diff;
          ref2 += static_cast<double>(exact[i * n + j]) * exact[i * n + j];
        }
      }
      // Outlier channels (x30 every 37th) make per-row groups coarse: ~5%; g32 ~1%.
      EXPECT_LT(std::sqrt(err2 / ref2), group == 0 ? 0.10 : 0.05) << f.Name();
    }
  }
}

TEST(A8Matmul, LayoutExtractRowAndSetRowsInParts) {
  for (RtnScheme scheme : {RtnScheme::kInt8, RtnScheme::kInt4}) {
    for (int32_t group : kRtnGroupSizes) {
      const RtnFormat f{scheme, group, DType::kBF16};
      const int64_t n = 37, k = group == 0 ? (scheme == RtnScheme::kInt8 ? 59 : 58) : 2 * group;
      A8Problem p = MakeA8Problem(f, n, k, 1, 3);
      auto whole = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, ActType::kInt8);
      ASSERT_TRUE(whole.ok());
      auto parts = PackedWeight::AllocateRtn(f, n, k, ActType::kInt8);
      ASSERT_TRUE(parts.ok());
      EXPECT_EQ(parts->act(), ActType::kInt8);
      parts->SetRtnRows(20, n - 20, p.codes.data() + 20 * f.CodeBytes(1, k),
                        p.scales.data() + 20 * f.ScaleBytes(1, k));
      parts->SetRtnRows(0, 20, p.codes.data(), p.scales.data());
      ASSERT_EQ(whole->bytes(), parts->bytes());
      EXPECT_EQ(std::memcmp(whole->panel(0), parts->panel(0), whole->bytes()), 0) << f.Name();
      std::vector<float> row(k), want(k);
      for (int64_t r = 0; r < n; ++r) {
        whole->ExtractRow(r, row.data());
        RtnDequantizeRow(f, p.codes.data() + r * f.CodeBytes(1, k), p.scales.data() + r * f.ScaleBytes(1, k), k,
                         want.data());
        ASSERT_EQ(std::memcmp(row.data(), want.data(), k * 4), 0) << f.Name() << " row " << r;
      }
    }
  }
}

// Llama-3's lm_head row (K = 128256, one group) at the int32 extreme: every level -128 and every
// q = 127 gives dot = -128 * 127 * 128256 = -2084929536, inside int32 while the code * q partial
// sums wrap. One group longer than A8MaxGroup is refused.
TEST(A8Matmul, WidestRowGroupDoesNotOverflow) {
  const int64_t n = 16, k = 128256;
  const RtnFormat f{RtnScheme::kInt8, 0, DType::kF32};
  std::vector<uint8_t> codes(n * k, 0);
  for (int64_t c = 0; c < k; ++c) codes[k + c] = 255;  // row 1: level +127
  std::vector<float> scales(n, 1.0f), x(k, 1.0f);
  const float exact[2] = {-2084929536.0f, 2068641024.0f};  // -128 * 127 * k, 127 * 127 * k
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(HostCpu().BestIsa())) continue;
    auto packed = PackedWeight::Pack(f, codes.data(), reinterpret_cast<const uint8_t*>(scales.data()), n, k,
                                     ActType::kInt8, isa);
    ASSERT_TRUE(packed.ok());
    std::vector<float> y(n);
    Matmul(*packed, x.data(), 1, k, y.data(), n, nullptr, nullptr);
    // s_x = 1/127 (rounded), so y = float(dot) * (1 * s_x).
    EXPECT_EQ(y[0], exact[0] * (1.0f / 127.0f)) << IsaName(isa);
    EXPECT_EQ(y[1], exact[1] * (1.0f / 127.0f)) << IsaName(isa);
  }
  EXPECT_TRUE(PackedWeight::AllocateRtn(f, 16, A8MaxGroup(RtnScheme::kInt8), ActType::kInt8).ok());
  EXPECT_FALSE(PackedWeight::AllocateRtn(f, 16, A8MaxGroup(RtnScheme::kInt8) + 1, ActType::kInt8).ok());
  EXPECT_TRUE(PackedWeight::AllocateRtn(f, 16, A8MaxGroup(RtnScheme::kInt8) + 1, ActType::kF32).ok());
}

}  // namespace
}  // namespace rtnq
