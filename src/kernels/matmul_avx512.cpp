// AVX-512 register tiles: 16 output rows of a panel per zmm, activations broadcast, one FMA chain
// per output lane over ascending k. Compiled with per-function target attributes so the binary
// still runs on any x86-64; the registry only selects these when CPUID reports the features.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

// GCC 12 warns about _mm512_undefined_epi32() inside its own shift intrinsics (a false positive).
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"

#define RTNQ_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define RTNQ_TARGET_AVX512BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma,f16c")))

namespace rtnq {
namespace {

constexpr int kMrMax = 8, kNvMax = 2, kNvDecode = 8, kNvDecodeRtn = 4;

// Software prefetch distance per weight stream at M = 1 and in the expansion pass.
constexpr int kPrefetchBytes = 512;
inline int PrefetchBytes() { return OverrideOr(g_matmul_overrides.prefetch_bytes, kPrefetchBytes); }
// A second, farther prefetch into L2 (PREFETCHT1) where the first one (into L1) is issued: L2
// tracks more outstanding misses than L1's fill buffers. 4096x14336 at M=1, 1 thread: W8A16
// 3.21 -> 3.00 ms at 2048 bytes; BF16 6.34 ms without, 6.37 at 1024, 6.65 at 2048 (so: none).
constexpr int kPrefetchL2BytesDense = 0, kPrefetchL2BytesRtn = 2048;
inline int PrefetchL2Bytes(int kernel_default) {
  return OverrideOr(g_matmul_overrides.prefetch_l2_bytes, kernel_default);
}
// Prefetches p + pf into L1 and p + pf2 into L2 (pf == 0: neither).
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline void PrefetchStream(const void* p, int pf,
                                                                            int pf2) {
  if (pf == 0) return;
  _mm_prefetch(static_cast<const char*>(p) + pf, _MM_HINT_T0);
  if (pf2) _mm_prefetch(static_cast<const char*>(p) + pf2, _MM_HINT_T1);
}

template <int MR, int NV>
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline void LoadAcc(const TileArgs& a,
                                                                      __m512 (&acc)[MR][NV]) {
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      acc[m][v] = a.load_acc ? _mm512_loadu_ps(a.acc + m * a.ldacc + v * 16) : _mm512_setzero_ps();
}

template <int MR, int NV>
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline void StoreAcc(const TileArgs& a,
                                                                       const __m512 (&acc)[MR][NV]) {
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, acc[m][v]);
}

// The f32 chain over kn k of NV f32 panels (wp[v]: 16 floats per k) with activations x (row
// stride ldx), both at the block's first k; each stream prefetched pf_floats ahead (0: not).
template <int MR, int NV>
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline void F32Block(
    const float* const (&wp)[NV], int64_t kn, const float* x, int64_t ldx, __m512 (&acc)[MR][NV],
    int pf_bytes, int pf2_bytes) {
  for (int64_t k = 0; k < kn; ++k) {
    __m512 w[NV];
    for (int v = 0; v < NV; ++v) {
      PrefetchStream(wp[v] + k * 16, pf_bytes, pf2_bytes);
      w[v] = _mm512_load_ps(wp[v] + k * 16);
    }
    for (int m = 0; m < MR; ++m) {
      const __m512 xb = _mm512_set1_ps(x[m * ldx + k]);
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(w[v], xb, acc[m][v]);
    }
  }
}

template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileF32(const TileArgs& a) {
  __m512 acc[MR][NV];
  LoadAcc(a, acc);
  const float* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const float*>(a.w + v * a.panel_bytes) + a.k0 * 16;
  F32Block<MR, NV>(wp, a.k1 - a.k0, a.x + a.k0, a.ldx, acc, a.first_m_tile ? PrefetchBytes() : 0,
                   PrefetchL2Bytes(kPrefetchL2BytesDense));
  StoreAcc(a, acc);
}

// An m-tile on the f32 block that the first m-tile dequantized into a.wexp (from L1/L2).
template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileExpanded(const TileArgs& a) {
  __m512 acc[MR][NV];
  LoadAcc(a, acc);
  const int64_t kn = a.k1 - a.k0;
  const float* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = a.wexp + v * kn * 16;
  F32Block<MR, NV>(wp, kn, a.x + a.k0, a.ldx, acc, 0, 0);
  StoreAcc(a, acc);
}

// bf16 panel: dword lane r of k-pair j holds (w[r][2j] low, w[r][2j+1] high). Shifting left by
// 16 gives w[r][2j] as f32 exactly; masking the low half gives w[r][2j+1].
template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileBf16(const TileArgs& a) {
  __m512 acc[MR][NV];
  LoadAcc(a, acc);
  const __m512i* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const __m512i*>(a.w + v * a.panel_bytes);
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  const int pf = a.first_m_tile ? PrefetchBytes() : 0, pf2 = PrefetchL2Bytes(kPrefetchL2BytesDense);
  const int64_t j_end = a.k1 / 2;
  for (int64_t j = a.k0 / 2; j < j_end; ++j) {
    __m512 lo[NV], hi[NV];
    for (int v = 0; v < NV; ++v) {
      PrefetchStream(wp[v] + j, pf, pf2);
      const __m512i wv = _mm512_load_si512(wp[v] + j);
      lo[v] = _mm512_castsi512_ps(_mm512_slli_epi32(wv, 16));
      hi[v] = _mm512_castsi512_ps(_mm512_and_si512(wv, hi_mask));
    }
    for (int m = 0; m < MR; ++m) {
      const float* x = a.x + m * a.ldx + 2 * j;
      const __m512 x0 = _mm512_set1_ps(x[0]);
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(lo[v], x0, acc[m][v]);
      const __m512 x1 = _mm512_set1_ps(x[1]);
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(hi[v], x1, acc[m][v]);
    }
  }
  if (a.k1 & 1) {  // odd K: the last pair holds one real weight
    for (int v = 0; v < NV; ++v) {
      const __m512 lo = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_load_si512(wp[v] + j_end), 16));
      for (int m = 0; m < MR; ++m)
        acc[m][v] = _mm512_fmadd_ps(lo, _mm512_set1_ps(a.x[m * a.ldx + a.k1 - 1]), acc[m][v]);
    }
  }
  StoreAcc(a, acc);
}

