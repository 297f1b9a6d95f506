// Byte-level BPE pre-tokenization: a list of PCRE2 regexes (UTF + UCP) applied in turn, each
// splitting every chunk the previous one produced into its matches and the gaps between them
// (llama.cpp's unicode_regex_split). Bytes that are not well-formed UTF-8 never reach the regex
// engine: each becomes a chunk of its own, so any byte string splits without failing.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace rtnq::tokenizer_internal {

// The regexes llama.cpp uses for a tokenizer.ggml.pre name (HF's original forms, which PCRE2
// runs as-is). "default" means GPT-2's. Unknown names are an error listing the known ones.
Result<std::vector<std::string>> PreTokenizerPatterns(const std::string& pre);

// Whether llama.cpp turns on ignore_merges for this pre name (Llama-3 style vocabularies).
bool PreImpliesIgnoreMerges(const std::string& pre);

class RegexSplitter {
 public:
  static Result<RegexSplitter> Create(const std::vector<std::string>& patterns);
  RegexSplitter(RegexSplitter&&) noexcept;
  RegexSplitter& operator=(RegexSplitter&&) noexcept;
  ~RegexSplitter();

  // Appends the pre-tokens of `text` (views into it, in order, covering it exactly) to `out`.
  void Split(std::string_view text, std::vector<std::string_view>* out) const;

 private:
  struct Compiled;
  RegexSplitter() = default;
  void SplitValidUtf8(std::string_view text, size_t regex_index,
                      std::vector<std::string_view>* out) const;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

}  // namespace rtnq::tokenizer_internal
