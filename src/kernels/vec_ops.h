// Small vector primitives for attention (q·k dot products, softmax-weighted sums of v), with an
// ISA chosen once per process. The summation order is fixed per ISA, independent of the caller's
// batch or thread split.
#pragma once

#include <cstdint>

#include "base/cpu_features.h"

namespace rtnq {

struct VecOps {
  float (*dot)(const float* a, const float* b, int64_t n);
  void (*axpy)(float alpha, const float* x, float* y, int64_t n);  // y += alpha * x
  Isa isa;
};

const VecOps& GetVecOps(Isa isa);
inline const VecOps& DefaultVecOps() {
  static const VecOps& ops = GetVecOps(SelectedIsa());
  return ops;
}

}  // namespace rtnq
