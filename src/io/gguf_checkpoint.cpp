// GGUF (general.architecture = llama) -> Checkpoint, and tokenizer.ggml.* -> TokenizerSpec.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "arch/tensor_role.h"
#include "io/checkpoint_readers.h"
#include "io/gguf.h"
#include "io/tokenizer_json.h"

namespace rtnq {
namespace {

struct NameMapping {
  std::string_view gguf_suffix;
  TensorRole role;
};

constexpr NameMapping kGlobalNames[] = {
    {"token_embd.weight", TensorRole::kEmbed},
    {"output_norm.weight", TensorRole::kFinalNorm},
    {"output.weight", TensorRole::kLmHead},
};

constexpr NameMapping kLayerNames[] = {
    {"attn_norm.weight", TensorRole::kAttnNorm},   {"attn_q.weight", TensorRole::kAttnQ},
    {"attn_k.weight", TensorRole::kAttnK},         {"attn_v.weight", TensorRole::kAttnV},
    {"attn_output.weight", TensorRole::kAttnO},    {"attn_q.bias", TensorRole::kAttnQBias},
    {"attn_k.bias", TensorRole::kAttnKBias},       {"attn_v.bias", TensorRole::kAttnVBias},
    {"ffn_norm.weight", TensorRole::kMlpNorm},     {"ffn_gate.weight", TensorRole::kMlpGate},
    {"ffn_up.weight", TensorRole::kMlpUp},         {"ffn_down.weight", TensorRole::kMlpDown},
};

// "blk.3.attn_q.weight" -> {kAttnQ, 3}; nullopt for names rtnq does not know.
std::optional<TensorId> ParseGgufTensorName(std::string_view name) {
  for (const auto& m : kGlobalNames) {
    if (name == m.gguf_suffix) return TensorId{m.role, -1};
  }
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  name.remove_prefix(kPrefix.size());
  const size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0 || dot > 6) return std::nullopt;
  int layer = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, layer);
  if (ec != std::errc() || end != name.data() + dot) return std::nullopt;
  const std::string_view suffix = name.substr(dot + 1);
  for (const auto& m : kLayerNames) {
    if (suffix == m.gguf_suffix) return TensorId{m.role, layer};
  }
  return std::nullopt;
}

}  // namespace

std::string GgufTensorName(const TensorId& id) {
  for (const auto& m : kGlobalNames) {
    if (m.role == id.role) return std::string(m.gguf_suffix);
  }
  for (const auto& m : kLayerNames) {
    if (m.role == id.role) return fmt::format("blk.{}.{}", id.layer, m.gguf_suffix);
  }
  return CanonicalName(id);
}

