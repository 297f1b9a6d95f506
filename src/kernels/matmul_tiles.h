// Kernel tables defined by the per-ISA files (matmul_scalar.cpp, matmul_avx2.cpp,
// matmul_avx512.cpp, matmul_amx.cpp, and the int8-activation matmul_a8_*.cpp) and collected by the registry in
// matmul.cpp; plus the A8 helpers the driver and the oracle share.
#pragma once

#include <cstring>

#include "base/half.h"
#include "kernels/matmul.h"

namespace rtnq {

extern const MatmulKernel kScalarKernels[4];
extern const MatmulKernel kAvx2Kernels[4];
extern const MatmulKernel kAvx512Kernels[5];
extern const MatmulKernel kScalarA8Kernels[2];
extern const MatmulKernel kAvx2A8Kernels[2];
extern const MatmulKernel kAvx512A8Kernels[2];
extern const MatmulKernel kScalarBf16ActKernels[2];  // RTN x bf16 activations
extern const MatmulKernel kAmxKernels[5];

// A8 layouts: per group, int4 panels hold ceil(G/8) chunks of 8 k and the activations are
// permuted per 8 k to (0,2,4,6,1,3,5,7); int8 A8 panels hold ceil(G/4) k-quads, activations in
// k order. Returns the activation bytes per group (= k per group of the panel, padding included).
inline int64_t A8GroupStride(RtnScheme scheme, int64_t group) {
  return scheme == RtnScheme::kInt4 ? (group + 7) / 8 * 8 : (group + 3) / 4 * 4;
}

// The exact integer dot products stay in int32 if |sum of level * q| <= bias * 127 * G < 2^31
// (levels in [-bias, bias - 1], |q| <= 127): G <= 132104 for int8 (Llama-3's 128256-wide rows
// fit), G <= 2113664 for int4. Partial sums of code * q may wrap, the final difference cannot.
inline int64_t A8MaxGroup(RtnScheme scheme) {
  return ((int64_t{1} << 31) - 1) / (int64_t{Info(scheme).bias} * 127);
}

// The scalar tiles' loop nest: for every (row m, panel v, panel row r) of the tile, the output's
// chain continues from the stored partial sum (or +0) through chain(m, panel, r, s) -> s.
template <typename Chain>
inline void ForEachScalarOutput(const TileArgs& a, Chain&& chain) {
  for (int m = 0; m < a.mr; ++m) {
    for (int v = 0; v < a.nv; ++v) {
      const uint8_t* panel = a.w + v * a.panel_bytes;
      for (int r = 0; r < kPanelRows; ++r) {
        float* acc = a.acc + m * a.ldacc + v * kPanelRows + r;
        *acc = chain(m, panel, r, a.load_acc ? *acc : 0.0f);
      }
    }
  }
}

// Scale of panel row r in a group header (f32, or the 16-bit scale as stored), for scalar tiles.
inline float PanelScale(const TileArgs& a, const uint8_t* hdr, int r) {
  if (a.scale_dtype == DType::kF32) {
    float s;
    std::memcpy(&s, hdr + r * 4, 4);
    return s;
  }
  uint16_t h;
  std::memcpy(&h, hdr + r * 2, 2);
  return a.scale_dtype == DType::kBF16 ? Bf16ToF32(h) : F16ToF32(h);
}

// Tuning overrides for bench_matmul's side-by-side comparisons (0 / -1: the kernel's default).
// Set only between Matmul calls, never while one runs; results stay bitwise the same.
struct MatmulOverrides {
  int nv_decode = 0;        // panels per decode tile (at most the kernel's nv_decode)
  int prefetch_bytes = -1;  // AVX-512 software prefetch distance per weight stream (0: none)
  int prefetch_l2_bytes = -1;  // AVX-512: a second, PREFETCHT1 (L2) distance (0: none)
  int expand = -1;          // 0: no f32 expansion of the weight block for M > mr_max
  int64_t k_block = 0;      // k block for M > mr_max (multiple of 8 and of the RTN group)
};
extern MatmulOverrides g_matmul_overrides;

// An override field of g_matmul_overrides if set (>= 0), else the kernel's default.
inline int OverrideOr(int override_value, int kernel_default) {
  return override_value >= 0 ? override_value : kernel_default;
}

// Returns this thread's AMX tile state to its initial (unused) state, if an AMX tile ran on it.
// Matmul calls it after AMX work: a thread holding tile data makes every context switch save and
// restore 8 KiB more. (Its effect on the decode that follows a prefill measured within this VM's
// noise either way: 83% -> 87% of the limit over four runs, then no difference in a later A/B.)
void ReleaseAmxTiles();

// The ISA-specific quantizers behind QuantizeActivationsA8 (bitwise equal to the scalar one).
void QuantizeActivationsA8Avx512(const float* x, int64_t k, int64_t group, int64_t group_stride,
                                 bool permute8, A8Row out);

}  // namespace rtnq
