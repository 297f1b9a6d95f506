// Helpers shared by the benchmarks: medians and comma-separated integer flags. The DRAM read
// bandwidth probe is base/memory_bandwidth.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/split.h"

namespace rtnq::bench {

// "1,16,32" -> {1, 16, 32} (atoll per item, as the benchmarks' flags have always been read).
inline std::vector<int64_t> ParseIntList(const std::string& text) {
  std::vector<int64_t> out;
  for (const std::string& item : SplitCommaList(text)) out.push_back(std::atoll(item.c_str()));
  return out;
}

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace rtnq::bench
