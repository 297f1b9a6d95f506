#include "io/hf_config.h"

#include <cmath>
#include <limits>

#include "base/file.h"

namespace rtnq {
namespace {

using Json = nlohmann::json;

struct Architecture {
  const char* name;
  const char* model_type;
  ArchFamily family;
};

constexpr Architecture kArchitectures[] = {
    {"LlamaForCausalLM", "llama", ArchFamily::kLlama},
    {"MistralForCausalLM", "mistral", ArchFamily::kMistral},
    {"Qwen2ForCausalLM", "qwen2", ArchFamily::kQwen2},
};

std::string SupportedArchitectures() {
  std::string s;
  for (const auto& a : kArchitectures) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

std::string Describe(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Reads typed values from one JSON object; every error names the file and the key.
class KeyReader {
 public:
  KeyReader(const Json& object, std::string path, std::string prefix = "")
      : j_(object), path_(std::move(path)), prefix_(std::move(prefix)) {}

  // Present and not null.
  bool Has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

  Status Int(const char* key, int64_t* out, bool required) const {
    if (!Has(key)) return required ? Missing(key) : Status::Ok();
    const Json& v = j_[key];
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        return TypeError(key, "an integer in range", v);
      }
      *out = v.get<int64_t>();
      return Status::Ok();
    }
    // Some exporters write 4096.0; accept floats that are exact integers.
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
        *out = static_cast<int64_t>(d);
        return Status::Ok();
      }
    }
    return TypeError(key, "an integer", v);
  }

  Status Double(const char* key, double* out, bool required) const {
    if (!Has(key)) return required ? Missing(key) : Status::Ok();
    const Json& v = j_[key];
    if (!v.is_number()) return TypeError(key, "a number", v);
    *out = v.get<double>();
    return Status::Ok();
  }

  Status Bool(const char* key, bool* out) const {
    if (!Has(key)) return Status::Ok();
    const Json& v = j_[key];
    if (!v.is_boolean()) return TypeError(key, "true or false", v);
    *out = v.get<bool>();
    return Status::Ok();
  }

  Status String(const char* key, std::string* out) const {
    if (!Has(key)) return Status::Ok();
    const Json& v = j_[key];
    if (!v.is_string()) return TypeError(key, "a string", v);
    *out = v.get<std::string>();
    return Status::Ok();
  }

  // An id, a list of ids, or null (no ids).
  Status TokenIds(const char* key, std::vector<int32_t>* out) const {
    if (!Has(key)) return Status::Ok();
    const Json& v = j_[key];
    std::vector<int32_t> ids;
    auto take = [&](const Json& e) {
      if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
          e.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return false;
      }
      ids.push_back(static_cast<int32_t>(e.get<int64_t>()));
      return true;
    };
    bool ok = true;
    if (v.is_array()) {
      for (const Json& e : v) ok = ok && take(e);
    } else {
      ok = take(v);
    }
    if (!ok) return TypeError(key, "a token id, a list of token ids or null", v);
    *out = std::move(ids);
    return Status::Ok();
  }

  Status TypeError(const char* key, const char* expected, const Json& found) const {
    return Err("{}: key {}{}: expected {}, found {}", path_, prefix_, key, expected,
               Describe(found));
  }
  Status Missing(const char* key) const {
    return Err("{}: missing required key {}{}", path_, prefix_, key);
  }

 private:
  const Json& j_;
  std::string path_, prefix_;
};

Status ParseRopeScaling(const Json& j, const std::string& path, const char* key,
                        RopeScaling* out) {
  *out = RopeScaling{};
  if (j.is_null()) return Status::Ok();
  static const Json kEmpty = Json::object();
  if (!j.is_object()) return KeyReader(kEmpty, path).TypeError(key, "an object or null", j);
  KeyReader r(j, path, std::string(key) + ".");
  std::string type;
  RTNQ_RETURN_IF_ERROR(r.String("type", &type));
  RTNQ_RETURN_IF_ERROR(r.String("rope_type", &type));  // the newer spelling wins
  if (type.empty()) return r.Missing("rope_type");
  if (type == "default") return Status::Ok();
  if (type == "linear") {
    out->type = RopeScalingType::kLinear;
    return r.Double("factor", &out->factor, /*required=*/true);
  }
  if (type == "llama3") {
    out->type = RopeScalingType::kLlama3;
    RTNQ_RETURN_IF_ERROR(r.Double("factor", &out->factor, true));
    RTNQ_RETURN_IF_ERROR(r.Double("low_freq_factor", &out->low_freq_factor, true));
    RTNQ_RETURN_IF_ERROR(r.Double("high_freq_factor", &out->high_freq_factor, true));
    RTNQ_RETURN_IF_ERROR(r.Int("original_max_position_embeddings", &out->original_max_position, true));
    if (out->original_max_position <= 0 || !(out->low_freq_factor > 0)) {
      return Err("{}: {}: original_max_position_embeddings {} and low_freq_factor {} must be positive",
                 path, key, out->original_max_position, out->low_freq_factor);
    }
    return Status::Ok();
  }
  return Err("{}: {} type \"{}\" is not supported (supported: linear, llama3)", path, key, type);
}

}  // namespace

