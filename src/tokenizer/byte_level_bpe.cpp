// Byte-level BPE (GPT-2, Llama-3, Qwen2) as llama.cpp's llm_tokenizer_bpe and HF tokenizers:
// special tokens split first, a regex pre-tokenizer cuts each text fragment into words, every
// byte of a word becomes its GPT-2 unicode symbol, and adjacent symbols merge by lowest merge
// rank (ties: leftmost) until no listed merge applies. Merges work on token ids; words are
// cached, so repeated words cost one hash lookup.
#include <array>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer_kinds.h"
#include "tokenizer/unicode_bytes.h"
#include "tokenizer/vocab_common.h"

namespace rtnq::tokenizer_internal {
namespace {

constexpr size_t kMaxCachedWords = 1 << 16;  // cleared when full: bounds memory on huge inputs
constexpr size_t kMaxCachedWordBytes = 256;  // long "words" (runs of one class) are not cached

struct Merge {
  int32_t rank;
  int32_t result;
};

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct Symbol {
  int32_t id;  // -1: the byte's symbol is not in the vocabulary
  int prev;
  int next;
  bool alive;
};

struct Bigram {
  int32_t rank;
  int left;
  int right;
  int32_t left_id;
  int32_t right_id;
  int32_t result;
};

struct BigramOrder {  // priority_queue puts the "largest" first: lowest rank, then leftmost
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  ByteLevelBpeTokenizer(TokenizerSpec spec, RegexSplitter splitter)
      : Tokenizer(std::move(spec)),
        types_(ResolveTypes(spec_)),
        index_(BuildTokenIndex(spec_.tokens)),
        specials_(spec_.tokens, types_),
        splitter_(std::move(splitter)),
        ignore_merges_(spec_.ignore_merges || (spec_.pre_regex.empty() && PreImpliesIgnoreMerges(spec_.pre))) {
    for (int b = 0; b < 256; ++b) byte_symbol_ids_[b] = Lookup(index_, ByteToSymbol(static_cast<uint8_t>(b)));
    BuildMerges();
    pieces_.reserve(spec_.tokens.size());
    for (size_t id = 0; id < spec_.tokens.size(); ++id) pieces_.push_back(MakePiece(id));
  }

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& opts) const override {
    std::vector<int32_t> out;
    if (opts.add_special && spec_.add_bos) out.push_back(spec_.bos_id);
    std::vector<std::string_view> words;
    for (const Fragment& f : specials_.Split(text, opts.parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        continue;
      }
      words.clear();
      splitter_.Split(text.substr(f.offset, f.length), &words);
      for (std::string_view word : words) EncodeWord(word, &out);
    }
    if (opts.add_special && spec_.add_eos) out.push_back(spec_.eos_id);
    return out;
  }

  std::string TokenToPiece(int32_t id) const override {
    if (id < 0 || id >= vocab_size()) return "";
    return pieces_[id];
  }

