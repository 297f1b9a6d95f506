#include "quant/rtn.h"

#include <cmath>
#include <cstring>

#include "base/half.h"

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

void RtnQuantizeRow(const void* src, DType src_dtype, int64_t cols, const RtnFormat& f,
                    RtnArithmetic arithmetic, uint8_t* codes, uint8_t* scales) {
  const int64_t g_len = f.GroupLength(cols);
  const int bits = f.bits(), bias = f.bias(), max_code = (1 << bits) - 1;
  const float levels = static_cast<float>(max_code);  // 2^b - 1
  const size_t scale_bytes = Info(f.scale_dtype).block_bytes;
  // vLLM computes in the weight's dtype; F32 weights therefore see no intermediate rounding.
  const DType work = arithmetic == RtnArithmetic::kVllm ? src_dtype : DType::kF32;

  if (f.scheme == RtnScheme::kInt4) std::memset(codes, 0, cols / 2);
  for (int64_t g0 = 0; g0 < cols; g0 += g_len) {
    float amax = 0.0f;
    for (int64_t k = 0; k < g_len; ++k) amax = std::fmax(amax, std::fabs(LoadElement(src, src_dtype, g0 + k)));
    // vLLM: scale = amax * 2.0 / (2^b - 1). On CUDA, torch divides by a Python scalar by
    // multiplying with its f32 reciprocal, then rounds to the weight dtype; amax * 2.0 is exact.
    const float scale = arithmetic == RtnArithmetic::kVllm ? RoundTo(work, (amax * 2.0f) * (1.0f / levels))
                                                           : (amax * 2.0f) / levels;
    // fp32 mode computes codes against the scale as stored, so dequantization sees the same value.
    const float stored = RoundTo(f.scale_dtype, scale);
    StoreScale(f.scale_dtype, stored, scales + (g0 / g_len) * scale_bytes);
    const float divisor = arithmetic == RtnArithmetic::kVllm ? scale : stored;
    for (int64_t k = 0; k < g_len; ++k) {
      int code = bias;  // all-zero group: level 0
      if (divisor != 0.0f) {
        const float x = RoundTo(work, LoadElement(src, src_dtype, g0 + k) / divisor);
        // nearbyint rounds half to even under the default rounding mode, like torch.round.
        const float q = std::nearbyint(x);
        code = static_cast<int>(std::fmin(std::fmax(q + static_cast<float>(bias), 0.0f),
                                          static_cast<float>(max_code)));
      }
      const int64_t kk = g0 + k;
      if (f.scheme == RtnScheme::kInt8) {
        codes[kk] = static_cast<uint8_t>(code);
      } else {
        codes[kk >> 1] |= static_cast<uint8_t>(code << ((kk & 1) * 4));
      }
    }
  }
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
