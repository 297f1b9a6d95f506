// HF tokenizer.json (tokenizers' serialized Tokenizer) -> TokenizerSpec. Reads the BPE model
// (vocab, merges, byte_fallback, unk_token, ignore_merges), added_tokens, and from the
// normalizer / pre_tokenizer / post_processor only what decides the algorithm: byte-level
// (ByteLevel, optionally after a Split regex) or SentencePiece-style (Metaspace, or a
// Replace(" " -> "▁") normalizer), the space prefix, and the BOS/EOS a TemplateProcessing adds.
// See docs/formats/tokenizer.md.
#include "io/tokenizer_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>

#include "base/file.h"

namespace rtnq {
namespace {

using Json = nlohmann::json;

constexpr const char* kSpaceSymbol = "\xE2\x96\x81";  // "▁"

// HF's Split patterns for the pre-tokenizers rtnq knows by name (the tokenizer picks the same
// regexes from the name; see src/tokenizer/pretokenizer.cpp).
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kDigitsPattern = R"(\p{N})";
struct KnownPre {
  const char* pre;
  std::vector<std::string> regexes;  // applied in this order
};
const std::vector<KnownPre>& KnownPres() {
  static const std::vector<KnownPre> known = {
      {"gpt-2", {kGpt2Pattern}},
      {"llama-bpe",
       {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"qwen2",
       {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {"smollm", {kDigitsPattern, kGpt2Pattern}},  // Digits(individual) + ByteLevel(use_regex)
  };
  return known;
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}

  Status Error(const std::string& key, const std::string& what) const {
    return Err("{}: key {}: {}", path_, key, what);
  }

  // The member `name` of object `obj` (at `key`), or nullptr when absent or null.
  const Json* Member(const Json& obj, const char* name) const {
    if (!obj.is_object()) return nullptr;
    const auto it = obj.find(name);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }

  Result<std::string> String(const Json& obj, const char* name, const std::string& key) const {
    const Json* v = Member(obj, name);
    if (v == nullptr || !v->is_string()) {
      return Error(key + "." + name, fmt::format("expected a string, found {}", v ? v->type_name() : "nothing"));
    }
    return v->get<std::string>();
  }

  std::string StringOr(const Json& obj, const char* name, const std::string& fallback) const {
    const Json* v = Member(obj, name);
    return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
  }

  bool BoolOr(const Json& obj, const char* name, bool fallback) const {
    const Json* v = Member(obj, name);
    return v != nullptr && v->is_boolean() ? v->get<bool>() : fallback;
  }

  const std::string& path() const { return path_; }

 private:
  const std::string& path_;
};

// Pre-tokenizer components, flattened out of any Sequence.
struct PreTokenizerInfo {
  bool byte_level = false;
  bool byte_level_regex = false;       // ByteLevel with use_regex: GPT-2's pattern
  bool byte_level_prefix_space = false;
  std::vector<std::string> split_regexes;
  bool metaspace = false;
  std::string metaspace_prepend = "always";
};

Status CollectPreTokenizers(const Reader& r, const Json& node, const std::string& key,
                            PreTokenizerInfo* info) {
  if (!node.is_object()) return r.Error(key, fmt::format("expected an object, found {}", node.type_name()));
  RTNQ_ASSIGN_OR_RETURN(std::string type, r.String(node, "type", key));
  if (type == "Sequence") {
    const Json* list = r.Member(node, "pretokenizers");
    if (list == nullptr || !list->is_array()) return r.Error(key + ".pretokenizers", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      RTNQ_RETURN_IF_ERROR(CollectPreTokenizers(r, (*list)[i], fmt::format("{}.pretokenizers[{}]", key, i), info));
    }
  } else if (type == "ByteLevel") {
    info->byte_level = true;
    info->byte_level_regex = r.BoolOr(node, "use_regex", true);
    info->byte_level_prefix_space = r.BoolOr(node, "add_prefix_space", false);
  } else if (type == "Split") {
    const Json* pattern = r.Member(node, "pattern");
    const Json* regex = pattern != nullptr ? r.Member(*pattern, "Regex") : nullptr;
    if (regex == nullptr || !regex->is_string()) {
      return r.Error(key + ".pattern", "expected {\"Regex\": string} (string patterns are not supported)");
    }
    const std::string behavior = r.StringOr(node, "behavior", "Isolated");
    if (behavior != "Isolated" || r.BoolOr(node, "invert", false)) {
      return r.Error(key, fmt::format("Split behavior \"{}\"{} is not supported (expected Isolated)",
                                      behavior, r.BoolOr(node, "invert", false) ? " inverted" : ""));
    }
    info->split_regexes.push_back(regex->get<std::string>());
  } else if (type == "Digits") {
    if (!r.BoolOr(node, "individual_digits", false)) {
      return r.Error(key, "Digits without individual_digits is not supported");
    }
    info->split_regexes.push_back(kDigitsPattern);
  } else if (type == "Metaspace") {
    info->metaspace = true;
    if (r.StringOr(node, "replacement", kSpaceSymbol) != kSpaceSymbol) {
      return r.Error(key + ".replacement", "expected \"\xE2\x96\x81\"");
    }
    // Newer files say prepend_scheme ("first", "always", "never"); older ones add_prefix_space.
    const Json* scheme = r.Member(node, "prepend_scheme");
    if (scheme != nullptr && scheme->is_string()) {
      info->metaspace_prepend = scheme->get<std::string>();
    } else {
      info->metaspace_prepend = r.BoolOr(node, "add_prefix_space", true) ? "always" : "never";
    }
  } else {
    return r.Error(key + ".type", fmt::format("pre-tokenizer \"{}\" is not supported", type));
  }
  return Status::Ok();
}

// Normalizer: SentencePiece-style vocabularies from transformers' converter use
// Sequence[Prepend("▁"), Replace(" " -> "▁")]. Anything else that changes text is unsupported.
struct NormalizerInfo {
  bool replaces_space = false;
  bool prepends_space = false;
};

Status CollectNormalizers(const Reader& r, const Json& node, const std::string& key, NormalizerInfo* info) {
  if (!node.is_object()) return r.Error(key, fmt::format("expected an object, found {}", node.type_name()));
  RTNQ_ASSIGN_OR_RETURN(std::string type, r.String(node, "type", key));
  if (type == "Sequence") {
    const Json* list = r.Member(node, "normalizers");
    if (list == nullptr || !list->is_array()) return r.Error(key + ".normalizers", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      RTNQ_RETURN_IF_ERROR(CollectNormalizers(r, (*list)[i], fmt::format("{}.normalizers[{}]", key, i), info));
    }
  } else if (type == "Prepend") {
    if (r.StringOr(node, "prepend", "") != kSpaceSymbol) return r.Error(key + ".prepend", "expected \"\xE2\x96\x81\"");
    info->prepends_space = true;
  } else if (type == "Replace") {
    const Json* pattern = r.Member(node, "pattern");
    const Json* str = pattern != nullptr ? r.Member(*pattern, "String") : nullptr;
    if (str == nullptr || !str->is_string() || str->get<std::string>() != " " ||
        r.StringOr(node, "content", "") != kSpaceSymbol) {
      return r.Error(key, "only Replace(\" \" -> \"\xE2\x96\x81\") is supported");
    }
    info->replaces_space = true;
  } else if (type != "NFC" && type != "NFKC") {
    // NFC/NFKC are accepted without being applied (ASCII and precomposed text are unchanged).
    return r.Error(key + ".type", fmt::format("normalizer \"{}\" is not supported", type));
  }
  return Status::Ok();
}

// Adds vocab entries and added tokens into id -> text, checking that ids are dense and agree.
class TokenTable {
 public:
  TokenTable(const Reader& r, size_t capacity) : r_(r), tokens_(capacity), set_(capacity, false) {}

  Status Set(int64_t id, const std::string& text, const std::string& key) {
    if (id < 0 || id >= static_cast<int64_t>(tokens_.size())) {
      return r_.Error(key, fmt::format("token \"{}\": id {} outside [0, {}) (ids must be dense)", text, id,
                                       tokens_.size()));
    }
    if (set_[id] && tokens_[id] != text) {
      return r_.Error(key, fmt::format("id {} is both \"{}\" and \"{}\"", id, tokens_[id], text));
    }
    tokens_[id] = text;
    set_[id] = true;
    return Status::Ok();
  }

  Result<std::vector<std::string>> Finish() {
    size_t n = tokens_.size();
    while (n > 0 && !set_[n - 1]) --n;
    for (size_t i = 0; i < n; ++i) {
      if (!set_[i]) return r_.Error("model.vocab", fmt::format("no token has id {} (ids must be dense)", i));
    }
    tokens_.resize(n);
    return std::move(tokens_);
  }

 private:
  const Reader& r_;
  std::vector<std::string> tokens_;
  std::vector<bool> set_;
};

struct AddedToken {
  int64_t id;
  std::string content;
  bool special;
};

Result<std::vector<AddedToken>> ReadAddedTokens(const Reader& r, const Json& root) {
  std::vector<AddedToken> added;
  const Json* list = r.Member(root, "added_tokens");
  if (list == nullptr) return added;
  if (!list->is_array()) return r.Error("added_tokens", fmt::format("expected an array, found {}", list->type_name()));
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string key = fmt::format("added_tokens[{}]", i);
    const Json& t = (*list)[i];
    const Json* id = r.Member(t, "id");
    if (id == nullptr || !id->is_number_integer()) return r.Error(key + ".id", "expected an integer");
    RTNQ_ASSIGN_OR_RETURN(std::string content, r.String(t, "content", key));
    if (content.empty()) return r.Error(key + ".content", "empty token text");
    added.push_back({id->get<int64_t>(), std::move(content), r.BoolOr(t, "special", false)});
  }
  return added;
}

// merges: ["a b", ...] (tokenizers < 0.20) or [["a", "b"], ...]; stored as "a b".
Status ReadMerges(const Reader& r, const Json& model, const std::unordered_map<std::string, int32_t>& ids,
                  TokenizerSpec* spec) {
  const Json* merges = r.Member(model, "merges");
  if (merges == nullptr) return Status::Ok();
  if (!merges->is_array()) return r.Error("model.merges", fmt::format("expected an array, found {}", merges->type_name()));
  spec->merges.reserve(merges->size());
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& m = (*merges)[i];
    const std::string key = fmt::format("model.merges[{}]", i);
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) {
        return r.Error(key, fmt::format("expected \"left right\" with one space, found \"{}\"", s));
      }
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      return r.Error(key, fmt::format("expected a string or a [left, right] pair, found {}", m.dump().substr(0, 80)));
    }
    for (const std::string* part : {&left, &right}) {
      if (!ids.count(*part)) return r.Error(key, fmt::format("\"{}\" is not in model.vocab", *part));
    }
    if (!ids.count(left + right)) {
      return r.Error(key, fmt::format("the merged token \"{}\" is not in model.vocab", left + right));
    }
    spec->merges.push_back(left + " " + right);
  }
  return Status::Ok();
}

