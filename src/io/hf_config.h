// Hugging Face config.json <-> ModelConfig for LlamaForCausalLM, MistralForCausalLM and
// Qwen2ForCausalLM. Missing optional keys take transformers' defaults; a key of the wrong type is
// an error naming the key.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "arch/model_config.h"
#include "base/status.h"

namespace rtnq {

struct HfConfig {
  ModelConfig config;
  std::string architecture;  // e.g. "LlamaForCausalLM"
  std::string model_type;    // e.g. "llama" (may be empty)
  std::string torch_dtype;   // e.g. "bfloat16" (may be empty)
};

// `path` names the file in error messages.
Result<HfConfig> ParseHfConfig(std::string_view json_text, const std::string& path);
Result<HfConfig> ReadHfConfig(const std::string& path);

// Fills config->bos_token_ids / eos_token_ids from a generation_config.json when the config has
// none of its own.
Status ApplyGenerationConfig(std::string_view json_text, const std::string& path,
                             ModelConfig* config);

// The config.json and generation_config.json transformers would write for `config`.
// `torch_dtype` is "bfloat16", "float16" or "float32".
nlohmann::ordered_json HfConfigJson(const ModelConfig& config, const std::string& torch_dtype);
nlohmann::ordered_json HfGenerationConfigJson(const ModelConfig& config);

}  // namespace rtnq
