// Matmul kernel benchmark: time per call and weight bandwidth at M = 1 (decode) and larger M,
// against DRAM read bandwidth measured here. Weights rotate through enough copies (>= 1 GiB by
// default) that every call streams them from DRAM, as in a real forward pass.
//   bench_matmul [--threads T] [--rotate-mib MIB] [--json] [--shapes KxN,...] [--m 1,4,...]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "base/half.h"
#include "bench_common.h"
#include "kernels/matmul.h"

using namespace rtnq;

namespace {

std::vector<int64_t> ParseList(const std::string& s) {
  std::vector<int64_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find_first_of(",x", i);
    if (j == std::string::npos) j = s.size();
    out.push_back(std::atoll(s.substr(i, j - i).c_str()));
    i = j + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  size_t rotate_mib = 1024;
  bool json = false;
  std::vector<int64_t> shapes = {4096, 14336, 14336, 4096, 2048, 8192};
  std::vector<int64_t> ms = {1, 2, 4, 8, 16, 64, 256};
  std::vector<std::string> kernels_wanted = {"f32", "bf16", "bf16_bf16act"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--rotate-mib" && i + 1 < argc) rotate_mib = std::atoll(argv[++i]);
    else if (a == "--json") json = true;
    else if (a == "--shapes" && i + 1 < argc) shapes = ParseList(argv[++i]);
    else if (a == "--m" && i + 1 < argc) ms = ParseList(argv[++i]);
    else {
      std::fprintf(stderr, "usage: bench_matmul [--threads T] [--rotate-mib MIB] [--json] "
                           "[--shapes K,N,K,N...] [--m 1,4,...]\n");
      return 2;
    }
  }
  ThreadPool pool(threads);
  const double bw = bench::MeasureReadBandwidth(size_t{1} << 30, threads);
  nlohmann::json out;
  out["dram_read_gbps"] = bw / 1e9;  // best of 7 passes
  out["threads"] = threads;
  out["cpu"] = HostCpu().ToString();
  if (!json) std::printf("DRAM read bandwidth (%d threads): %.1f GB/s\n", threads, bw / 1e9);

  struct Variant {
    const char* label;
    DType dtype;
    ActType act;
  };
  const Variant variants[] = {{"f32", DType::kF32, ActType::kF32},
                              {"bf16", DType::kBF16, ActType::kF32},
                              {"bf16_bf16act", DType::kBF16, ActType::kBF16}};
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  for (size_t s = 0; s + 1 < shapes.size(); s += 2) {
    const int64_t k = shapes[s], n = shapes[s + 1];
    std::vector<float> w32(n * k);
    for (float& v : w32) v = dist(rng);
    std::vector<uint16_t> w16(n * k);
    for (size_t i = 0; i < w16.size(); ++i) w16[i] = F32ToBf16(w32[i]);
    for (const Variant& var : variants) {
      if (!FindMatmulKernel(var.dtype, var.act, SelectedIsa())) continue;
      const void* rows = var.dtype == DType::kF32 ? static_cast<const void*>(w32.data()) : w16.data();
      const size_t one = static_cast<size_t>(n * k) * (var.dtype == DType::kF32 ? 4 : 2);
      const int copies = static_cast<int>(std::max<size_t>(2, (rotate_mib << 20) / one + 1));
      std::vector<PackedWeight> ws;
      for (int c = 0; c < copies; ++c) ws.push_back(std::move(PackedWeight::Pack(var.dtype, rows, n, k, var.act).value()));
      for (int64_t m : ms) {
        std::vector<float> x(m * k), y(m * n);
        for (float& v : x) v = dist(rng);
        std::vector<double> times;
        const int calls = std::max(copies, m >= 64 ? 6 : 3 * copies);
        for (int c = 0; c < calls + 1; ++c) {
          Timer t;
          Matmul(ws[c % copies], x.data(), m, k, y.data(), n, nullptr, &pool);
          if (c > 0) times.push_back(t.Seconds());  // first call warms the pool
        }
        const double sec = bench::Median(times);
        const double gbps = static_cast<double>(ws[0].bytes()) / sec / 1e9;
        const double gflops = 2.0 * m * n * k / sec / 1e9;
        nlohmann::json row = {{"k", k}, {"n", n}, {"m", m}, {"weights", var.label},
                              {"kernel", ws[0].kernel()->name}, {"ms", sec * 1e3},
                              {"weight_gbps", gbps}, {"pct_dram_bw", 100.0 * gbps * 1e9 / bw},
                              {"gflops", gflops}};
        out["results"].push_back(row);
        if (!json)
          std::printf("K=%-6lld N=%-6lld M=%-4lld %-26s %9.3f ms %7.1f GB/s (%5.1f%% of DRAM) %7.1f GFLOP/s\n",
                      (long long)k, (long long)n, (long long)m, ws[0].kernel()->name, sec * 1e3, gbps,
                      100.0 * gbps * 1e9 / bw, gflops);
      }
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
