// rtnq's own quantized weight formats: symmetric round-to-nearest integer codes with one scale per
// group of consecutive input channels. Schemes are rows of one constexpr table; a concrete format
// adds the group size and the scale's dtype. Codes are stored unsigned with bias 2^(bits-1)
// (vLLM's uint8b128 / uint4b8), so code c means the level c - bias.
//
// Canonical layout of a quantized [N, K] matrix (docs/formats/rtn.md):
//   codes   int8: [N][K] bytes.  int4: [N][K/2] bytes, k even in the low nibble, k odd in the high.
//   scales  [N][K/G] values of scale_dtype (G = K for one group per row).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "format/dtype.h"

namespace rtnq {

enum class RtnScheme : uint8_t { kInt8, kInt4, kCount };

struct RtnSchemeInfo {
  RtnScheme scheme;
  std::string_view name;       // "int8" / "int4"
  int bits;
  int bias;                    // 2^(bits-1)
  std::string_view vllm_type;  // vLLM ScalarType name
};

inline constexpr RtnSchemeInfo kRtnSchemes[] = {
    {RtnScheme::kInt8, "int8", 8, 128, "uint8b128"},
    {RtnScheme::kInt4, "int4", 4, 8, "uint4b8"},
};
static_assert(std::size(kRtnSchemes) == static_cast<size_t>(RtnScheme::kCount));

constexpr const RtnSchemeInfo& Info(RtnScheme s) { return kRtnSchemes[static_cast<size_t>(s)]; }

// Group sizes Marlin-class kernels (and vLLM) accept; 0 means one group per row.
inline constexpr int32_t kRtnGroupSizes[] = {32, 64, 128, 0};

struct RtnFormat {
  RtnScheme scheme = RtnScheme::kInt4;
  int32_t group = 128;              // 0: one group spanning the whole row
  DType scale_dtype = DType::kBF16; // kBF16, kF16 or kF32

  int bits() const { return Info(scheme).bits; }
  int bias() const { return Info(scheme).bias; }
  // Effective group length for a row of `cols` inputs.
  int64_t GroupLength(int64_t cols) const { return group == 0 ? cols : group; }
  // "int4:g128:bf16"-style name; ParseRtnFormat accepts it and the short forms "rtn4", "rtn8:g32".
  std::string Name() const;
  bool operator==(const RtnFormat&) const = default;

  // Checks that a [rows, cols] matrix can be stored in this format (cols divisible by the group,
  // int4 rows a whole number of bytes).
  Status CheckShape(int64_t rows, int64_t cols) const;
  uint64_t CodeBytes(int64_t rows, int64_t cols) const;
  uint64_t ScaleBytes(int64_t rows, int64_t cols) const;
  uint64_t TotalBytes(int64_t rows, int64_t cols) const { return CodeBytes(rows, cols) + ScaleBytes(rows, cols); }
};

Result<RtnFormat> ParseRtnFormat(std::string_view text);

// Level (code - bias) of element k of a packed code row.
inline int RtnLevel(const RtnFormat& f, const uint8_t* code_row, int64_t k) {
  if (f.scheme == RtnScheme::kInt8) return static_cast<int>(code_row[k]) - 128;
  const uint8_t byte = code_row[k >> 1];
  return static_cast<int>((k & 1) ? (byte >> 4) : (byte & 0x0f)) - 8;
}

// Reads scale `g` of a scale row stored as f.scale_dtype.
float RtnScale(const RtnFormat& f, const uint8_t* scale_row, int64_t g);

// Decodes one row of `cols` weights: w[k] = (code - bias) * scale[k / G].
void RtnDequantizeRow(const RtnFormat& f, const uint8_t* code_row, const uint8_t* scale_row,
                      int64_t cols, float* out);

}  // namespace rtnq
