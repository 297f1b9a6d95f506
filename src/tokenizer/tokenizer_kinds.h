// Constructors of the two tokenizer kinds, used by Tokenizer::Create (spec already validated).
#pragma once

#include <memory>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace rtnq::tokenizer_internal {

Result<std::unique_ptr<Tokenizer>> CreateSentencePieceBpe(const TokenizerSpec& spec);
Result<std::unique_ptr<Tokenizer>> CreateByteLevelBpe(const TokenizerSpec& spec);

}  // namespace rtnq::tokenizer_internal
