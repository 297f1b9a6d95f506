#include "arch/tensor_role.h"

#include <charconv>

#include <fmt/format.h>

namespace rtnq {
namespace {

constexpr TensorRoleInfo kRoles[] = {
    {TensorRole::kEmbed, "embed", false, false, true},
    {TensorRole::kFinalNorm, "final_norm", false, true, false},
    {TensorRole::kLmHead, "lm_head", false, false, true},
    {TensorRole::kAttnNorm, "attn_norm", true, true, false},
    {TensorRole::kAttnQ, "attn_q", true, false, true},
    {TensorRole::kAttnK, "attn_k", true, false, true},
    {TensorRole::kAttnV, "attn_v", true, false, true},
    {TensorRole::kAttnO, "attn_o", true, false, true},
    {TensorRole::kAttnQBias, "attn_q_bias", true, false, false},
    {TensorRole::kAttnKBias, "attn_k_bias", true, false, false},
    {TensorRole::kAttnVBias, "attn_v_bias", true, false, false},
    {TensorRole::kMlpNorm, "mlp_norm", true, true, false},
    {TensorRole::kMlpGate, "mlp_gate", true, false, true},
    {TensorRole::kMlpUp, "mlp_up", true, false, true},
    {TensorRole::kMlpDown, "mlp_down", true, false, true},
};
static_assert(std::size(kRoles) == static_cast<size_t>(TensorRole::kCount));

// HF suffix after "model.layers.N." for per-layer roles, or the full name for globals.
constexpr std::string_view kHfNames[] = {
    "model.embed_tokens.weight",
    "model.norm.weight",
    "lm_head.weight",
    "input_layernorm.weight",
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
    "self_attn.q_proj.bias",
    "self_attn.k_proj.bias",
    "self_attn.v_proj.bias",
    "post_attention_layernorm.weight",
    "mlp.gate_proj.weight",
    "mlp.up_proj.weight",
    "mlp.down_proj.weight",
};

}  // namespace

const TensorRoleInfo& RoleInfo(TensorRole r) { return kRoles[static_cast<size_t>(r)]; }

std::optional<TensorRole> ParseRoleShortName(std::string_view s) {
  for (const auto& r : kRoles) {
    if (r.short_name == s) return r.role;
  }
  return std::nullopt;
}

std::string CanonicalName(const TensorId& id) {
  const auto name = kHfNames[static_cast<size_t>(id.role)];
  if (!RoleInfo(id.role).per_layer) return std::string(name);
  return fmt::format("model.layers.{}.{}", id.layer, name);
}

std::optional<TensorId> ParseCanonicalName(std::string_view name) {
  for (size_t i = 0; i < std::size(kRoles); ++i) {
    if (!kRoles[i].per_layer && name == kHfNames[i]) return TensorId{kRoles[i].role, -1};
  }
  constexpr std::string_view kPrefix = "model.layers.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  int layer = -1;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), layer);
  if (ec != std::errc() || layer < 0 || ptr == name.data() || *ptr != '.') return std::nullopt;
  std::string_view rest(ptr + 1, name.data() + name.size() - (ptr + 1));
  for (size_t i = 0; i < std::size(kRoles); ++i) {
    if (kRoles[i].per_layer && rest == kHfNames[i]) return TensorId{kRoles[i].role, layer};
  }
  return std::nullopt;
}

std::vector<int64_t> ExpectedShape(const ModelConfig& c, const TensorId& id) {
  const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
  switch (id.role) {
    case TensorRole::kEmbed:
    case TensorRole::kLmHead: return {c.vocab_size, c.hidden_size};
    case TensorRole::kFinalNorm:
    case TensorRole::kAttnNorm:
    case TensorRole::kMlpNorm: return {c.hidden_size};
    case TensorRole::kAttnQ: return {q, c.hidden_size};
    case TensorRole::kAttnK:
    case TensorRole::kAttnV: return {kv, c.hidden_size};
    case TensorRole::kAttnO: return {c.hidden_size, q};
    case TensorRole::kAttnQBias: return {q};
    case TensorRole::kAttnKBias:
    case TensorRole::kAttnVBias: return {kv};
    case TensorRole::kMlpGate:
    case TensorRole::kMlpUp: return {c.intermediate_size, c.hidden_size};
    case TensorRole::kMlpDown: return {c.hidden_size, c.intermediate_size};
    case TensorRole::kCount: break;
  }
  return {};
}

std::vector<TensorId> RequiredTensors(const ModelConfig& c) {
  std::vector<TensorId> ids;
  ids.push_back({TensorRole::kEmbed, -1});
  for (int l = 0; l < c.num_layers; ++l) {
    for (TensorRole r : {TensorRole::kAttnNorm, TensorRole::kAttnQ, TensorRole::kAttnK,
                         TensorRole::kAttnV, TensorRole::kAttnO}) {
      ids.push_back({r, l});
    }
    if (c.attention_bias) {
      for (TensorRole r : {TensorRole::kAttnQBias, TensorRole::kAttnKBias, TensorRole::kAttnVBias}) {
        ids.push_back({r, l});
      }
    }
    for (TensorRole r : {TensorRole::kMlpNorm, TensorRole::kMlpGate, TensorRole::kMlpUp,
                         TensorRole::kMlpDown}) {
      ids.push_back({r, l});
    }
  }
  ids.push_back({TensorRole::kFinalNorm, -1});
  if (!c.tie_word_embeddings) ids.push_back({TensorRole::kLmHead, -1});
  return ids;
}

}  // namespace rtnq
