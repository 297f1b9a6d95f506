// libFuzzer target: arbitrary bytes as config.json / generation_config.json. Must never crash;
// a config it accepts must survive the writer (HfConfigJson) and parse back to the same sizes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "io/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = rtnq::ParseHfConfig(text, "fuzz/config.json");
  rtnq::ModelConfig m;
  (void)rtnq::ApplyGenerationConfig(text, "fuzz/generation_config.json", &m);
  if (!c.ok()) return 0;
  (void)c->config.NumParameters();
  auto back = rtnq::ParseHfConfig(rtnq::HfConfigJson(c->config, "bfloat16").dump(), "rewritten");
  if (!back.ok()) std::abort();
  const rtnq::ModelConfig& a = c->config;
  const rtnq::ModelConfig& b = back->config;
  if (a.hidden_size != b.hidden_size || a.num_layers != b.num_layers || a.head_dim != b.head_dim ||
      a.num_kv_heads != b.num_kv_heads || a.vocab_size != b.vocab_size ||
      a.attention_bias != b.attention_bias || a.eos_token_ids != b.eos_token_ids ||
      a.rope_scaling.type != b.rope_scaling.type) {
    std::abort();
  }
  return 0;
}