// VDPBF16PS on bf16-rounded activations (padded to an even K with a zero).
template <int MR, int NV>
RTNQ_TARGET_AVX512BF16 void TileBf16Dot(const TileArgs& a) {
  __m512 acc[MR][NV];
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v)
      acc[m][v] = a.load_acc ? _mm512_loadu_ps(a.acc + m * a.ldacc + v * 16) : _mm512_setzero_ps();
  const __m512i* wp[NV];
  for (int v = 0; v < NV; ++v) wp[v] = reinterpret_cast<const __m512i*>(a.w + v * a.panel_bytes);
  const int64_t j_end = (a.k1 + 1) / 2;
  for (int64_t j = a.k0 / 2; j < j_end; ++j) {
    __m512i w[NV];
    for (int v = 0; v < NV; ++v) w[v] = _mm512_load_si512(wp[v] + j);
    for (int m = 0; m < MR; ++m) {
      int32_t pair;
      __builtin_memcpy(&pair, a.xbf + m * a.ldxbf + 2 * j, 4);
      const __m512i xb = _mm512_set1_epi32(pair);
      for (int v = 0; v < NV; ++v)
        acc[m][v] = _mm512_dpbf16_ps(acc[m][v], (__m512bh)w[v], (__m512bh)xb);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int v = 0; v < NV; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, acc[m][v]);
}

// RTN int4 (matmul_rtn.cpp layout): dword lane r of a 64-byte chunk holds row r's codes for 8
// consecutive k, k = 8c + j at bits 4j. Code j becomes f32 with no shift or convert: OR-ing it
// into the mantissa of 2^e (e = 23 - 4 * bit position / 4) gives exactly 2^e + code, and
// subtracting 2^e leaves the code. Then fma(code, s, -8 s) = round((code - 8) * s), which is
// float(level) * s exactly as RtnDequantizeRow computes it (-8 s is exact: a power-of-two scaling).
// Codes 5..7 sit above the mantissa; they are read from the chunk shifted right by 16.
template <int J>
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline __m512 Int4Weight(__m512i dw, __m512i hi,
                                                                          __m512 s, __m512 neg8s) {
  constexpr int kPos = J < 5 ? J : J - 4;
  constexpr int kExp = 23 - 4 * kPos;
  const __m512i mask = _mm512_set1_epi32(0xf << (4 * kPos));
  const __m512i magic = _mm512_set1_epi32((127 + kExp) << 23);
  const __m512i bits = _mm512_ternarylogic_epi32(J < 5 ? dw : hi, mask, magic, 0xEA);
  const __m512 code = _mm512_sub_ps(_mm512_castsi512_ps(bits), _mm512_castsi512_ps(magic));
  return _mm512_fmadd_ps(code, s, neg8s);
}

