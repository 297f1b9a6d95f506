#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fmt/format.h>

#include <algorithm>

#include "tokenizer/unicode_bytes.h"

namespace rtnq::tokenizer_internal {
namespace {

// HF tokenizers' patterns (tokenizer.json pre_tokenizer), as llama.cpp lists them per pre name.
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kDigit = R"(\p{N})";

struct PreFamily {
  std::vector<std::string> names;
  std::vector<std::string> patterns;
  bool ignore_merges;
};

const std::vector<PreFamily>& Families() {
  static const std::vector<PreFamily> families = {
      {{"default", "gpt-2", "gpt2", "mpt", "olmo", "jais", "trillion"}, {kGpt2}, false},
      {{"llama-bpe", "llama3", "llama-v3", "falcon3", "pixtral", "dbrx", "smaug-bpe", "chatglm-bpe"},
       {kLlama3}, true},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, {kQwen2}, false},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva"},
       {kDigit, kGpt2}, false},
  };
  return families;
}

}  // namespace

Result<std::vector<std::string>> PreTokenizerPatterns(const std::string& pre) {
  std::string known;
  for (const PreFamily& f : Families()) {
    for (const std::string& name : f.names) {
      if (name == pre) return f.patterns;
      known += known.empty() ? name : ", " + name;
    }
  }
  return Err("tokenizer: unknown byte-level pre-tokenizer \"{}\" (known: {})", pre, known);
}

bool PreImpliesIgnoreMerges(const std::string& pre) {
  for (const PreFamily& f : Families()) {
    for (const std::string& name : f.names) {
      if (name == pre) return f.ignore_merges;
    }
  }
  return false;
}

struct RegexSplitter::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplitter::RegexSplitter(RegexSplitter&&) noexcept = default;
RegexSplitter& RegexSplitter::operator=(RegexSplitter&&) noexcept = default;
RegexSplitter::~RegexSplitter() = default;

Result<RegexSplitter> RegexSplitter::Create(const std::vector<std::string>& patterns) {
  if (patterns.empty()) return Err("tokenizer: no pre-tokenizer pattern");
  RegexSplitter splitter;
  for (const std::string& p : patterns) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    auto compiled = std::make_unique<Compiled>();
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (compiled->code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      return Err("tokenizer: pre-tokenizer regex \"{}\" does not compile at offset {}: {}", p,
                 error_offset, reinterpret_cast<const char*>(message));
    }
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);  // the interpreter runs if JIT fails
    splitter.regexes_.push_back(std::move(compiled));
  }
  return splitter;
}

void RegexSplitter::Split(std::string_view text, std::vector<std::string_view>* out) const {
  size_t run_start = 0, pos = 0;
  while (pos < text.size()) {
    const size_t len = ValidUtf8SequenceLength(text, pos);
    if (len > 0) {
      pos += len;
      continue;
    }
    if (pos > run_start) SplitValidUtf8(text.substr(run_start, pos - run_start), 0, out);
    out->push_back(text.substr(pos, 1));
    run_start = ++pos;
  }
  if (pos > run_start) SplitValidUtf8(text.substr(run_start, pos - run_start), 0, out);
}

void RegexSplitter::SplitValidUtf8(std::string_view text, size_t regex_index,
                                   std::vector<std::string_view>* out) const {
  if (regex_index == regexes_.size()) {
    out->push_back(text);
    return;
  }
  const auto emit = [&](size_t begin, size_t end) {
    if (end > begin) SplitValidUtf8(text.substr(begin, end - begin), regex_index + 1, out);
  };
  const pcre2_code* code = regexes_[regex_index]->code;
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  if (md == nullptr) {
    emit(0, text.size());
    return;
  }
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t done = 0, search = 0;
  while (search < text.size()) {
    int rc = pcre2_match(code, subject, text.size(), search, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // JIT's 32 KiB stack; the interpreter uses the heap
      rc = pcre2_match(code, subject, text.size(), search, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
    }
    if (rc < 0) break;  // no match, or a match/heap limit: the rest stays one chunk
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t begin = ov[0], end = ov[1];
    if (end <= begin || begin < done || end > text.size()) {
      // Empty (or \K-shifted) match: step over one character and search again.
      const size_t from = std::max(search, static_cast<size_t>(begin));
      if (from >= text.size()) break;
      search = from + std::max<size_t>(1, ValidUtf8SequenceLength(text, from));
      continue;
    }
    emit(done, begin);
    emit(begin, end);
    done = search = end;
  }
  emit(done, text.size());
  pcre2_match_data_free(md);
}

}  // namespace rtnq::tokenizer_internal
