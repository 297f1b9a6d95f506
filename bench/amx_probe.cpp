// AMX-BF16 probe: how fast could the 16-bit baseline run prefill-sized matmuls (M >= 16) with
// this CPU's AMX tiles instead of AVX-512 FMAs? Not a kernel of the registry (yet): a single-
// thread tile loop straight on the BF16 panels, which already are AMX's B layout (a 64-byte
// chunk = 16 output rows x one k-pair, so 16 chunks = one 16x32 bf16 B tile, stride 64 bytes).
// Activations are rounded to bf16 (A tiles); C tiles accumulate in f32. Prints, per M, the AMX
// time next to the AVX-512 BF16 kernel (f32 activations) on the same rotated weight copies, and
// the AMX result's largest error against that kernel run on the bf16-rounded activations.
//   bench_amx_probe [--shapes K,N,...] [--m 16,32,...] [--reps R] [--rotate-mib MIB]
// Linux grants AMX state per process on request (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA);
// without AMX or that permission the probe says so and exits 0.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cpuid.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "base/timer.h"
#include "bench_common.h"
#include "kernels/matmul.h"

using namespace rtnq;

namespace {

bool EnableAmx() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool tile = (d >> 24) & 1, bf16 = (d >> 22) & 1;
  if (!tile || !bf16) return false;
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
}

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles: C = tmm0..3 (MT m-tiles x NP panels, MT * NP = 4), A = tmm4..(4 + MT - 1),
// B = the next NP registers (MT = 1: 1 A + 3 B, reused round robin; MT = 2: 2 A + 2 B).
__attribute__((target("amx-tile"))) void Configure() {
  // Static: GCC 12 does not see LDTILECFG read the struct and drops the stores to a local one.
  alignas(64) static TileConfig cfg;
  for (int t = 0; t < 8; ++t) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
}

