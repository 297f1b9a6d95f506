// Round-to-nearest quantization of a weight matrix, exactly as Kogan (2025) and vLLM define it:
// per group of G consecutive inputs of a row,
//   scale = 2 * max|w| / (2^b - 1)
//   code  = clamp(round_half_even(w / scale) + 2^(b-1), 0, 2^b - 1)
//   w'    = (code - 2^(b-1)) * scale
// An all-zero group gets scale 0 and codes 2^(b-1), so it decodes to exact zeros.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "format/dtype.h"
#include "format/rtn_format.h"

namespace rtnq {

enum class RtnArithmetic {
  // Scale computed in f32 and rounded once to the stored scale dtype; codes computed against the
  // stored scale (so dequantization reproduces what was optimised). The default: most accurate.
  kFp32,
  // Reproduces vLLM's rtn_quantize op by op in the weight's own dtype (for bf16 checkpoints every
  // intermediate is rounded to bf16), so codes and scales are bit-identical to vLLM's.
  kVllm,
};

const char* RtnArithmeticName(RtnArithmetic a);

struct RtnMatrix {
  RtnFormat format;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> codes;   // format.CodeBytes(rows, cols)
  std::vector<uint8_t> scales;  // format.ScaleBytes(rows, cols)

  size_t code_row_bytes() const { return static_cast<size_t>(cols * format.bits() / 8); }
  size_t scale_row_bytes() const {
    return static_cast<size_t>(cols / format.GroupLength(cols)) * Info(format.scale_dtype).block_bytes;
  }
  const uint8_t* CodeRow(int64_t r) const { return codes.data() + r * code_row_bytes(); }
  const uint8_t* ScaleRow(int64_t r) const { return scales.data() + r * scale_row_bytes(); }
  uint8_t* CodeRow(int64_t r) { return codes.data() + r * code_row_bytes(); }
  uint8_t* ScaleRow(int64_t r) { return scales.data() + r * scale_row_bytes(); }
  void DequantizeRow(int64_t r, float* out) const;
};

// Quantizes one row of `cols` weights stored as `src_dtype` into its packed codes and scales.
// Returns false if the row holds a NaN or Inf (it is quantized anyway; FindNonFinite locates it).
bool RtnQuantizeRow(const void* src_row, DType src_dtype, int64_t cols, const RtnFormat& format,
                    RtnArithmetic arithmetic, uint8_t* codes, uint8_t* scales);

// Quantizes rows [row_begin, row_end) of a row-major [rows, cols] matrix stored as `src_dtype`
// (F32, F16 or BF16) into `out`, which must already be sized (see AllocateRtnMatrix). Rows are
// independent, so callers may split a matrix across threads.
void RtnQuantizeRows(const void* src, DType src_dtype, int64_t row_begin, int64_t row_end,
                     RtnArithmetic arithmetic, RtnMatrix* out);

Result<RtnMatrix> AllocateRtnMatrix(const RtnFormat& format, int64_t rows, int64_t cols);

// Whole-matrix convenience; fails on a shape the format cannot hold or a non-finite weight
// (named by row and column) unless allow_nonfinite.
Result<RtnMatrix> RtnQuantize(const void* src, DType src_dtype, int64_t rows, int64_t cols,
                              const RtnFormat& format, RtnArithmetic arithmetic,
                              bool allow_nonfinite = false);

// Position of the first NaN/Inf in a row-major matrix, if any.
struct NonFinite {
  int64_t row, col;
  float value;
};
std::optional<NonFinite> FindNonFinite(const void* src, DType src_dtype, int64_t rows, int64_t cols);

}  // namespace rtnq
