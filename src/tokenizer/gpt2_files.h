// OpenAI's original GPT-2 tokenizer files: encoder.json (token -> id) and vocab.bpe (one merge
// "left right" per line after a "#version" header) -> a byte-level TokenizerSpec.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "io/tokenizer_spec.h"

namespace rtnq {

// `*_path` only name the files in messages.
Result<TokenizerSpec> ParseGpt2Vocab(std::string_view encoder_json, const std::string& encoder_path,
                                     std::string_view vocab_bpe, const std::string& vocab_path);
Result<TokenizerSpec> ReadGpt2Vocab(const std::string& encoder_json_path,
                                    const std::string& vocab_bpe_path);

}  // namespace rtnq
