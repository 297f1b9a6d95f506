#include "tokenizer/gpt2_files.h"

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace rtnq {

Result<TokenizerSpec> ParseGpt2Vocab(std::string_view encoder_json, const std::string& encoder_path,
                                     std::string_view vocab_bpe, const std::string& vocab_path) {
  const nlohmann::json j = nlohmann::json::parse(encoder_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err("{}: not valid JSON", encoder_path);
  if (!j.is_object() || j.empty()) return Err("{}: expected a non-empty object token -> id", encoder_path);
  TokenizerSpec spec;
  spec.kind = TokenizerKind::kByteLevelBpe;
  spec.pre = "gpt-2";
  spec.add_space_prefix = false;
  spec.tokens.resize(j.size());
  std::vector<bool> seen(j.size(), false);
  for (const auto& [token, value] : j.items()) {
    if (!value.is_number_integer()) {
      return Err("{}: token \"{}\": expected an integer id, found {}", encoder_path, token, value.type_name());
    }
    const int64_t id = value.get<int64_t>();
    if (id < 0 || id >= static_cast<int64_t>(j.size())) {
      return Err("{}: token \"{}\": id {} outside [0, {}) (ids must be dense)", encoder_path, token, id, j.size());
    }
    if (seen[id]) return Err("{}: token \"{}\": id {} is used twice", encoder_path, token, id);
    seen[id] = true;
    spec.tokens[id] = token;
  }

  size_t line_no = 0;
  for (size_t pos = 0; pos < vocab_bpe.size();) {
    size_t end = vocab_bpe.find('\n', pos);
    if (end == std::string_view::npos) end = vocab_bpe.size();
    std::string_view line = vocab_bpe.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 == line.size() ||
        line.find(' ', sp + 1) != std::string_view::npos) {
      return Err("{}: line {}: expected \"left right\", found \"{}\"", vocab_path, line_no, line);
    }
    spec.merges.emplace_back(line);
  }
  if (spec.merges.empty()) return Err("{}: no merges", vocab_path);

  // GPT-2's only special token; it is both BOS and EOS, and GPT-2 adds neither by default.
  spec.types.assign(spec.tokens.size(), TokenType::kNormal);
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    if (spec.tokens[i] == "<|endoftext|>") {
      spec.types[i] = TokenType::kControl;
      spec.bos_id = spec.eos_id = static_cast<int32_t>(i);
    }
  }
  return spec;
}

Result<TokenizerSpec> ReadGpt2Vocab(const std::string& encoder_json_path,
                                    const std::string& vocab_bpe_path) {
  RTNQ_ASSIGN_OR_RETURN(std::string encoder, ReadFileToString(encoder_json_path));
  RTNQ_ASSIGN_OR_RETURN(std::string merges, ReadFileToString(vocab_bpe_path));
  return ParseGpt2Vocab(encoder, encoder_json_path, merges, vocab_bpe_path);
}

}  // namespace rtnq
