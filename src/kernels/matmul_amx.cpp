// AMX tiles (Isa::kAmx): TDPBF16PS for bf16 activations (dense BF16 and RTN weights) and
// TDPBSUD / TDPBSSD for int8 activations (A8), on the panels the AVX-512 kernels already use. A
// register tile is up to 32 rows x 2 panels: C[i][v] = tmm(2i + v) (16 rows x 16 f32/int32
// each), A[i] = tmm(4 + i), B[v] = tmm(6 + v).
//   BF16 panels: 16 consecutive 64-byte chunks (k-pairs) are exactly a B tile; no unpacking.
//   RTN int8 A8 panels: 16 consecutive k-quad chunks are exactly a u8 B tile for TDPBSUD.
//   RTN int4 panels: a chunk (8 k) becomes two s8 B rows of levels (low / high nibbles = k
//     0,2,4,6 and 1,3,5,7, the order the A8 activations are permuted to; TDPBSSD), or, for bf16
//     activations, four bf16 B rows (VPMULTISHIFTQB picks each k-pair's nibbles, VPERMW maps them
//     to bf16 levels).
//   RTN int8 with bf16 activations: each k-quad chunk becomes two bf16 B rows via f32.
// Unpacked B tiles go to a per-thread scratch; when more m-tiles follow over the same weight
// block they reuse it (TileArgs::more_m_tiles) instead of unpacking again.
// Groups: the C tiles restart per RTN group; at the group's end the epilogue applies the scales
// (A8: exactly as the VNNI tile, so the results are bitwise equal to it and to the oracle).
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "base/aligned_buffer.h"
#include "kernels/avx512_inline.h"
#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

#if !defined(__clang__)
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

// Every function here, lambdas included, is compiled for AVX-512 (the ISA level below kAmx):
// only the registry decides at run time whether they may run.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,avx512bf16,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni,avx512bf16,avx2,fma,f16c")
#endif

