#include "arch/model_config.h"

namespace rtnq {

const char* ArchFamilyName(ArchFamily a) {
  switch (a) {
    case ArchFamily::kLlama: return "llama";
    case ArchFamily::kMistral: return "mistral";
    case ArchFamily::kQwen2: return "qwen2";
  }
  return "?";
}

Status ModelConfig::Validate() const {
  auto positive = [](const char* what, int64_t v) -> Status {
    if (v <= 0) return Err("{} must be positive, found {}", what, v);
    return Status::Ok();
  };
  RTNQ_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  RTNQ_RETURN_IF_ERROR(positive("hidden_size", hidden_size));
  RTNQ_RETURN_IF_ERROR(positive("intermediate_size", intermediate_size));
  RTNQ_RETURN_IF_ERROR(positive("num_hidden_layers", num_layers));
  RTNQ_RETURN_IF_ERROR(positive("num_attention_heads", num_heads));
  RTNQ_RETURN_IF_ERROR(positive("num_key_value_heads", num_kv_heads));
  RTNQ_RETURN_IF_ERROR(positive("head_dim", head_dim));
  if (num_heads % num_kv_heads != 0) {
    return Err("num_attention_heads {} is not a multiple of num_key_value_heads {}", num_heads,
               num_kv_heads);
  }
  if (head_dim % 2 != 0) return Err("head_dim {} must be even for RoPE", head_dim);
  if (!(rms_norm_eps > 0)) return Err("rms_norm_eps must be positive, found {}", rms_norm_eps);
  if (!(rope_theta > 0)) return Err("rope_theta must be positive, found {}", rope_theta);
  if (rope_scaling.type != RopeScalingType::kNone && !(rope_scaling.factor > 0)) {
    return Err("rope_scaling.factor must be positive, found {}", rope_scaling.factor);
  }
  if (rope_scaling.type == RopeScalingType::kLlama3 &&
      !(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor)) {
    return Err("rope_scaling: high_freq_factor {} must exceed low_freq_factor {}",
               rope_scaling.high_freq_factor, rope_scaling.low_freq_factor);
  }
  // Guard against absurd sizes that would overflow byte counts.
  const int64_t kMax = int64_t{1} << 24;
  if (vocab_size > kMax || hidden_size > kMax || intermediate_size > kMax || num_layers > 4096 ||
      num_heads > 4096 || head_dim > 4096) {
    return Err("model dimensions out of the supported range");
  }
  return Status::Ok();
}

int64_t ModelConfig::NumParameters() const {
  const int64_t q = num_heads * head_dim, kv = num_kv_heads * head_dim;
  int64_t per_layer = hidden_size * (q + 2 * kv) + q * hidden_size +
                      3 * hidden_size * intermediate_size + 2 * hidden_size;
  if (attention_bias) per_layer += q + 2 * kv;
  int64_t total = vocab_size * hidden_size + num_layers * per_layer + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

}  // namespace rtnq
