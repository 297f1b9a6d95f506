#include "kernels/matmul.h"
#include "kernels/matmul_test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "base/half.h"
#include "kernels/matmul_tiles.h"
#include "kernels/vec_ops.h"

namespace rtnq {
namespace {

struct Problem {
  DType dtype;
  int64_t n, k, m;
  std::vector<float> w32;
  std::vector<uint16_t> w16;
  std::vector<float> x, bias;
  const void* rows() const {
    return dtype == DType::kF32 ? static_cast<const void*>(w32.data()) : w16.data();
  }
};

Problem MakeProblem(DType dtype, int64_t n, int64_t k, int64_t m, uint64_t seed) {
  Problem p{dtype, n, k, m, {}, {}, {}, {}};
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  p.w32.resize(n * k);
  for (float& v : p.w32) v = dist(rng);
  if (dtype == DType::kBF16) {
    p.w16.resize(n * k);
    for (size_t i = 0; i < p.w32.size(); ++i) p.w16[i] = F32ToBf16(p.w32[i]);
  }
  p.x.resize(m * k);
  for (float& v : p.x) v = dist(rng);
  p.bias.resize(n);
  for (float& v : p.bias) v = dist(rng);
  return p;
}

using testing::BitEqual;

DType DenseDType(WeightType w) { return w == WeightType::kF32 ? DType::kF32 : DType::kBF16; }

// Kernels this host can run, each found through the registry with its own ISA as the cap.
std::vector<const MatmulKernel*> RunnableKernels(bool rtn = false) {
  std::vector<const MatmulKernel*> out;
  for (const MatmulKernel* k : AllMatmulKernels()) {
    const bool is_rtn = k->weight == WeightType::kRtnInt8 || k->weight == WeightType::kRtnInt4;
    if (is_rtn == rtn && FindMatmulKernel(k->weight, k->act, k->isa) == k) out.push_back(k);
  }
  return out;
}

TEST(MatmulRegistry, HasScalarAvx2Avx512PathsOnThisHost) {
  auto kernels = RunnableKernels();
  int f32 = 0, bf16 = 0;
  for (auto* k : kernels) {
    if (k->act != ActType::kF32) continue;
    (k->weight == WeightType::kF32 ? f32 : bf16)++;
  }
  // f32 activations: scalar, AVX2, AVX-512 (AMX adds bf16-activation kernels only).
  const int expected = 1 + std::min(static_cast<int>(HostCpu().BestIsa()), static_cast<int>(Isa::kAvx512));
  EXPECT_EQ(f32, expected);
  EXPECT_EQ(bf16, expected);
  EXPECT_EQ(FindMatmulKernel(DType::kF32, ActType::kF32, Isa::kScalar)->isa, Isa::kScalar);
  EXPECT_EQ(FindMatmulKernel(DType::kF16, ActType::kF32, Isa::kAvx512), nullptr);
  auto bad = PackedWeight::Pack(DType::kQ8_0, nullptr, 4, 32);
  EXPECT_FALSE(bad.ok());
}

TEST(Matmul, EveryKernelMatchesScalarOracleOverShapeSweep) {
  const int64_t ns[] = {1, 15, 17, 64, 100};
  const int64_t ks[] = {1, 8, 30, 64, 96, 130, 257, 544, 600};  // AMX: K % 32 == 0 only
  const int64_t ms[] = {1, 2, 3, 5, 9, 20, 37, 64, 130};
  for (const MatmulKernel* kern : RunnableKernels()) {
    uint64_t seed = 1;
    for (int64_t n : ns)
      for (int64_t k : ks)
        for (int64_t m : ms) {
          if (kern->isa == Isa::kScalar && n * k * m > 200000) continue;  // libm fma is slow
          if (kern->k_unit > 0 && k % kern->k_unit != 0) continue;  // served by a lower ISA
          Problem p = MakeProblem(DenseDType(kern->weight), n, k, m, seed++);
          auto packed =
              PackedWeight::Pack(DenseDType(kern->weight), p.rows(), n, k, kern->act, kern->isa);
          ASSERT_TRUE(packed.ok()) << packed.status().message();
          ASSERT_EQ(packed->kernel(), kern);
          const float* bias = (n + k + m) % 2 ? p.bias.data() : nullptr;
          // Output with a row stride wider than n: columns past n must stay untouched.
          const int64_t ldy = n + 3;
          std::vector<float> got(m * ldy, -7.0f), want(m * ldy, -7.0f);
          Matmul(*packed, p.x.data(), m, k, got.data(), ldy, bias, nullptr);
          MatmulReference(DenseDType(kern->weight), p.rows(), n, k, p.x.data(), m, k, want.data(), ldy, bias,
                          kern->act);
          SCOPED_TRACE(::testing::Message() << kern->name << " n=" << n << " k=" << k << " m=" << m);
          if (kern->act == ActType::kF32) {
            ASSERT_TRUE(BitEqual(got, want));
          } else {
            for (int64_t i = 0; i < m; ++i)
              for (int64_t j = 0; j < ldy; ++j) {
                float mag = 0;  // error bound scale: sum |w x|
                if (j < n)
                  for (int64_t c = 0; c < k; ++c)
                    mag += std::fabs(Bf16ToF32(p.w16[j * k + c]) *
                                     Bf16ToF32(F32ToBf16(p.x[i * k + c])));
                ASSERT_NEAR(got[i * ldy + j], want[i * ldy + j], 1e-6f * mag + 1e-30f)
                    << "at " << i << "," << j;
              }
          }
        }
  }
}

TEST(Matmul, ThreadCountAndBatchInvariance) {
  const int64_t n = 300, k = 544, m = 29;  // 19 panels: uneven splits; k > one k block
  for (const MatmulKernel* kern : RunnableKernels()) {
    if (kern->isa == Isa::kScalar) continue;  // covered bitwise by the oracle test
    SCOPED_TRACE(kern->name);
    Problem p = MakeProblem(DenseDType(kern->weight), n, k, m, 42);
    auto packed = PackedWeight::Pack(DenseDType(kern->weight), p.rows(), n, k, kern->act, kern->isa);
    ASSERT_TRUE(packed.ok());
    testing::ExpectThreadCountAndBatchInvariance(*packed, p.x, m, p.bias.data());
  }
}

TEST(Matmul, AllIsasGiveIdenticalBitsForF32Activations) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    Problem p = MakeProblem(dt, 77, 333, 11, 7);
    std::vector<float> first;
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      auto packed = PackedWeight::Pack(dt, p.rows(), p.n, p.k, ActType::kF32, isa);
      ASSERT_TRUE(packed.ok());
      std::vector<float> y(p.m * p.n);
      Matmul(*packed, p.x.data(), p.m, p.k, y.data(), p.n, nullptr, nullptr);
      if (first.empty()) first = y;
      EXPECT_TRUE(BitEqual(first, y)) << IsaName(isa);
    }
  }
}

