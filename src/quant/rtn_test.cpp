#include "quant/rtn.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "base/cpu_features.h"
#include "base/half.h"

namespace rtnq {
namespace {

RtnFormat Fmt(RtnScheme s, int32_t g, DType scale = DType::kF32) { return {s, g, scale}; }

TEST(RtnFormat, ParsesNamesAndRejectsUnknown) {
  auto f = ParseRtnFormat("rtn4:g32");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->scheme, RtnScheme::kInt4);
  EXPECT_EQ(f->group, 32);
  EXPECT_EQ(f->Name(), "int4:g32:bf16");
  EXPECT_EQ(ParseRtnFormat("int8:row:f16")->Name(), "int8:row:f16");
  auto bad = ParseRtnFormat("int3");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("valid:"), std::string::npos);
  EXPECT_FALSE(ParseRtnFormat("int4:g48").ok());
  EXPECT_FALSE(ParseRtnFormat("int4:g128:f8").ok());
}

TEST(RtnFormat, ShapeChecksAndSizes) {
  const RtnFormat f = Fmt(RtnScheme::kInt4, 32, DType::kBF16);
  EXPECT_FALSE(f.CheckShape(64, 172).ok());  // stories260K's down_proj input dimension
  EXPECT_TRUE(f.CheckShape(64, 160).ok());
  EXPECT_EQ(f.CodeBytes(4096, 14336), 4096ull * 14336 / 2);
  EXPECT_EQ(f.ScaleBytes(4096, 14336), 4096ull * 14336 / 32 * 2);
  EXPECT_EQ(Fmt(RtnScheme::kInt8, 0).ScaleBytes(10, 172), 10u * 4);
}

// The worked example of rtn-and-formats.md 1.5: group amax 0.3 -> scale 0.04.
TEST(Rtn, WorkedExampleInt4) {
  std::vector<float> w(32, 0.0f);
  w[0] = 0.3f;    // 7.5 -> 8 (half-even) -> clipped to code 15 -> 0.28
  w[1] = -0.3f;   // -7.5 -> -8 -> code 0 -> -0.32
  w[2] = 0.1f;    // 2.5 -> 2 -> 0.08
  w[3] = 0.14f;   // 3.5 -> 4 -> 0.16
  // Exact arithmetic needs an exactly representable scale: use f32 scales.
  auto m = RtnQuantize(w.data(), DType::kF32, 1, 32, Fmt(RtnScheme::kInt4, 32), RtnArithmetic::kFp32);
  ASSERT_TRUE(m.ok());
  std::vector<float> out(32);
  m->DequantizeRow(0, out.data());
  const float s = 0.6f / 15.0f;
  EXPECT_FLOAT_EQ(RtnScale(m->format, m->ScaleRow(0), 0), s);
  EXPECT_EQ(RtnLevel(m->format, m->CodeRow(0), 0), 7);
  EXPECT_EQ(RtnLevel(m->format, m->CodeRow(0), 1), -8);
  EXPECT_EQ(RtnLevel(m->format, m->CodeRow(0), 2), std::nearbyint(0.1f / s));
  EXPECT_FLOAT_EQ(out[0], 7 * s);
  EXPECT_FLOAT_EQ(out[1], -8 * s);
  EXPECT_EQ(out[4], 0.0f);
  // Nibble order: element 0 in the low nibble of byte 0, element 1 in the high nibble.
  EXPECT_EQ(m->codes[0], (15) | (0 << 4));
}

TEST(Rtn, ZeroGroupDecodesToExactZeros) {
  std::vector<float> w(64, 0.0f);
  for (int k = 32; k < 64; ++k) w[k] = 0.01f * (k - 40);
  for (auto scheme : {RtnScheme::kInt4, RtnScheme::kInt8}) {
    for (auto mode : {RtnArithmetic::kFp32, RtnArithmetic::kVllm}) {
      auto m = RtnQuantize(w.data(), DType::kF32, 1, 64, Fmt(scheme, 32, DType::kBF16), mode);
      ASSERT_TRUE(m.ok());
      EXPECT_EQ(RtnScale(m->format, m->ScaleRow(0), 0), 0.0f);
      std::vector<float> out(64);
      m->DequantizeRow(0, out.data());
      for (int k = 0; k < 32; ++k) {
        EXPECT_EQ(out[k], 0.0f);
        EXPECT_EQ(RtnLevel(m->format, m->CodeRow(0), k), 0);
      }
    }
  }
}

TEST(Rtn, ErrorIsBoundedByHalfAStep) {
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  const int rows = 8, cols = 256;
  std::vector<float> w(rows * cols);
  for (auto& v : w) v = dist(rng);
  w[5] = 0.5f;  // an outlier
  for (auto scheme : {RtnScheme::kInt4, RtnScheme::kInt8}) {
    for (int32_t g : {32, 64, 128, 0}) {
      const RtnFormat f = Fmt(scheme, g, DType::kF32);
      auto m = RtnQuantize(w.data(), DType::kF32, rows, cols, f, RtnArithmetic::kFp32);
      ASSERT_TRUE(m.ok());
      std::vector<float> out(cols);
      for (int r = 0; r < rows; ++r) {
        m->DequantizeRow(r, out.data());
        for (int k = 0; k < cols; ++k) {
          const float s = RtnScale(f, m->ScaleRow(r), k / f.GroupLength(cols));
          // Half a step, reached exactly at the clipped positive extreme (+7.5 -> 7), plus the
          // rounding of w itself in f32.
          const float wk = w[r * cols + k];
          EXPECT_LE(std::fabs(out[k] - wk), 0.5f * s + 4e-7f * std::fabs(wk)) << r << "," << k;
        }
      }
    }
  }
}

