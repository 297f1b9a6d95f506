#include "format/dtype.h"

#include <cstring>

#include "base/half.h"

namespace rtnq {
namespace {

uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

}  // namespace

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& row : kDTypeTable) {
    if (row.name == name) return row.dtype;
  }
  return std::nullopt;
}

std::optional<uint64_t> DTypeBytes(DType t, uint64_t elems) {
  const auto& info = Info(t);
  if (elems % info.block_elems != 0) return std::nullopt;
  const uint64_t blocks = elems / info.block_elems;
  if (blocks > UINT64_MAX / info.block_bytes) return std::nullopt;
  return blocks * info.block_bytes;
}

void DequantizeRow(DType t, const void* src_void, float* dst, size_t n) {
  const uint8_t* src = static_cast<const uint8_t*>(src_void);
  switch (t) {
    case DType::kF32:
      std::memcpy(dst, src, n * 4);
      return;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) dst[i] = F16ToF32(Load16(src + 2 * i));
      return;
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(Load16(src + 2 * i));
      return;
    case DType::kQ8_0:
      for (size_t b = 0; b < n / 32; ++b, src += 34) {
        const float d = F16ToF32(Load16(src));
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = static_cast<int8_t>(src[2 + j]) * d;
      }
      return;
    case DType::kQ4_0:
      // Byte j holds element j in its low nibble and element j + 16 in its high nibble.
      for (size_t b = 0; b < n / 32; ++b, src += 18) {
        const float d = F16ToF32(Load16(src));
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = (static_cast<int>(src[2 + j] & 0x0f) - 8) * d;
          dst[b * 32 + j + 16] = (static_cast<int>(src[2 + j] >> 4) - 8) * d;
        }
      }
      return;
    case DType::kQ4_1:
      for (size_t b = 0; b < n / 32; ++b, src += 20) {
        const float d = F16ToF32(Load16(src));
        const float m = F16ToF32(Load16(src + 2));
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = (src[4 + j] & 0x0f) * d + m;
          dst[b * 32 + j + 16] = (src[4 + j] >> 4) * d + m;
        }
      }
      return;
    case DType::kI8:
    case DType::kU8:
    case DType::kI32:
    case DType::kI64:
    case DType::kCount:
      break;  // not weight types: IsWeightDType() is false

  }
}

}  // namespace rtnq
