// Dense matmul Y[M,N] = X[M,K] · W[N,K]^T (+ bias) with weights repacked once at load into the
// panel layout of docs/formats/kernel-layouts.md, and a kernel chosen once per weight tensor from
// a registry keyed by (weight dtype, activation type, ISA).
//
// Exactness contract of the F32-activation kernels (every ISA): each output is one fp32 FMA
// chain over k = 0..K-1 in ascending order starting from +0, then `+ bias[n]`. So the result is
// bitwise identical to MatmulReference(), for any ISA, thread count, M, or position in a batch.
// RTN weights (int8/int4 codes, one scale per group) are dequantized in registers to exactly
// float(code - bias) * scale, the value RtnDequantizeRow gives, and then enter the same chain:
// bitwise equal to MatmulReferenceRtn() and to F32 weights pre-dequantized by RtnDequantizeRow.
//
// Int8-activation (A8) contract, RTN weights only: the driver quantizes each activation row per
// K-group of the weight (QuantizeActivationsA8 below), every (output, group) dot product of codes
// and int8 activations is an exact integer, and each output is one fp32 chain over the groups in
// ascending order from +0: acc = fma(float(dot), s_w * s_x, acc), then `+ bias[n]`. So every ISA
// is bitwise equal to MatmulReferenceRtn(..., ActType::kInt8) for any thread count or batch.
//
// Bf16-activation (A16) contract: activations rounded to bf16 once per matmul. Dense BF16: fp32
// accumulation of bf16 products (VDPBF16PS / TDPBF16PS pair sums). RTN: per (output, group) the
// fp32 sum of level * x (each product exact in fp32; int levels are exact in bf16), then acc =
// fma(sum, s_w, acc) over ascending groups. Equal to the oracles up to fp32 summation order, and
// for a given weight the same kernel runs at every M, so a row alone equals the row in a batch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/cpu_features.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "format/dtype.h"
#include "format/rtn_format.h"

