// Matmul kernel benchmark: time per call, weight bandwidth and speed relative to the exact BF16
// kernel, for dense and RTN weights (W4A16/W8A16 exact, W4A8/W8A8 int8 activations). Weights
// rotate through enough copies (>= 640 MiB per variant, above a 480 MiB L3) that every call
// streams them from DRAM, as in a real forward pass. Variants are interleaved per repetition so
// that the ratios compare runs made side by side on a noisy shared machine.
//   bench_matmul [--threads T] [--rotate-mib MIB] [--reps R] [--json] [--shapes K,N,...]
//                [--m 1,16,...] [--variants bf16,w4a8:g128,...]
// Variants: f32, bf16, bf16act (VDPBF16PS), w{4,8}a{8,16}:g{32,64,128,0} (bf16 scales), each
// optionally with tuning overrides (kernels/matmul_tiles.h) for side-by-side comparisons:
// /nvd<panels per decode tile> /pf<prefetch bytes> /pfl2_<L2 prefetch bytes> /x0 (no f32 expansion) /kc<k block>, e.g.
// bf16/nvd4/pf0 is the decode tile as it was before the 8-panel, prefetching one.
// Every repetition also measures the DRAM read bandwidth (8 streams, 512 MiB): "same rep" %DRAM
// compares each call time with the bandwidth measured at the same moment of a noisy machine.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "base/aligned_buffer.h"
#include "base/half.h"
#include "base/memory_bandwidth.h"
#include "base/timer.h"
#include "bench_common.h"
#include "kernels/matmul.h"
#include "kernels/matmul_tiles.h"

using namespace rtnq;

