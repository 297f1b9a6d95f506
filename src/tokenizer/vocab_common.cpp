#include "tokenizer/vocab_common.h"

#include <algorithm>

#include "tokenizer/unicode_bytes.h"

namespace rtnq::tokenizer_internal {

TokenIndex BuildTokenIndex(const std::vector<std::string>& tokens) {
  TokenIndex index;
  index.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) index[tokens[i]] = static_cast<int32_t>(i);
  return index;
}

Status ValidateSpec(const TokenizerSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) return Err("tokenizer: empty vocabulary");
  if (n > static_cast<size_t>(INT32_MAX)) return Err("tokenizer: {} tokens exceed int32 ids", n);
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return Err("tokenizer: {} scores for {} tokens (expected one per token or none)",
               spec.scores.size(), n);
  }
  if (!spec.types.empty() && spec.types.size() != n) {
    return Err("tokenizer: {} token types for {} tokens (expected one per token or none)",
               spec.types.size(), n);
  }
  const struct {
    const char* name;
    int32_t id;
  } ids[] = {{"bos", spec.bos_id}, {"eos", spec.eos_id}, {"unk", spec.unk_id}, {"pad", spec.pad_id}};
  for (const auto& [name, id] : ids) {
    if (id < -1 || id >= static_cast<int64_t>(n)) {
      return Err("tokenizer: {} token id {} outside the vocabulary [0, {})", name, id, n);
    }
  }
  if (spec.add_bos && spec.bos_id < 0) return Err("tokenizer: add_bos is set but there is no bos token");
  if (spec.add_eos && spec.eos_id < 0) return Err("tokenizer: add_eos is set but there is no eos token");
  return Status::Ok();
}

std::vector<TokenType> ResolveTypes(const TokenizerSpec& spec) {
  if (!spec.types.empty()) return spec.types;
  std::vector<TokenType> types(spec.tokens.size(), TokenType::kNormal);
  if (spec.kind == TokenizerKind::kSentencePieceBpe) {
    for (size_t i = 0; i < types.size(); ++i) {
      if (ParseBytePiece(spec.tokens[i]) >= 0) types[i] = TokenType::kByte;
    }
  }
  for (int32_t id : {spec.bos_id, spec.eos_id, spec.pad_id}) {
    if (id >= 0) types[id] = TokenType::kControl;
  }
  if (spec.unk_id >= 0) types[spec.unk_id] = TokenType::kUnknown;
  return types;
}

SpecialTokenSplitter::SpecialTokenSplitter(const std::vector<std::string>& tokens,
                                           const std::vector<TokenType>& types) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const TokenType t = types[i];
    if (tokens[i].empty()) continue;  // an empty text would match everywhere
    if (t == TokenType::kUserDefined) {
      entries_.push_back({tokens[i], static_cast<int32_t>(i), false});
    } else if (t == TokenType::kControl || t == TokenType::kUnknown) {
      entries_.push_back({tokens[i], static_cast<int32_t>(i), true});
    }
  }
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.text.size() > b.text.size(); });
}

std::vector<Fragment> SpecialTokenSplitter::Split(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({0, text.size(), -1});
  std::vector<Fragment> next;
  for (const Entry& e : entries_) {
    if (e.only_when_parse_special && !parse_special) continue;
    next.clear();
    bool found = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const std::string_view raw = text.substr(f.offset, f.length);
      size_t pos = 0;
      while (true) {
        const size_t match = raw.find(e.text, pos);
        if (match == std::string_view::npos) break;
        found = true;
        if (match > pos) next.push_back({f.offset + pos, match - pos, -1});
        next.push_back({f.offset + match, e.text.size(), e.id});
        pos = match + e.text.size();
      }
      if (pos < raw.size()) next.push_back({f.offset + pos, raw.size() - pos, -1});
    }
    if (found) fragments.swap(next);
  }
  return fragments;
}

}  // namespace rtnq::tokenizer_internal
