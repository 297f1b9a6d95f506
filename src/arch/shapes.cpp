#include "arch/shapes.h"

namespace rtnq {
namespace {

ModelConfig Llama3(int64_t hidden, int64_t inter, int64_t layers, int64_t heads, int64_t kv,
                   bool tied, double rope_factor) {
  ModelConfig c;
  c.family = ArchFamily::kLlama;
  c.vocab_size = 128256;
  c.hidden_size = hidden;
  c.intermediate_size = inter;
  c.num_layers = layers;
  c.num_heads = heads;
  c.num_kv_heads = kv;
  c.head_dim = hidden / heads;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling = {RopeScalingType::kLlama3, rope_factor, 1.0, 4.0, 8192};
  c.max_position_embeddings = 131072;
  c.tie_word_embeddings = tied;
  c.bos_token_ids = {128000};
  c.eos_token_ids = {128001};
  return c;
}

struct NamedShape {
  const char* name;
  ModelConfig (*make)();
};

const NamedShape kShapes[] = {
    {"llama-3.2-1b", [] { return Llama3(2048, 8192, 16, 32, 8, true, 32.0); }},
    {"llama-3.2-3b", [] { return Llama3(3072, 8192, 28, 24, 8, true, 32.0); }},
    {"llama-3.1-8b", [] { return Llama3(4096, 14336, 32, 32, 8, false, 8.0); }},
    {"llama-3.1-70b", [] { return Llama3(8192, 28672, 80, 64, 8, false, 8.0); }},
    {"llama-3.1-405b", [] { return Llama3(16384, 53248, 126, 128, 8, false, 8.0); }},
    {"qwen2.5-0.5b",
     [] {
       ModelConfig c;
       c.family = ArchFamily::kQwen2;
       c.vocab_size = 151936;
       c.hidden_size = 896;
       c.intermediate_size = 4864;
       c.num_layers = 24;
       c.num_heads = 14;
       c.num_kv_heads = 2;
       c.head_dim = 64;
       c.rms_norm_eps = 1e-6;
       c.rope_theta = 1000000.0;
       c.max_position_embeddings = 32768;
       c.tie_word_embeddings = true;
       c.attention_bias = true;
       c.bos_token_ids = {};
       c.eos_token_ids = {151643};
       return c;
     }},
    // Tiny shapes for tests: the same structure (GQA, llama3 RoPE, tied / qkv bias), small sizes.
    {"tiny-llama3",
     [] {
       ModelConfig c = Llama3(64, 160, 3, 4, 2, true, 8.0);
       c.vocab_size = 320;
       c.bos_token_ids = {318};
       c.eos_token_ids = {319};
       c.rope_scaling.original_max_position = 64;  // so the llama3 frequency bands all occur
       c.max_position_embeddings = 512;
       return c;
     }},
    {"tiny-qwen2",
     [] {
       ModelConfig c;
       c.family = ArchFamily::kQwen2;
       c.vocab_size = 320;
       c.hidden_size = 64;
       c.intermediate_size = 96;
       c.num_layers = 2;
       c.num_heads = 4;
       c.num_kv_heads = 2;
       c.head_dim = 16;
       c.rms_norm_eps = 1e-6;
       c.rope_theta = 1000000.0;
       c.max_position_embeddings = 512;
       c.tie_word_embeddings = false;
       c.attention_bias = true;
       c.eos_token_ids = {319};
       return c;
     }},
};

}  // namespace

std::optional<ModelConfig> KnownShape(std::string_view name) {
  for (const auto& s : kShapes) {
    if (name == s.name) return s.make();
  }
  return std::nullopt;
}

std::vector<std::string> KnownShapeNames() {
  std::vector<std::string> names;
  for (const auto& s : kShapes) names.emplace_back(s.name);
  return names;
}

}  // namespace rtnq
