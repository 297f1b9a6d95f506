// Dense matmul Y[M,N] = X[M,K] · W[N,K]^T (+ bias) with weights repacked once at load into the
// panel layout of docs/formats/kernel-layouts.md, and a kernel chosen once per weight tensor from
// a registry keyed by (weight dtype, activation type, ISA).
//
// Exactness contract of the F32-activation kernels (every ISA): each output is one fp32 FMA
// chain over k = 0..K-1 in ascending order starting from +0, then `+ bias[n]`. So the result is
// bitwise identical to MatmulReference(), for any ISA, thread count, M, or position in a batch.
#pragma once

#include <cstdint>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/cpu_features.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "format/dtype.h"

namespace rtnq {

// What the kernel multiplies the weights with. kF32: the f32 activations as they are. kBF16: the
// activations rounded to bf16 once per matmul (VDPBF16PS; faster prefill, not exact).
enum class ActType : uint8_t { kF32, kBF16 };
const char* ActTypeName(ActType a);

// Output rows per panel: one zmm of f32 lanes (two ymm on AVX2).
inline constexpr int kPanelRows = 16;

struct TileArgs;
using TileFn = void (*)(const TileArgs&);

struct MatmulKernel {
  const char* name;
  DType weight;   // kF32 or kBF16 (the packed layout's element type)
  ActType act;
  Isa isa;
  bool needs_avx512bf16;
  int mr_max;     // rows of X per register tile (M > 1)
  int nv_max;     // panels per register tile (M > 1)
  int nv_decode;  // panels per register tile at M = 1
  TileFn tile;
};

// Best registered kernel for (weight, act) whose ISA is at most `isa` and that the host can run;
// nullptr if none (e.g. kBF16 activations without AVX512-BF16).
const MatmulKernel* FindMatmulKernel(DType weight, ActType act, Isa isa);
std::vector<const MatmulKernel*> AllMatmulKernels();

class PackedWeight {
 public:
  PackedWeight() = default;
  // Packs canonical row-major [n, k] weights of type `dtype` (kF32 or kBF16) and resolves the
  // kernel for (dtype, act, isa).
  static Result<PackedWeight> Pack(DType dtype, const void* rows, int64_t n, int64_t k,
                                   ActType act = ActType::kF32, Isa isa = SelectedIsa());

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  DType dtype() const { return dtype_; }
  const MatmulKernel* kernel() const { return kernel_; }
  int64_t panels() const { return (n_ + kPanelRows - 1) / kPanelRows; }
  // K padded to the packing unit (2 for bf16 k-pairs).
  int64_t k_padded() const { return k_padded_; }
  int64_t panel_bytes() const { return panel_bytes_; }
  const uint8_t* panel(int64_t p) const {
    return reinterpret_cast<const uint8_t*>(data_.data()) + p * panel_bytes_;
  }
  uint64_t bytes() const { return static_cast<uint64_t>(panels() * panel_bytes_); }
  // Decodes row `r` (0 <= r < n) to f32: embedding lookup from a tied lm_head.
  void ExtractRow(int64_t r, float* out) const;

 private:
  int64_t n_ = 0, k_ = 0, k_padded_ = 0, panel_bytes_ = 0;
  DType dtype_ = DType::kF32;
  const MatmulKernel* kernel_ = nullptr;
  AlignedBuffer data_;
};

// Y[m, n] (row stride ldy) = X[m, :] (row stride ldx) · W[n, :] + bias[n] (bias may be null).
// pool may be null (runs on the calling thread).
void Matmul(const PackedWeight& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
            const float* bias, ThreadPool* pool);

// The scalar oracle on canonical row-major weights: per output an FMA chain over ascending k from
// +0, then + bias. With act == kBF16 the activations are first rounded to bf16 (the VDPBF16PS
// kernels then match it within rounding of pair sums, not bitwise).
void MatmulReference(DType dtype, const void* rows, int64_t n, int64_t k, const float* x,
                     int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias,
                     ActType act = ActType::kF32);

// --- internal: the register tile every ISA file implements -------------------------------
struct TileArgs {
  const float* x;          // X at row 0 of the tile, column 0
  int64_t ldx;
  const uint16_t* xbf;     // bf16 activations (act == kBF16), row stride ldxbf, else null
  int64_t ldxbf;
  int mr;                  // rows in this tile (1..mr_max)
  const uint8_t* w;        // first panel of the tile
  int64_t panel_bytes;
  int nv;                  // panels in this tile (1..nv_max, or nv_decode when mr == 1)
  int64_t k0, k1;          // k range; k0 even; k1 == K or even
  int64_t k_total;
  float* acc;              // [mr][ldacc] partial sums, lane n of panel v at v*16 + n
  int64_t ldacc;
  bool load_acc;           // false: start from +0
};

}  // namespace rtnq