// TemplateProcessing's "single" template: special tokens before $A are added at the start
// (BOS), after it at the end (EOS). Returns the token names.
Status ReadPostProcessor(const Reader& r, const Json& node, const std::string& key,
                         std::vector<std::string>* before, std::vector<std::string>* after) {
  if (!node.is_object()) return r.Error(key, "expected an object");
  RTNQ_ASSIGN_OR_RETURN(std::string type, r.String(node, "type", key));
  if (type == "Sequence") {
    const Json* list = r.Member(node, "processors");
    if (list == nullptr || !list->is_array()) return r.Error(key + ".processors", "expected an array");
    for (size_t i = 0; i < list->size(); ++i) {
      RTNQ_RETURN_IF_ERROR(ReadPostProcessor(r, (*list)[i], fmt::format("{}.processors[{}]", key, i), before, after));
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") return Status::Ok();  // offsets only
  if (type != "TemplateProcessing") {
    return r.Error(key + ".type", fmt::format("post-processor \"{}\" is not supported", type));
  }
  const Json* single = r.Member(node, "single");
  if (single == nullptr || !single->is_array()) return r.Error(key + ".single", "expected an array");
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& item = (*single)[i];
    const std::string item_key = fmt::format("{}.single[{}]", key, i);
    if (const Json* st = r.Member(item, "SpecialToken")) {
      RTNQ_ASSIGN_OR_RETURN(std::string id, r.String(*st, "id", item_key + ".SpecialToken"));
      (seen_sequence ? after : before)->push_back(id);
    } else if (r.Member(item, "Sequence") != nullptr) {
      seen_sequence = true;
    } else {
      return r.Error(item_key, "expected SpecialToken or Sequence");
    }
  }
  if (before->size() > 1 || after->size() > 1) {
    return r.Error(key + ".single", "more than one special token on a side is not supported");
  }
  return Status::Ok();
}

int32_t FindToken(const std::unordered_map<std::string, int32_t>& ids, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (const auto it = ids.find(name); it != ids.end()) return it->second;
  }
  return -1;
}

