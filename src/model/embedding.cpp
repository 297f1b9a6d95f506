#include "model/embedding.h"

#include "quant/tensor_rows.h"

namespace rtnq {

Embedding::Embedding(const TensorView& view, const Checkpoint& ck) : view_(view), file_(ck.FileHolding(view)) {}

void Embedding::Row(int64_t token, float* out) const {
  if (view_) {
    TensorRows(*view_).ReadF32(token, out);
  } else {
    packed_.ExtractRow(token, out);
  }
}

uint64_t Embedding::bytes() const { return view_ ? view_->StoredBytes() : packed_.bytes(); }

}  // namespace rtnq
