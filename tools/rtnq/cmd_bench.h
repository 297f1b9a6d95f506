// `rtnq bench`: the gemm and e2e subcommands (cmd_bench_gemm.cpp, cmd_bench_e2e.cpp) and what
// they share.
#pragma once

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "base/split.h"
#include "base/status.h"

namespace rtnq::cli {

void AddBenchGemm(CLI::App* bench);
void AddBenchE2e(CLI::App* bench);

// Parses "1,2,4" into positive integers; `flag` names the option in the error.
inline Result<std::vector<int>> ParsePositiveInts(const std::string& text, const std::string& flag) {
  std::vector<int> out;
  for (const std::string& item : SplitCommaList(text)) {
    int64_t v = 0;
    bool ok = !item.empty() && item.size() <= 9;
    for (char c : item) ok = ok && c >= '0' && c <= '9';
    if (ok) v = std::stoll(item);
    if (!ok || v <= 0) return Err("{}: expected a comma-separated list of positive integers, found '{}'", flag, item);
    out.push_back(static_cast<int>(v));
  }
  if (out.empty()) return Err("{}: empty list", flag);
  return out;
}

inline double MedianOf(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
}

}  // namespace rtnq::cli