namespace {

// Reads a required or defaulted integer key of the llama.* family.
Result<int64_t> IntKey(const GgufFile& g, const std::string& key, std::optional<int64_t> fallback) {
  RTNQ_ASSIGN_OR_RETURN(std::optional<int64_t> v, g.GetInt(key));
  if (v) return *v;
  if (fallback) return *fallback;
  return Err("{}: missing metadata key {}", g.path, key);
}

Result<double> FloatKey(const GgufFile& g, const std::string& key, double fallback) {
  RTNQ_ASSIGN_OR_RETURN(std::optional<double> v, g.GetFloat(key));
  return v ? *v : fallback;
}

// Token ids are uint32 in GGUF; 0xFFFFFFFF (or any negative) means "none".
Result<int32_t> TokenIdKey(const GgufFile& g, const std::string& key, size_t n_tokens) {
  RTNQ_ASSIGN_OR_RETURN(std::optional<int64_t> v, g.GetInt(key));
  if (!v || *v < 0 || *v == 0xFFFFFFFF) return -1;
  if (static_cast<uint64_t>(*v) >= n_tokens) {
    return g.KeyError(key, fmt::format("expected a token id below the vocabulary size {}, found {}",
                                       n_tokens, *v));
  }
  return static_cast<int32_t>(*v);
}

// Llama-3.1-style GGUFs carry RoPE scaling as a rope_freqs.weight tensor of per-frequency
// divisors instead of keys. Recover the llama3 parameters: the largest divisor is `factor`;
// low/high/original are the values every Llama-3.1/3.2 release uses (1, 4, 8192), verified by
// recomputing all divisors as llama.cpp's converter does.
Status ReadLlama3RopeFreqs(const GgufFile& g, const GgufTensorInfo& t, ModelConfig* config) {
  const int64_t half = config->head_dim / 2;
  if (t.dtype != DType::kF32 || t.dims.size() != 1 || t.dims[0] != half) {
    return Err("{}: tensor {} at offset {}: expected F32 [{}], found {} with {} dims", g.path,
               t.name, t.offset, half, DTypeName(t.dtype), t.dims.size());
  }
  std::vector<float> factors(half);
  std::memcpy(factors.data(), g.file->data() + t.offset, half * sizeof(float));
  RopeScaling s;
  s.type = RopeScalingType::kLlama3;
  s.factor = 0;
  for (float f : factors) s.factor = std::max<double>(s.factor, f);
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  for (int64_t i = 0; i < half; ++i) {
    const float freq = static_cast<float>(
        1.0 / std::pow(config->rope_theta, static_cast<float>(2 * i) / config->head_dim));
    const double wavelen = 2 * M_PI / freq;
    double expected = 1.0;
    if (wavelen > low_wavelen) {
      expected = s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      expected = 1 / ((1 - smooth) / s.factor + smooth);
    }
    if (std::abs(expected - factors[i]) > 1e-3 * expected) {
      return Err("{}: tensor {} at offset {}: element {} is {}, but llama3 RoPE scaling (factor {}, "
                 "low 1, high 4, original 8192) implies {}", g.path, t.name, t.offset, i,
                 factors[i], s.factor, expected);
    }
  }
  config->rope_scaling = s;
  return Status::Ok();
}

Result<ModelConfig> ConfigFromGguf(const GgufFile& g) {
  ModelConfig c;
  RTNQ_ASSIGN_OR_RETURN(c.hidden_size, IntKey(g, "llama.embedding_length", std::nullopt));
  RTNQ_ASSIGN_OR_RETURN(c.num_layers, IntKey(g, "llama.block_count", std::nullopt));
  RTNQ_ASSIGN_OR_RETURN(c.intermediate_size, IntKey(g, "llama.feed_forward_length", std::nullopt));
  RTNQ_ASSIGN_OR_RETURN(c.num_heads, IntKey(g, "llama.attention.head_count", std::nullopt));
  RTNQ_ASSIGN_OR_RETURN(c.num_kv_heads, IntKey(g, "llama.attention.head_count_kv", c.num_heads));
  RTNQ_ASSIGN_OR_RETURN(c.max_position_embeddings, IntKey(g, "llama.context_length", 2048));
  RTNQ_ASSIGN_OR_RETURN(c.rms_norm_eps, FloatKey(g, "llama.attention.layer_norm_rms_epsilon", 1e-5));
  RTNQ_ASSIGN_OR_RETURN(c.rope_theta, FloatKey(g, "llama.rope.freq_base", 10000.0));
  if (c.num_heads <= 0) {
    return g.KeyError("llama.attention.head_count",
                      fmt::format("expected a positive head count, found {}", c.num_heads));
  }
  const int64_t default_head_dim = c.hidden_size / c.num_heads;
  RTNQ_ASSIGN_OR_RETURN(c.head_dim, IntKey(g, "llama.attention.key_length", default_head_dim));
  RTNQ_ASSIGN_OR_RETURN(int64_t rope_dims, IntKey(g, "llama.rope.dimension_count", c.head_dim));
  if (rope_dims != c.head_dim) {
    return g.KeyError("llama.rope.dimension_count",
                      fmt::format("expected head_dim {} (partial RoPE is not supported), found {}",
                                  c.head_dim, rope_dims));
  }
  RTNQ_ASSIGN_OR_RETURN(std::optional<std::string> scaling, g.GetString("llama.rope.scaling.type"));
  if (scaling && *scaling == "linear") {
    c.rope_scaling.type = RopeScalingType::kLinear;
    RTNQ_ASSIGN_OR_RETURN(c.rope_scaling.factor, FloatKey(g, "llama.rope.scaling.factor", 1.0));
  } else if (scaling && *scaling != "none") {
    return g.KeyError("llama.rope.scaling.type",
                      fmt::format("expected \"linear\" or \"none\", found \"{}\"", *scaling));
  }
  RTNQ_ASSIGN_OR_RETURN(const std::vector<GgufValue>* tokens,
                        g.GetArray("tokenizer.ggml.tokens", GgufType::kString));
  const std::optional<int64_t> token_count =
      tokens ? std::optional<int64_t>(static_cast<int64_t>(tokens->size())) : std::nullopt;
  RTNQ_ASSIGN_OR_RETURN(c.vocab_size, IntKey(g, "llama.vocab_size", token_count));
  if (token_count && *token_count != c.vocab_size) {
    return g.KeyError("llama.vocab_size",
                      fmt::format("expected the tokenizer's {} tokens, found {}", *token_count,
                                  c.vocab_size));
  }
  c.tie_word_embeddings = g.FindTensor("output.weight") == nullptr;
  const size_t n_tokens = static_cast<size_t>(std::max<int64_t>(c.vocab_size, 0));
  RTNQ_ASSIGN_OR_RETURN(int32_t bos, TokenIdKey(g, "tokenizer.ggml.bos_token_id", n_tokens));
  RTNQ_ASSIGN_OR_RETURN(int32_t eos, TokenIdKey(g, "tokenizer.ggml.eos_token_id", n_tokens));
  if (bos >= 0) c.bos_token_ids.push_back(bos);
  if (eos >= 0) c.eos_token_ids.push_back(eos);
  RTNQ_RETURN_IF_ERROR(c.Validate().WithContext(g.path));
  if (const GgufTensorInfo* t = g.FindTensor("rope_freqs.weight")) {
    if (c.rope_scaling.type != RopeScalingType::kNone) {
      return Err("{}: both llama.rope.scaling.type and tensor rope_freqs.weight are present", g.path);
    }
    RTNQ_RETURN_IF_ERROR(ReadLlama3RopeFreqs(g, *t, &c));
  }
  return c;
}

}  // namespace