bool IsBytePiece(const std::string& s) {
  return s.size() == 6 && s.starts_with("<0x") && s[5] == '>' && std::isxdigit(static_cast<unsigned char>(s[3])) &&
         std::isxdigit(static_cast<unsigned char>(s[4]));
}

}  // namespace

Result<TokenizerSpec> ParseTokenizerJson(std::string_view text, const std::string& path) {
  const Json root = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Err("{}: not valid JSON", path);
  if (!root.is_object()) return Err("{}: expected a JSON object at the top level", path);
  const Reader r(path);

  const Json* model = r.Member(root, "model");
  if (model == nullptr || !model->is_object()) return r.Error("model", "expected an object");
  const std::string model_type = r.StringOr(*model, "type", "BPE");  // older files omit it
  if (model_type != "BPE") {
    return r.Error("model.type", fmt::format("\"{}\" is not supported (rtnq reads BPE models)", model_type));
  }
  for (const char* unsupported : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const Json* v = r.Member(*model, unsupported);
    if (v != nullptr && !(v->is_string() && v->get<std::string>().empty())) {
      return r.Error(std::string("model.") + unsupported, "is set; not supported");
    }
  }

  PreTokenizerInfo pre;
  if (const Json* p = r.Member(root, "pre_tokenizer")) RTNQ_RETURN_IF_ERROR(CollectPreTokenizers(r, *p, "pre_tokenizer", &pre));
  NormalizerInfo norm;
  if (const Json* n = r.Member(root, "normalizer")) RTNQ_RETURN_IF_ERROR(CollectNormalizers(r, *n, "normalizer", &norm));

  TokenizerSpec spec;
  const bool byte_fallback = r.BoolOr(*model, "byte_fallback", false);
  if (pre.byte_level) {
    spec.kind = TokenizerKind::kByteLevelBpe;
    spec.add_space_prefix = false;
    if (pre.byte_level_prefix_space) {
      return r.Error("pre_tokenizer", "ByteLevel add_prefix_space=true is not supported");
    }
    if (pre.metaspace || norm.replaces_space) {
      return r.Error("pre_tokenizer", "ByteLevel combined with Metaspace / \"\xE2\x96\x81\" is not supported");
    }
    std::vector<std::string> regexes = pre.split_regexes;
    if (pre.byte_level_regex) regexes.push_back(kGpt2Pattern);
    if (regexes.empty()) return r.Error("pre_tokenizer", "ByteLevel without a regex (Split or use_regex) is not supported");
    spec.pre.clear();
    for (const KnownPre& k : KnownPres()) {
      if (regexes == k.regexes) spec.pre = k.pre;
    }
    if (spec.pre.empty()) {
      if (regexes.size() > 1) {
        return r.Error("pre_tokenizer", fmt::format("{} split patterns that match no known pre-tokenizer; "
                                                    "only a single custom regex is supported", regexes.size()));
      }
      spec.pre = "custom";
      spec.pre_regex = regexes[0];
    }
  } else if (pre.metaspace || norm.replaces_space) {
    spec.kind = TokenizerKind::kSentencePieceBpe;
    spec.pre = "default";
    if (!pre.split_regexes.empty()) return r.Error("pre_tokenizer", "Split before SentencePiece BPE is not supported");
    spec.add_space_prefix = pre.metaspace ? pre.metaspace_prepend != "never" : norm.prepends_space;
  } else {
    return r.Error("pre_tokenizer",
                   "neither ByteLevel (GPT-2 style) nor Metaspace / Replace(\" \" -> \"\xE2\x96\x81\") "
                   "(SentencePiece style): unsupported BPE flavour");
  }
  spec.ignore_merges = r.BoolOr(*model, "ignore_merges", false);

  // Vocabulary: model.vocab plus added_tokens (which may extend it).
  const Json* vocab = r.Member(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object() || vocab->empty()) {
    return r.Error("model.vocab", "expected a non-empty object token -> id");
  }
  RTNQ_ASSIGN_OR_RETURN(std::vector<AddedToken> added, ReadAddedTokens(r, root));
  TokenTable table(r, vocab->size() + added.size());
  for (const auto& [token, id] : vocab->items()) {
    if (!id.is_number_integer()) {
      return r.Error("model.vocab", fmt::format("token \"{}\": expected an integer id, found {}", token, id.type_name()));
    }
    RTNQ_RETURN_IF_ERROR(table.Set(id.get<int64_t>(), token, "model.vocab"));
  }
  for (size_t i = 0; i < added.size(); ++i) {
    RTNQ_RETURN_IF_ERROR(table.Set(added[i].id, added[i].content, fmt::format("added_tokens[{}]", i)));
  }
  RTNQ_ASSIGN_OR_RETURN(spec.tokens, table.Finish());
  const size_t n = spec.tokens.size();
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return r.Error("model.vocab", "too many tokens");

  std::unordered_map<std::string, int32_t> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) ids[spec.tokens[i]] = static_cast<int32_t>(i);
  RTNQ_RETURN_IF_ERROR(ReadMerges(r, *model, ids, &spec));
  if (spec.kind == TokenizerKind::kByteLevelBpe && spec.merges.empty()) {
    return r.Error("model.merges", "a byte-level BPE needs merges");
  }

  spec.types.assign(n, TokenType::kNormal);
  if (spec.kind == TokenizerKind::kSentencePieceBpe && byte_fallback) {
    for (size_t i = 0; i < n; ++i) {
      if (IsBytePiece(spec.tokens[i])) spec.types[i] = TokenType::kByte;
    }
  }
  for (const AddedToken& a : added) {
    spec.types[a.id] = a.special ? TokenType::kControl : TokenType::kUserDefined;
  }
  if (const Json* unk = r.Member(*model, "unk_token")) {
    if (!unk->is_string()) return r.Error("model.unk_token", "expected a string");
    const auto it = ids.find(unk->get<std::string>());
    if (it == ids.end()) return r.Error("model.unk_token", fmt::format("\"{}\" is not a token", unk->get<std::string>()));
    spec.unk_id = it->second;
    spec.types[it->second] = TokenType::kUnknown;
  }

  if (spec.kind == TokenizerKind::kSentencePieceBpe) {
    // SentencePiece merges by the score of the merged piece; a tokenizer.json has only merge
    // ranks. A token's score is minus the rank of the first merge that produces it, so lower
    // ranks win as in HF's BPE; tokens no merge produces (characters, bytes, specials) score
    // below every merge.
    const float no_merge = -static_cast<float>(spec.merges.size()) - 1.0f;
    spec.scores.assign(n, no_merge);
    for (size_t rank = spec.merges.size(); rank-- > 0;) {
      const std::string& m = spec.merges[rank];
      // Stored "left right"; try each space, as tokens may contain spaces (array merges).
      for (size_t sp = m.find(' '); sp != std::string::npos; sp = m.find(' ', sp + 1)) {
        const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
        if (ids.count(left) && ids.count(right)) {
          if (const auto it = ids.find(left + right); it != ids.end()) spec.scores[it->second] = -static_cast<float>(rank);
          break;
        }
      }
    }
  }

  // BOS/EOS: what the post-processor adds, else well-known names (the model config may
  // override; tokenizer.json does not name them otherwise).
  std::vector<std::string> before, after;
  if (const Json* post = r.Member(root, "post_processor")) {
    RTNQ_RETURN_IF_ERROR(ReadPostProcessor(r, *post, "post_processor", &before, &after));
  }
  const auto special_id = [&](const std::string& name, const char* side) -> Result<int32_t> {
    const auto it = ids.find(name);
    if (it == ids.end()) {
      return r.Error("post_processor", fmt::format("{} special token \"{}\" is not a token", side, name));
    }
    return it->second;
  };
  if (!before.empty()) {
    RTNQ_ASSIGN_OR_RETURN(spec.bos_id, special_id(before[0], "leading"));
    spec.add_bos = true;
  } else {
    spec.bos_id = FindToken(ids, {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>"});
  }
  if (!after.empty()) {
    RTNQ_ASSIGN_OR_RETURN(spec.eos_id, special_id(after[0], "trailing"));
    spec.add_eos = true;
  } else {
    spec.eos_id = FindToken(ids, {"<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>"});
  }
  return spec;
}

Result<TokenizerSpec> ReadTokenizerJson(const std::string& path) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseTokenizerJson(text, path);
}

}  // namespace rtnq