Result<HfConfig> ParseHfConfig(std::string_view json_text, const std::string& path) {
  Json j = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err("{}: invalid JSON", path);
  if (!j.is_object()) return Err("{}: expected a JSON object, found {}", path, Describe(j));
  KeyReader r(j, path);
  HfConfig out;
  ModelConfig& c = out.config;

  RTNQ_RETURN_IF_ERROR(r.String("model_type", &out.model_type));
  const Architecture* arch = nullptr;
  if (r.Has("architectures")) {
    const Json& list = j["architectures"];
    if (!list.is_array() || list.empty() || !list[0].is_string()) {
      return r.TypeError("architectures", "a non-empty list of strings", list);
    }
    out.architecture = list[0].get<std::string>();
    for (const auto& a : kArchitectures) {
      if (out.architecture == a.name) arch = &a;
    }
    if (arch == nullptr) {
      return Err("{}: unsupported architecture {} (supported: {})", path, out.architecture,
                 SupportedArchitectures());
    }
  } else {
    for (const auto& a : kArchitectures) {
      if (out.model_type == a.model_type) arch = &a;
    }
    if (arch == nullptr) {
      return Err("{}: no architectures and unsupported model_type \"{}\" (supported: {})", path,
                 out.model_type, SupportedArchitectures());
    }
    out.architecture = arch->name;
  }
  c.family = arch->family;

  RTNQ_RETURN_IF_ERROR(r.Int("vocab_size", &c.vocab_size, true));
  RTNQ_RETURN_IF_ERROR(r.Int("hidden_size", &c.hidden_size, true));
  RTNQ_RETURN_IF_ERROR(r.Int("intermediate_size", &c.intermediate_size, true));
  RTNQ_RETURN_IF_ERROR(r.Int("num_hidden_layers", &c.num_layers, true));
  RTNQ_RETURN_IF_ERROR(r.Int("num_attention_heads", &c.num_heads, true));
  c.num_kv_heads = c.num_heads;
  RTNQ_RETURN_IF_ERROR(r.Int("num_key_value_heads", &c.num_kv_heads, false));
  c.head_dim = c.num_heads > 0 ? c.hidden_size / c.num_heads : 0;
  RTNQ_RETURN_IF_ERROR(r.Int("head_dim", &c.head_dim, false));

  // transformers' defaults for LlamaConfig / MistralConfig / Qwen2Config.
  c.rms_norm_eps = 1e-6;
  RTNQ_RETURN_IF_ERROR(r.Double("rms_norm_eps", &c.rms_norm_eps, false));
  c.rope_theta = 10000.0;
  RTNQ_RETURN_IF_ERROR(r.Double("rope_theta", &c.rope_theta, false));
  if (r.Has("rope_scaling")) {
    RTNQ_RETURN_IF_ERROR(ParseRopeScaling(j["rope_scaling"], path, "rope_scaling", &c.rope_scaling));
  } else if (r.Has("rope_parameters")) {  // transformers >= 5 keeps theta and scaling together
    const Json& p = j["rope_parameters"];
    RTNQ_RETURN_IF_ERROR(ParseRopeScaling(p, path, "rope_parameters", &c.rope_scaling));
    RTNQ_RETURN_IF_ERROR(KeyReader(p, path, "rope_parameters.").Double("rope_theta", &c.rope_theta, false));
  }
  c.max_position_embeddings = arch->family == ArchFamily::kLlama     ? 2048
                              : arch->family == ArchFamily::kMistral ? 4096 * 32
                                                                     : 32768;
  RTNQ_RETURN_IF_ERROR(r.Int("max_position_embeddings", &c.max_position_embeddings, false));
  if (c.max_position_embeddings <= 0) {
    return Err("{}: key max_position_embeddings must be positive, found {}", path,
               c.max_position_embeddings);
  }
  c.tie_word_embeddings = false;
  RTNQ_RETURN_IF_ERROR(r.Bool("tie_word_embeddings", &c.tie_word_embeddings));
  // Qwen2's attention always has q/k/v biases; Llama's has them when attention_bias is set.
  c.attention_bias = arch->family == ArchFamily::kQwen2;
  if (arch->family == ArchFamily::kLlama) {
    RTNQ_RETURN_IF_ERROR(r.Bool("attention_bias", &c.attention_bias));
    bool mlp_bias = false;
    RTNQ_RETURN_IF_ERROR(r.Bool("mlp_bias", &mlp_bias));
    if (mlp_bias) return Err("{}: mlp_bias=true is not supported", path);
  }
  std::string act = "silu";
  RTNQ_RETURN_IF_ERROR(r.String("hidden_act", &act));
  if (act != "silu") return Err("{}: hidden_act \"{}\" is not supported (only silu)", path, act);
  RTNQ_RETURN_IF_ERROR(r.TokenIds("bos_token_id", &c.bos_token_ids));
  RTNQ_RETURN_IF_ERROR(r.TokenIds("eos_token_id", &c.eos_token_ids));
  RTNQ_RETURN_IF_ERROR(r.String("torch_dtype", &out.torch_dtype));
  if (out.torch_dtype.empty()) RTNQ_RETURN_IF_ERROR(r.String("dtype", &out.torch_dtype));

  RTNQ_RETURN_IF_ERROR(c.Validate().WithContext(path));
  return out;
}

