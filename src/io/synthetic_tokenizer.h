// The tokenizer.json written with synthetic models: a GPT-2-style byte-level BPE whose merges are
// learned deterministically from a short embedded English paragraph, followed by added special
// tokens (BOS/EOS at the config's ids, <|reserved_special_token_N|> fillers up to vocab_size).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/model_config.h"
#include "base/status.h"

namespace rtnq {

// GPT-2's bytes_to_unicode map: byte b is written as the UTF-8 of this code point.
uint32_t ByteToUnicode(uint8_t b);

struct SyntheticVocab {
  std::vector<std::string> tokens;   // id -> piece (byte-level unicode form for BPE pieces)
  std::vector<std::string> merges;   // "left right", in rank order
  int64_t num_bpe_tokens = 0;        // ids [0, num_bpe_tokens) are the BPE model's vocabulary
  std::vector<bool> is_filler;       // reserved tokens nobody uses (their embeddings are ~0)
};

// The vocabulary for `config` (vocab_size, bos/eos ids). Errors if BOS/EOS ids fall inside the
// 256 byte tokens or outside the vocabulary.
Result<SyntheticVocab> BuildSyntheticVocab(const ModelConfig& config);

// tokenizer.json and tokenizer_config.json for PreTrainedTokenizerFast.
std::string SyntheticTokenizerJson(const ModelConfig& config, const SyntheticVocab& vocab);
std::string SyntheticTokenizerConfigJson(const ModelConfig& config, const SyntheticVocab& vocab);

// The text the merges are learned from (exposed for tests).
const char* SyntheticTokenizerCorpus();

}  // namespace rtnq
