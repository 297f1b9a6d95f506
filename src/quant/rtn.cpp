#include "quant/rtn.h"

#include <cmath>
#include <cstring>

#include "base/cpu_features.h"
#include "base/half.h"
#include "quant/rtn_group.h"

namespace rtnq {
namespace {

float LoadElement(const void* src, DType dtype, int64_t i) {
  uint16_t h;
  switch (dtype) {
    case DType::kBF16:
      std::memcpy(&h, static_cast<const uint8_t*>(src) + 2 * i, 2);
      return Bf16ToF32(h);
    case DType::kF16:
      std::memcpy(&h, static_cast<const uint8_t*>(src) + 2 * i, 2);
      return F16ToF32(h);
    default:
      return static_cast<const float*>(src)[i];
  }
}

// Rounds an f32 value to `dtype` and back: the effect of storing it in that dtype.
float RoundTo(DType dtype, float v) {
  switch (dtype) {
    case DType::kBF16: return Bf16ToF32(F32ToBf16(v));
    case DType::kF16: return F16ToF32(F32ToF16(v));
    default: return v;
  }
}

void StoreScale(DType dtype, float v, uint8_t* dst) {
  switch (dtype) {
    case DType::kBF16: {
      const uint16_t h = F32ToBf16(v);
      std::memcpy(dst, &h, 2);
      return;
    }
    case DType::kF16: {
      const uint16_t h = F32ToF16(v);
      std::memcpy(dst, &h, 2);
      return;
    }
    default:
      std::memcpy(dst, &v, 4);
  }
}

}  // namespace

const char* RtnArithmeticName(RtnArithmetic a) { return a == RtnArithmetic::kVllm ? "vllm" : "fp32"; }

void RtnMatrix::DequantizeRow(int64_t r, float* out) const {
  RtnDequantizeRow(format, CodeRow(r), ScaleRow(r), cols, out);
}

Result<RtnMatrix> AllocateRtnMatrix(const RtnFormat& format, int64_t rows, int64_t cols) {
  RTNQ_RETURN_IF_ERROR(format.CheckShape(rows, cols));
  RtnMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.codes.resize(format.CodeBytes(rows, cols));
  m.scales.resize(format.ScaleBytes(rows, cols));
  return m;
}

namespace rtn_internal {

float GroupAmaxScalar(const void* src, DType dtype, int64_t len) {
  float amax = 0.0f;
  bool nan = false;
  for (int64_t k = 0; k < len; ++k) {
    const float v = LoadElement(src, dtype, k);
    nan |= v != v;
    amax = std::fmax(amax, std::fabs(v));  // fmax skips NaN, as the quantizer's scale must
  }
  return nan ? __builtin_nanf("") : amax;
}

void EncodeGroupScalar(const GroupArgs& a) {
  if (a.int4) std::memset(a.codes, 0, a.len / 2);
  for (int64_t k = 0; k < a.len; ++k) {
    int code = a.bias;  // all-zero group: level 0
    if (a.divisor != 0.0f) {
      const float x = RoundTo(a.work, LoadElement(a.src, a.src_dtype, k) / a.divisor);
      // nearbyint rounds half to even under the default rounding mode, like torch.round.
      const float q = std::nearbyint(x);
      code = static_cast<int>(std::fmin(std::fmax(q + static_cast<float>(a.bias), 0.0f),
                                        static_cast<float>(a.max_code)));
    }
    if (!a.int4) {
      a.codes[k] = static_cast<uint8_t>(code);
    } else {
      a.codes[k >> 1] |= static_cast<uint8_t>(code << ((k & 1) * 4));
    }
  }
}

}  // namespace rtn_internal

bool RtnQuantizeRow(const void* src, DType src_dtype, int64_t cols, const RtnFormat& f,
                    RtnArithmetic arithmetic, uint8_t* codes, uint8_t* scales) {
  using namespace rtn_internal;
  const int64_t g_len = f.GroupLength(cols);
  const int bits = f.bits(), max_code = (1 << bits) - 1;
  const float levels = static_cast<float>(max_code);  // 2^b - 1
  const size_t scale_bytes = Info(f.scale_dtype).block_bytes;
  const size_t elem_bytes = Info(src_dtype).block_bytes;
  // vLLM computes in the weight's dtype; F32 weights therefore see no intermediate rounding.
  const DType work = arithmetic == RtnArithmetic::kVllm ? src_dtype : DType::kF32;
  const bool simd = g_len % 16 == 0 && IsaAtLeast(SelectedIsa(), Isa::kAvx512);
  const DType sdt = f.scale_dtype;
  const bool int4 = f.scheme == RtnScheme::kInt4;
  bool all_finite = true;

  auto quantize_group = [&](int64_t g0) {
    const void* group = static_cast<const uint8_t*>(src) + g0 * elem_bytes;
    float amax = simd ? GroupAmaxAvx512(group, src_dtype, g_len) : GroupAmaxScalar(group, src_dtype, g_len);
    const bool finite = std::isfinite(amax);
    all_finite &= finite;
    if (!finite) {  // NaN/Inf: the IEEE-exact scalar path, with fmax's NaN-skipping scale
      amax = 0.0f;
      for (int64_t k = 0; k < g_len; ++k) amax = std::fmax(amax, std::fabs(LoadElement(group, src_dtype, k)));
    }
    // vLLM: scale = amax * 2.0 / (2^b - 1). On CUDA, torch divides by a Python scalar by
    // multiplying with its f32 reciprocal, then rounds to the weight dtype; amax * 2.0 is exact.
    const float scale = arithmetic == RtnArithmetic::kVllm ? RoundTo(work, (amax * 2.0f) * (1.0f / levels))
                                                           : (amax * 2.0f) / levels;
    // fp32 mode computes codes against the scale as stored, so dequantization sees the same value.
    const float stored = RoundTo(sdt, scale);
    StoreScale(sdt, stored, scales + (g0 / g_len) * scale_bytes);
    GroupArgs args{group, src_dtype, g_len, arithmetic == RtnArithmetic::kVllm ? scale : stored, work,
                   f.bias(), max_code, int4, codes + (int4 ? g0 / 2 : g0)};
    if (simd && finite) EncodeGroupAvx512(args);
    else EncodeGroupScalar(args);
  };

  int64_t g0 = 0;
  if (simd) {  // whole blocks of 16 groups with vector scale arithmetic
    const int64_t block = kBlockGroups * g_len;
    for (; g0 + block <= cols; g0 += block) {
      BlockArgs args{static_cast<const uint8_t*>(src) + g0 * elem_bytes, src_dtype, g_len,
                     arithmetic == RtnArithmetic::kVllm, work, sdt, f.bias(), max_code, int4,
                     codes + (int4 ? g0 / 2 : g0), scales + (g0 / g_len) * scale_bytes};
      if (QuantizeBlock16Avx512(args)) continue;
      for (int64_t g = g0; g < g0 + block; g += g_len) quantize_group(g);  // holds a NaN or Inf
    }
  }
  for (; g0 < cols; g0 += g_len) quantize_group(g0);
  return all_finite;
}

void RtnQuantizeRows(const void* src, DType src_dtype, int64_t row_begin, int64_t row_end,
                     RtnArithmetic arithmetic, RtnMatrix* out) {
  const size_t row_bytes = Info(src_dtype).block_bytes * static_cast<size_t>(out->cols);
  for (int64_t r = row_begin; r < row_end; ++r) {
    RtnQuantizeRow(static_cast<const uint8_t*>(src) + r * row_bytes, src_dtype, out->cols, out->format,
                   arithmetic, out->CodeRow(r), out->ScaleRow(r));
  }
}

std::optional<NonFinite> FindNonFinite(const void* src, DType src_dtype, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = LoadElement(src, src_dtype, i);
    if (!std::isfinite(v)) return NonFinite{i / cols, i % cols, v};
  }
  return std::nullopt;
}

Result<RtnMatrix> RtnQuantize(const void* src, DType src_dtype, int64_t rows, int64_t cols,
                              const RtnFormat& format, RtnArithmetic arithmetic,
                              bool allow_nonfinite) {
  if (!allow_nonfinite) {
    if (auto bad = FindNonFinite(src, src_dtype, rows, cols)) {
      return Err("non-finite weight {} at row {}, column {} (use --allow-nonfinite to quantize anyway)",
                 bad->value, bad->row, bad->col);
    }
  }
  RTNQ_ASSIGN_OR_RETURN(RtnMatrix m, AllocateRtnMatrix(format, rows, cols));
  RtnQuantizeRows(src, src_dtype, 0, rows, arithmetic, &m);
  return m;
}

}  // namespace rtnq