namespace rtnq {
namespace {

constexpr int kMrMax = 32, kNvMax = 2;
constexpr int kBTileBytes = 1024;  // 16 rows x 64 bytes
constexpr int kGroupPrefetchBytes = 2048;

struct TileConfig {  // LDTILECFG's 64-byte operand
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// The GCC 12 tile intrinsics are macros that stringify the register number (no template
// parameters) and whose tileloadd / ldtilecfg asm does not tell the compiler what memory it reads,
// so stores to a scratch tile could be sunk past its load. These wrappers take the register as a
// template immediate and clobber memory.
template <int T>
inline void TileLoad(const void* base, int64_t stride) {
  asm volatile("tileloadd (%0,%1,1), %%tmm%c2" : : "r"(base), "r"(stride), "i"(T) : "memory");
}
template <int T>
inline void TileStore(void* base, int64_t stride) {
  asm volatile("tilestored %%tmm%c2, (%0,%1,1)" : : "r"(base), "r"(stride), "i"(T) : "memory");
}
template <int T>
inline void TileZero() {
  asm volatile("tilezero %%tmm%c0" : : "i"(T));
}
template <int D, int A, int B>
inline void TileDotBf16() {  // C[D] += A x B, bf16 pairs -> f32
  asm volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" : : "i"(D), "i"(A), "i"(B));
}
template <int D, int A, int B>
inline void TileDotS8U8() {  // C[D] += A (s8) x B (u8) -> int32, four products per lane
  asm volatile("tdpbsud %%tmm%c2, %%tmm%c1, %%tmm%c0" : : "i"(D), "i"(A), "i"(B));
}
template <int D, int A, int B>
inline void TileDotS8S8() {  // C[D] += A (s8) x B (s8) -> int32
  asm volatile("tdpbssd %%tmm%c2, %%tmm%c1, %%tmm%c0" : : "i"(D), "i"(A), "i"(B));
}

// Loads the tile shapes for a tile of rows0 + rows1 activation rows, A tiles of a_colsb bytes and
// B tiles of b_rows rows. The configuration is per thread; it is reloaded only when it changes.
thread_local int g_tile_config = -1;  // the key of this thread's loaded configuration; -1: none

void ConfigureTiles(int rows0, int rows1, int a_colsb, int b_rows) {
  const int key = rows0 | rows1 << 5 | a_colsb << 10 | b_rows << 17;
  if (key == g_tile_config) return;
  g_tile_config = key;
  alignas(64) TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  auto set = [&cfg](int t, int rows, int colsb) {
    cfg.rows[t] = static_cast<uint8_t>(rows);
    cfg.colsb[t] = static_cast<uint16_t>(rows > 0 ? colsb : 0);
  };
  set(0, rows0, 64);
  set(1, rows0, 64);
  set(2, rows1, 64);
  set(3, rows1, 64);
  set(4, rows0, a_colsb);
  set(5, rows1, a_colsb);
  set(6, b_rows, 64);
  set(7, b_rows, 64);
  asm volatile("ldtilecfg %0" : : "m"(cfg));
}

uint8_t* Scratch(size_t bytes) {
  thread_local AlignedBuffer buf;
  if (buf.size() < bytes) buf = AlignedBuffer(bytes);
  return reinterpret_cast<uint8_t*>(buf.data());
}

// C[i][v] += A[i] x B[v] for one (i, v) given as integral constants.
enum class Dot { kBf16, kS8U8, kS8S8 };
template <Dot kDot, typename I, typename V>
inline void TileDot(I, V) {
  constexpr int c = 2 * I::value + V::value, a = 4 + I::value, b = 6 + V::value;
  if constexpr (kDot == Dot::kS8U8) TileDotS8U8<c, a, b>();
  else if constexpr (kDot == Dot::kS8S8) TileDotS8S8<c, a, b>();
  else TileDotBf16<c, a, b>();
}

template <int MT, int NV, typename Fn>
inline void ForEachC(Fn&& fn) {
  fn(std::integral_constant<int, 0>{}, std::integral_constant<int, 0>{});
  if constexpr (NV == 2) fn(std::integral_constant<int, 0>{}, std::integral_constant<int, 1>{});
  if constexpr (MT == 2) {
    fn(std::integral_constant<int, 1>{}, std::integral_constant<int, 0>{});
    if constexpr (NV == 2) fn(std::integral_constant<int, 1>{}, std::integral_constant<int, 1>{});
  }
}

template <int MT>
inline void LoadA(const void* base, int64_t stride_bytes, int64_t second_tile_offset) {
  TileLoad<4>(base, stride_bytes);
  if constexpr (MT == 2) TileLoad<5>(static_cast<const uint8_t*>(base) + second_tile_offset, stride_bytes);
}

void ZeroAcc(const TileArgs& a) {
  for (int m = 0; m < a.mr; ++m)
    for (int v = 0; v < a.nv; ++v) _mm512_storeu_ps(a.acc + m * a.ldacc + v * 16, _mm512_setzero_ps());
}

// --- unpacking into B tiles ------------------------------------------------------------------

// `chunks` int4 chunks (8 k each) -> 2 * chunks s8 rows of levels (code - 8): low nibbles (k
// 0,2,4,6), then high (1,3,5,7). Signed levels make TDPBSSD's sums the exact dot directly, so
// the per-row epilogue needs no "- bias * sum(q)" (the same integer as the VNNI tile's).
inline void UnpackInt4S8(const uint8_t* codes, int chunks, uint8_t* out) {
  const __m512i nibble = _mm512_set1_epi8(0x0f), eight = _mm512_set1_epi8(8);
  for (int c = 0; c < chunks; ++c) {
    const __m512i dw = _mm512_load_si512(codes + c * 64);
    const __m512i lo = _mm512_and_si512(dw, nibble), hi = _mm512_and_si512(_mm512_srli_epi32(dw, 4), nibble);
    _mm512_store_si512(out + (2 * c) * 64, _mm512_sub_epi8(lo, eight));
    _mm512_store_si512(out + (2 * c + 1) * 64, _mm512_sub_epi8(hi, eight));
  }
}

// bf16 of level (i & 15) - 8 for i = 0..31: VPERMW reads index bits 0..4 only.
constexpr uint16_t Bf16OfInt(int v) {
  return static_cast<uint16_t>(std::bit_cast<uint32_t>(static_cast<float>(v)) >> 16);
}
alignas(64) constexpr uint16_t kInt4LevelBf16[32] = {
    Bf16OfInt(-8), Bf16OfInt(-7), Bf16OfInt(-6), Bf16OfInt(-5), Bf16OfInt(-4), Bf16OfInt(-3),
    Bf16OfInt(-2), Bf16OfInt(-1), Bf16OfInt(0),  Bf16OfInt(1),  Bf16OfInt(2),  Bf16OfInt(3),
    Bf16OfInt(4),  Bf16OfInt(5),  Bf16OfInt(6),  Bf16OfInt(7),  Bf16OfInt(-8), Bf16OfInt(-7),
    Bf16OfInt(-6), Bf16OfInt(-5), Bf16OfInt(-4), Bf16OfInt(-3), Bf16OfInt(-2), Bf16OfInt(-1),
    Bf16OfInt(0),  Bf16OfInt(1),  Bf16OfInt(2),  Bf16OfInt(3),  Bf16OfInt(4),  Bf16OfInt(5),
    Bf16OfInt(6),  Bf16OfInt(7)};

// 4 int4 chunks (32 k) -> one bf16 B tile: row 4c + p, dword lane n = (level k=8c+2p,
// level k=8c+2p+1) of panel row n. VPMULTISHIFTQB moves nibble 2p of each dword to the low byte
// of its low word and nibble 2p+1 to the low byte of its high word; VPERMW then looks up bf16.
inline void UnpackInt4Bf16(const uint8_t* codes, uint8_t* out) {
  const __m512i table = _mm512_load_si512(kInt4LevelBf16);
  __m512i ctrl[4];
  for (int p = 0; p < 4; ++p) {
    const uint64_t b = 8 * p;
    ctrl[p] = _mm512_set1_epi64(static_cast<long long>(b | (b + 4) << 16 | (b + 32) << 32 | (b + 36) << 48));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i dw = _mm512_load_si512(codes + c * 64);
    for (int p = 0; p < 4; ++p) {
      const __m512i idx = _mm512_multishift_epi64_epi8(ctrl[p], dw);
      _mm512_store_si512(out + (4 * c + p) * 64, _mm512_permutexvar_epi16(idx, table));
    }
  }
}

// 8 int8 k-quad chunks (32 k, unsigned codes) -> one bf16 B tile: rows 2c, 2c+1 = pairs
// (4c, 4c+1), (4c+2, 4c+3). Levels go through f32 (exact), whose top 16 bits are the bf16.
inline __m512i F32Bits(__m512i levels) { return _mm512_castps_si512(_mm512_cvtepi32_ps(levels)); }
// bf16 pair (low word: lo's top 16 bits, high word: hi's): A | (B & C) is ternlog 0xF8.
inline __m512i Bf16Pair(__m512i lo_f32, __m512i hi_f32) {
  return _mm512_ternarylogic_epi32(_mm512_srli_epi32(lo_f32, 16), hi_f32,
                                   _mm512_set1_epi32(static_cast<int>(0xffff0000u)), 0xF8);
}

inline void UnpackInt8Bf16(const uint8_t* codes, uint8_t* out) {
  const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
  for (int c = 0; c < 8; ++c) {
    const __m512i x = _mm512_xor_si512(_mm512_load_si512(codes + c * 64), flip);  // signed levels
    const __m512i l0 = _mm512_srai_epi32(_mm512_slli_epi32(x, 24), 24);
    const __m512i l1 = _mm512_srai_epi32(_mm512_slli_epi32(x, 16), 24);
    const __m512i l2 = _mm512_srai_epi32(_mm512_slli_epi32(x, 8), 24);
    const __m512i l3 = _mm512_srai_epi32(x, 24);
    _mm512_store_si512(out + (2 * c) * 64, Bf16Pair(F32Bits(l0), F32Bits(l1)));
    _mm512_store_si512(out + (2 * c + 1) * 64, Bf16Pair(F32Bits(l2), F32Bits(l3)));
  }
}

// --- dense BF16 x bf16 activations ------------------------------------------------------------

template <int MT, int NV>
void TileBf16Amx(const TileArgs& a) {
  const int rows0 = std::min(a.mr, 16), rows1 = a.mr - rows0;
  ConfigureTiles(rows0, rows1, 64, 16);
  const int64_t ldacc_bytes = a.ldacc * 4, ldx_bytes = a.ldxbf * 2;
  ForEachC<MT, NV>([&](auto i, auto v) {
    constexpr int c = 2 * decltype(i)::value + decltype(v)::value;
    if (a.load_acc) {
      TileLoad<c>(a.acc + i * 16 * a.ldacc + v * 16, ldacc_bytes);
    } else {
      TileZero<c>();
    }
  });
  for (int64_t kk = a.k0; kk < a.k1; kk += 32) {
    LoadA<MT>(a.xbf + kk, ldx_bytes, 16 * ldx_bytes);
    TileLoad<6>(a.w + (kk / 2) * 64, 64);
    if constexpr (NV == 2) TileLoad<7>(a.w + a.panel_bytes + (kk / 2) * 64, 64);
    ForEachC<MT, NV>([](auto i, auto v) { TileDot<Dot::kBf16>(i, v); });
  }
  ForEachC<MT, NV>([&](auto i, auto v) {
    TileStore<2 * decltype(i)::value + decltype(v)::value>(a.acc + i * 16 * a.ldacc + v * 16, ldacc_bytes);
  });
}

// --- RTN weights: shared group loop ---------------------------------------------------------

// Per group: restart the C tiles, run `steps` k-steps (A from `load_a(g, s)`, B tile v from
// `b_tile(v, g, s)`, which unpacks into `slot` when asked to), then `epilogue(i, v, g)`.
template <int MT, int NV, Dot kDot, typename LoadAFn, typename UnpackFn, typename EpilogueFn>
void GroupLoop(const TileArgs& a, int64_t steps, bool direct_b, LoadAFn&& load_a, UnpackFn&& unpack,
               EpilogueFn&& epilogue) {
  const int64_t G = a.group, g0 = a.k0 / G, g1 = a.k1 / G;
  const bool reuse = a.more_m_tiles;
  uint8_t* scratch = direct_b ? nullptr
                              : Scratch(static_cast<size_t>((reuse ? (g1 - g0) * steps : 1) * NV * kBTileBytes));
  const bool fill = !reuse || a.first_m_tile;
  // Each panel is one weight stream; prefetching a few KiB ahead keeps more DRAM misses in flight
  // than the tile loads alone (only the tile that brings the block in from memory prefetches).
  const int pf = a.first_m_tile ? OverrideOr(g_matmul_overrides.prefetch_bytes, kGroupPrefetchBytes) : 0;
  const int64_t group_span = a.group_code_bytes + (64 >> a.group_shift);
  for (int64_t g = g0; g < g1; ++g) {
    if (pf > 0) {
      for (int v = 0; v < NV; ++v) {
        const char* next = reinterpret_cast<const char*>(TileGroupCodes(a, a.w + v * a.panel_bytes, g)) + pf;
        for (int64_t b = 0; b < group_span; b += 64) _mm_prefetch(next + b, _MM_HINT_T0);
      }
    }
    ForEachC<MT, NV>([](auto i, auto v) { TileZero<2 * decltype(i)::value + decltype(v)::value>(); });
    const uint8_t* codes[NV];
    for (int v = 0; v < NV; ++v) codes[v] = TileGroupCodes(a, a.w + v * a.panel_bytes, g);
    for (int64_t s = 0; s < steps; ++s) {
      load_a(g, s);
      for (int v = 0; v < NV; ++v) {
        const uint8_t* b;
        if (direct_b) {
          b = unpack(codes[v], s, nullptr);
        } else {
          uint8_t* slot = scratch + ((reuse ? (g - g0) * steps + s : 0) * NV + v) * kBTileBytes;
          if (fill) unpack(codes[v], s, slot);
          b = slot;
        }
        if (v == 0) TileLoad<6>(b, 64);
        else TileLoad<7>(b, 64);
      }
      ForEachC<MT, NV>([](auto i, auto v) { TileDot<kDot>(i, v); });
    }
    const uint8_t* scales[NV];
    for (int v = 0; v < NV; ++v) scales[v] = TileGroupScales(a, a.w + v * a.panel_bytes, g);
    ForEachC<MT, NV>([&](auto i, auto v) { epilogue(i, v, g, scales[v]); });
  }
}

// --- RTN x bf16 activations -------------------------------------------------------------------

template <int MT, int NV, bool kInt4>
void TileRtnBf16Amx(const TileArgs& a) {
  const int rows0 = std::min(a.mr, 16), rows1 = a.mr - rows0;
  ConfigureTiles(rows0, rows1, 64, 16);
  if (!a.load_acc) ZeroAcc(a);
  const int64_t ldx_bytes = a.ldxbf * 2;
  const int64_t G = a.group;
  auto load_a = [&](int64_t g, int64_t s) { LoadA<MT>(a.xbf + g * G + s * 32, ldx_bytes, 16 * ldx_bytes); };
  auto unpack = [](const uint8_t* codes, int64_t s, uint8_t* slot) -> const uint8_t* {
    if constexpr (kInt4) UnpackInt4Bf16(codes + s * 4 * 64, slot);
    else UnpackInt8Bf16(codes + s * 8 * 64, slot);
    return slot;
  };
  auto epilogue = [&](auto i, auto v, int64_t /*g*/, const uint8_t* hdr) {
    alignas(64) float c[16 * 16];
    TileStore<2 * decltype(i)::value + decltype(v)::value>(c, 64);
    const __m512 sw = LoadScales16(a.scale_dtype, hdr);
    const int rows = i == 0 ? rows0 : rows1;
    for (int r = 0; r < rows; ++r) {
      float* acc = a.acc + (i * 16 + r) * a.ldacc + v * 16;
      _mm512_storeu_ps(acc, _mm512_fmadd_ps(_mm512_load_ps(c + r * 16), sw, _mm512_loadu_ps(acc)));
    }
  };
  GroupLoop<MT, NV, Dot::kBf16>(a, G / 32, false, load_a, unpack, epilogue);
}

// --- RTN x int8 activations (A8) ----------------------------------------------------------------

template <int MT, int NV, bool kInt4>
void TileA8Amx(const TileArgs& a) {
  const int rows0 = std::min(a.mr, 16), rows1 = a.mr - rows0;
  const int64_t G = a.group;
  const int kt = G % 64 == 0 ? 64 : 32;  // k per TDPBSUD step
  ConfigureTiles(rows0, rows1, kt, kt / 4);
  if (!a.load_acc) ZeroAcc(a);
  auto load_a = [&](int64_t g, int64_t s) {
    LoadA<MT>(a.xq + g * a.xq_group + s * kt, a.ldxq, 16 * a.ldxq);
  };
  auto unpack = [kt](const uint8_t* codes, int64_t s, uint8_t* slot) -> const uint8_t* {
    if constexpr (kInt4) {
      UnpackInt4S8(codes + s * (kt / 8) * 64, kt / 8, slot);
      return slot;
    } else {
      return codes + s * (kt / 4) * 64;  // k-quad chunks are the B rows as stored
    }
  };
  // As the VNNI tile: float(sum of level * q), s_w * s_x, one FMA: the same bits. (int8: the
  // sum is sum(code * q) - bias * sum(q).)
  auto epilogue = [&](auto i, auto v, int64_t g, const uint8_t* hdr) {
    alignas(64) int32_t c[16 * 16];
    TileStore<2 * decltype(i)::value + decltype(v)::value>(c, 64);
    const __m512 sw = LoadScales16(a.scale_dtype, hdr);
    const int rows = i == 0 ? rows0 : rows1;
    for (int r = 0; r < rows; ++r) {
      const int m = i * 16 + r;
      const __m512 prod = _mm512_mul_ps(sw, _mm512_set1_ps(a.xs[m * a.ldxs + g]));
      __m512i dot = _mm512_load_si512(c + r * 16);
      if constexpr (!kInt4) dot = _mm512_sub_epi32(dot, _mm512_set1_epi32(a.xbsum[m * a.ldxs + g]));
      const __m512 d = _mm512_cvtepi32_ps(dot);
      float* acc = a.acc + m * a.ldacc + v * 16;
      _mm512_storeu_ps(acc, _mm512_fmadd_ps(d, prod, _mm512_loadu_ps(acc)));
    }
  };
  GroupLoop<MT, NV, kInt4 ? Dot::kS8S8 : Dot::kS8U8>(a, G / kt, !kInt4, load_a, unpack, epilogue);
}

// mr 1..32, nv 1..2.
template <template <int, int> class T>
void Dispatch(const TileArgs& a) {
  if (a.mr > 16) {
    if (a.nv == 2) T<2, 2>::Run(a);
    else T<2, 1>::Run(a);
  } else {
    if (a.nv == 2) T<1, 2>::Run(a);
    else T<1, 1>::Run(a);
  }
}
template <int MT, int NV> struct Bf16Tile { static void Run(const TileArgs& a) { TileBf16Amx<MT, NV>(a); } };
template <int MT, int NV> struct Rtn8Bf16Tile { static void Run(const TileArgs& a) { TileRtnBf16Amx<MT, NV, false>(a); } };
template <int MT, int NV> struct Rtn4Bf16Tile { static void Run(const TileArgs& a) { TileRtnBf16Amx<MT, NV, true>(a); } };
template <int MT, int NV> struct Rtn8A8Tile { static void Run(const TileArgs& a) { TileA8Amx<MT, NV, false>(a); } };
template <int MT, int NV> struct Rtn4A8Tile { static void Run(const TileArgs& a) { TileA8Amx<MT, NV, true>(a); } };

// Below this many rows the VNNI A8 tile is faster (bitwise the same results).
constexpr int kA8MinM = 8;

}  // namespace

void ReleaseAmxTiles() {
  if (g_tile_config < 0) return;
  asm volatile("tilerelease" ::: "memory");
  g_tile_config = -1;
}

const MatmulKernel kAmxKernels[5] = {
    {"bf16_bf16act_amx", WeightType::kBF16, ActType::kBF16, Isa::kAmx, true, true, kMrMax, kNvMax,
     kNvMax, Dispatch<Bf16Tile>, 0, 32},
    {"rtn8_bf16act_amx", WeightType::kRtnInt8, ActType::kBF16, Isa::kAmx, true, true, kMrMax,
     kNvMax, kNvMax, Dispatch<Rtn8Bf16Tile>, 0, 32},
    {"rtn4_bf16act_amx", WeightType::kRtnInt4, ActType::kBF16, Isa::kAmx, true, true, kMrMax,
     kNvMax, kNvMax, Dispatch<Rtn4Bf16Tile>, 0, 32},
    {"rtn8_a8_amx", WeightType::kRtnInt8, ActType::kInt8, Isa::kAmx, true, true, kMrMax, kNvMax,
     kNvMax, Dispatch<Rtn8A8Tile>, kA8MinM, 32},
    {"rtn4_a8_amx", WeightType::kRtnInt4, ActType::kInt8, Isa::kAmx, true, true, kMrMax, kNvMax,
     kNvMax, Dispatch<Rtn4A8Tile>, kA8MinM, 32},
};

}  // namespace rtnq

#if defined(__clang__)
#pragma clang attribute pop
#endif