TEST(PackedWeight, ExtractRowReturnsCanonicalRow) {
  for (DType dt : {DType::kF32, DType::kBF16}) {
    Problem p = MakeProblem(dt, 37, 29, 1, 3);
    auto packed = PackedWeight::Pack(dt, p.rows(), p.n, p.k);
    ASSERT_TRUE(packed.ok());
    std::vector<float> row(p.k);
    for (int64_t r = 0; r < p.n; ++r) {
      packed->ExtractRow(r, row.data());
      for (int64_t c = 0; c < p.k; ++c) {
        const float want = dt == DType::kF32 ? p.w32[r * p.k + c] : Bf16ToF32(p.w16[r * p.k + c]);
        ASSERT_EQ(row[c], want);
      }
    }
  }
}

// Mapped (>= 2 MiB, zero without a memset) and heap buffers, odd and even K, a partial last panel;
// packed on one thread and on three: the same bytes, and the canonical rows come back.
TEST(PackedWeight, PackOnAPoolMatchesOneThreadAndExtractsCanonicalRows) {
  ThreadPool pool(3);
  for (DType dt : {DType::kF32, DType::kBF16}) {
    for (const auto& [n, k] : {std::pair<int64_t, int64_t>{37, 29}, {1100, 1023}, {1009, 1024}}) {
      SCOPED_TRACE(::testing::Message() << DTypeName(dt) << " " << n << "x" << k);
      Problem p = MakeProblem(dt, n, k, 1, 5);
      auto one = PackedWeight::Pack(dt, p.rows(), n, k);
      auto many = PackedWeight::Pack(dt, p.rows(), n, k, ActType::kF32, SelectedIsa(), &pool);
      ASSERT_TRUE(one.ok() && many.ok());
      ASSERT_EQ(one->bytes(), many->bytes());
      EXPECT_EQ(std::memcmp(one->panel(0), many->panel(0), one->bytes()), 0);
      std::vector<float> row(k);
      for (int64_t r : {int64_t{0}, n / 2, n - 1}) {
        many->ExtractRow(r, row.data());
        for (int64_t c = 0; c < k; ++c) {
          ASSERT_EQ(row[c], dt == DType::kF32 ? p.w32[r * k + c] : Bf16ToF32(p.w16[r * k + c])) << r << "," << c;
        }
      }
    }
  }
}

