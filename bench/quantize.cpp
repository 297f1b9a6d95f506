// RTN quantization throughput: GB/s of bf16 input per core for Llama-3.1-8B-sized matrices,
// fp32 and vllm arithmetic, int8 and int4, one thread (median of repeats). Also per second of
// this thread's CPU time, which a machine shared with other busy processes disturbs far less
// than the wall clock.
//   bench_quantize [--json]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <vector>

#include "base/half.h"
#include "base/timer.h"
#include "quant/rtn.h"

namespace {
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace rtnq;
  const bool json = argc > 1 && std::strcmp(argv[1], "--json") == 0;
  const int64_t rows = 4096, cols = 14336;  // mlp gate/up of Llama-3.1-8B (117 MB of bf16)
  std::vector<uint16_t> w(static_cast<size_t>(rows * cols));
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  for (auto& v : w) v = F32ToBf16(dist(rng));
  nlohmann::json results = nlohmann::json::array();
  for (auto mode : {RtnArithmetic::kFp32, RtnArithmetic::kVllm}) {
    for (const char* name : {"int8:g128", "int8:g32", "int4:g128", "int4:g64", "int4:g32"}) {
      const RtnFormat f = *ParseRtnFormat(name);
      auto m = AllocateRtnMatrix(f, rows, cols);
      std::vector<double> times, cpu_times;
      for (int rep = 0; rep < 5; ++rep) {
        Timer t;
        const double cpu0 = ThreadCpuSeconds();
        RtnQuantizeRows(w.data(), DType::kBF16, 0, rows, mode, &*m);
        cpu_times.push_back(ThreadCpuSeconds() - cpu0);
        times.push_back(t.Seconds());
      }
      std::sort(times.begin(), times.end());
      std::sort(cpu_times.begin(), cpu_times.end());
      const double gbps = w.size() * 2 / 1e9 / times[times.size() / 2];
      const double cpu_gbps = w.size() * 2 / 1e9 / cpu_times[cpu_times.size() / 2];
      results.push_back({{"format", name}, {"arithmetic", RtnArithmeticName(mode)}, {"gb_per_second_per_core", gbps},
                         {"gb_per_cpu_second", cpu_gbps}});
      if (!json) {
        std::printf("%-10s %-5s %6.2f GB/s of bf16 input per core (%.2f per CPU-second)\n", name,
                    RtnArithmeticName(mode), gbps, cpu_gbps);
      }
    }
  }
  if (json) std::printf("%s\n", results.dump(2).c_str());
  return 0;
}
