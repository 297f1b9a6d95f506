// Runtime CPU feature detection, used by the kernel registry to pick an ISA path.
#pragma once

#include <string>

namespace rtnq {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx512vbmi = false;

  // Best ISA tier fully supported (AVX-512 tier requires F/BW/VL).
  Isa BestIsa() const;
  std::string ToString() const;
};

const CpuFeatures& HostCpu();

// The ISA the kernels should use: the best the host supports, capped by the environment
// variable RTNQ_ISA (scalar|avx2|avx512) so tests and benchmarks can force a slower path.
Isa SelectedIsa();
const char* IsaName(Isa isa);
bool ParseIsa(const std::string& name, Isa* out);

}  // namespace rtnq
