#include "quant/tensor_rows.h"

#include "io/rope_permute.h"

namespace rtnq {

TensorRows::TensorRows(const TensorView& view) : view_(view) {
  rows_ = view.shape.empty() ? 0 : view.shape[0];
  cols_ = view.shape.size() > 1 ? view.shape[1] : 1;
  row_bytes_ = rows_ > 0 ? view.nbytes / static_cast<uint64_t>(rows_) : 0;
  if (view.rtn) {
    row_bytes_ = view.code_row_bytes;
    scale_row_bytes_ = view.rtn->ScaleBytes(1, cols_);
  }
  if (view.rope_permuted_heads > 0) head_dim_ = rows_ / view.rope_permuted_heads;
}

int64_t TensorRows::SourceRow(int64_t r) const {
  return head_dim_ > 0 ? InterleavedRowForHfRow(r, head_dim_) : r;
}

void TensorRows::ReadF32(int64_t r, float* out) const {
  if (view_.rtn) {
    RtnDequantizeRow(*view_.rtn, Raw(r), ScaleRow(r), cols_, out);
  } else {
    DequantizeRow(view_.dtype, Raw(r), out, cols_);
  }
}

}  // namespace rtnq
