#include "io/synthetic_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <set>

namespace rtnq {
namespace {

using OrderedJson = nlohmann::ordered_json;

// At most this many merge tokens (enough for the corpus below to be mostly whole words).
constexpr int64_t kMaxMergeTokens = 400;

constexpr const char kCorpus[] =
    "The old lighthouse stood at the end of the long stone pier, and every night the keeper "
    "climbed the narrow stairs to light the lamp. She watched the ships come in from the sea and "
    "go out again with the tide. In the morning she wrote in her book: the wind, the weather, the "
    "names of the boats, and the number of birds on the rocks. The town below slept while the "
    "light turned and turned. When the storms came, the waves broke over the pier and the windows "
    "shook, but the lamp never went out. People in the town said that the sea and the keeper knew "
    "each other well, and that the light would keep them safe as long as she was there to tend "
    "it. In 1893 there were 12 boats; now there are 40, and she can't count them all.\n";

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xc0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    s += static_cast<char>(0xe0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    s += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return s;
}

// Byte order of GPT-2's vocabulary: the printable bytes first, then the rest (remapped to 256+).
std::vector<uint8_t> ByteTokenOrder() {
  std::vector<uint8_t> order;
  for (int b = 0; b < 256; ++b) {
    if (ByteToUnicode(static_cast<uint8_t>(b)) == static_cast<uint32_t>(b)) order.push_back(b);
  }
  for (int b = 0; b < 256; ++b) {
    if (ByteToUnicode(static_cast<uint8_t>(b)) != static_cast<uint32_t>(b)) order.push_back(b);
  }
  return order;
}

// ASCII version of GPT-2's pre-tokenizer regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
std::vector<std::string> PreTokenize(const std::string& text) {
  std::vector<std::string> words;
  const size_t n = text.size();
  auto is_space = [&](size_t i) { return std::isspace(static_cast<unsigned char>(text[i])) != 0; };
  auto is_alpha = [&](size_t i) { return std::isalpha(static_cast<unsigned char>(text[i])) != 0; };
  auto is_digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(text[i])) != 0; };
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    if (text[i] == '\'') {
      for (const char* c : {"s", "t", "re", "ve", "m", "ll", "d"}) {
        if (text.compare(i + 1, std::strlen(c), c) == 0) {
          end = i + 1 + std::strlen(c);
          break;
        }
      }
    }
    if (end == i) {
      size_t j = (text[i] == ' ' && i + 1 < n && !is_space(i + 1)) ? i + 1 : i;
      if (!is_space(j)) {
        end = j;
        if (is_alpha(j)) {
          while (end < n && is_alpha(end)) ++end;
        } else if (is_digit(j)) {
          while (end < n && is_digit(end)) ++end;
        } else {
          while (end < n && !is_space(end) && !is_alpha(end) && !is_digit(end)) ++end;
        }
      } else {
        size_t k = i;
        while (k < n && is_space(k)) ++k;
        end = (k == n || k - i == 1) ? k : k - 1;
      }
    }
    words.push_back(text.substr(i, end - i));
    i = end;
  }
  return words;
}

}  // namespace

uint32_t ByteToUnicode(uint8_t b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  if (printable) return b;
  // The n-th non-printable byte (in byte order) maps to 256 + n.
  uint32_t n = 0;
  for (int c = 0; c < b; ++c) {
    const bool p = (c >= '!' && c <= '~') || (c >= 0xa1 && c <= 0xac) || c >= 0xae;
    if (!p) ++n;
  }
  return 256 + n;
}

const char* SyntheticTokenizerCorpus() { return kCorpus; }