Result<TokenizerSpec> TokenizerFromGguf(const GgufFile& g) {
  TokenizerSpec spec;
  RTNQ_ASSIGN_OR_RETURN(std::optional<std::string> model_key, g.GetString("tokenizer.ggml.model"));
  if (!model_key) return Err("{}: missing metadata key tokenizer.ggml.model", g.path);
  const std::string model = std::move(*model_key);
  if (model == "llama") {
    spec.kind = TokenizerKind::kSentencePieceBpe;
  } else if (model == "gpt2") {
    spec.kind = TokenizerKind::kByteLevelBpe;
  } else {
    return g.KeyError("tokenizer.ggml.model",
                      fmt::format("expected \"llama\" or \"gpt2\", found \"{}\"", model));
  }
  const bool spm = spec.kind == TokenizerKind::kSentencePieceBpe;
  RTNQ_ASSIGN_OR_RETURN(std::optional<std::string> pre, g.GetString("tokenizer.ggml.pre"));
  if (pre) spec.pre = *pre;
  // GGUF has no key for HF's ignore_merges; llama.cpp (llama-vocab.cpp) turns it on for the
  // Llama-3 pre-tokenizer names.
  spec.ignore_merges = !spm && (spec.pre == "llama-bpe" || spec.pre == "llama3" ||
                                spec.pre == "llama-v3");

  RTNQ_ASSIGN_OR_RETURN(const auto* tokens, g.GetArray("tokenizer.ggml.tokens", GgufType::kString));
  if (tokens == nullptr || tokens->empty()) {
    return Err("{}: missing or empty metadata key tokenizer.ggml.tokens", g.path);
  }
  const size_t n = tokens->size();
  spec.tokens.reserve(n);
  for (const GgufValue& t : *tokens) spec.tokens.push_back(*t.AsString());

  RTNQ_ASSIGN_OR_RETURN(const auto* scores, g.GetArray("tokenizer.ggml.scores", GgufType::kFloat32));
  if (scores != nullptr) {
    if (scores->size() != n) {
      return g.KeyError("tokenizer.ggml.scores",
                        fmt::format("expected {} scores (one per token), found {}", n, scores->size()));
    }
    spec.scores.reserve(n);
    for (const GgufValue& s : *scores) spec.scores.push_back(static_cast<float>(*s.AsFloat()));
  }
  RTNQ_ASSIGN_OR_RETURN(const auto* types, g.GetArray("tokenizer.ggml.token_type", GgufType::kInt32));
  if (types != nullptr) {
    if (types->size() != n) {
      return g.KeyError("tokenizer.ggml.token_type",
                        fmt::format("expected {} types (one per token), found {}", n, types->size()));
    }
    spec.types.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const auto t = (*types)[i].AsInt();
      if (!t || *t < 0 || *t > static_cast<int64_t>(TokenType::kByte)) {
        return g.KeyError("tokenizer.ggml.token_type",
                          fmt::format("token {}: expected a type 0..6, found {}", i,
                                      (*types)[i].ToDisplayString()));
      }
      spec.types.push_back(static_cast<TokenType>(*t));
    }
  }
  RTNQ_ASSIGN_OR_RETURN(const auto* merges, g.GetArray("tokenizer.ggml.merges", GgufType::kString));
  if (merges != nullptr) {
    spec.merges.reserve(merges->size());
    for (const GgufValue& m : *merges) spec.merges.push_back(*m.AsString());
  }
  if (!spm && spec.merges.empty()) {
    return Err("{}: byte-level BPE tokenizer without tokenizer.ggml.merges", g.path);
  }

  RTNQ_ASSIGN_OR_RETURN(spec.bos_id, TokenIdKey(g, "tokenizer.ggml.bos_token_id", n));
  RTNQ_ASSIGN_OR_RETURN(spec.eos_id, TokenIdKey(g, "tokenizer.ggml.eos_token_id", n));
  RTNQ_ASSIGN_OR_RETURN(spec.unk_id, TokenIdKey(g, "tokenizer.ggml.unknown_token_id", n));
  RTNQ_ASSIGN_OR_RETURN(spec.pad_id, TokenIdKey(g, "tokenizer.ggml.padding_token_id", n));
  RTNQ_ASSIGN_OR_RETURN(std::optional<bool> add_bos, g.GetBool("tokenizer.ggml.add_bos_token"));
  RTNQ_ASSIGN_OR_RETURN(std::optional<bool> add_eos, g.GetBool("tokenizer.ggml.add_eos_token"));
  RTNQ_ASSIGN_OR_RETURN(std::optional<bool> add_space,
                        g.GetBool("tokenizer.ggml.add_space_prefix"));
  // llama.cpp's defaults when the keys are absent: SPM adds BOS and a space prefix, BPE neither.
  spec.add_bos = add_bos.value_or(spm);
  spec.add_eos = add_eos.value_or(false);
  spec.add_space_prefix = add_space.value_or(spm);
  return spec;
}

