// The hyperparameters of a LLaMA-family decoder, independent of the file it came from.
// Every reader (HF config.json, GGUF metadata, llama2.c header) fills this struct; the model,
// quantizer and planner read only this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace rtnq {

enum class ArchFamily { kLlama, kMistral, kQwen2 };
const char* ArchFamilyName(ArchFamily a);

enum class RopeScalingType { kNone, kLinear, kLlama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::kNone;
  double factor = 1.0;
  // llama3 only (Llama-3.1/3.2 use low 1, high 4, original context 8192).
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct ModelConfig {
  ArchFamily family = ArchFamily::kLlama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;  // usually hidden_size / num_heads, but may differ (e.g. Mistral-Nemo)
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias (Qwen2)
  std::vector<int32_t> bos_token_ids;  // usually one; empty if the model has none
  std::vector<int32_t> eos_token_ids;  // Llama-3.1 instruct lists several

  // Checks internal consistency (positive sizes, heads divide, GQA ratio integral, ...).
  Status Validate() const;
  // Weight elements of the whole model (for sizes and benchmarks).
  int64_t NumParameters() const;
};

}  // namespace rtnq
