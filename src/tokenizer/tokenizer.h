// Tokenizers: SentencePiece-style BPE (LLaMA-1/2, llama2.c) and byte-level BPE (GPT-2,
// Llama-3, Qwen2), built from a TokenizerSpec. Encodings match llama.cpp's / HF tokenizers'.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "io/tokenizer_spec.h"

namespace rtnq {

struct EncodeOptions {
  bool add_special = true;    // add BOS (and EOS) as the tokenizer's policy says
  bool parse_special = false; // recognise control/user-defined token texts like "<|eot_id|>"
};

class Tokenizer {
 public:
  static Result<std::unique_ptr<Tokenizer>> Create(const TokenizerSpec& spec);
  virtual ~Tokenizer() = default;

  virtual std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& opts = {}) const = 0;
  // Bytes of one token as it appears in decoded text (SPM "▁" -> " ", byte tokens -> the byte,
  // byte-level symbols -> raw bytes; may be a partial UTF-8 sequence). Control tokens give "".
  virtual std::string TokenToPiece(int32_t id) const = 0;
  // Decodes a whole sequence; SPM drops the space that add_space_prefix introduced.
  virtual std::string Decode(std::span<const int32_t> ids) const = 0;

  const TokenizerSpec& spec() const { return spec_; }
  int32_t vocab_size() const { return static_cast<int32_t>(spec_.tokens.size()); }
  int32_t bos_id() const { return spec_.bos_id; }
  int32_t eos_id() const { return spec_.eos_id; }

 protected:
  explicit Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {}
  TokenizerSpec spec_;
};

}  // namespace rtnq