template <int MR, int NV, int J>
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline void Int4Step(
    const __m512i (&dw)[NV], const __m512i (&hi)[NV], const __m512 (&s)[NV],
    const __m512 (&neg8s)[NV], const float* x, int64_t ldx, __m512 (&acc)[MR][NV]) {
  __m512 w[NV];
  for (int v = 0; v < NV; ++v) w[v] = Int4Weight<J>(dw[v], hi[v], s[v], neg8s[v]);
  for (int m = 0; m < MR; ++m) {
    const __m512 xb = _mm512_set1_ps(x[m * ldx + J]);
    for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(w[v], xb, acc[m][v]);
  }
}

template <int J>
RTNQ_TARGET_AVX512 __attribute__((always_inline)) inline void Int4Store(__m512i dw, __m512i hi,
                                                                       __m512 s, __m512 neg8s,
                                                                       int64_t n, float* d) {
  if (J < n) _mm512_store_ps(d + J * 16, Int4Weight<J>(dw, hi, s, neg8s));
}

// Dequantizes [k0, k1) of NV RTN panels into a.wexp: the same values the in-register tiles use.
template <int NV, bool kInt4>
RTNQ_TARGET_AVX512 void ExpandRtn(const TileArgs& a) {
  const int64_t G = a.group, kn = a.k1 - a.k0;
  const int pf = PrefetchBytes(), pf2 = PrefetchL2Bytes(kPrefetchL2BytesRtn);
  for (int v = 0; v < NV; ++v) {
    float* dst = a.wexp + v * kn * 16 - a.k0 * 16;  // indexed by absolute k below
    for (int64_t g = a.k0 / G; g * G < a.k1; ++g) {
      const int64_t kb = std::max(a.k0, g * G), ke = std::min(a.k1, (g + 1) * G);
      const uint8_t* grp = a.w + v * a.panel_bytes + g * a.group_bytes;
      const __m512 s = _mm512_load_ps(reinterpret_cast<const float*>(grp));
      const uint8_t* codes = grp + 64;
      if constexpr (kInt4) {
        const __m512 neg8s = _mm512_mul_ps(s, _mm512_set1_ps(-8.0f));
        for (int64_t k = kb; k < ke; k += 8) {
          const uint8_t* chunk = codes + (k - g * G) / 8 * 64;
          PrefetchStream(chunk, pf, pf2);
          const __m512i dw = _mm512_load_si512(chunk);
          const __m512i hi = _mm512_srli_epi32(dw, 16);
          const int64_t n = ke - k;
          float* d = dst + k * 16;
          Int4Store<0>(dw, hi, s, neg8s, n, d);
          Int4Store<1>(dw, hi, s, neg8s, n, d);
          Int4Store<2>(dw, hi, s, neg8s, n, d);
          Int4Store<3>(dw, hi, s, neg8s, n, d);
          Int4Store<4>(dw, hi, s, neg8s, n, d);
          Int4Store<5>(dw, hi, s, neg8s, n, d);
          Int4Store<6>(dw, hi, s, neg8s, n, d);
          Int4Store<7>(dw, hi, s, neg8s, n, d);
        }
      } else {
        for (int64_t k = kb; k < ke; ++k) {
          const uint8_t* b = codes + (k - g * G) * 16;
          if ((k & 3) == 0) PrefetchStream(b, pf, pf2);
          const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
          _mm512_store_ps(dst + k * 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)), s));
        }
      }
    }
  }
}

template <int MR, int NV, bool kInt4>
RTNQ_TARGET_AVX512 void TileRtn(const TileArgs& a) {
  if (a.wexp != nullptr) {
    if (a.first_m_tile) ExpandRtn<NV, kInt4>(a);
    TileExpanded<MR, NV>(a);
    return;
  }
  __m512 acc[MR][NV];
  LoadAcc(a, acc);
  const int64_t G = a.group;
  const int pf = a.first_m_tile ? PrefetchBytes() : 0, pf2 = PrefetchL2Bytes(kPrefetchL2BytesRtn);
  for (int64_t g = a.k0 / G; g * G < a.k1; ++g) {
    const int64_t kb = std::max(a.k0, g * G), ke = std::min(a.k1, (g + 1) * G);
    const uint8_t* codes[NV];
    __m512 s[NV], neg8s[NV];
    for (int v = 0; v < NV; ++v) {
      const uint8_t* grp = a.w + v * a.panel_bytes + g * a.group_bytes;
      s[v] = _mm512_load_ps(reinterpret_cast<const float*>(grp));
      neg8s[v] = _mm512_mul_ps(s[v], _mm512_set1_ps(-8.0f));
      codes[v] = grp + 64;
    }
    if constexpr (kInt4) {
      for (int64_t k = kb; k < ke; k += 8) {
        const int64_t chunk = (k - g * G) / 8;
        __m512i dw[NV], hi[NV];
        for (int v = 0; v < NV; ++v) {
          PrefetchStream(codes[v] + chunk * 64, pf, pf2);
          dw[v] = _mm512_load_si512(codes[v] + chunk * 64);
          hi[v] = _mm512_srli_epi32(dw[v], 16);
        }
        const float* x = a.x + k;
        const int64_t n = ke - k;
        Int4Step<MR, NV, 0>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 1) Int4Step<MR, NV, 1>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 2) Int4Step<MR, NV, 2>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 3) Int4Step<MR, NV, 3>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 4) Int4Step<MR, NV, 4>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 5) Int4Step<MR, NV, 5>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 6) Int4Step<MR, NV, 6>(dw, hi, s, neg8s, x, a.ldx, acc);
        if (n > 7) Int4Step<MR, NV, 7>(dw, hi, s, neg8s, x, a.ldx, acc);
      }
    } else {
      // int8: 16 signed levels per k; float(level) * s is the dequantized weight, rounded once.
      for (int64_t k = kb; k < ke; ++k) {
        const int64_t kk = k - g * G;
        __m512 w[NV];
        for (int v = 0; v < NV; ++v) {
          if ((kk & 3) == 0) PrefetchStream(codes[v] + kk * 16, pf, pf2);
          const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes[v] + kk * 16));
          w[v] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), s[v]);
        }
        for (int m = 0; m < MR; ++m) {
          const __m512 xb = _mm512_set1_ps(a.x[m * a.ldx + k]);
          for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(w[v], xb, acc[m][v]);
        }
      }
    }
  }
  StoreAcc(a, acc);
}

