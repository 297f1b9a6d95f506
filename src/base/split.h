// Splitting of comma-separated command-line lists ("1,2,4", "bf16,w4g128").
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rtnq {

// Splits "a,b,c" at commas; empty items are dropped.
inline std::vector<std::string> SplitCommaList(std::string_view text) {
  std::vector<std::string> out;
  for (size_t i = 0; i <= text.size();) {
    size_t j = text.find(',', i);
    if (j == std::string_view::npos) j = text.size();
    if (j > i) out.emplace_back(text.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

}  // namespace rtnq
