// RTN weights in the panel layout (docs/formats/rtn.md): per 16-row panel and scale group, 64
// bytes of f32 scales (lane r = row r) followed by the group's codes; with int8 activations and
// bf16/f16 scales two groups share one 64-byte header of 16-bit scales (group 2b at bytes 0..31,
// 2b+1 at 32..63) followed by both groups' codes (PackedWeight::GroupCodeOffset). Codes:
//   int8, f32 activations: 16 bytes per k, byte r = level of row r as int8 (code ^ 0x80)
//   int8, int8 activations (A8): 64 bytes per 4 k (a k-quad), dword r = row r's 4 codes
//     (unsigned, k order): VPDPBUSD's u8 operand; a partial last quad is padded with code 0
//   int4 (both): 64 bytes per 8 k, dword r holds row r's 8 codes (unsigned), k = 8c + j at
//     bits 4j..4j+3
// Groups are padded to 64 bytes, so every group (and panel) starts 64-byte aligned.
#include <emmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/half.h"
#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"
#include "kernels/quad_layout.h"

namespace rtnq {

Result<PackedWeight> PackedWeight::AllocateRtn(const RtnFormat& format, int64_t n, int64_t k,
                                               ActType act, Isa isa) {
  if (n <= 0 || k <= 0) return Err("matmul weight shape [{}, {}] is empty", n, k);
  RTNQ_RETURN_IF_ERROR(format.CheckShape(n, k));
  if (format.scale_dtype != DType::kF32 && format.scale_dtype != DType::kF16 &&
      format.scale_dtype != DType::kBF16) {
    return Err("RTN scales must be F32, F16 or BF16, found {}", DTypeName(format.scale_dtype));
  }
  if (act == ActType::kInt8 && format.GroupLength(k) > A8MaxGroup(format.scheme)) {
    return Err("RTN {} weight [{}, {}]: a group of {} k may overflow int32 dot products with int8 "
               "activations (at most {})", format.Name(), n, k, format.GroupLength(k),
               A8MaxGroup(format.scheme));
  }
  PackedWeight w;
  w.weight_type_ = RtnWeightType(format.scheme);
  w.act_ = act;
  if (!w.ResolveKernels(isa, format.GroupLength(k))) {
    return Err("no matmul kernel for {} weights x {} activations at ISA {} on this CPU",
               WeightTypeName(w.weight_type_), ActTypeName(act), IsaName(isa));
  }
  w.n_ = n;
  w.k_ = k;
  w.k_padded_ = k;
  w.dtype_ = DType::kF32;  // what ExtractRow produces
  w.rtn_ = format;
  w.group_ = format.GroupLength(k);
  // Int8 activations and bf16 activations (the AMX tiles) share one layout: int8 codes as k-quads,
  // 16-bit scale headers shared by two groups.
  const bool quads = format.scheme == RtnScheme::kInt8 && act != ActType::kF32;
  const int64_t code_bytes = quads ? (w.group_ + 3) / 4 * 64
                             : format.scheme == RtnScheme::kInt8 ? w.group_ * kPanelRows
                                                                 : (w.group_ + 7) / 8 * 64;
  // 16-bit scales as given (exact) let two groups share a header: 4.125 instead of 4.25 bits
  // per int4 weight at g128, which decode reads at the bandwidth limit. Only the A8 and bf16-act
  // kernels read this layout; the f32-activation kernels keep one f32 header per group.
  const int64_t groups = k / w.group_;
  w.group_code_bytes_ = (code_bytes + 63) / 64 * 64;
  if (act != ActType::kF32 && format.scale_dtype != DType::kF32) {
    w.group_shift_ = 1;
    w.panel_scale_dtype_ = format.scale_dtype;
  }
  w.group_bytes_ = 64 + (w.group_code_bytes_ << w.group_shift_);
  w.panel_bytes_ = (groups >> w.group_shift_) * w.group_bytes_ +
                   ((groups & 1) && w.group_shift_ ? 64 + w.group_code_bytes_ : 0);
  w.data_ = AlignedBuffer(static_cast<size_t>(w.panels() * w.panel_bytes_));
  // SetRtnRows writes every byte of a panel whose 16 rows it is given when the group's codes fill
  // whole 64-byte lines; only then can zeroing (a second pass over a buffer of up to GBs) be
  // limited to the padding rows of the last panel.
  // (A shared header of an odd last group is half written.)
  const bool fully_written = (quads ? w.group_ % 4 == 0
                                    : code_bytes % 64 == 0 && (format.scheme == RtnScheme::kInt8 || w.group_ % 8 == 0)) &&
                             !(w.group_shift_ && (groups & 1));
  if (fully_written) {
    if (n % kPanelRows != 0) {
      std::memset(w.data_.data() + (w.panels() - 1) * w.panel_bytes_, 0, static_cast<size_t>(w.panel_bytes_));
    }
  } else {
    std::memset(w.data_.data(), 0, w.data_.size());
  }
  return w;
}

namespace {

// out[k][i] = in[i][k] ^ 0x80 for a 16 x 16 byte tile (rows `stride` apart; output rows 16 bytes
// apart): four rounds of unpacks leave column k in register bit_reverse(k). SSE2 only.
void TransposeTile16Xor80(const uint8_t* in, uint64_t stride, uint8_t* out) {
  const __m128i flip = _mm_set1_epi8(static_cast<char>(0x80));
  __m128i x[16], y[16];
  for (int i = 0; i < 16; ++i) {
    x[i] = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i * stride)), flip);
  }
  auto round = [&](auto lo, auto hi) {
    for (int j = 0; j < 8; ++j) {
      y[j] = lo(x[2 * j], x[2 * j + 1]);
      y[j + 8] = hi(x[2 * j], x[2 * j + 1]);
    }
    for (int j = 0; j < 16; ++j) x[j] = y[j];
  };
  round([](__m128i a, __m128i b) { return _mm_unpacklo_epi8(a, b); },
        [](__m128i a, __m128i b) { return _mm_unpackhi_epi8(a, b); });
  round([](__m128i a, __m128i b) { return _mm_unpacklo_epi16(a, b); },
        [](__m128i a, __m128i b) { return _mm_unpackhi_epi16(a, b); });
  round([](__m128i a, __m128i b) { return _mm_unpacklo_epi32(a, b); },
        [](__m128i a, __m128i b) { return _mm_unpackhi_epi32(a, b); });
  round([](__m128i a, __m128i b) { return _mm_unpacklo_epi64(a, b); },
        [](__m128i a, __m128i b) { return _mm_unpackhi_epi64(a, b); });
  static constexpr int kBitReverse4[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
  for (int k = 0; k < 16; ++k) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k * 16), x[kBitReverse4[k]]);
  }
}

}  // namespace

