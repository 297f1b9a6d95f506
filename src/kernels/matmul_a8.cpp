// Int8 activation quantization for the A8 kernels (per token and K-group, symmetric, RNE) and
// the portable scalar A8 tile. Every ISA quantizes bitwise like QuantizeActivationsA8Scalar.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/half.h"
#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

namespace rtnq {
namespace {

// Position of k = 8c + j inside its permuted 8-byte chunk: (0,2,4,6 | 1,3,5,7).
constexpr int kPermute8[8] = {0, 4, 1, 5, 2, 6, 3, 7};

void QuantizeActivationsA8Scalar(const float* x, int64_t k, int64_t group, int64_t group_stride,
                                 bool permute8, A8Row out) {
  for (int64_t g = 0; g < k / group; ++g) {
    const float* xg = x + g * group;
    float amax = 0.0f;
    for (int64_t c = 0; c < group; ++c) amax = std::max(amax, std::fabs(xg[c]));
    float s = amax / 127.0f;
    float inv = 1.0f / s;
    if (!(inv <= FLT_MAX)) s = inv = 0.0f;  // all-zero group, or 1/s overflows (|x| < ~1e-36)
    int8_t* q = out.q + g * group_stride;
    std::memset(q, 0, static_cast<size_t>(group_stride));
    int32_t sum = 0;
    for (int64_t c = 0; c < group; ++c) {
      const float v = std::min(std::max(xg[c] * inv, -127.0f), 127.0f);
      const int32_t qi = static_cast<int32_t>(std::nearbyint(v));
      sum += qi;
      q[permute8 ? (c & ~int64_t{7}) + kPermute8[c & 7] : c] = static_cast<int8_t>(qi);
    }
    out.scale[g] = s;
    out.sum[g] = sum;
  }
}

inline uint32_t LoadCode(const uint8_t* cb, int64_t kk, int r, bool int4) {
  if (int4) {
    const uint8_t byte = cb[(kk / 8) * 64 + r * 4 + (kk % 8) / 2];
    return (kk & 1) ? byte >> 4 : byte & 0x0f;
  }
  return cb[(kk / 4) * 64 + r * 4 + kk % 4];
}

// One (row, panel row) at a time: the integer dot of a group in uint32 (wrapping; the final
// difference is exact, see A8MaxGroup), then acc = fma(float(dot), s_w * s_x, acc).
template <bool kInt4>
void TileA8Scalar(const TileArgs& a) {
  const int64_t G = a.group;
  ForEachScalarOutput(a, [&](int m, const uint8_t* panel, int r, float s) {
    const int8_t* xq = a.xq + m * a.ldxq;
    for (int64_t g = a.k0 / G; g < a.k1 / G; ++g) {
      const uint8_t* codes = TileGroupCodes(a, panel, g);
      const int8_t* q = xq + g * a.xq_group;
      uint32_t dot = 0;
      for (int64_t kk = 0; kk < G; ++kk) {
        const int64_t pos = kInt4 ? (kk & ~int64_t{7}) + kPermute8[kk & 7] : kk;
        dot += LoadCode(codes, kk, r, kInt4) * static_cast<uint32_t>(static_cast<int32_t>(q[pos]));
      }
      dot -= static_cast<uint32_t>(a.xbsum[m * a.ldxs + g]);
      const float sw = PanelScale(a, TileGroupScales(a, panel, g), r);
      s = std::fma(static_cast<float>(static_cast<int32_t>(dot)), sw * a.xs[m * a.ldxs + g], s);
    }
    return s;
  });
}

}  // namespace

void QuantizeActivationsA8(const float* x, int64_t k, int64_t group, int64_t group_stride,
                           bool permute8, A8Row out, Isa isa) {
  if (IsaAtLeast(isa, Isa::kAvx512) && IsaAtLeast(HostCpu().BestIsa(), Isa::kAvx512)) {
    QuantizeActivationsA8Avx512(x, k, group, group_stride, permute8, out);
    return;
  }
  QuantizeActivationsA8Scalar(x, k, group, group_stride, permute8, out);
}

const MatmulKernel kScalarA8Kernels[2] = {
    {"rtn8_a8_scalar", WeightType::kRtnInt8, ActType::kInt8, Isa::kScalar, false, false, 1, 1, 1,
     TileA8Scalar<false>},
    {"rtn4_a8_scalar", WeightType::kRtnInt4, ActType::kInt8, Isa::kScalar, false, false, 1, 1, 1,
     TileA8Scalar<true>},
};

}  // namespace rtnq
