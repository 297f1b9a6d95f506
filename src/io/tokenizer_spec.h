// The data that defines a tokenizer, as read from a file (GGUF tokenizer.ggml.*, HF
// tokenizer.json, llama2.c tok*.bin). The algorithms live in src/tokenizer; readers fill this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rtnq {

enum class TokenizerKind {
  kSentencePieceBpe,  // scores decide merges; "▁" for space; <0xXX> byte fallback (LLaMA-1/2)
  kByteLevelBpe,      // merge ranks over GPT-2 byte-to-unicode symbols (GPT-2, Llama-3, Qwen2)
};

// Token attributes, numbered as GGUF's tokenizer.ggml.token_type.
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // special: <s>, </s>, <|begin_of_text|>
  kUserDefined = 4,  // added tokens matched verbatim before BPE
  kUnused = 5,
  kByte = 6,         // <0x0A>-style byte-fallback pieces
};

struct TokenizerSpec {
  TokenizerKind kind = TokenizerKind::kSentencePieceBpe;
  // Pre-tokenizer name, as GGUF's tokenizer.ggml.pre: "default" (SPM: none), "gpt-2", "llama-bpe"
  // (Llama-3), "qwen2", ...
  std::string pre = "default";
  // Byte-level BPE: an explicit pre-tokenizer regex (PCRE2 syntax; from a tokenizer.json whose
  // Split pattern matches no known `pre`). When set it replaces the patterns `pre` names.
  std::string pre_regex;
  // Byte-level BPE: a pre-token that is itself a token is emitted whole, without merges (HF
  // model.ignore_merges; llama.cpp sets it for Llama-3's pre-tokenizer).
  bool ignore_merges = false;
  std::vector<std::string> tokens;      // id -> piece (byte-level pieces in GPT-2 unicode form)
  std::vector<float> scores;            // SPM merge priorities; may be empty for byte-level BPE
  std::vector<TokenType> types;         // may be empty: all normal
  std::vector<std::string> merges;      // byte-level BPE: "left right", rank = index
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = true;  // SPM: prepend "▁" to the text (LLaMA's "add_dummy_prefix")
};

}  // namespace rtnq
