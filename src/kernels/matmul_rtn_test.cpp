// RTN weight kernels (int8 / int4 codes with per-group scales) against the scalar oracle
// MatmulReferenceRtn, which dequantizes with RtnDequantizeRow and runs one FMA chain per output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "base/half.h"
#include "kernels/matmul.h"
#include "kernels/matmul_test_util.h"

namespace rtnq {
namespace {

struct RtnProblem {
  RtnFormat format;
  int64_t n, k, m;
  std::vector<uint8_t> codes, scales;
  std::vector<float> x, bias;
};

RtnProblem MakeRtnProblem(const RtnFormat& f, int64_t n, int64_t k, int64_t m, uint64_t seed) {
  RtnProblem p{f, n, k, m, {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  p.codes.resize(f.CodeBytes(n, k));
  for (auto& c : p.codes) c = static_cast<uint8_t>(rng());
  const int64_t groups = n * (k / f.GroupLength(k));
  p.scales.resize(f.ScaleBytes(n, k));
  std::uniform_real_distribution<float> mag(-12.0f, 2.0f);
  for (int64_t i = 0; i < groups; ++i) {
    // Magnitudes over many binades; every 9th group all-zero (scale 0), like an all-zero group.
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
  for (float& v : p.x) v = dist(rng);
  p.bias.resize(n);
  for (float& v : p.bias) v = dist(rng);
  return p;
}

using testing::BitEqual;

std::vector<const MatmulKernel*> RtnKernels() {
  std::vector<const MatmulKernel*> out;
  for (const MatmulKernel* k : AllMatmulKernels()) {
    if (k->weight != WeightType::kRtnInt8 && k->weight != WeightType::kRtnInt4) continue;
    if (k->act != ActType::kF32) continue;  // A8 kernels: matmul_a8_test.cpp
    if (FindMatmulKernel(k->weight, k->act, k->isa) == k) out.push_back(k);
  }
  return out;
}

RtnScheme SchemeOf(const MatmulKernel* k) {
  return k->weight == WeightType::kRtnInt8 ? RtnScheme::kInt8 : RtnScheme::kInt4;
}

TEST(RtnMatmul, RegistryHasEveryIsaForBothSchemes) {
  const int expected = 1 + std::min(static_cast<int>(HostCpu().BestIsa()), static_cast<int>(Isa::kAvx512));
  int int8 = 0, int4 = 0;
  for (const MatmulKernel* k : RtnKernels()) (SchemeOf(k) == RtnScheme::kInt8 ? int8 : int4)++;
  EXPECT_EQ(int8, expected);
  EXPECT_EQ(int4, expected);
}

TEST(RtnMatmul, EveryKernelMatchesOracleOverShapesGroupsAndScaleTypes) {
  const DType scale_types[] = {DType::kBF16, DType::kF16, DType::kF32};
  const int64_t ns[] = {1, 15, 17, 40};
  const int64_t ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 37, 64, 130};
  for (const MatmulKernel* kern : RtnKernels()) {
    uint64_t seed = 100;
    int variant = 0;
    for (int32_t group : kRtnGroupSizes) {
      // K: several groups, a k-block (256) boundary inside and not at a group edge; for one group
      // per row also K % 8 != 0 (a partial int4 chunk) and K > 256 (row group split by k blocks).
      std::vector<int64_t> ks;
      if (group == 0) {
        ks = {2, 6, 30, 64, 130, 522};
      } else {
        ks = {group, 3 * group, 5 * group, 640 / group * group + group};
      }
      for (int64_t k : ks) {
        const RtnFormat f{SchemeOf(kern), group, scale_types[variant++ % 3]};
        for (int64_t n : ns)
          for (int64_t m : ms) {
            if (kern->isa == Isa::kScalar && n * k * m > 100000) continue;  // libm fma is slow
            RtnProblem p = MakeRtnProblem(f, n, k, m, seed++);
            auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, kern->isa);
            ASSERT_TRUE(packed.ok()) << packed.status().message();
            ASSERT_EQ(packed->kernel(), kern);
            const float* bias = (n + m) % 2 ? p.bias.data() : nullptr;
            const int64_t ldy = n + 3;
            std::vector<float> got(m * ldy, -7.0f), want(m * ldy, -7.0f);
            Matmul(*packed, p.x.data(), m, k, got.data(), ldy, bias, nullptr);
            MatmulReferenceRtn(f, p.codes.data(), p.scales.data(), n, k, p.x.data(), m, k,
                               want.data(), ldy, bias);
            ASSERT_TRUE(BitEqual(got, want))
                << kern->name << " " << f.Name() << " n=" << n << " k=" << k << " m=" << m;
          }
      }
    }
  }
}

TEST(RtnMatmul, ThreadCountAndBatchInvariance) {
  const int64_t n = 300, m = 29;  // 19 panels: uneven splits
  for (const MatmulKernel* kern : RtnKernels()) {
    if (kern->isa == Isa::kScalar) continue;
    for (int32_t group : {32, 0}) {
      const int64_t k = group == 0 ? 522 : 544;  // more than one k block
      const RtnFormat f{SchemeOf(kern), group, DType::kBF16};
      SCOPED_TRACE(::testing::Message() << kern->name << " " << f.Name());
      RtnProblem p = MakeRtnProblem(f, n, k, m, 42);
      auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, kern->isa);
      ASSERT_TRUE(packed.ok());
      testing::ExpectThreadCountAndBatchInvariance(*packed, p.x, m, p.bias.data());
    }
  }
}

// --- bf16 activations (W8A16 / W4A16 with 16-bit activations; the AMX tiles) ------------------

std::vector<const MatmulKernel*> RtnBf16ActKernels() {
  std::vector<const MatmulKernel*> out;
  for (const MatmulKernel* k : AllMatmulKernels()) {
    if (k->weight != WeightType::kRtnInt8 && k->weight != WeightType::kRtnInt4) continue;
    if (k->act != ActType::kBF16) continue;
    if (FindMatmulKernel(k->weight, k->act, k->isa) == k) out.push_back(k);
  }
  return out;
}

// Bound for "equal up to fp32 summation order": 1e-6 of sum |level * x_bf16 * s| per output.
float Bf16ActTolerance(const RtnProblem& p, int64_t i, int64_t j) {
  const RtnFormat& f = p.format;
  std::vector<float> w(p.k);
  RtnDequantizeRow(f, p.codes.data() + j * f.CodeBytes(1, p.k), p.scales.data() + j * f.ScaleBytes(1, p.k),
                   p.k, w.data());
  double mag = 0;
  for (int64_t c = 0; c < p.k; ++c) mag += std::fabs(w[c] * Bf16ToF32(F32ToBf16(p.x[i * p.k + c])));
  return static_cast<float>(1e-6 * mag) + 1e-30f;
}

TEST(RtnMatmul, Bf16ActivationKernelsMatchOracle) {
  const DType scale_types[] = {DType::kBF16, DType::kF16, DType::kF32};
  const int64_t ns[] = {1, 15, 17, 40};
  const int64_t ms[] = {1, 2, 5, 16, 17, 20, 33, 37, 64};
  auto kernels = RtnBf16ActKernels();
  EXPECT_EQ(kernels.size(), IsaAtLeast(HostCpu().BestIsa(), Isa::kAmx) ? 4u : 2u);  // int8, int4
  int64_t checked = 0;
  for (const MatmulKernel* kern : kernels) {
    uint64_t seed = 500;
    int variant = 0;
    for (int32_t group : {32, 64, 128, 0}) {
      // Row groups: K % 32 == 0 (AMX) and not (the twin), K past the 512-k block for M > 32.
      const std::vector<int64_t> ks = group == 0 ? std::vector<int64_t>{64, 544, 30}
                                                 : std::vector<int64_t>{group, 3 * group, 640 / group * group + group};
      for (int64_t k : ks) {
        const RtnFormat f{SchemeOf(kern), group, scale_types[variant++ % 3]};
        for (int64_t n : ns)
          for (int64_t m : ms) {
            if (kern->isa == Isa::kScalar && n * k * m > 100000) continue;
            RtnProblem p = MakeRtnProblem(f, n, k, m, seed++);
            auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, ActType::kBF16, kern->isa);
            ASSERT_TRUE(packed.ok()) << packed.status().message();
            if (kern->k_unit > 0 && f.GroupLength(k) % kern->k_unit != 0) {
              EXPECT_EQ(packed->kernel()->isa, Isa::kScalar) << "the twin serves groups AMX cannot";
              continue;
            }
            ASSERT_EQ(packed->kernel(), kern);
            const float* bias = (n + m) % 2 ? p.bias.data() : nullptr;
            const int64_t ldy = n + 3;
            std::vector<float> got(m * ldy, -7.0f), want(m * ldy, -7.0f);
            Matmul(*packed, p.x.data(), m, k, got.data(), ldy, bias, nullptr);
            MatmulReferenceRtn(f, p.codes.data(), p.scales.data(), n, k, p.x.data(), m, k, want.data(), ldy,
                               bias, ActType::kBF16);
            SCOPED_TRACE(::testing::Message() << kern->name << " " << f.Name() << " n=" << n << " k=" << k
                                              << " m=" << m);
            if (kern->isa == Isa::kScalar) {
              ASSERT_TRUE(BitEqual(got, want));
            } else {
              for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < ldy; ++j) {
                  if (j >= n) {
                    ASSERT_EQ(got[i * ldy + j], -7.0f);
                    continue;
                  }
                  ASSERT_NEAR(got[i * ldy + j], want[i * ldy + j], Bf16ActTolerance(p, i, j)) << i << "," << j;
                }
            }
            ++checked;
          }
      }
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(RtnMatmul, Bf16ActivationThreadCountAndBatchInvariance) {
  const int64_t n = 300, m = 45;  // 19 panels; 32 + 13 rows
  for (const MatmulKernel* kern : RtnBf16ActKernels()) {
    if (kern->isa == Isa::kScalar) continue;
    for (int32_t group : {32, 128, 0}) {
      const int64_t k = group == 0 ? 544 : 1152;  // more than one k block
      const RtnFormat f{SchemeOf(kern), group, DType::kBF16};
      SCOPED_TRACE(::testing::Message() << kern->name << " " << f.Name());
      RtnProblem p = MakeRtnProblem(f, n, k, m, 43);
      auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k, ActType::kBF16, kern->isa);
      ASSERT_TRUE(packed.ok());
      ASSERT_EQ(packed->kernel(), kern);
      testing::ExpectThreadCountAndBatchInvariance(*packed, p.x, m, p.bias.data());
    }
  }
}

TEST(RtnMatmul, AllIsasGiveIdenticalBitsAndEqualPreDequantizedF32) {
  for (RtnScheme scheme : {RtnScheme::kInt8, RtnScheme::kInt4}) {
    const RtnFormat f{scheme, 64, DType::kF16};
    RtnProblem p = MakeRtnProblem(f, 77, 320, 11, 7);
    std::vector<float> dense(p.n * p.k);
    for (int64_t r = 0; r < p.n; ++r)
      RtnDequantizeRow(f, p.codes.data() + r * f.CodeBytes(1, p.k), p.scales.data() + r * f.ScaleBytes(1, p.k),
                       p.k, dense.data() + r * p.k);
    auto f32 = PackedWeight::Pack(DType::kF32, dense.data(), p.n, p.k);
    ASSERT_TRUE(f32.ok());
    std::vector<float> want(p.m * p.n);
    Matmul(*f32, p.x.data(), p.m, p.k, want.data(), p.n, nullptr, nullptr);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      auto packed = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), p.n, p.k, isa);
      ASSERT_TRUE(packed.ok());
      std::vector<float> y(p.m * p.n);
      Matmul(*packed, p.x.data(), p.m, p.k, y.data(), p.n, nullptr, nullptr);
      EXPECT_TRUE(BitEqual(want, y)) << IsaName(isa) << " " << f.Name();
    }
  }
}

