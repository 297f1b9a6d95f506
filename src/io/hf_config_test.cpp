#include <gtest/gtest.h>

#include "arch/shapes.h"
#include "io/hf_config.h"
#include "io/hf_test_util.h"

namespace rtnq {
namespace {

// Llama-3.1-8B's config.json as published (meta-llama/Llama-3.1-8B).
constexpr const char kLlama31_8B[] = R"({
  "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
  "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
  "mlp_bias": false, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
  "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256})";

// Qwen2.5-0.5B's config.json (Qwen/Qwen2.5-0.5B): no head_dim, no attention_bias key.
constexpr const char kQwen25_05B[] = R"({
  "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
  "eos_token_id": 151643, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
  "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
  "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
  "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
  "sliding_window": 32768, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
  "transformers_version": "4.40.1", "use_cache": true, "use_sliding_window": false,
  "vocab_size": 151936})";

// Mistral-7B-v0.1 (mistralai/Mistral-7B-v0.1): defaults for everything optional.
constexpr const char kMistral7B[] = R"({
  "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
  "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
  "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
  "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
  "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true, "vocab_size": 32000})";

std::string ParseError(const std::string& text) {
  auto r = ParseHfConfig(text, "cfg/config.json");
  EXPECT_FALSE(r.ok()) << text;
  return r.ok() ? "" : r.status().message();
}

// A minimal valid Llama config with `extra` spliced in (later keys override earlier ones).
std::string Llama(const std::string& extra) {
  std::string s = R"({"architectures": ["LlamaForCausalLM"], "vocab_size": 100,
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4)";
  if (!extra.empty()) s += ", " + extra;
  return s + "}";
}

