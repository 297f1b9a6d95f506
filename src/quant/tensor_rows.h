// Row access to a checkpoint tensor in canonical order: rows of q/k projections stored in
// interleaved-RoPE order (GGUF, llama2.c) are read through the permutation, so every consumer
// (quantizer, exporters) sees HF order. RTN-quantized views (TensorView::rtn) are read as their
// canonical code rows; ReadF32 dequantizes them (RtnDequantizeRow), so consumers that decode rows
// handle them like any other non-float source.
#pragma once

#include <cstdint>

#include "io/checkpoint.h"

namespace rtnq {

class TensorRows {
 public:
  explicit TensorRows(const TensorView& view);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  DType dtype() const { return view_.dtype; }
  // Stored bytes of canonical row r (in the tensor's own dtype; the code row of a quantized view).
  const uint8_t* Raw(int64_t r) const { return view_.data + SourceRow(r) * row_bytes_; }
  // Quantized views: the scale row of canonical row r (rtn()->ScaleBytes(1, cols) bytes).
  const uint8_t* ScaleRow(int64_t r) const { return view_.scales + SourceRow(r) * scale_row_bytes_; }
  const std::optional<RtnFormat>& rtn() const { return view_.rtn; }
  // Canonical row r decoded to f32.
  void ReadF32(int64_t r, float* out) const;
  // The stored row index holding canonical row r.
  int64_t SourceRow(int64_t r) const;

 private:
  const TensorView& view_;
  int64_t rows_, cols_;
  uint64_t row_bytes_;
  uint64_t scale_row_bytes_ = 0;
  int64_t head_dim_ = 0;  // non-zero: rows are interleaved-RoPE permuted within heads of this size
};

}  // namespace rtnq
