// Scalar tile (the portable fallback) and the scalar oracle. std::fma keeps them bitwise equal to
// the SIMD kernels: every output is one fused-multiply-add chain over ascending k.
#include <cmath>
#include <cstring>

#include "base/half.h"
#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

namespace rtnq {
namespace {

inline float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void TileF32Scalar(const TileArgs& a) {
  ForEachScalarOutput(a, [&](int m, const uint8_t* panel, int r, float s) {
    const float* x = a.x + m * a.ldx;
    for (int64_t k = a.k0; k < a.k1; ++k) s = std::fma(LoadF32(panel + (k * kPanelRows + r) * 4), x[k], s);
    return s;
  });
}

void TileBf16Scalar(const TileArgs& a) {
  ForEachScalarOutput(a, [&](int m, const uint8_t* panel, int r, float s) {
    const float* x = a.x + m * a.ldx;
    for (int64_t k = a.k0; k < a.k1; ++k) {
      const int64_t offset = ((k / 2) * kPanelRows + r) * 4 + (k & 1) * 2;
      s = std::fma(Bf16ToF32(LoadU16(panel + offset)), x[k], s);
    }
    return s;
  });
}

// RTN panels (matmul_rtn.cpp): the weight is float(level) * scale, exactly RtnDequantizeRow's.
template <bool kInt4>
void TileRtnScalar(const TileArgs& a) {
  ForEachScalarOutput(a, [&](int m, const uint8_t* panel, int r, float s) {
    const float* x = a.x + m * a.ldx;
    for (int64_t k = a.k0; k < a.k1; ++k) {
      const uint8_t* grp = panel + (k / a.group) * a.group_bytes;
      const int64_t kk = k % a.group;
      int level;
      if (kInt4) {
        const uint8_t byte = grp[64 + (kk / 8) * 64 + r * 4 + (kk % 8) / 2];
        level = ((kk & 1) ? byte >> 4 : byte & 0x0f) - 8;
      } else {
        level = static_cast<int8_t>(grp[64 + kk * kPanelRows + r]);
      }
      s = std::fma(static_cast<float>(level) * LoadF32(grp + r * 4), x[k], s);
    }
    return s;
  });
}

// RTN x bf16 activations (A8 panel layout: int8 codes as k-quads, scale headers as stored): per
// group an FMA chain of level * bf16(x) from +0, then acc = fma(sum, s_w, acc). Bitwise equal to
// MatmulReferenceRtn(..., ActType::kBF16); the twin of the AMX tiles.
template <bool kInt4>
void TileRtnBf16ActScalar(const TileArgs& a) {
  const int64_t G = a.group;
  ForEachScalarOutput(a, [&](int m, const uint8_t* panel, int r, float s) {
    const uint16_t* x = a.xbf + m * a.ldxbf;
    for (int64_t g = a.k0 / G; g < a.k1 / G; ++g) {
      const uint8_t* cb = TileGroupCodes(a, panel, g);
      float dot = 0.0f;
      for (int64_t kk = 0; kk < G; ++kk) {
        int level;
        if (kInt4) {
          const uint8_t byte = cb[(kk / 8) * 64 + r * 4 + (kk % 8) / 2];
          level = ((kk & 1) ? byte >> 4 : byte & 0x0f) - 8;
        } else {
          level = cb[(kk / 4) * 64 + r * 4 + kk % 4] - 128;
        }
        dot = std::fma(static_cast<float>(level), Bf16ToF32(x[g * G + kk]), dot);
      }
      s = std::fma(dot, PanelScale(a, TileGroupScales(a, panel, g), r), s);
    }
    return s;
  });
}

}  // namespace

const MatmulKernel kScalarBf16ActKernels[2] = {
    {"rtn8_bf16act_scalar", WeightType::kRtnInt8, ActType::kBF16, Isa::kScalar, false, false, 1, 1,
     1, TileRtnBf16ActScalar<false>},
    {"rtn4_bf16act_scalar", WeightType::kRtnInt4, ActType::kBF16, Isa::kScalar, false, false, 1, 1,
     1, TileRtnBf16ActScalar<true>},
};

const MatmulKernel kScalarKernels[4] = {
    {"f32_scalar", WeightType::kF32, ActType::kF32, Isa::kScalar, false, false, 1, 1, 1, TileF32Scalar},
    {"bf16_scalar", WeightType::kBF16, ActType::kF32, Isa::kScalar, false, false, 1, 1, 1, TileBf16Scalar},
    {"rtn8_scalar", WeightType::kRtnInt8, ActType::kF32, Isa::kScalar, false, false, 1, 1, 1,
     TileRtnScalar<false>},
    {"rtn4_scalar", WeightType::kRtnInt4, ActType::kF32, Isa::kScalar, false, false, 1, 1, 1,
     TileRtnScalar<true>},
};

void MatmulReference(DType dtype, const void* rows, int64_t n, int64_t k, const float* x,
                     int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias,
                     ActType act) {
  std::vector<float> xr(static_cast<size_t>(k));
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t c = 0; c < k; ++c) {
      const float v = x[i * ldx + c];
      xr[c] = act == ActType::kBF16 ? Bf16ToF32(F32ToBf16(v)) : v;
    }
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int64_t c = 0; c < k; ++c) {
        const float w = dtype == DType::kBF16
                            ? Bf16ToF32(static_cast<const uint16_t*>(rows)[j * k + c])
                            : static_cast<const float*>(rows)[j * k + c];
        s = std::fma(w, xr[c], s);
      }
      y[i * ldy + j] = bias ? s + bias[j] : s;
    }
  }
}

}  // namespace rtnq