namespace rtnq {

// What the kernel multiplies the weights with. kF32: the f32 activations as they are. kBF16: the
// activations rounded to bf16 once per matmul (VDPBF16PS / AMX TDPBF16PS; dense or RTN). kInt8
// (RTN weights only): activations quantized per token and K-group to int8, integer dot products
// (VPDPBUSD); see the A8 contract above.
enum class ActType : uint8_t { kF32, kBF16, kInt8 };
const char* ActTypeName(ActType a);  // "f32", "bf16", "int8"
bool ParseActType(const std::string& name, ActType* out);

// Output rows per panel: one zmm of f32 lanes (two ymm on AVX2).
inline constexpr int kPanelRows = 16;

// The packed layout's element type: a dense dtype or RTN codes with per-group scales.
enum class WeightType : uint8_t { kF32, kBF16, kRtnInt8, kRtnInt4 };
const char* WeightTypeName(WeightType w);
WeightType RtnWeightType(RtnScheme scheme);

struct TileArgs;
using TileFn = void (*)(const TileArgs&);

struct MatmulKernel {
  const char* name;
  WeightType weight;
  ActType act;
  Isa isa;
  bool needs_avx512bf16;
  bool needs_avx512vnni;
  int mr_max;     // rows of X per register tile (M > 1)
  int nv_max;     // panels per register tile (M > 1)
  int nv_decode;  // panels per register tile at M = 1
  TileFn tile;
  // M below which the driver runs the weight's best kernel of a lower ISA instead (same panel
  // layout, bitwise the same results): AMX A8 tiles lose to VNNI on a few rows. 0: every M.
  int min_m = 0;
  // The kernel runs only when the K-group (RTN) or K (dense) is a multiple of this (AMX tiles
  // take 32 or 64 k per step); otherwise a lower ISA's kernel serves the weight. 0: any.
  int k_unit = 0;
};

// FindMatmulKernel, but skipping kernels whose k_unit does not divide `k_len` (the RTN group
// length, or K for dense weights).
const MatmulKernel* FindMatmulKernel(WeightType weight, ActType act, Isa isa, int64_t k_len);

// Best registered kernel for (weight, act) whose ISA is at most `isa` and that the host can run;
// nullptr if none (e.g. kBF16 activations without AVX512-BF16).
const MatmulKernel* FindMatmulKernel(WeightType weight, ActType act, Isa isa);
// Dense dtypes: kF32 / kBF16 (nullptr for any other dtype).
const MatmulKernel* FindMatmulKernel(DType weight, ActType act, Isa isa);
std::vector<const MatmulKernel*> AllMatmulKernels();

// RTN panel addressing (PackedWeight::group_bytes): blocks of 1 << shift groups, each block a
// 64-byte scale header (32 bytes per group when two share it) then the groups' codes.
inline int64_t RtnGroupScaleOffset(int64_t g, int shift, int64_t block_bytes) {
  return (g >> shift) * block_bytes + (g & ((1 << shift) - 1)) * 32;
}
inline int64_t RtnGroupCodeOffset(int64_t g, int shift, int64_t block_bytes, int64_t code_bytes) {
  return (g >> shift) * block_bytes + 64 + (g & ((1 << shift) - 1)) * code_bytes;
}

class PackedWeight {
 public:
  PackedWeight() = default;
  // Packs canonical row-major [n, k] weights of type `dtype` (kF32 or kBF16) and resolves the
  // kernel for (dtype, act, isa); panels are packed on `pool`'s threads when given.
  static Result<PackedWeight> Pack(DType dtype, const void* rows, int64_t n, int64_t k,
                                   ActType act = ActType::kF32, Isa isa = SelectedIsa(),
                                   ThreadPool* pool = nullptr);
  // Packs an RTN matrix in the canonical layout of format/rtn_format.h (codes [n][k] or
  // [n][k/2] bytes, scales [n][k/G] of format.scale_dtype); scales become f32 in the panels,
  // except with kInt8 or kBF16 activations, whose panels keep bf16/f16 scales as given. The panel
  // layout depends on `act` (int8 codes with kInt8 or kBF16 activations are k-quads).
  static Result<PackedWeight> Pack(const RtnFormat& format, const uint8_t* codes,
                                   const uint8_t* scales, int64_t n, int64_t k, ActType act,
                                   Isa isa = SelectedIsa());
  static Result<PackedWeight> Pack(const RtnFormat& format, const uint8_t* codes,
                                   const uint8_t* scales, int64_t n, int64_t k,
                                   Isa isa = SelectedIsa()) {
    return Pack(format, codes, scales, n, k, ActType::kF32, isa);
  }
  // An RTN weight with every panel zeroed (level 0, scale 0), to be filled with SetRtnRows:
  // lets a loader quantize rows straight into the panels, several parts into one fused matrix.
  static Result<PackedWeight> AllocateRtn(const RtnFormat& format, int64_t n, int64_t k,
                                          ActType act, Isa isa = SelectedIsa());
  static Result<PackedWeight> AllocateRtn(const RtnFormat& format, int64_t n, int64_t k,
                                          Isa isa = SelectedIsa()) {
    return AllocateRtn(format, n, k, ActType::kF32, isa);
  }
  // Writes canonical rows [r0, r0 + rows) (codes and scales in the canonical row layout, row
  // strides format.CodeBytes(1, k) and format.ScaleBytes(1, k)). Different rows touch disjoint
  // bytes, so threads may fill disjoint row ranges concurrently.
  void SetRtnRows(int64_t r0, int64_t rows, const uint8_t* codes, const uint8_t* scales);

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  DType dtype() const { return dtype_; }  // dense types only; see weight_type()
  WeightType weight_type() const { return weight_type_; }
  ActType act() const { return act_; }
  bool is_rtn() const { return weight_type_ == WeightType::kRtnInt8 || weight_type_ == WeightType::kRtnInt4; }
  const RtnFormat& rtn_format() const { return rtn_; }
  // RTN: k per scale group. A panel is a sequence of group blocks, each a 64-byte scale header
  // then the codes of 1 << group_shift() groups (group_code_bytes() each, 64-byte multiples):
  // f32 scales, one group per block (16 x 4 bytes); or, for int8 activations with bf16/f16
  // scales, two groups per block sharing the header (16 x 2 bytes each, stored as given).
  int64_t group() const { return group_; }
  int64_t group_bytes() const { return group_bytes_; }  // bytes of one block
  int group_shift() const { return group_shift_; }
  int64_t group_code_bytes() const { return group_code_bytes_; }
  DType panel_scale_dtype() const { return panel_scale_dtype_; }  // kF32, kBF16 or kF16
  // Offsets within a panel of group g's 16 scales and of its codes.
  int64_t GroupScaleOffset(int64_t g) const { return RtnGroupScaleOffset(g, group_shift_, group_bytes_); }
  int64_t GroupCodeOffset(int64_t g) const {
    return RtnGroupCodeOffset(g, group_shift_, group_bytes_, group_code_bytes_);
  }
  const MatmulKernel* kernel() const { return kernel_; }
  // The kernel Matmul runs for `m` rows: kernel(), or below its min_m the lower-ISA kernel.
  const MatmulKernel* KernelFor(int64_t m) const { return m < kernel_->min_m ? small_m_kernel_ : kernel_; }
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
  void ExtractRtnRow(int64_t r, float* out) const;
  // Codes laid out as k-quads (int8 for int8/bf16 activations, int4 of even-length groups).
  void SetCodeQuads(int64_t r0, int64_t rows, const uint8_t* codes);
  int64_t n_ = 0, k_ = 0, k_padded_ = 0, panel_bytes_ = 0;
  DType dtype_ = DType::kF32;
  WeightType weight_type_ = WeightType::kF32;
  ActType act_ = ActType::kF32;
  RtnFormat rtn_;
  int64_t group_ = 0, group_bytes_ = 0, group_code_bytes_ = 0;
  int group_shift_ = 0;
  DType panel_scale_dtype_ = DType::kF32;
  // Resolves kernel_ and small_m_kernel_ for (weight_type_, act_) at `isa`; false if none.
  bool ResolveKernels(Isa isa, int64_t k_len);
  const MatmulKernel* kernel_ = nullptr;
  const MatmulKernel* small_m_kernel_ = nullptr;
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
// The RTN oracle. act == kF32: each row dequantized by RtnDequantizeRow, then the same FMA chain.
// act == kInt8: activations quantized by QuantizeActivationsA8, per (output, group) the exact
// integer dot of codes and int8 activations minus bias * sum(q), then the fp32 group chain.
void MatmulReferenceRtn(const RtnFormat& format, const uint8_t* codes, const uint8_t* scales,
                        int64_t n, int64_t k, const float* x, int64_t m, int64_t ldx, float* y,
                        int64_t ldy, const float* bias, ActType act = ActType::kF32);

// --- A8 activation quantization (shared by every ISA and the oracle) -----------------------
// One row of x, K-group `group` (the weight's group length): per group
//   amax = max |x|, s = amax / 127 (f32 division); s = 0 if that is 0 or 1/s overflows;
//   q = clamp(round-half-even(x * (1/s)), -127, 127) with 1/s one f32 division per group;
//   sum = sum of q (int32).
// q is written per group at q + g * group_stride (group_stride >= group; the bytes up to the
// stride are zero), with each 8 k permuted to (0,2,4,6,1,3,5,7) when `permute8` (int4 panels).
// Non-finite x gives unspecified (but deterministic per ISA) values.
struct A8Row {
  int8_t* q;
  float* scale;    // [groups]
  int32_t* sum;    // [groups]
};
void QuantizeActivationsA8(const float* x, int64_t k, int64_t group, int64_t group_stride,
                           bool permute8, A8Row out, Isa isa = SelectedIsa());

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
  int64_t k0, k1;          // k range; k0 a multiple of 8 (and of the RTN group unless K is one
                           // group); A8 tiles: both multiples of the group (or K)
  int64_t k_total;
  int64_t group;           // RTN: k per scale group; 0 for dense weights
  int64_t group_bytes;     // RTN: bytes of one group block in a panel (PackedWeight::group_bytes)
  int group_shift = 0;     // RTN: a block holds 1 << group_shift groups
  int64_t group_code_bytes = 0;
  DType scale_dtype = DType::kF32;  // RTN: the panel's scales (f32, or bf16/f16 when shift = 1)
  // A8 (act == kInt8): int8 activations of row 0 of the tile, group g at xq + g * xq_group
  // (row stride ldxq), and per (row, group) scale and bias * sum(q) (row stride ldxs).
  const int8_t* xq;
  int64_t ldxq, xq_group;
  const float* xs;
  const int32_t* xbsum;
  int64_t ldxs;
  float* acc;              // [mr][ldacc] partial sums, lane n of panel v at v*16 + n
  int64_t ldacc;
  bool load_acc;           // false: start from +0
  // M > mr_max: true for the first m-tile of an (n-block, k-block), the one that brings the
  // weight block in from memory (AVX-512 tiles then prefetch the weight streams ahead).
  bool first_m_tile = true;
  // More m-tiles follow over the same (n-block, k-block): tiles that unpack weights into scratch
  // (AMX) keep the whole block there for them instead of one tile at a time.
  bool more_m_tiles = false;
  // M > mr_max with f32 activations and RTN weights: a per-thread f32 scratch of nv panels x
  // (k1 - k0) k (panel v at wexp + v * (k1 - k0) * 16, 64-byte aligned), or null. The first
  // m-tile dequantizes the block into it, the later ones reuse it: the dequantization then costs
  // per weight, not per weight and m-tile. Tiles that do not expand ignore it.
  float* wexp = nullptr;
};

// Group g's 16 scales and codes in the panel at `panel` (see PackedWeight::GroupScaleOffset).
inline const uint8_t* TileGroupScales(const TileArgs& a, const uint8_t* panel, int64_t g) {
  return panel + RtnGroupScaleOffset(g, a.group_shift, a.group_bytes);
}
inline const uint8_t* TileGroupCodes(const TileArgs& a, const uint8_t* panel, int64_t g) {
  return panel + RtnGroupCodeOffset(g, a.group_shift, a.group_bytes, a.group_code_bytes);
}

}  // namespace rtnq
