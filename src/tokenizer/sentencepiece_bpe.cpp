// SentencePiece-style BPE as llama.cpp's llm_tokenizer_spm: spaces become "▁", the text splits
// into UTF-8 characters, and adjacent pairs whose concatenation is a token merge greedily by
// highest token score (ties: leftmost) through a priority queue. Pieces that are not tokens
// fall back to <0xXX> byte tokens.
#include <algorithm>
#include <array>
#include <queue>
#include <unordered_set>
#include <utility>

#include "tokenizer/tokenizer_kinds.h"
#include "tokenizer/unicode_bytes.h"
#include "tokenizer/vocab_common.h"

namespace rtnq::tokenizer_internal {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581 "▁"

std::string EscapeSpaces(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  for (char c : text) {
    if (c == ' ') {
      out += kSpaceSymbol;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string UnescapeSpaces(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kSpaceSymbol.size()) == kSpaceSymbol) {
      out.push_back(' ');
      i += kSpaceSymbol.size();
    } else {
      out.push_back(piece[i++]);
    }
  }
  return out;
}

struct Symbol {
  size_t start;
  size_t len;  // 0 once merged into its left neighbour
  int prev;
  int next;
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

struct BigramOrder {  // priority_queue puts the "largest" first: highest score, then leftmost
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SentencePieceBpeTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceBpeTokenizer(TokenizerSpec spec)
      : Tokenizer(std::move(spec)),
        types_(ResolveTypes(spec_)),
        index_(BuildTokenIndex(spec_.tokens)),
        specials_(spec_.tokens, types_) {
    for (int b = 0; b < 256; ++b) byte_tokens_[b] = FindByteToken(static_cast<uint8_t>(b));
    pieces_.reserve(spec_.tokens.size());
    for (size_t id = 0; id < spec_.tokens.size(); ++id) pieces_.push_back(MakePiece(id));
    BuildCrossablePairs();
  }

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& opts) const override {
    std::vector<int32_t> out;
    if (opts.add_special && spec_.add_bos) out.push_back(spec_.bos_id);
    bool prev_special = true;  // the first text fragment gets the space prefix
    for (const Fragment& f : specials_.Split(text, opts.parse_special)) {
      if (f.token >= 0) {
        out.push_back(f.token);
        prev_special = true;
        continue;
      }
      std::string raw;
      if (spec_.add_space_prefix && prev_special) raw = " ";
      raw.append(text.substr(f.offset, f.length));
      EncodeEscaped(EscapeSpaces(raw), &out);
      prev_special = false;
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
    bool strip_space = spec_.add_space_prefix;
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size() || pieces_[id].empty()) continue;
      const std::string& piece = pieces_[id];
      // The first piece carries the space the encoder prefixed (llama.cpp's detokenize).
      out.append(piece, strip_space && piece[0] == ' ' ? 1 : 0);
      strip_space = false;
    }
    return out;
  }