// Codes kept as quads: each 64-byte line of a panel's group holds 4 code bytes of each of its 16
// rows (dword r = row r's bytes 4j..4j+3): int8 codes for int8/bf16 activations (4 k per quad)
// and int4 codes (8 k per quad, even k in the low nibble; int4 needs an even K, so every group
// is whole bytes). kernels/quad_layout.h does the copy.
void PackedWeight::SetCodeQuads(int64_t r0, int64_t rows, const uint8_t* codes) {
  const uint64_t code_row = rtn_.CodeBytes(1, k_);
  const int64_t group_bytes = static_cast<int64_t>(rtn_.CodeBytes(1, group_));
  const int64_t groups = k_ / group_;
  for (int64_t i0 = 0; i0 < rows;) {
    const int64_t r = r0 + i0, rr0 = r % kPanelRows;
    const int64_t n = std::min<int64_t>(rows - i0, kPanelRows - rr0);
    uint8_t* panel = data_.as<uint8_t>() + (r / kPanelRows) * panel_bytes_;
    for (int64_t g = 0; g < groups; ++g) {
      CopyRowsToQuads(codes + i0 * code_row + g * group_bytes, code_row, group_bytes, rr0, n,
                      panel + GroupCodeOffset(g));
    }
    i0 += n;
  }
}