Result<HfConfig> ReadHfConfig(const std::string& path) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseHfConfig(text, path);
}

Status ApplyGenerationConfig(std::string_view json_text, const std::string& path,
                             ModelConfig* config) {
  Json j = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err("{}: invalid JSON", path);
  if (!j.is_object()) return Err("{}: expected a JSON object, found {}", path, Describe(j));
  KeyReader r(j, path);
  if (config->bos_token_ids.empty()) {
    RTNQ_RETURN_IF_ERROR(r.TokenIds("bos_token_id", &config->bos_token_ids));
  }
  if (config->eos_token_ids.empty()) {
    RTNQ_RETURN_IF_ERROR(r.TokenIds("eos_token_id", &config->eos_token_ids));
  }
  return Status::Ok();
}

namespace {

Json TokenIdsJson(const std::vector<int32_t>& ids) {
  if (ids.empty()) return nullptr;
  if (ids.size() == 1) return ids[0];
  return ids;
}

}  // namespace

nlohmann::ordered_json HfConfigJson(const ModelConfig& c, const std::string& torch_dtype) {
  const Architecture* arch = &kArchitectures[0];
  for (const auto& a : kArchitectures) {
    if (a.family == c.family) arch = &a;
  }
  const bool qwen2 = c.family == ArchFamily::kQwen2;
  const bool llama = c.family == ArchFamily::kLlama;
  nlohmann::ordered_json rope_scaling = nullptr;
  switch (c.rope_scaling.type) {
    case RopeScalingType::kNone: break;
    case RopeScalingType::kLinear:
      rope_scaling = {{"factor", c.rope_scaling.factor}, {"rope_type", "linear"}};
      break;
    case RopeScalingType::kLlama3:
      rope_scaling = {{"factor", c.rope_scaling.factor},
                      {"high_freq_factor", c.rope_scaling.high_freq_factor},
                      {"low_freq_factor", c.rope_scaling.low_freq_factor},
                      {"original_max_position_embeddings", c.rope_scaling.original_max_position},
                      {"rope_type", "llama3"}};
      break;
  }
  // Keys in sorted order, as transformers writes them.
  nlohmann::ordered_json j;
  j["architectures"] = {arch->name};
  if (llama) j["attention_bias"] = c.attention_bias;
  j["attention_dropout"] = 0.0;
  j["bos_token_id"] = TokenIdsJson(c.bos_token_ids);
  j["eos_token_id"] = TokenIdsJson(c.eos_token_ids);
  // Qwen2Config derives head_dim itself in older transformers; write it only where needed.
  if (!qwen2 || c.head_dim * c.num_heads != c.hidden_size) j["head_dim"] = c.head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = c.hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = c.intermediate_size;
  j["max_position_embeddings"] = c.max_position_embeddings;
  if (qwen2) j["max_window_layers"] = c.num_layers;
  if (llama) j["mlp_bias"] = false;
  j["model_type"] = arch->model_type;
  j["num_attention_heads"] = c.num_heads;
  j["num_hidden_layers"] = c.num_layers;
  j["num_key_value_heads"] = c.num_kv_heads;
  if (llama) j["pretraining_tp"] = 1;
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_scaling"] = rope_scaling;
  j["rope_theta"] = c.rope_theta;
  if (qwen2) j["sliding_window"] = c.max_position_embeddings;  // unused: use_sliding_window false
  if (c.family == ArchFamily::kMistral) j["sliding_window"] = nullptr;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  j["torch_dtype"] = torch_dtype;
  j["transformers_version"] = "4.46.0";
  j["use_cache"] = true;
  if (qwen2) j["use_sliding_window"] = false;
  j["vocab_size"] = c.vocab_size;
  return j;
}

nlohmann::ordered_json HfGenerationConfigJson(const ModelConfig& c) {
  nlohmann::ordered_json j;
  j["_from_model_config"] = true;
  if (!c.bos_token_ids.empty()) j["bos_token_id"] = TokenIdsJson(c.bos_token_ids);
  j["eos_token_id"] = TokenIdsJson(c.eos_token_ids);
  j["transformers_version"] = "4.46.0";
  return j;
}

}  // namespace rtnq