 private:
  int32_t FindByteToken(uint8_t b) const {
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char name[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int32_t id = Lookup(index_, std::string_view(name, sizeof(name)));
    if (id < 0) id = Lookup(index_, std::string_view(reinterpret_cast<const char*>(&b), 1));
    return id >= 0 ? id : spec_.unk_id;
  }

  std::string MakePiece(size_t id) const {
    const std::string& text = spec_.tokens[id];
    switch (types_[id]) {
      case TokenType::kNormal:
        return UnescapeSpaces(text);
      case TokenType::kUserDefined:
        return text;
      case TokenType::kByte: {
        const int b = ParseBytePiece(text);
        return b < 0 ? std::string() : std::string(1, static_cast<char>(b));
      }
      default:  // control, unknown, unused, undefined: not part of the text
        return "";
    }
  }

  float Score(int32_t id) const { return spec_.scores.empty() ? 0.0f : spec_.scores[id]; }

  void TryAddBigram(const std::string& text, const std::vector<Symbol>& symbols, int left, int right,
                    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder>* queue) const {
    if (left < 0 || right < 0) return;
    const size_t size = symbols[left].len + symbols[right].len;
    const int32_t id = Lookup(index_, std::string_view(text).substr(symbols[left].start, size));
    if (id < 0) return;
    queue->push({left, right, Score(id), size});
  }

  // Key of two adjacent characters (their bytes, at most 8). Different pairs may share a key;
  // that only makes a boundary look crossable, which is safe.
  static uint64_t PairKey(std::string_view text, size_t start, size_t len) {
    uint64_t key = 0;
    for (size_t i = 0; i < len && i < 8; ++i) key = (key << 8) | static_cast<uint8_t>(text[start + i]);
    return key;
  }

  // Splits `text` into characters as the encoder does (one symbol per UTF-8 character; a
  // malformed byte stands alone).
  static void SplitChars(std::string_view text, std::vector<std::pair<size_t, size_t>>* chars) {
    chars->clear();
    for (size_t pos = 0; pos < text.size();) {
      const size_t len = std::max<size_t>(1, ValidUtf8SequenceLength(text, pos));
      chars->push_back({pos, len});
      pos += len;
    }
  }

  // Every pair of adjacent characters inside some token. Where two neighbouring characters of
  // the input form no such pair, no merge can ever join them, so the text splits there into
  // independent pieces: same result as one priority queue over everything, but small queues.
  void BuildCrossablePairs() {
    std::vector<std::pair<size_t, size_t>> chars;
    for (const std::string& token : spec_.tokens) {
      SplitChars(token, &chars);
      for (size_t i = 1; i < chars.size(); ++i) {
        crossable_pairs_.insert(PairKey(token, chars[i - 1].first, chars[i - 1].second + chars[i].second));
      }
    }
  }

  // `text` has spaces already escaped; appends its tokens to `out`.
  void EncodeEscaped(const std::string& text, std::vector<int32_t>* out) const {
    // One symbol per UTF-8 character. llama.cpp trusts the lead byte's length even when the
    // sequence is malformed (swallowing the next character); a malformed byte stands alone
    // here instead, so it falls back to its byte token. Same result on valid UTF-8.
    std::vector<std::pair<size_t, size_t>> chars;
    SplitChars(text, &chars);
    std::vector<Symbol> symbols;
    size_t begin = 0;
    for (size_t i = 1; i <= chars.size(); ++i) {
      if (i < chars.size() &&
          crossable_pairs_.count(PairKey(text, chars[i - 1].first, chars[i - 1].second + chars[i].second))) {
        continue;
      }
      symbols.clear();
      for (size_t c = begin; c < i; ++c) {
        const int index = static_cast<int>(c - begin);
        symbols.push_back({chars[c].first, chars[c].second, index - 1, c + 1 == i ? -1 : index + 1});
      }
      MergeAndEmit(text, &symbols, out);
      begin = i;
    }
  }

  void MergeAndEmit(const std::string& text, std::vector<Symbol>* symbols_ptr, std::vector<int32_t>* out) const {
    std::vector<Symbol>& symbols = *symbols_ptr;
    if (symbols.empty()) return;
    std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
    for (int i = 1; i < static_cast<int>(symbols.size()); ++i) TryAddBigram(text, symbols, i - 1, i, &queue);
    while (!queue.empty()) {
      const Bigram b = queue.top();
      queue.pop();
      Symbol& left = symbols[b.left];
      Symbol& right = symbols[b.right];
      // Stale entries: one side was merged away or grew since the pair was queued.
      if (left.len == 0 || right.len == 0 || left.len + right.len != b.size) continue;
      left.len += right.len;
      right.len = 0;
      left.next = right.next;
      if (right.next >= 0) symbols[right.next].prev = b.left;
      TryAddBigram(text, symbols, left.prev, b.left, &queue);
      TryAddBigram(text, symbols, b.left, left.next, &queue);
    }

    for (int i = 0; i != -1; i = symbols[i].next) {
      const std::string_view piece = std::string_view(text).substr(symbols[i].start, symbols[i].len);
      const int32_t id = Lookup(index_, piece);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      for (char c : piece) {
        const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(c)];
        if (byte_id >= 0) out->push_back(byte_id);
      }
    }
  }

  std::vector<TokenType> types_;
  TokenIndex index_;
  SpecialTokenSplitter specials_;
  std::array<int32_t, 256> byte_tokens_{};
  std::vector<std::string> pieces_;
  std::unordered_set<uint64_t> crossable_pairs_;
};

}  // namespace

Result<std::unique_ptr<Tokenizer>> CreateSentencePieceBpe(const TokenizerSpec& spec) {
  return std::unique_ptr<Tokenizer>(new SentencePieceBpeTokenizer(spec));
}

}  // namespace rtnq::tokenizer_internal