// y[m][n] for m in [0, M) (a multiple of 16) and every 16-row panel of w; xb: bf16 [M][K].
template <int MT>
__attribute__((target("amx-tile,amx-bf16"))) void AmxMatmul(const PackedWeight& w, const uint16_t* xb,
                                                           int64_t m_rows, float* y) {
  constexpr int NP = 4 / MT;
  const int64_t K = w.k_padded(), N = w.n(), kblocks = K / 32;
  const int64_t a_stride = K * 2;
  for (int64_t p0 = 0; p0 < w.panels(); p0 += NP) {
    for (int64_t m0 = 0; m0 < m_rows; m0 += 16 * MT) {
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      const uint8_t* bp[NP];
      for (int v = 0; v < NP; ++v) bp[v] = w.panel(std::min(p0 + v, w.panels() - 1));
      for (int64_t kb = 0; kb < kblocks; ++kb) {
        const uint16_t* a = xb + m0 * K + kb * 32;
        const int64_t boff = kb * 16 * 64;
        if constexpr (MT == 1) {
          _tile_loadd(4, a, a_stride);
          _tile_loadd(5, bp[0] + boff, 64);
          _tile_loadd(6, bp[1] + boff, 64);
          _tile_dpbf16ps(0, 4, 5);
          _tile_loadd(7, bp[2] + boff, 64);
          _tile_dpbf16ps(1, 4, 6);
          _tile_loadd(5, bp[3] + boff, 64);
          _tile_dpbf16ps(2, 4, 7);
          _tile_dpbf16ps(3, 4, 5);
        } else {
          _tile_loadd(4, a, a_stride);
          _tile_loadd(5, a + 16 * K, a_stride);
          _tile_loadd(6, bp[0] + boff, 64);
          _tile_loadd(7, bp[1] + boff, 64);
          _tile_dpbf16ps(0, 4, 6);
          _tile_dpbf16ps(1, 4, 7);
          _tile_dpbf16ps(2, 5, 6);
          _tile_dpbf16ps(3, 5, 7);
        }
      }
      alignas(64) float c[4][16 * 16];
      _tile_stored(0, c[0], 64);
      _tile_stored(1, c[1], 64);
      _tile_stored(2, c[2], 64);
      _tile_stored(3, c[3], 64);
      for (int t = 0; t < 4; ++t) {
        const int64_t mt = t / NP, p = p0 + t % NP;
        if (p >= w.panels()) continue;
        for (int r = 0; r < 16; ++r)
          for (int col = 0; col < 16 && p * 16 + col < N; ++col)
            y[(m0 + mt * 16 + r) * N + p * 16 + col] = c[t][r * 16 + col];
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> shapes = {4096, 14336}, ms = {16, 32, 64, 128};
  int reps = 5;
  size_t rotate_mib = 640;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--shapes" && i + 1 < argc) shapes = bench::ParseIntList(argv[++i]);
    else if (a == "--m" && i + 1 < argc) ms = bench::ParseIntList(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--rotate-mib" && i + 1 < argc) rotate_mib = std::atoll(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_amx_probe [--shapes K,N,...] [--m 16,32,...] [--reps R] [--rotate-mib MIB]\n");
      return 2;
    }
  }
  if (!EnableAmx()) {
    std::printf("bench_amx_probe: no AMX-BF16 on this CPU (or the kernel refused the tile state)\n");
    return 0;
  }
  Configure();
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (size_t s = 0; s + 1 < shapes.size(); s += 2) {
    const int64_t k = shapes[s], n = shapes[s + 1];
    if (k % 32 != 0) {
      std::fprintf(stderr, "bench_amx_probe: K=%lld is not a multiple of 32\n", (long long)k);
      return 2;
    }
    std::vector<uint16_t> w16(n * k);
    for (auto& v : w16) v = F32ToBf16(dist(rng));
    std::vector<PackedWeight> copies;
    do {
      copies.push_back(std::move(PackedWeight::Pack(DType::kBF16, w16.data(), n, k).value()));
    } while (copies.size() < 2 || copies.size() * copies[0].bytes() < (rotate_mib << 20));
    const double bytes = static_cast<double>(copies[0].bytes());
    for (int64_t m : ms) {
      if (m % 16 != 0) continue;
      std::vector<float> x(m * k), xr(m * k), y_avx(m * n), y_amx(m * n), y_ref(m * n);
      std::vector<uint16_t> xb(m * k);
      for (int64_t i = 0; i < m * k; ++i) {
        x[i] = dist(rng);
        xb[i] = F32ToBf16(x[i]);
        xr[i] = Bf16ToF32(xb[i]);
      }
      std::vector<double> t_avx, t_amx;
      for (int r = 0; r < reps; ++r) {
        std::vector<double> a, b;
        for (const PackedWeight& w : copies) {
          Timer t;
          Matmul(w, x.data(), m, k, y_avx.data(), n, nullptr, nullptr);
          a.push_back(t.Seconds());
        }
        for (const PackedWeight& w : copies) {
          Timer t;
          if (m % 32 == 0) AmxMatmul<2>(w, xb.data(), m, y_amx.data());
          else AmxMatmul<1>(w, xb.data(), m, y_amx.data());
          b.push_back(t.Seconds());
        }
        t_avx.push_back(bench::Median(a));
        t_amx.push_back(bench::Median(b));
      }
      // Same weights, bf16-rounded activations: equal up to the fp32 summation order.
      Matmul(copies[0], xr.data(), m, k, y_ref.data(), n, nullptr, nullptr);
      double worst = 0, scale = 0;
      for (int64_t i = 0; i < m * n; ++i) {
        worst = std::max(worst, std::fabs(double(y_amx[i]) - y_ref[i]));
        scale = std::max(scale, std::fabs(double(y_ref[i])));
      }
      const double avx = bench::Median(t_avx), amx = bench::Median(t_amx);
      std::printf("K=%-6lld N=%-6lld M=%-4lld bf16 avx512 %8.3f ms (%5.1f GB/s)   amx-bf16 %8.3f ms (%5.1f GB/s)"
                  "   amx %.2fx   max |amx - ref| / max|ref| = %.1e\n",
                  (long long)k, (long long)n, (long long)m, avx * 1e3, bytes / avx / 1e9, amx * 1e3,
                  bytes / amx / 1e9, avx / amx, worst / scale);
    }
  }
  return 0;
}
