// Internal to rtn.cpp: the per-group inner loops of RTN, as a scalar reference and an AVX-512
// twin that must produce identical bytes (rtn_test.cpp checks every mode and dtype).
#pragma once

#include <cstdint>

#include "format/dtype.h"

namespace rtnq::rtn_internal {

struct GroupArgs {
  const void* src;     // first element of the group
  DType src_dtype;     // F32, F16 or BF16
  int64_t len;         // elements in the group
  float divisor;       // x = w / divisor; 0 means an all-zero group (every code = bias)
  DType work;          // x is rounded to this dtype before rounding to an integer (vLLM mode)
  int bias, max_code;
  bool int4;
  uint8_t* codes;      // int8: one byte per element; int4: len/2 bytes, even k in the low nibble
};

// max |w| over the group, or NaN if the group holds a NaN (Inf gives Inf).
float GroupAmaxScalar(const void* src, DType dtype, int64_t len);
void EncodeGroupScalar(const GroupArgs& a);

// Requires AVX-512 F/BW/VL and len % 16 == 0. Amax may be +inf or NaN for non-finite input;
// callers then use the scalar path.
float GroupAmaxAvx512(const void* src, DType dtype, int64_t len);
void EncodeGroupAvx512(const GroupArgs& a);

// Sixteen consecutive groups of a row at once: amax of each, the scales as a vector (the same
// IEEE operations as RtnQuantizeRow's scalar scale code), then the codes. Removes the per-group
// horizontal reduction and scalar scale arithmetic that halved the rate at g32 (1.5 vs 3.4 GB/s).
struct BlockArgs {
  const void* src;     // first element of the first group
  DType src_dtype;     // F32, F16 or BF16
  int64_t len;         // elements per group, a multiple of 16
  bool vllm;           // RtnArithmetic::kVllm
  DType work;          // vLLM mode: src_dtype; fp32 mode: F32
  DType scale_dtype;   // F32, F16 or BF16
  int bias, max_code;
  bool int4;
  uint8_t* codes;      // codes of the first group
  uint8_t* scales;     // scale of the first group
};
inline constexpr int kBlockGroups = 16;
// Requires AVX-512 F/BW/VL/DQ and F16C. Returns false, writing nothing, if any of the groups
// holds a NaN or Inf: the caller then quantizes them one by one on the IEEE-exact paths.
bool QuantizeBlock16Avx512(const BlockArgs& a);

}  // namespace rtnq::rtn_internal
