#include "tokenizer/tokenizer.h"

#include "tokenizer/tokenizer_kinds.h"
#include "tokenizer/vocab_common.h"

namespace rtnq {

Result<std::unique_ptr<Tokenizer>> Tokenizer::Create(const TokenizerSpec& spec) {
  RTNQ_RETURN_IF_ERROR(tokenizer_internal::ValidateSpec(spec));
  switch (spec.kind) {
    case TokenizerKind::kSentencePieceBpe:
      return tokenizer_internal::CreateSentencePieceBpe(spec);
    case TokenizerKind::kByteLevelBpe:
      return tokenizer_internal::CreateByteLevelBpe(spec);
  }
  return Err("tokenizer: unknown kind {}", static_cast<int>(spec.kind));
}

}  // namespace rtnq
