#include "kernels/vec_ops.h"

#include <immintrin.h>

#include <cmath>

#include "kernels/avx512_inline.h"

#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace rtnq {
namespace {

void SiluMulScalar(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = (gate[i] / (1.0f + std::exp(-gate[i]))) * up[i];
}

// gate / (1 + exp(-gate)) from e = exp(-|gate|) <= 1, which cannot overflow: gate / (1 + e)
// for gate >= 0, gate * e / (1 + e) below.
__attribute__((target("avx512f,avx512vl,fma"))) void SiluMulAvx512(const float* gate, const float* up, float* out,
                                                                   int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = TailMask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 e = ExpNonPositive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(g)));
    const __mmask16 negative = _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 silu = _mm512_div_ps(_mm512_mask_mul_ps(g, negative, g, e), _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(mask, up + i)));
  }
}

const VecOps kScalar{SiluMulScalar, Isa::kScalar};
const VecOps kAvx2{SiluMulScalar, Isa::kAvx2};
const VecOps kAvx512{SiluMulAvx512, Isa::kAvx512};

}  // namespace

const VecOps& GetVecOps(Isa isa) {
  const Isa best = HostCpu().BestIsa();
  if (static_cast<int>(isa) > static_cast<int>(best)) isa = best;
  switch (isa) {
    case Isa::kAmx:
    case Isa::kAvx512: return kAvx512;
    case Isa::kAvx2: return kAvx2;
    case Isa::kScalar: break;
  }
  return kScalar;
}

}  // namespace rtnq