namespace {

struct Variant {
  std::string label;
  MatmulOverrides overrides;
  bool rtn = false;
  DType dtype = DType::kBF16;  // dense
  RtnFormat format;            // rtn
  ActType act = ActType::kF32;
};

bool ParseVariant(const std::string& spec, Variant* v) {
  v->label = spec;
  const size_t slash = spec.find('/');
  const std::string s = spec.substr(0, slash);
  for (size_t i = slash; i != std::string::npos;) {
    const size_t j = spec.find('/', i + 1);
    const std::string o = spec.substr(i + 1, j == std::string::npos ? std::string::npos : j - i - 1);
    i = j;
    auto num = [&](size_t skip) { return std::atoll(o.c_str() + skip); };
    if (o.rfind("nvd", 0) == 0) v->overrides.nv_decode = static_cast<int>(num(3));
    else if (o.rfind("pfl2_", 0) == 0) v->overrides.prefetch_l2_bytes = static_cast<int>(num(5));
    else if (o.rfind("pf", 0) == 0) v->overrides.prefetch_bytes = static_cast<int>(num(2));
    else if (o.rfind("kc", 0) == 0) v->overrides.k_block = num(2);
    else if (o == "x0") v->overrides.expand = 0;
    else return false;
  }
  if (s == "f32" || s == "bf16" || s == "bf16act") {
    v->dtype = s == "f32" ? DType::kF32 : DType::kBF16;
    v->act = s == "bf16act" ? ActType::kBF16 : ActType::kF32;
    return true;
  }
  // w4a8:g128
  if (s.size() < 4 || s[0] != 'w' || (s[1] != '4' && s[1] != '8') || s[2] != 'a') return false;
  v->rtn = true;
  v->format.scheme = s[1] == '4' ? RtnScheme::kInt4 : RtnScheme::kInt8;
  v->format.scale_dtype = DType::kBF16;
  const size_t colon = s.find(":g");
  const std::string a = s.substr(3, colon == std::string::npos ? std::string::npos : colon - 3);
  if (a != "8" && a != "16") return false;
  v->act = a == "8" ? ActType::kInt8 : ActType::kF32;
  v->format.group = colon == std::string::npos ? 128 : std::atoi(s.c_str() + colon + 2);
  return true;
}

// One pass of 8 interleaved read streams over `buf`: bytes/s.
double ReadBandwidthOnce(const AlignedBuffer& buf) {
  static volatile uint64_t sink = 0;
  Timer t;
  sink = sink ^ StreamingXorRead(buf.data(), buf.size());
  return static_cast<double>(buf.size()) / t.Seconds();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, reps = 5;
  size_t rotate_mib = 640;
  bool json = false;
  std::vector<int64_t> shapes = {4096, 14336};
  std::vector<int64_t> ms = {1, 16, 32};
  std::string variant_list = "bf16,w4a8:g128,w8a8:g128,w4a8:g32,w4a16:g128,w8a16:g128";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--rotate-mib" && i + 1 < argc) rotate_mib = std::atoll(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--json") json = true;
    else if (a == "--shapes" && i + 1 < argc) shapes = bench::ParseIntList(argv[++i]);
    else if (a == "--m" && i + 1 < argc) ms = bench::ParseIntList(argv[++i]);
    else if (a == "--variants" && i + 1 < argc) variant_list = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_matmul [--threads T] [--rotate-mib MIB] [--reps R] [--json] "
                           "[--shapes K,N,K,N...] [--m 1,4,...] [--variants bf16,w4a8:g128,...]\n");
      return 2;
    }
  }
  std::vector<Variant> variants;
  for (const std::string& s : SplitCommaList(variant_list)) {
    Variant v;
    if (!ParseVariant(s, &v)) {
      std::fprintf(stderr, "bench_matmul: unknown variant '%s'\n", s.c_str());
      return 2;
    }
    variants.push_back(v);
  }
  ThreadPool pool(threads);
  const double bw = MeasureReadBandwidth(size_t{1} << 30, threads).best;
  nlohmann::json out;
  out["dram_read_gbps"] = bw / 1e9;  // best of 7 passes
  out["threads"] = threads;
  out["cpu"] = HostCpu().ToString();
  if (!json) std::printf("DRAM read bandwidth (%d threads, best of 7): %.1f GB/s\n", threads, bw / 1e9);

  AlignedBuffer bw_buf(size_t{512} << 20);
  std::memset(bw_buf.data(), 1, bw_buf.size());  // fault the pages in
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (size_t s = 0; s + 1 < shapes.size(); s += 2) {
    const int64_t k = shapes[s], n = shapes[s + 1];
    std::vector<float> w32(n * k);
    for (float& v : w32) v = dist(rng);
    std::vector<uint16_t> w16(n * k);
    for (size_t i = 0; i < w16.size(); ++i) w16[i] = F32ToBf16(w32[i]);
    std::vector<uint8_t> codes(n * k);
    for (auto& c : codes) c = static_cast<uint8_t>(rng());
    std::vector<uint16_t> scales(n * k / 32 + n);  // enough for g32 (or one per row)
    for (auto& h : scales) h = F32ToBf16(std::exp2(dist(rng)) * 1e-3f);

    std::vector<std::vector<PackedWeight>> packed(variants.size());
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      const Variant& var = variants[vi];
      Result<PackedWeight> one =
          var.rtn ? PackedWeight::Pack(var.format, codes.data(), reinterpret_cast<const uint8_t*>(scales.data()), n, k,
                                       var.act)
                  : PackedWeight::Pack(var.dtype, var.dtype == DType::kF32 ? static_cast<const void*>(w32.data())
                                                                           : w16.data(),
                                       n, k, var.act);
      if (!one.ok()) {
        std::fprintf(stderr, "bench_matmul: %s: %s\n", var.label.c_str(), one.status().message().c_str());
        return 1;
      }
      const size_t bytes = one->bytes();
      const int copies = static_cast<int>(std::max<size_t>(2, (rotate_mib << 20) / bytes + 1));
      packed[vi].push_back(std::move(one.value()));
      for (int c = 1; c < copies; ++c) {
        packed[vi].push_back(std::move(
            (var.rtn ? PackedWeight::Pack(var.format, codes.data(), reinterpret_cast<const uint8_t*>(scales.data()), n,
                                          k, var.act)
                     : PackedWeight::Pack(var.dtype, var.dtype == DType::kF32 ? static_cast<const void*>(w32.data())
                                                                              : w16.data(),
                                          n, k, var.act))
                .value()));
      }
    }
    for (int64_t m : ms) {
      std::vector<float> x(m * k), y(m * n);
      for (float& v : x) v = dist(rng);
      // times[variant][rep] = median call time of one rotation through the copies.
      std::vector<std::vector<double>> times(variants.size());
      std::vector<double> rep_bw;  // measured in each repetition
      for (int r = 0; r < reps; ++r) {
        rep_bw.push_back(ReadBandwidthOnce(bw_buf));
        for (size_t vi = 0; vi < variants.size(); ++vi) {
          g_matmul_overrides = variants[vi].overrides;
          const auto& ws = packed[vi];
          const int copies = static_cast<int>(ws.size());
          const int calls = m >= 64 ? std::min(copies, 8) : copies;
          Matmul(ws[copies - 1], x.data(), m, k, y.data(), n, nullptr, &pool);  // warm the pool
          std::vector<double> t_calls;
          for (int c = 0; c < calls; ++c) {
            Timer t;
            Matmul(ws[c], x.data(), m, k, y.data(), n, nullptr, &pool);
            t_calls.push_back(t.Seconds());
          }
          times[vi].push_back(bench::Median(t_calls));
        }
        g_matmul_overrides = MatmulOverrides{};
      }
      if (!json)
        std::printf("M=%lld: per-repetition DRAM read %.1f GB/s [%.1f..%.1f]\n", (long long)m,
                    bench::Median(rep_bw) / 1e9, *std::min_element(rep_bw.begin(), rep_bw.end()) / 1e9,
                    *std::max_element(rep_bw.begin(), rep_bw.end()) / 1e9);
      const size_t base = 0;  // ratios against the first variant (bf16 by default)
      for (size_t vi = 0; vi < variants.size(); ++vi) {
        const double sec = bench::Median(times[vi]);
        std::vector<double> ratios;
        for (int r = 0; r < reps; ++r) ratios.push_back(times[base][r] / times[vi][r]);
        std::sort(ratios.begin(), ratios.end());
        const double ratio = bench::Median(ratios);
        const PackedWeight& w = packed[vi][0];
        const double gbps = static_cast<double>(w.bytes()) / sec / 1e9;
        const double gops = 2.0 * m * n * k / sec / 1e9;
        // Bandwidth relative to the DRAM read measured in the same repetition.
        std::vector<double> pct_bw;
        for (int r = 0; r < reps; ++r) pct_bw.push_back(100.0 * static_cast<double>(w.bytes()) / times[vi][r] / rep_bw[r]);
        std::sort(pct_bw.begin(), pct_bw.end());
        nlohmann::json row = {{"k", k}, {"n", n}, {"m", m}, {"variant", variants[vi].label},
                              {"kernel", w.KernelFor(m)->name}, {"ms", sec * 1e3}, {"weight_bytes", w.bytes()},
                              {"weight_gbps", gbps}, {"pct_dram_bw", 100.0 * gbps * 1e9 / bw},
                              {"pct_dram_bw_same_rep", bench::Median(pct_bw)},
                              {"pct_dram_bw_same_rep_min", pct_bw.front()},
                              {"pct_dram_bw_same_rep_max", pct_bw.back()},
                              {"gops", gops}, {"speedup_vs_first", ratio},
                              {"speedup_min", ratios.front()}, {"speedup_max", ratios.back()}};
        out["results"].push_back(row);
        if (!json)
          std::printf("K=%-6lld N=%-6lld M=%-4lld %-16s %-22s %8.3f ms %6.1f GB/s (%5.1f%% DRAM; same rep %5.1f%% "
                      "[%.0f..%.0f]) %7.1f GOP/s  x%.2f vs %s [%.2f..%.2f]\n",
                      (long long)k, (long long)n, (long long)m, variants[vi].label.c_str(), w.KernelFor(m)->name,
                      sec * 1e3, gbps, 100.0 * gbps * 1e9 / bw, bench::Median(pct_bw), pct_bw.front(),
                      pct_bw.back(), gops, ratio, variants[base].label.c_str(), ratios.front(),
                      ratios.back());
      }
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