Result<SyntheticVocab> BuildSyntheticVocab(const ModelConfig& config) {
  const int64_t vocab = config.vocab_size;
  std::set<int64_t> special_ids;
  for (int32_t id : config.bos_token_ids) special_ids.insert(id);
  for (int32_t id : config.eos_token_ids) special_ids.insert(id);
  for (int64_t id : special_ids) {
    if (id < 256 || id >= vocab) {
      return Err("special token id {} must lie in [256, vocab_size {}) after the byte tokens", id,
                 vocab);
    }
  }
  const int64_t first_special = special_ids.empty() ? vocab : *special_ids.begin();
  const int64_t merge_budget = std::min(kMaxMergeTokens, first_special - 256);

  SyntheticVocab v;
  std::map<std::string, int64_t> ids;
  for (uint8_t b : ByteTokenOrder()) {
    ids[Utf8(ByteToUnicode(b))] = static_cast<int64_t>(v.tokens.size());
    v.tokens.push_back(Utf8(ByteToUnicode(b)));
  }

  // Greedy BPE training: merge the most frequent adjacent pair (ties: the smallest pair).
  std::map<std::vector<std::string>, int64_t> words;  // symbols -> count
  for (const std::string& w : PreTokenize(kCorpus)) {
    std::vector<std::string> symbols;
    for (unsigned char c : w) symbols.push_back(Utf8(ByteToUnicode(c)));
    ++words[symbols];
  }
  int64_t added = 0;
  while (added < merge_budget) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& [symbols, count] : words) {
      for (size_t i = 0; i + 1 < symbols.size(); ++i) pairs[{symbols[i], symbols[i + 1]}] += count;
    }
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it) {
      if (it->second > best->second) best = it;
    }
    const auto [left, right] = best->first;
    const std::string merged = left + right;
    std::map<std::vector<std::string>, int64_t> next;
    for (const auto& [symbols, count] : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          out.push_back(merged);
          ++i;
        } else {
          out.push_back(symbols[i]);
        }
      }
      next[out] += count;
    }
    words = std::move(next);
    v.merges.push_back(left + " " + right);
    if (!ids.count(merged)) {
      ids[merged] = static_cast<int64_t>(v.tokens.size());
      v.tokens.push_back(merged);
      ++added;
    }
  }
  v.num_bpe_tokens = static_cast<int64_t>(v.tokens.size());
  v.is_filler.assign(static_cast<size_t>(vocab), false);

  const bool qwen = config.family == ArchFamily::kQwen2;
  int64_t reserved = 0;
  for (int64_t id = v.num_bpe_tokens; id < vocab; ++id) {
    const bool bos = std::count(config.bos_token_ids.begin(), config.bos_token_ids.end(), id) > 0;
    const bool eos = std::count(config.eos_token_ids.begin(), config.eos_token_ids.end(), id) > 0;
    if (bos) {
      v.tokens.push_back("<|begin_of_text|>");
    } else if (eos) {
      v.tokens.push_back(qwen ? "<|endoftext|>" : "<|end_of_text|>");
    } else {
      v.tokens.push_back(fmt::format("<|reserved_special_token_{}|>", reserved++));
      v.is_filler[static_cast<size_t>(id)] = true;
    }
  }
  if (static_cast<int64_t>(v.tokens.size()) != vocab) {
    return Err("vocab_size {} is too small for 256 byte tokens and the special tokens", vocab);
  }
  return v;
}

std::string SyntheticTokenizerJson(const ModelConfig& config, const SyntheticVocab& v) {
  const auto added_token = [&](int64_t id) {
    OrderedJson t;
    t["id"] = id;
    t["content"] = v.tokens[static_cast<size_t>(id)];
    t["single_word"] = false;
    t["lstrip"] = false;
    t["rstrip"] = false;
    t["normalized"] = false;
    t["special"] = true;
    return t;
  };
  // transformers' added tokens get consecutive ids after the BPE vocabulary, in listed order,
  // which is why the specials fill [num_bpe_tokens, vocab_size) without gaps.
  OrderedJson added = OrderedJson::array();
  for (int64_t id = v.num_bpe_tokens; id < static_cast<int64_t>(v.tokens.size()); ++id) {
    added.push_back(added_token(id));
  }
  OrderedJson vocab = OrderedJson::object();
  for (int64_t id = 0; id < v.num_bpe_tokens; ++id) vocab[v.tokens[static_cast<size_t>(id)]] = id;

  OrderedJson post = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                      {"use_regex", false}};
  if (!config.bos_token_ids.empty()) {
    // Llama-3 style: prepend BOS to every sequence.
    const std::string bos = v.tokens[static_cast<size_t>(config.bos_token_ids[0])];
    const auto special = OrderedJson{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}};
    post = {{"type", "TemplateProcessing"},
            {"single", {special, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"pair",
             {special,
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
              OrderedJson{{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
              {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
            {"special_tokens",
             {{bos, {{"id", bos}, {"ids", {config.bos_token_ids[0]}}, {"tokens", {bos}}}}}}};
  }
  OrderedJson j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = added;
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                        {"use_regex", true}};
  j["post_processor"] = post;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                  {"use_regex", true}};
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"vocab", vocab},
                {"merges", v.merges}};
  return j.dump() + "\n";
}

std::string SyntheticTokenizerConfigJson(const ModelConfig& config, const SyntheticVocab& v) {
  OrderedJson j;
  j["add_bos_token"] = !config.bos_token_ids.empty();
  j["add_eos_token"] = false;
  j["bos_token"] = config.bos_token_ids.empty()
                       ? OrderedJson(nullptr)
                       : OrderedJson(v.tokens[static_cast<size_t>(config.bos_token_ids[0])]);
  j["clean_up_tokenization_spaces"] = false;
  j["eos_token"] = config.eos_token_ids.empty()
                       ? OrderedJson(nullptr)
                       : OrderedJson(v.tokens[static_cast<size_t>(config.eos_token_ids[0])]);
  j["model_input_names"] = {"input_ids", "attention_mask"};
  j["model_max_length"] = config.max_position_embeddings;
  j["tokenizer_class"] = "PreTrainedTokenizerFast";
  return j.dump(2) + "\n";
}

}  // namespace rtnq
