// Tensor roles: what each weight of a LLaMA-family model is, independent of file naming.
// Canonical names are Hugging Face's (model.layers.N.self_attn.q_proj.weight, ...); the GGUF and
// llama2.c readers translate to them. Canonical layout is HF's too: [out_features, in_features]
// row-major, and q/k rows in HF's rotate-half RoPE order (GGUF/llama2.c interleave; their readers
// permute on load).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/model_config.h"

namespace rtnq {

enum class TensorRole {
  kEmbed,       // model.embed_tokens.weight            [vocab, hidden]
  kFinalNorm,   // model.norm.weight                    [hidden]
  kLmHead,      // lm_head.weight                       [vocab, hidden]
  kAttnNorm,    // model.layers.N.input_layernorm.weight          [hidden]
  kAttnQ,       // model.layers.N.self_attn.q_proj.weight         [heads*head_dim, hidden]
  kAttnK,       // model.layers.N.self_attn.k_proj.weight         [kv_heads*head_dim, hidden]
  kAttnV,       // model.layers.N.self_attn.v_proj.weight         [kv_heads*head_dim, hidden]
  kAttnO,       // model.layers.N.self_attn.o_proj.weight         [hidden, heads*head_dim]
  kAttnQBias,   // model.layers.N.self_attn.q_proj.bias           [heads*head_dim]
  kAttnKBias,   // model.layers.N.self_attn.k_proj.bias
  kAttnVBias,   // model.layers.N.self_attn.v_proj.bias
  kMlpNorm,     // model.layers.N.post_attention_layernorm.weight [hidden]
  kMlpGate,     // model.layers.N.mlp.gate_proj.weight            [intermediate, hidden]
  kMlpUp,       // model.layers.N.mlp.up_proj.weight              [intermediate, hidden]
  kMlpDown,     // model.layers.N.mlp.down_proj.weight            [hidden, intermediate]
  kCount
};

struct TensorRoleInfo {
  TensorRole role;
  std::string_view short_name;  // used in plans and tables: embed, attn_q, mlp_down, ...
  bool per_layer;
  bool is_norm;
  bool is_matrix;  // a linear layer's weight (quantizable)
};

const TensorRoleInfo& RoleInfo(TensorRole r);
std::optional<TensorRole> ParseRoleShortName(std::string_view s);

struct TensorId {
  TensorRole role;
  int layer = -1;  // -1 for global tensors
  bool operator==(const TensorId&) const = default;
};

// HF canonical name of a tensor id, and the reverse.
std::string CanonicalName(const TensorId& id);
std::optional<TensorId> ParseCanonicalName(std::string_view name);

// Expected shape (row-major, HF order) of a tensor under `config`.
std::vector<int64_t> ExpectedShape(const ModelConfig& config, const TensorId& id);

// Every tensor the model needs under `config`, in a stable order (embed, layers..., norm, head).
// lm_head is omitted when embeddings are tied; q/k/v biases only with attention_bias.
std::vector<TensorId> RequiredTensors(const ModelConfig& config);

}  // namespace rtnq
