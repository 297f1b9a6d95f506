// Kernel tables defined by the per-ISA files (matmul_scalar.cpp, matmul_avx2.cpp,
// matmul_avx512.cpp) and collected by the registry in matmul.cpp.
#pragma once

#include "kernels/matmul.h"

namespace rtnq {

extern const MatmulKernel kScalarKernels[4];
extern const MatmulKernel kAvx2Kernels[4];
extern const MatmulKernel kAvx512Kernels[5];

}  // namespace rtnq
