// Runtime CPU feature detection, used by the kernel registry to pick an ISA path.
#pragma once

#include <string>

namespace rtnq {

// Tiers, each including the one below. kAmx: AVX-512 plus AMX tiles (AMX-BF16 and AMX-INT8),
// usable only after Linux granted this process the tile state (see CpuFeatures::amx).
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAmx = 3 };
inline bool IsaAtLeast(Isa have, Isa want) { return static_cast<int>(have) >= static_cast<int>(want); }

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
  // AMX-TILE, AMX-BF16 and AMX-INT8 in CPUID, and arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)
  // succeeded: Linux enables the 8 KiB tile state only for processes that ask (once, at the
  // first HostCpu() call; the grant covers every thread of the process).
  bool amx = false;

  // Best ISA tier fully supported (AVX-512 tier requires F/BW/VL).
  Isa BestIsa() const;
  std::string ToString() const;
};

const CpuFeatures& HostCpu();

// The ISA the kernels should use: the best the host supports, capped by the environment
// variable RTNQ_ISA (scalar|avx2|avx512|amx) so tests and benchmarks can force a slower path.
Isa SelectedIsa();
const char* IsaName(Isa isa);
bool ParseIsa(const std::string& name, Isa* out);

}  // namespace rtnq