TEST(RtnMatmul, ExtractRowAndSetRowsMatchCanonical) {
  for (RtnScheme scheme : {RtnScheme::kInt8, RtnScheme::kInt4}) {
    for (const auto& [group, k] : {std::pair<int32_t, int64_t>{32, 64}, {64, 128}, {128, 256}, {128, 384},
                                  {0, 58}}) {
      const RtnFormat f{scheme, group, DType::kBF16};
      const int64_t n = 37;
      RtnProblem p = MakeRtnProblem(f, n, k, 1, 3);
      auto whole = PackedWeight::Pack(f, p.codes.data(), p.scales.data(), n, k);
      ASSERT_TRUE(whole.ok()) << f.Name() << " k=" << k << ": " << whole.status().message();
      // Filled in two uneven parts, like a fused q|k|v matrix.
      auto parts = PackedWeight::AllocateRtn(f, n, k);
      ASSERT_TRUE(parts.ok());
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

TEST(RtnMatmul, RejectsShapesTheFormatCannotHold) {
  std::vector<uint8_t> codes(4096), scales(4096);
  EXPECT_FALSE(PackedWeight::Pack(RtnFormat{RtnScheme::kInt4, 32, DType::kBF16}, codes.data(),
                                  scales.data(), 4, 48).ok());
  EXPECT_FALSE(PackedWeight::Pack(RtnFormat{RtnScheme::kInt4, 0, DType::kBF16}, codes.data(),
                                  scales.data(), 4, 7).ok());
  EXPECT_FALSE(PackedWeight::Pack(RtnFormat{RtnScheme::kInt8, 0, DType::kQ8_0}, codes.data(),
                                  scales.data(), 4, 8).ok());
  EXPECT_FALSE(PackedWeight::Pack(RtnFormat{RtnScheme::kInt8, 0, DType::kBF16}, nullptr, nullptr, 4, 8).ok());
}

}  // namespace
}  // namespace rtnq