  std::string Decode(std::span<const int32_t> ids) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id >= 0 && id < vocab_size()) out += pieces_[id];
    }
    return out;
  }

 private:
  // Splits "left right" into two tokens. Tokens may themselves contain spaces (merges from a
  // tokenizer.json array), so every space is tried until both sides are tokens.
  bool SplitMerge(std::string_view merge, int32_t* left, int32_t* right) const {
    for (size_t sp = merge.find(' '); sp != std::string_view::npos; sp = merge.find(' ', sp + 1)) {
      *left = Lookup(index_, merge.substr(0, sp));
      *right = Lookup(index_, merge.substr(sp + 1));
      if (*left >= 0 && *right >= 0) return true;
    }
    return false;
  }

  // Merges whose parts or result are not tokens can never produce a token and are skipped; a
  // repeated pair keeps its first (best) rank.
  void BuildMerges() {
    merges_.reserve(spec_.merges.size());
    std::string joined;
    for (size_t rank = 0; rank < spec_.merges.size(); ++rank) {
      int32_t left, right;
      if (!SplitMerge(spec_.merges[rank], &left, &right)) continue;
      joined = spec_.tokens[left];
      joined += spec_.tokens[right];
      const int32_t result = Lookup(index_, joined);
      if (result < 0) continue;
      merges_.try_emplace(PairKey(left, right), Merge{static_cast<int32_t>(rank), result});
    }
  }

  std::string MakePiece(size_t id) const {
    const std::string& text = spec_.tokens[id];
    switch (types_[id]) {
      case TokenType::kNormal:
        return SymbolsToBytes(text);
      case TokenType::kUserDefined:
        return text;
      case TokenType::kByte: {
        const int b = ParseBytePiece(text);
        return b < 0 ? SymbolsToBytes(text) : std::string(1, static_cast<char>(b));
      }
      default:  // control, unknown, unused, undefined: not part of the text
        return "";
    }
  }

  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      const auto it = cache_.find(word);
      if (it != cache_.end()) {
        out->insert(out->end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> ids;
    MergeWord(word, &ids);
    out->insert(out->end(), ids.begin(), ids.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() >= kMaxCachedWords) cache_.clear();
      cache_.emplace(std::string(word), std::move(ids));
    }
  }

  void TryAddBigram(const std::vector<Symbol>& symbols, int left, int right,
                    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder>* queue) const {
    if (left < 0 || right < 0) return;
    const int32_t l = symbols[left].id, r = symbols[right].id;
    if (l < 0 || r < 0) return;
    const auto it = merges_.find(PairKey(l, r));
    if (it == merges_.end()) return;
    queue->push({it->second.rank, left, right, l, r, it->second.result});
  }

  void MergeWord(std::string_view word, std::vector<int32_t>* out) const {
    if (ignore_merges_) {
      const int32_t whole = Lookup(index_, BytesToSymbols(word));
      if (whole >= 0) {
        out->push_back(whole);
        return;
      }
    }
    const int n = static_cast<int>(word.size());
    std::vector<Symbol> symbols(n);
    for (int i = 0; i < n; ++i) {
      symbols[i] = {byte_symbol_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1, true};
    }
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    for (int i = 1; i < n; ++i) TryAddBigram(symbols, i - 1, i, &queue);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& left = symbols[b.left];
      Symbol& right = symbols[b.right];
      // Stale entries: a side was merged away or changed since the pair was queued.
      if (!left.alive || !right.alive || left.next != b.right || left.id != b.left_id ||
          right.id != b.right_id) {
        continue;
      }
      left.id = b.result;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = b.left;
      TryAddBigram(symbols, left.prev, b.left, &queue);
      TryAddBigram(symbols, b.left, left.next, &queue);
    }
    for (int i = n > 0 ? 0 : -1; i != -1; i = symbols[i].next) {
      if (symbols[i].id >= 0) {
        out->push_back(symbols[i].id);
      } else if (spec_.unk_id >= 0) {
        out->push_back(spec_.unk_id);
      }
    }
  }

  std::vector<TokenType> types_;
  TokenIndex index_;
  SpecialTokenSplitter specials_;
  RegexSplitter splitter_;
  bool ignore_merges_;
  std::array<int32_t, 256> byte_symbol_ids_{};
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<std::string> pieces_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> CreateByteLevelBpe(const TokenizerSpec& spec) {
  std::vector<std::string> patterns;
  if (!spec.pre_regex.empty()) {
    patterns = {spec.pre_regex};
  } else {
    RTNQ_ASSIGN_OR_RETURN(patterns, PreTokenizerPatterns(spec.pre));
  }
  RTNQ_ASSIGN_OR_RETURN(RegexSplitter splitter, RegexSplitter::Create(patterns));
  return std::unique_ptr<Tokenizer>(new ByteLevelBpeTokenizer(spec, std::move(splitter)));
}

}  // namespace rtnq::tokenizer_internal
