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

}  // namespace rtnq::rtn_internal
