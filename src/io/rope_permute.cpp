#include "io/rope_permute.h"

#include <cstring>

namespace rtnq {

void UnpermuteRopeRows(const uint8_t* src, uint8_t* dst, int64_t rows, int64_t head_dim,
                       size_t row_bytes) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * row_bytes, src + InterleavedRowForHfRow(r, head_dim) * row_bytes, row_bytes);
  }
}

}  // namespace rtnq