// Full 8-panel decode tiles (N = 2 x 128 + 5: two whole tiles and a tail), with and without the
// software prefetch (L1 and L2 distances), and the batch path with its first-m-tile prefetch:
// bitwise the oracle.
TEST(Matmul, WideDecodeTilesAndPrefetchKeepTheChain) {
  for (const MatmulKernel* kern : RunnableKernels()) {
    if (kern->act != ActType::kF32) continue;
    for (int64_t k : {257, 600}) {
      for (int64_t m : {1, 20}) {
        Problem p = MakeProblem(DenseDType(kern->weight), 261, k, m, 77 + k + m);
        auto packed = PackedWeight::Pack(DenseDType(kern->weight), p.rows(), p.n, k, kern->act, kern->isa);
        ASSERT_TRUE(packed.ok());
        std::vector<float> want(m * p.n);
        MatmulReference(DenseDType(kern->weight), p.rows(), p.n, k, p.x.data(), m, k, want.data(), p.n,
                        p.bias.data());
        for (int pf : {-1, 0, 64, 4096}) {
          g_matmul_overrides = MatmulOverrides{};
          g_matmul_overrides.prefetch_bytes = pf;
          g_matmul_overrides.prefetch_l2_bytes = pf == 64 ? 2048 : -1;
          std::vector<float> got(m * p.n);
          Matmul(*packed, p.x.data(), m, k, got.data(), p.n, p.bias.data(), nullptr);
          g_matmul_overrides = MatmulOverrides{};
          EXPECT_TRUE(BitEqual(got, want)) << kern->name << " k=" << k << " m=" << m << " pf=" << pf;
        }
      }
    }
  }
}

// silu(g) * u against a double reference, on every ISA, over gates from -120 to 120 (exp(-g)
// overflows float below -88.7, where results below 1e-35 count as zero) with ties at 0; an element's result does not depend on n or on
// where it sits in the array.
TEST(VecOps, SiluMulMatchesDoubleReferenceOnEveryIsa) {
  std::vector<float> gate, up;
  std::mt19937 rng(9);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  for (float g : {0.0f, -0.0f, 1e-30f, -1e-30f, 88.0f, -88.0f, 89.0f, -89.0f, 120.0f, -120.0f}) gate.push_back(g);
  while (gate.size() < 100) gate.push_back(dist(rng));
  for (size_t i = 0; i < gate.size(); ++i) up.push_back(i % 3 == 0 ? -1.5f : dist(rng));
  const int64_t n = static_cast<int64_t>(gate.size());
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    const VecOps& ops = GetVecOps(isa);
    std::vector<float> out(n);
    ops.silu_mul(gate.data(), up.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double g = gate[i], want = g / (1.0 + std::exp(-g)) * up[i];
      EXPECT_NEAR(out[i], want, 4e-7 * std::fabs(want) + 1e-35) << IsaName(isa) << " g=" << g;
      float alone;
      ops.silu_mul(&gate[i], &up[i], &alone, 1);
      EXPECT_EQ(alone, out[i]) << IsaName(isa) << " i=" << i;
    }
  }
}

}  // namespace
}  // namespace rtnq
