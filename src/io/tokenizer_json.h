// HF tokenizer.json (BPE models: SentencePiece-style with byte_fallback, or ByteLevel) ->
// TokenizerSpec. Validates ids, merges and added tokens; never aborts.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"
#include "io/tokenizer_spec.h"

namespace rtnq {

Result<TokenizerSpec> ParseTokenizerJson(std::string_view json, const std::string& path);
Result<TokenizerSpec> ReadTokenizerJson(const std::string& path);

}  // namespace rtnq
