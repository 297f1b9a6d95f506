// RTN quantization throughput: GB/s of bf16 input per core for Llama-3.1-8B-sized matrices,
// fp32 and vllm arithmetic, int8 and int4, one thread (median of repeats).
//   bench_quantize [--json]
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "base/half.h"
#include "base/timer.h"
#include "quant/rtn.h"

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
    for (const char* name : {"int8:g128", "int4:g128", "int4:g32"}) {
      const RtnFormat f = *ParseRtnFormat(name);
      auto m = AllocateRtnMatrix(f, rows, cols);
      std::vector<double> times;
      for (int rep = 0; rep < 5; ++rep) {
        Timer t;
        RtnQuantizeRows(w.data(), DType::kBF16, 0, rows, mode, &*m);
        times.push_back(t.Seconds());
      }
      std::sort(times.begin(), times.end());
      const double gbps = w.size() * 2 / 1e9 / times[times.size() / 2];
      results.push_back({{"format", name}, {"arithmetic", RtnArithmeticName(mode)}, {"gb_per_second_per_core", gbps}});
      if (!json) std::printf("%-10s %-5s %6.2f GB/s of bf16 input per core\n", name, RtnArithmeticName(mode), gbps);
    }
  }
  if (json) std::printf("%s\n", results.dump(2).c_str());
  return 0;
}