Result<Checkpoint> OpenGgufCheckpoint(const std::string& path, const OpenOptions& options) {
  RTNQ_ASSIGN_OR_RETURN(GgufFile g, ReadGguf(path));
  RTNQ_ASSIGN_OR_RETURN(std::optional<std::string> arch, g.GetString("general.architecture"));
  if (!arch) return Err("{}: missing metadata key general.architecture", path);
  if (*arch != "llama") {
    return g.KeyError("general.architecture",
                      fmt::format("unsupported architecture \"{}\" (rtnq reads GGUF llama)", *arch));
  }
  Checkpoint ck;
  ck.path = path;
  ck.format = CheckpointFormat::kGguf;
  RTNQ_ASSIGN_OR_RETURN(ck.config, ConfigFromGguf(g));
  const ModelConfig& c = ck.config;

  for (const GgufTensorInfo& t : g.tensors) {
    if (t.name == "rope_freqs.weight") continue;  // folded into config.rope_scaling
    const auto id = ParseGgufTensorName(t.name);
    if (!id) {
      return Err("{}: tensor {} at offset {}: not a llama tensor name rtnq knows", path, t.name,
                 t.offset);
    }
    if (id->layer >= c.num_layers) {
      return Err("{}: tensor {} at offset {}: layer {} is out of range (block_count {})", path,
                 t.name, t.offset, id->layer, c.num_layers);
    }
    TensorView v;
    v.name = CanonicalName(*id);
    v.file_name = t.name;
    v.dtype = t.dtype;
    v.shape.assign(t.dims.rbegin(), t.dims.rend());  // GGUF lists the innermost dimension first
    v.data = g.file->data() + t.offset;
    v.nbytes = t.nbytes;
    v.file = path;
    v.file_offset = t.offset;
    // llama.cpp's converter permutes q/k rows so RoPE rotates adjacent pairs.
    if (id->role == TensorRole::kAttnQ) v.rope_permuted_heads = c.num_heads;
    if (id->role == TensorRole::kAttnK) v.rope_permuted_heads = c.num_kv_heads;
    ck.tensors.push_back(std::move(v));
  }
  auto has_tensor = [&](const std::string& name) {
    return std::any_of(ck.tensors.begin(), ck.tensors.end(),
                       [&](const TensorView& v) { return v.name == name; });
  };
  for (const TensorId& id : RequiredTensors(c)) {
    if (!has_tensor(CanonicalName(id))) {
      return Err("{}: missing tensor {} (GGUF name {}{})", path, CanonicalName(id),
                 id.layer >= 0 ? fmt::format("blk.{}.", id.layer) : "",
                 [&] {
                   for (const auto& m : kGlobalNames) if (m.role == id.role) return m.gguf_suffix;
                   for (const auto& m : kLayerNames) if (m.role == id.role) return m.gguf_suffix;
                   return std::string_view("?");
                 }());
    }
  }

  if (!options.tokenizer_path.empty()) {
    RTNQ_ASSIGN_OR_RETURN(ck.tokenizer, ReadTokenizerJson(options.tokenizer_path));
  } else if (g.Find("tokenizer.ggml.model") != nullptr) {
    RTNQ_ASSIGN_OR_RETURN(ck.tokenizer, TokenizerFromGguf(g));
  }
  if (ck.tokenizer && static_cast<int64_t>(ck.tokenizer->tokens.size()) > c.vocab_size) {
    return Err("{}: tokenizer has {} tokens, more than the model's vocab_size {}", path,
               ck.tokenizer->tokens.size(), c.vocab_size);
  }
  for (const auto& [key, value] : g.metadata) ck.metadata.emplace_back(key, value.ToDisplayString());
  ck.files.push_back(g.file);
  return ck;
}

}  // namespace rtnq