void PackedWeight::SetRtnRows(int64_t r0, int64_t rows, const uint8_t* codes, const uint8_t* scales) {
  const uint64_t code_row = rtn_.CodeBytes(1, k_), scale_row = rtn_.ScaleBytes(1, k_);
  const int64_t groups = k_ / group_;
  for (int64_t i = 0; i < rows; ++i) {  // scales
    const int64_t r = r0 + i, rr = r % kPanelRows;
    uint8_t* panel = data_.as<uint8_t>() + (r / kPanelRows) * panel_bytes_;
    for (int64_t g = 0; g < groups; ++g) {
      uint8_t* hdr = panel + GroupScaleOffset(g);
      if (group_shift_) {  // the canonical 16-bit scale as it is
        std::memcpy(hdr + rr * 2, scales + i * scale_row + g * 2, 2);
      } else {
        const float s = RtnScale(rtn_, scales + i * scale_row, g);
        std::memcpy(hdr + rr * 4, &s, 4);
      }
    }
  }
  // Codes: int4 always and int8 for int8/bf16 activations as k-quads.
  if (rtn_.scheme != RtnScheme::kInt8 || act_ != ActType::kF32) {
    SetCodeQuads(r0, rows, codes);
    return;
  }
  // int8: a panel stores each k as 16 consecutive bytes, one per row. Rows of one panel are
  // transposed in 16 x 16 tiles that stay in L1.
  for (int64_t i0 = 0; i0 < rows;) {
    const int64_t r = r0 + i0, rr0 = r % kPanelRows;
    const int64_t n = std::min<int64_t>(rows - i0, kPanelRows - rr0);
    uint8_t* panel = data_.as<uint8_t>() + (r / kPanelRows) * panel_bytes_;
    for (int64_t g = 0; g < groups; ++g) {
      uint8_t* cb = panel + GroupCodeOffset(g) + rr0;
      const uint8_t* src = codes + i0 * code_row + g * group_;
      if (n == kPanelRows && group_ % 16 == 0) {  // whole panel: SIMD tiles
        for (int64_t k0 = 0; k0 < group_; k0 += 16) TransposeTile16Xor80(src + k0, code_row, cb + k0 * kPanelRows);
        continue;
      }
      for (int64_t k0 = 0; k0 < group_; k0 += 16) {
        const int64_t kn = std::min<int64_t>(16, group_ - k0);
        for (int64_t i = 0; i < n; ++i) {
          const uint8_t* s_row = src + i * code_row + k0;
          for (int64_t kk = 0; kk < kn; ++kk) cb[(k0 + kk) * kPanelRows + i] = static_cast<uint8_t>(s_row[kk] ^ 0x80);
        }
      }
    }
    i0 += n;
  }
}

Result<PackedWeight> PackedWeight::Pack(const RtnFormat& format, const uint8_t* codes,
                                        const uint8_t* scales, int64_t n, int64_t k, ActType act,
                                        Isa isa) {
  RTNQ_ASSIGN_OR_RETURN(PackedWeight w, AllocateRtn(format, n, k, act, isa));
  if (codes == nullptr || scales == nullptr) return Err("RTN weight [{}, {}] has no data", n, k);
  w.SetRtnRows(0, n, codes, scales);
  return w;
}