TEST(HfConfig, Llama31MatchesTheKnownShape) {
  auto c = ParseHfConfig(kLlama31_8B, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  const ModelConfig& m = c->config;
  EXPECT_EQ(m.family, ArchFamily::kLlama);
  EXPECT_EQ(m.vocab_size, 128256);
  EXPECT_EQ(m.hidden_size, 4096);
  EXPECT_EQ(m.intermediate_size, 14336);
  EXPECT_EQ(m.num_layers, 32);
  EXPECT_EQ(m.num_heads, 32);
  EXPECT_EQ(m.num_kv_heads, 8);
  EXPECT_EQ(m.head_dim, 128);
  EXPECT_DOUBLE_EQ(m.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(m.rope_theta, 500000.0);
  EXPECT_EQ(m.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_DOUBLE_EQ(m.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(m.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(m.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(m.rope_scaling.original_max_position, 8192);
  EXPECT_EQ(m.max_position_embeddings, 131072);
  EXPECT_FALSE(m.tie_word_embeddings);
  EXPECT_FALSE(m.attention_bias);
  EXPECT_EQ(m.bos_token_ids, std::vector<int32_t>{128000});
  EXPECT_EQ(m.eos_token_ids, std::vector<int32_t>{128001});
  EXPECT_EQ(m.NumParameters(), KnownShape("llama-3.1-8b")->NumParameters());
}

TEST(HfConfig, Qwen2HasQkvBiasAndDerivedHeadDim) {
  auto c = ParseHfConfig(kQwen25_05B, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  const ModelConfig& m = c->config;
  EXPECT_EQ(m.family, ArchFamily::kQwen2);
  EXPECT_TRUE(m.attention_bias);
  EXPECT_EQ(m.head_dim, 64);
  EXPECT_EQ(m.num_kv_heads, 2);
  EXPECT_TRUE(m.tie_word_embeddings);
  EXPECT_EQ(m.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_DOUBLE_EQ(m.rms_norm_eps, 1e-6);
  // 494M parameters, as Qwen reports for Qwen2.5-0.5B.
  EXPECT_EQ(m.NumParameters(), 494032768);
}

TEST(HfConfig, MistralUsesDefaults) {
  auto c = ParseHfConfig(kMistral7B, "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->config.family, ArchFamily::kMistral);
  EXPECT_FALSE(c->config.attention_bias);
  EXPECT_EQ(c->config.head_dim, 128);
  EXPECT_EQ(c->config.eos_token_ids, std::vector<int32_t>{2});
}

TEST(HfConfig, DefaultsOverridesAndTokenIdForms) {
  auto c = ParseHfConfig(Llama(""), "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->config.num_kv_heads, 4);  // defaults to the head count
  EXPECT_EQ(c->config.head_dim, 16);
  EXPECT_DOUBLE_EQ(c->config.rope_theta, 10000.0);
  EXPECT_EQ(c->config.max_position_embeddings, 2048);
  EXPECT_TRUE(c->config.bos_token_ids.empty());

  c = ParseHfConfig(Llama(R"("head_dim": 32, "attention_bias": true, "eos_token_id": [5, 7, 9],
                             "bos_token_id": null, "rope_scaling": {"type": "linear", "factor": 2.0})"),
                    "config.json");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->config.head_dim, 32);  // differs from hidden / heads (as in Mistral-Nemo)
  EXPECT_TRUE(c->config.attention_bias);
  EXPECT_EQ(c->config.eos_token_ids, (std::vector<int32_t>{5, 7, 9}));
  EXPECT_TRUE(c->config.bos_token_ids.empty());
  EXPECT_EQ(c->config.rope_scaling.type, RopeScalingType::kLinear);
  EXPECT_DOUBLE_EQ(c->config.rope_scaling.factor, 2.0);

  c = ParseHfConfig(Llama(R"("rope_scaling": {"rope_type": "default"}, "head_dim": null)"), "c");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->config.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_EQ(c->config.head_dim, 16);
}

TEST(HfConfig, GenerationConfigFillsOnlyMissingIds) {
  ModelConfig m = ParseHfConfig(Llama(R"("eos_token_id": 3)"), "c")->config;
  ASSERT_TRUE(ApplyGenerationConfig(R"({"bos_token_id": 1, "eos_token_id": [8, 9]})", "g", &m).ok());
  EXPECT_EQ(m.bos_token_ids, std::vector<int32_t>{1});
  EXPECT_EQ(m.eos_token_ids, std::vector<int32_t>{3});
  const Status bad = ApplyGenerationConfig(R"({"bos_token_id": "x"})", "gen.json", &m);
  EXPECT_TRUE(bad.ok()) << "bos already set, key not read";
  ModelConfig empty = m;
  empty.bos_token_ids.clear();
  const Status s = ApplyGenerationConfig(R"({"bos_token_id": "x"})", "gen.json", &empty);
  ASSERT_FALSE(s.ok());
  EXPECT_CONTAINS(s.message(), "gen.json: key bos_token_id");
}

TEST(HfConfig, ErrorsNameTheFileAndKey) {
  struct Case {
    std::string text;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"{", {"invalid JSON"}},
      {"[]", {"expected a JSON object"}},
      {R"({"architectures": ["GPT2LMHeadModel"]})",
       {"unsupported architecture GPT2LMHeadModel",
        "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM"}},
      {R"({"model_type": "gpt2"})", {"model_type \"gpt2\""}},
      {R"({"architectures": "LlamaForCausalLM"})", {"key architectures"}},
      {Llama(R"("hidden_size": "64")"), {"key hidden_size: expected an integer, found \"64\""}},
      {Llama(R"("hidden_size": 64.5)"), {"key hidden_size: expected an integer"}},
      {Llama(R"("rms_norm_eps": "1e-5")"), {"key rms_norm_eps: expected a number"}},
      {Llama(R"("tie_word_embeddings": 1)"), {"key tie_word_embeddings: expected true or false"}},
      {Llama(R"("eos_token_id": [1, "2"])"), {"key eos_token_id"}},
      {Llama(R"("eos_token_id": -1)"), {"key eos_token_id"}},
      {Llama(R"("rope_scaling": {"type": "yarn", "factor": 4})"),
       {"rope_scaling type \"yarn\" is not supported"}},
      {Llama(R"("rope_scaling": {"rope_type": "llama3", "factor": 8})"),
       {"missing required key rope_scaling.low_freq_factor"}},
      {Llama(R"("rope_scaling": {"rope_type": "linear", "factor": "2"})"),
       {"key rope_scaling.factor: expected a number"}},
      {Llama(R"("rope_scaling": 3)"), {"key rope_scaling: expected an object or null"}},
      {Llama(R"("num_hidden_layers": null)"), {"missing required key num_hidden_layers"}},
      {Llama(R"("num_key_value_heads": 3)"), {"not a multiple of num_key_value_heads 3"}},
      {Llama(R"("num_attention_heads": 0)"), {"num_attention_heads must be positive"}},
      {Llama(R"("hidden_act": "gelu")"), {"hidden_act \"gelu\" is not supported"}},
      {Llama(R"("mlp_bias": true)"), {"mlp_bias"}},
      {Llama(R"("max_position_embeddings": 0)"), {"key max_position_embeddings must be positive"}},
      {Llama(R"("rope_scaling": {"rope_type": "llama3", "factor": 8, "low_freq_factor": 1,
                                 "high_freq_factor": 4, "original_max_position_embeddings": 0})"),
       {"original_max_position_embeddings 0"}},
  };
  for (const auto& c : cases) {
    const std::string message = ParseError(c.text);
    EXPECT_CONTAINS(message, "cfg/config.json");
    for (const auto& e : c.expected) EXPECT_CONTAINS(message, e);
  }
}

TEST(HfConfig, WriterOutputParsesBackToTheSameConfig) {
  for (const auto& name : KnownShapeNames()) {
    const ModelConfig shape = *KnownShape(name);
    const auto json = HfConfigJson(shape, "bfloat16").dump();
    auto c = ParseHfConfig(json, name);
    ASSERT_TRUE(c.ok()) << name << ": " << c.status().message();
    const ModelConfig& m = c->config;
    EXPECT_EQ(m.family, shape.family) << name;
    EXPECT_EQ(m.vocab_size, shape.vocab_size) << name;
    EXPECT_EQ(m.hidden_size, shape.hidden_size) << name;
    EXPECT_EQ(m.intermediate_size, shape.intermediate_size) << name;
    EXPECT_EQ(m.num_layers, shape.num_layers) << name;
    EXPECT_EQ(m.num_heads, shape.num_heads) << name;
    EXPECT_EQ(m.num_kv_heads, shape.num_kv_heads) << name;
    EXPECT_EQ(m.head_dim, shape.head_dim) << name;
    EXPECT_EQ(m.rms_norm_eps, shape.rms_norm_eps) << name;
    EXPECT_EQ(m.rope_theta, shape.rope_theta) << name;
    EXPECT_EQ(m.rope_scaling.type, shape.rope_scaling.type) << name;
    EXPECT_EQ(m.rope_scaling.factor, shape.rope_scaling.factor) << name;
    EXPECT_EQ(m.rope_scaling.original_max_position, shape.rope_scaling.original_max_position) << name;
    EXPECT_EQ(m.max_position_embeddings, shape.max_position_embeddings) << name;
    EXPECT_EQ(m.tie_word_embeddings, shape.tie_word_embeddings) << name;
    EXPECT_EQ(m.attention_bias, shape.attention_bias) << name;
    EXPECT_EQ(m.bos_token_ids, shape.bos_token_ids) << name;
    EXPECT_EQ(m.eos_token_ids, shape.eos_token_ids) << name;
    EXPECT_EQ(c->torch_dtype, "bfloat16");
  }
}

}  // namespace
}  // namespace rtnq
