// GGUF (llama arch) and llama2.c store q/k projection rows so that RoPE rotates adjacent pairs
// (x[2i], x[2i+1]); HF rotates halves (x[i], x[i + d/2]). Within each head, GGUF row
// h*d + 2i + j (j in {0,1}) is HF row h*d + j*d/2 + i. These helpers convert between the two.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rtnq {

// Source row (interleaved order) that becomes HF row `hf_row`, for heads of `head_dim` rows.
inline int64_t InterleavedRowForHfRow(int64_t hf_row, int64_t head_dim) {
  const int64_t head = hf_row / head_dim, r = hf_row % head_dim, half = head_dim / 2;
  const int64_t j = r / half, i = r % half;
  return head * head_dim + 2 * i + j;
}

// Copies `rows` rows of `row_bytes` bytes from interleaved order in `src` to HF order in `dst`.
void UnpermuteRopeRows(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t head_dim,
                       size_t row_bytes);

}  // namespace rtnq