void PackedWeight::ExtractRtnRow(int64_t r, float* out) const {
  const uint8_t* panel = data_.as<uint8_t>() + (r / kPanelRows) * panel_bytes_;
  const int64_t rr = r % kPanelRows;
  for (int64_t g = 0; g < k_ / group_; ++g) {
    const uint8_t* hdr = panel + GroupScaleOffset(g);
    float s;
    if (group_shift_) {
      uint16_t h;
      std::memcpy(&h, hdr + rr * 2, 2);
      s = panel_scale_dtype_ == DType::kBF16 ? Bf16ToF32(h) : F16ToF32(h);
    } else {
      std::memcpy(&s, hdr + rr * 4, 4);
    }
    const uint8_t* cb = panel + GroupCodeOffset(g);
    for (int64_t kk = 0; kk < group_; ++kk) {
      int level;
      if (rtn_.scheme == RtnScheme::kInt8 && act_ != ActType::kF32) {
        level = cb[(kk / 4) * 64 + rr * 4 + kk % 4] - 128;
      } else if (rtn_.scheme == RtnScheme::kInt8) {
        level = static_cast<int8_t>(cb[kk * kPanelRows + rr]);
      } else {
        const uint8_t byte = cb[(kk / 8) * 64 + rr * 4 + (kk % 8) / 2];
        level = ((kk & 1) ? byte >> 4 : byte & 0x0f) - 8;
      }
      out[g * group_ + kk] = static_cast<float>(level) * s;
    }
  }
}

void MatmulReferenceRtn(const RtnFormat& format, const uint8_t* codes, const uint8_t* scales,
                        int64_t n, int64_t k, const float* x, int64_t m, int64_t ldx, float* y,
                        int64_t ldy, const float* bias, ActType act) {
  const uint64_t code_row = format.CodeBytes(1, k), scale_row = format.ScaleBytes(1, k);
  if (act == ActType::kInt8) {
    const int64_t group = format.GroupLength(k), groups = k / group;
    const uint32_t bias_code = static_cast<uint32_t>(format.bias());
    std::vector<int8_t> q(static_cast<size_t>(k));
    std::vector<float> xs(static_cast<size_t>(groups));
    std::vector<int32_t> sum(static_cast<size_t>(groups));
    for (int64_t i = 0; i < m; ++i) {
      QuantizeActivationsA8(x + i * ldx, k, group, group, false, {q.data(), xs.data(), sum.data()},
                            Isa::kScalar);
      for (int64_t j = 0; j < n; ++j) {
        const uint8_t* code = codes + j * code_row;
        float acc = 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
          // Unsigned: sums of code * q may wrap; the difference is exact (A8MaxGroup).
          uint32_t dot = 0;
          for (int64_t c = g * group; c < (g + 1) * group; ++c) {
            const uint32_t level_code = static_cast<uint32_t>(RtnLevel(format, code, c) + format.bias());
            dot += level_code * static_cast<uint32_t>(static_cast<int32_t>(q[c]));
          }
          dot -= bias_code * static_cast<uint32_t>(sum[g]);
          const float sw = RtnScale(format, scales + j * scale_row, g);
          acc = std::fma(static_cast<float>(static_cast<int32_t>(dot)), sw * xs[g], acc);
        }
        y[i * ldy + j] = bias ? acc + bias[j] : acc;
      }
    }
    return;
  }
  if (act == ActType::kBF16) {
    const int64_t group = format.GroupLength(k), groups = k / group;
    std::vector<float> xr(static_cast<size_t>(k));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t c = 0; c < k; ++c) xr[c] = Bf16ToF32(F32ToBf16(x[i * ldx + c]));
      for (int64_t j = 0; j < n; ++j) {
        const uint8_t* code = codes + j * code_row;
        float acc = 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
          float dot = 0.0f;  // level x bf16 products are exact in f32
          for (int64_t c = g * group; c < (g + 1) * group; ++c)
            dot = std::fma(static_cast<float>(RtnLevel(format, code, c)), xr[c], dot);
          acc = std::fma(dot, RtnScale(format, scales + j * scale_row, g), acc);
        }
        y[i * ldy + j] = bias ? acc + bias[j] : acc;
      }
    }
    return;
  }
  std::vector<float> w(static_cast<size_t>(n * k));
  for (int64_t j = 0; j < n; ++j)
    RtnDequantizeRow(format, codes + j * code_row, scales + j * scale_row, k, w.data() + j * k);
  MatmulReference(DType::kF32, w.data(), n, k, x, m, ldx, y, ldy, bias, ActType::kF32);
}

}  // namespace rtnq
