// Shared helpers for the tokenizer tests: the llama.cpp vocab test files and vocab loading.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "io/gguf.h"
#include "testing/paths.h"
#include "tokenizer/tokenizer.h"

namespace rtnq::testing {

inline std::string VocabDir() { return DataDir() + "/tokenizer/llama.cpp-vocab"; }

struct VocabCase {
  std::string text;
  std::vector<int32_t> ids;
};

// Reads NAME.inp / NAME.out exactly as llama.cpp's test-tokenizer-0: inputs separated by
// "\n__ggml_vocab_test__\n", one line of space-separated ids per input.
inline std::vector<VocabCase> ReadVocabCases(const std::string& gguf_path) {
  auto inp = ReadFileToString(gguf_path + ".inp");
  auto out = ReadFileToString(gguf_path + ".out");
  EXPECT_TRUE(inp.ok()) << inp.status().message();
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!inp.ok() || !out.ok()) return {};
  std::vector<std::string> texts;
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < inp->size();) {
    const size_t next = inp->find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp->substr(pos));
      break;
    }
    texts.push_back(inp->substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<VocabCase> cases;
  size_t line_start = 0;
  for (const std::string& text : texts) {
    const size_t line_end = out->find('\n', line_start);
    const std::string line = out->substr(line_start, line_end - line_start);
    line_start = line_end == std::string::npos ? out->size() : line_end + 1;
    VocabCase c{text, {}};
    for (size_t p = 0; p < line.size();) {
      while (p < line.size() && line[p] == ' ') ++p;
      if (p == line.size()) break;
      size_t q = line.find(' ', p);
      if (q == std::string::npos) q = line.size();
      c.ids.push_back(std::stoi(line.substr(p, q - p)));
      p = q;
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

inline std::unique_ptr<Tokenizer> LoadGgufTokenizer(const std::string& path) {
  auto gguf = ReadGguf(path);
  EXPECT_TRUE(gguf.ok()) << gguf.status().message();
  if (!gguf.ok()) return nullptr;
  auto spec = TokenizerFromGguf(*gguf);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  if (!spec.ok()) return nullptr;
  auto tok = Tokenizer::Create(*spec);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return tok.ok() ? std::move(*tok) : nullptr;
}

inline std::string IdsToString(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += fmt::format("{}{}", s.empty() ? "" : " ", id);
  return s;
}

}  // namespace rtnq::testing
