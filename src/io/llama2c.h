// karpathy/llama2.c checkpoints (legacy layout: a 7 x int32 header, then f32 arrays) and its
// tok*.bin tokenizers. See docs/formats/llama2c.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "base/status.h"
#include "io/checkpoint.h"
#include "io/tokenizer_spec.h"

namespace rtnq {

// Parses a llama2.c legacy checkpoint image held in memory: config and tensor views pointing
// into `data` (which must outlive the result). No tokenizer, no file mapping. `path` is used
// only in messages.
Result<Checkpoint> ParseLlama2c(const uint8_t* data, size_t size, const std::string& path);

// Parses a tok*.bin image: int32 max_token_length, then `vocab_size` records of
// (f32 score, int32 length, bytes). Spaces become "▁" and ids 0/1/2 become <unk>/<s>/</s>, as in
// llama.cpp's llama2.c converter, so the result matches the model's SentencePiece vocabulary.
Result<TokenizerSpec> ParseLlama2cTokenizer(const uint8_t* data, size_t size, const std::string& path,
                                            int64_t vocab_size);
Result<TokenizerSpec> ReadLlama2cTokenizer(const std::string& path, int64_t vocab_size);

}  // namespace rtnq
