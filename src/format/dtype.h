// Element types of tensors on disk and in memory, described once as rows of a constexpr table.
// Block types (Q8_0, Q4_0, Q4_1) store `block_elems` weights in `block_bytes` bytes; plain types
// have block_elems == 1. The RTN types of rtnq's own quantizer are added here as rows too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rtnq {

enum class DType : uint8_t { kF32, kF16, kBF16, kQ8_0, kQ4_0, kQ4_1, kI8, kU8, kI32, kI64, kCount };

struct DTypeInfo {
  DType dtype;
  std::string_view name;  // as printed by `rtnq inspect` and parsed from flags
  uint32_t block_elems;
  uint32_t block_bytes;
  bool quantized;
};

inline constexpr DTypeInfo kDTypeTable[] = {
    {DType::kF32, "F32", 1, 4, false},
    {DType::kF16, "F16", 1, 2, false},
    {DType::kBF16, "BF16", 1, 2, false},
    {DType::kQ8_0, "Q8_0", 32, 34, true},  // f16 scale + 32 x int8
    {DType::kQ4_0, "Q4_0", 32, 18, true},  // f16 scale + 16 bytes of nibbles, value = (q - 8) * d
    {DType::kQ4_1, "Q4_1", 32, 20, true},  // f16 scale + f16 min + 16 bytes, value = q * d + m
    // Integer containers of packed quantized formats (compressed-tensors, GPTQ); not weights.
    {DType::kI8, "I8", 1, 1, false},
    {DType::kU8, "U8", 1, 1, false},
    {DType::kI32, "I32", 1, 4, false},
    {DType::kI64, "I64", 1, 8, false},
};
static_assert(std::size(kDTypeTable) == static_cast<size_t>(DType::kCount));

constexpr const DTypeInfo& Info(DType t) { return kDTypeTable[static_cast<size_t>(t)]; }
constexpr std::string_view DTypeName(DType t) { return Info(t).name; }
std::optional<DType> ParseDType(std::string_view name);

// Bytes needed for `elems` elements; nullopt if elems is not a whole number of blocks or the
// size overflows.
std::optional<uint64_t> DTypeBytes(DType t, uint64_t elems);

// True for the element types a weight can be decoded from (floats and GGML blocks).
constexpr bool IsWeightDType(DType t) { return t <= DType::kQ4_1; }

// Decodes `n` elements (n a multiple of the block size) of weight type `t` at `src` to f32.
void DequantizeRow(DType t, const void* src, float* dst, size_t n);

}  // namespace rtnq