TEST(Rtn, VllmModeRoundsIntermediatesToBf16) {
  // With bf16 weights, vLLM rounds w/scale to bf16 before rounding to an integer: x = 64.25 is
  // not representable (bf16 spacing at 64 is 0.5), so it becomes 64.0 and then level 64 instead of
  // fp32's 64. Construct w so w/scale lands on such a value and check both modes stay in range.
  std::vector<uint16_t> w(128);
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  for (auto& v : w) v = F32ToBf16(dist(rng));
  const RtnFormat f = Fmt(RtnScheme::kInt8, 128, DType::kBF16);
  auto a = RtnQuantize(w.data(), DType::kBF16, 1, 128, f, RtnArithmetic::kVllm);
  auto b = RtnQuantize(w.data(), DType::kBF16, 1, 128, f, RtnArithmetic::kFp32);
  ASSERT_TRUE(a.ok() && b.ok());
  int differ = 0;
  for (int k = 0; k < 128; ++k) {
    const int la = RtnLevel(f, a->CodeRow(0), k), lb = RtnLevel(f, b->CodeRow(0), k);
    EXPECT_LE(std::abs(la - lb), 1);
    differ += la != lb;
  }
  // Both modes agree on the scale for bf16 input with bf16 scales.
  EXPECT_EQ(a->scales, b->scales);
  EXPECT_LT(differ, 40);
}

TEST(Rtn, NonFiniteWeightsAreRejectedByPosition) {
  std::vector<float> w(64, 0.1f);
  w[37] = std::nanf("");
  auto m = RtnQuantize(w.data(), DType::kF32, 2, 32, Fmt(RtnScheme::kInt4, 32), RtnArithmetic::kFp32);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("row 1, column 5"), std::string::npos) << m.status().message();
  EXPECT_TRUE(RtnQuantize(w.data(), DType::kF32, 2, 32, Fmt(RtnScheme::kInt4, 32),
                          RtnArithmetic::kFp32, /*allow_nonfinite=*/true).ok());
}

}  // namespace
}  // namespace rtnq

namespace rtnq {
namespace {

// The AVX-512 group loops must give the scalar reference's bytes in every mode, dtype and format.
TEST(Rtn, SimdPathEqualsScalarReference) {
  if (!IsaAtLeast(HostCpu().BestIsa(), Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 on this host";
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 0.03f);
  // 2176 = 17 x 128: whole 16-group blocks plus a tail of single groups at g32, g64 and g128,
  // so both the block path and the per-group path run.
  const int rows = 10, cols = 2176;
  std::vector<float> f32(rows * cols);
  for (int i = 0; i < rows * cols; ++i) f32[i] = dist(rng) * ((i % 97 == 3) ? 20.0f : 1.0f);
  for (int k = 0; k < 32; ++k) f32[cols + k] = 0.0f;                            // zero group
  for (int k = 64; k < 96; ++k) f32[cols + k] = -0.0f;                          // negative zeros
  for (int k = 0; k < 32; ++k) f32[2 * cols + k] = (k == 0 ? 1.875f : ((k % 15) - 7) / 8.0f);  // ties
  for (int k = 0; k < cols; ++k) f32[3 * cols + k] *= 1e-6f;   // f16 scales subnormal or zero
  for (int k = 0; k < cols; ++k) f32[4 * cols + k] *= 1e-36f;  // f32 subnormal scales
  f32[5 * cols + 40] = 3.0e38f;                                // 2 * amax overflows f32
  f32[5 * cols + 1600] = 70000.0f;                              // beyond f16: inf in f16 input
  f32[6 * cols + 1030] = std::nanf("");                         // non-finite in a block
  f32[7 * cols + 2100] = -INFINITY;                            // non-finite in a tail group
  std::vector<uint16_t> bf16(f32.size()), f16(f32.size());
  for (size_t i = 0; i < f32.size(); ++i) {
    bf16[i] = F32ToBf16(f32[i]);
    f16[i] = F32ToF16(f32[i]);
  }
  const std::pair<DType, const void*> sources[] = {
      {DType::kF32, f32.data()}, {DType::kBF16, bf16.data()}, {DType::kF16, f16.data()}};
  for (auto [dtype, src] : sources) {
    for (auto scheme : {RtnScheme::kInt8, RtnScheme::kInt4}) {
      for (int32_t g : {32, 64, 128, 0}) {
        for (DType scale : {DType::kBF16, DType::kF16, DType::kF32}) {
          for (auto mode : {RtnArithmetic::kFp32, RtnArithmetic::kVllm}) {
            const RtnFormat f{scheme, g, scale};
            setenv("RTNQ_ISA", "scalar", 1);
            auto ref = RtnQuantize(src, dtype, rows, cols, f, mode, /*allow_nonfinite=*/true);
            unsetenv("RTNQ_ISA");
            auto simd = RtnQuantize(src, dtype, rows, cols, f, mode, /*allow_nonfinite=*/true);
            ASSERT_TRUE(ref.ok() && simd.ok());
            EXPECT_EQ(ref->codes, simd->codes) << DTypeName(dtype) << " " << f.Name() << " " << RtnArithmeticName(mode);
            EXPECT_EQ(ref->scales, simd->scales) << DTypeName(dtype) << " " << f.Name();
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace rtnq
