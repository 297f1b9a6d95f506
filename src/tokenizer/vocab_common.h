// Pieces both tokenizer kinds share: the text -> id index, token types (inferred when a spec
// has none) and the special-token split that runs before BPE.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "io/tokenizer_spec.h"

namespace rtnq::tokenizer_internal {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// Token text -> id. Duplicate texts map to the highest id, as llama.cpp's token_to_id.
TokenIndex BuildTokenIndex(const std::vector<std::string>& tokens);

inline int32_t Lookup(const TokenIndex& index, std::string_view text) {
  const auto it = index.find(text);
  return it == index.end() ? -1 : it->second;
}

// Checks sizes and special ids of a spec (the parts every tokenizer relies on).
Status ValidateSpec(const TokenizerSpec& spec);

// spec.types, or when empty: bos/eos/pad -> control, unk -> unknown, "<0xXX>" -> byte (SPM
// only), everything else normal.
std::vector<TokenType> ResolveTypes(const TokenizerSpec& spec);

struct Fragment {
  size_t offset = 0;
  size_t length = 0;
  int32_t token = -1;  // >= 0: this fragment is that special token; -1: raw text
};

// llama.cpp's tokenizer_st_partition: occurrences of special token texts (longest first) become
// token fragments before any BPE runs. User-defined tokens are always split out; control and
// unknown tokens only when parse_special (their text is ordinary text otherwise).
class SpecialTokenSplitter {
 public:
  SpecialTokenSplitter(const std::vector<std::string>& tokens, const std::vector<TokenType>& types);
  std::vector<Fragment> Split(std::string_view text, bool parse_special) const;

 private:
  struct Entry {
    std::string text;
    int32_t id;
    bool only_when_parse_special;
  };
  std::vector<Entry> entries_;  // longest text first, then lowest id
};

}  // namespace rtnq::tokenizer_internal
