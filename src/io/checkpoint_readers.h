// Per-format entry points behind OpenCheckpoint(). Each returns a Checkpoint whose tensors are
// named canonically; OpenCheckpoint() then runs ValidateCheckpoint() on it.
#pragma once

#include <string>

#include "io/checkpoint.h"

namespace rtnq {

// An HF model directory (or its config.json / a single .safetensors inside it): config.json,
// model.safetensors or model.safetensors.index.json shards, tokenizer.json if present.
Result<Checkpoint> OpenHfCheckpoint(const std::string& path, const OpenOptions& options);
// A GGUF file with general.architecture = llama (tokenizer embedded).
Result<Checkpoint> OpenGgufCheckpoint(const std::string& path, const OpenOptions& options);
// A llama2.c checkpoint (legacy layout); options.tokenizer_path names its tok*.bin.
Result<Checkpoint> OpenLlama2cCheckpoint(const std::string& path, const OpenOptions& options);

// Required tensors present with config-implied shapes and consistent byte sizes; no overlaps.
Status ValidateCheckpoint(const Checkpoint& checkpoint);

}  // namespace rtnq
