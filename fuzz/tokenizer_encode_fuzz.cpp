// libFuzzer target: arbitrary bytes (invalid UTF-8 included) through a byte-level BPE (the
// synthetic GPT-2-style vocab) and a small SentencePiece vocab built in memory. Must not crash
// or hang; where the tokenizer guarantees it, decode(encode(x)) == x.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "arch/shapes.h"
#include "io/synthetic_tokenizer.h"
#include "io/tokenizer_json.h"
#include "tokenizer/tokenizer.h"

namespace {

std::unique_ptr<rtnq::Tokenizer> MakeByteLevel() {
  auto config = rtnq::KnownShape("tiny-llama3");
  auto vocab = rtnq::BuildSyntheticVocab(*config);
  auto spec = rtnq::ParseTokenizerJson(rtnq::SyntheticTokenizerJson(*config, *vocab), "synthetic.json");
  if (!spec.ok()) std::abort();
  spec->tokens.push_back("<tool>");  // a user-defined token, always split out
  spec->types.push_back(rtnq::TokenType::kUserDefined);
  auto tok = rtnq::Tokenizer::Create(*spec);
  if (!tok.ok()) std::abort();
  return std::move(*tok);
}

// <unk> <s> </s>, the 256 byte tokens, then pieces with scores favouring longer ones.
std::unique_ptr<rtnq::Tokenizer> MakeSentencePiece() {
  rtnq::TokenizerSpec spec;
  spec.kind = rtnq::TokenizerKind::kSentencePieceBpe;
  const auto add = [&](std::string text, float score, rtnq::TokenType type) {
    spec.tokens.push_back(std::move(text));
    spec.scores.push_back(score);
    spec.types.push_back(type);
  };
  add("<unk>", 0, rtnq::TokenType::kUnknown);
  add("<s>", 0, rtnq::TokenType::kControl);
  add("</s>", 0, rtnq::TokenType::kControl);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    add(name, 0, rtnq::TokenType::kByte);
  }
  const std::string sp = "\xE2\x96\x81";
  const char* pieces[] = {"e", "t", "a", "o", "n", "h", "s", "T", "r", "d", "th", "he", "the", "an",
                          "and", "on", "ce", "nce", "\xC3\xA9", "\xE4\xB8\x80"};
  float score = -1;
  add(sp, score--, rtnq::TokenType::kNormal);
  for (const char* p : pieces) {
    add(p, score--, rtnq::TokenType::kNormal);
    add(sp + p, score--, rtnq::TokenType::kNormal);
  }
  add(sp + sp, score--, rtnq::TokenType::kNormal);
  spec.unk_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.add_bos = true;
  auto tok = rtnq::Tokenizer::Create(spec);
  if (!tok.ok()) std::abort();
  return std::move(*tok);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto byte_level = MakeByteLevel();
  static const auto spm = MakeSentencePiece();
  if (size == 0) return 0;
  const bool parse_special = data[0] & 1;
  const bool add_special = data[0] & 2;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const rtnq::EncodeOptions opts{.add_special = add_special, .parse_special = parse_special};

  // Byte-level: every byte has a symbol token, user-defined tokens decode to their text, and
  // control tokens only match when parse_special.
  const auto ids = byte_level->Encode(text, opts);
  if (!parse_special && byte_level->Decode(ids) != text) std::abort();

  // SentencePiece: exact unless the text holds "▁" itself (it decodes to a space) or control
  // texts are parsed.
  const auto spm_ids = spm->Encode(text, opts);
  const std::string back = spm->Decode(spm_ids);
  if (!parse_special && text.find("\xE2\x96\x81") == std::string_view::npos && back != text) std::abort();
  return 0;
}