template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileRtn8(const TileArgs& a) { TileRtn<MR, NV, false>(a); }
template <int MR, int NV>
RTNQ_TARGET_AVX512 void TileRtn4(const TileArgs& a) { TileRtn<MR, NV, true>(a); }

// Dispatch on (mr, nv): M > 1 tiles up to kMrMax x kNvMax, decode (mr = 1) up to NVD panels.
#define RTNQ_TILE_TABLE(NAME, FN, NVD)                                                       \
  template <int MR, int NV>                                                                  \
  constexpr TileFn NAME##Pick() {                                                            \
    if constexpr (NV <= (MR == 1 ? NVD : kNvMax)) return &FN<MR, NV>;                        \
    else return nullptr;                                                                     \
  }                                                                                          \
  template <int MR, int... NV>                                                               \
  constexpr std::array<TileFn, kNvDecode + 1> NAME##Row(std::integer_sequence<int, NV...>) { \
    return {nullptr, NAME##Pick<MR, NV + 1>()...};                                           \
  }                                                                                          \
  template <int... MR>                                                                       \
  constexpr std::array<std::array<TileFn, kNvDecode + 1>, kMrMax + 1> NAME##Tab(             \
      std::integer_sequence<int, MR...>) {                                                   \
    return {{{}, NAME##Row<MR + 1>(std::make_integer_sequence<int, kNvDecode>())...}};       \
  }                                                                                          \
  constexpr auto NAME##Table = NAME##Tab(std::make_integer_sequence<int, kMrMax>());         \
  void NAME(const TileArgs& a) { NAME##Table[a.mr][a.nv](a); }

RTNQ_TILE_TABLE(DispatchF32, TileF32, kNvDecode)
RTNQ_TILE_TABLE(DispatchBf16, TileBf16, kNvDecode)
RTNQ_TILE_TABLE(DispatchBf16Dot, TileBf16Dot, kNvDecode)
RTNQ_TILE_TABLE(DispatchRtn8, TileRtn8, kNvDecodeRtn)
RTNQ_TILE_TABLE(DispatchRtn4, TileRtn4, kNvDecodeRtn)

}  // namespace

const MatmulKernel kAvx512Kernels[5] = {
    {"f32_avx512", WeightType::kF32, ActType::kF32, Isa::kAvx512, false, false, kMrMax, kNvMax, kNvDecode,
     DispatchF32},
    {"bf16_avx512", WeightType::kBF16, ActType::kF32, Isa::kAvx512, false, false, kMrMax, kNvMax, kNvDecode,
     DispatchBf16},
    {"bf16_bf16act_avx512bf16", WeightType::kBF16, ActType::kBF16, Isa::kAvx512, true, false, kMrMax,
     kNvMax, kNvDecode, DispatchBf16Dot},
    {"rtn8_avx512", WeightType::kRtnInt8, ActType::kF32, Isa::kAvx512, false, false, kMrMax, kNvMax,
     kNvDecodeRtn, DispatchRtn8},
    {"rtn4_avx512", WeightType::kRtnInt4, ActType::kF32, Isa::kAvx512, false, false, kMrMax, kNvMax,
     kNvDecodeRtn, DispatchRtn4},
};

}  // namespace rtnq
