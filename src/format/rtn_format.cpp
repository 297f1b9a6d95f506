#include "format/rtn_format.h"

#include <charconv>
#include <cstring>

#include "base/half.h"

namespace rtnq {

std::string RtnFormat::Name() const {
  const std::string group_name = group == 0 ? std::string("row") : fmt::format("g{}", group);
  std::string scale(DTypeName(scale_dtype));
  for (char& c : scale) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return fmt::format("{}:{}:{}", Info(scheme).name, group_name, scale);
}

Status RtnFormat::CheckShape(int64_t rows, int64_t cols) const {
  if (rows <= 0 || cols <= 0) return Err("empty matrix [{}, {}]", rows, cols);
  const int64_t g = GroupLength(cols);
  if (cols % g != 0) {
    return Err("input dimension {} is not a multiple of the group size {}", cols, g);
  }
  if (scheme == RtnScheme::kInt4 && cols % 2 != 0) {
    return Err("int4 needs an even input dimension, found {}", cols);
  }
  return Status::Ok();
}

uint64_t RtnFormat::CodeBytes(int64_t rows, int64_t cols) const {
  return static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols) * bits() / 8;
}

uint64_t RtnFormat::ScaleBytes(int64_t rows, int64_t cols) const {
  return static_cast<uint64_t>(rows) * static_cast<uint64_t>(cols / GroupLength(cols)) *
         Info(scale_dtype).block_bytes;
}

namespace {

std::string ValidFormatsHint() {
  return "valid: int8|int4 (or rtn8|rtn4), optional :g32|:g64|:g128|:row, optional :bf16|:f16|:f32";
}

}  // namespace

Result<RtnFormat> ParseRtnFormat(std::string_view text) {
  RtnFormat f;
  size_t pos = 0;
  int part = 0;
  while (pos <= text.size()) {
    size_t end = text.find(':', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view tok = text.substr(pos, end - pos);
    if (part == 0) {
      if (tok == "int8" || tok == "rtn8") f.scheme = RtnScheme::kInt8;
      else if (tok == "int4" || tok == "rtn4") f.scheme = RtnScheme::kInt4;
      else return Err("unknown precision '{}' ({})", text, ValidFormatsHint());
    } else if (tok == "row") {
      f.group = 0;
    } else if (!tok.empty() && tok[0] == 'g') {
      int32_t g = -1;
      auto [p, ec] = std::from_chars(tok.data() + 1, tok.data() + tok.size(), g);
      bool ok = ec == std::errc() && p == tok.data() + tok.size();
      if (ok) {
        ok = false;
        for (int32_t allowed : kRtnGroupSizes) ok |= (allowed == g && g != 0);
      }
      if (!ok) return Err("unknown group size '{}' in '{}' ({})", tok, text, ValidFormatsHint());
      f.group = g;
    } else if (tok == "bf16") {
      f.scale_dtype = DType::kBF16;
    } else if (tok == "f16" || tok == "fp16") {
      f.scale_dtype = DType::kF16;
    } else if (tok == "f32" || tok == "fp32") {
      f.scale_dtype = DType::kF32;
    } else {
      return Err("unknown component '{}' in precision '{}' ({})", tok, text, ValidFormatsHint());
    }
    ++part;
    pos = end + 1;
  }
  return f;
}

float RtnScale(const RtnFormat& f, const uint8_t* scale_row, int64_t g) {
  switch (f.scale_dtype) {
    case DType::kBF16: {
      uint16_t h;
      std::memcpy(&h, scale_row + 2 * g, 2);
      return Bf16ToF32(h);
    }
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, scale_row + 2 * g, 2);
      return F16ToF32(h);
    }
    default: {
      float s;
      std::memcpy(&s, scale_row + 4 * g, 4);
      return s;
    }
  }
}

void RtnDequantizeRow(const RtnFormat& f, const uint8_t* code_row, const uint8_t* scale_row,
                      int64_t cols, float* out) {
  const int64_t g_len = f.GroupLength(cols);
  for (int64_t g0 = 0; g0 < cols; g0 += g_len) {
    const float s = RtnScale(f, scale_row, g0 / g_len);
    for (int64_t k = g0; k < g0 + g_len; ++k) out[k] = static_cast<float>(RtnLevel(f, code_row, k)) * s;
  }
}

}  // namespace rtnq
