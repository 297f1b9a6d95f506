// OpenHfCheckpoint: an HF model directory. config.json gives the ModelConfig; the weights come
// from model.safetensors or from the shards listed in model.safetensors.index.json; tokenizer.json
// (if present) gives the tokenizer. Tensor names in HF files are already canonical.
// A config.json with a quantization_config (compressed-tensors pack-quantized or GPTQ, the
// formats rtnq exports) turns each quantized module's tensors into one canonical RTN view named
// <module>.weight (docs/formats/compressed-tensors.md, gptq.md: "Reading").
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "arch/tensor_role.h"
#include "io/checkpoint_readers.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer_json.h"

namespace rtnq {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

void AddFile(Checkpoint* ck, const SafetensorsFile& f) {
  for (const auto& t : f.header.tensors) {
    TensorView v;
    v.name = t.name;
    v.file_name = t.name;
    v.dtype = t.dtype;
    v.shape = t.shape;
    v.data = f.TensorData(t);
    v.nbytes = t.nbytes;
    v.file = f.path();
    v.file_offset = t.offset;
    ck->tensors.push_back(std::move(v));
  }
  for (const auto& [key, value] : f.header.metadata) {
    const std::string item = "safetensors." + key;
    bool seen = false;
    for (const auto& [k, v] : ck->metadata) seen = seen || k == item;
    if (!seen) ck->metadata.emplace_back(item, value);
  }
  ck->files.push_back(f.file);
}

// Reads model.safetensors.index.json and maps every shard it names exactly once.
Status AddShards(const std::string& dir, const std::string& index_path, Checkpoint* ck) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err("{}: invalid JSON", index_path);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return Err("{}: expected an object with a \"weight_map\" object", index_path);
  }
  std::map<std::string, std::vector<std::string>> shard_tensors;  // shard -> tensors mapped to it
  for (const auto& [tensor, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) {
      return Err("{}: weight_map entry {} must be a file name string", index_path, tensor);
    }
    const std::string name = shard.get<std::string>();
    const fs::path p(name);
    if (name.empty() || p.is_absolute() || p.has_parent_path()) {
      return Err("{}: weight_map entry {}: shard \"{}\" must be a file name in the same directory",
                 index_path, tensor, name);
    }
    shard_tensors[name].push_back(tensor);
  }
  if (shard_tensors.empty()) return Err("{}: weight_map is empty", index_path);

  std::map<std::string, std::string> owner;  // tensor -> shard holding it
  for (const auto& [shard, mapped] : shard_tensors) {
    const std::string shard_path = Join(dir, shard);
    if (!PathExists(shard_path)) {
      return Err("{}: shard {} (holding {}) is missing", index_path, shard, mapped.front());
    }
    RTNQ_ASSIGN_OR_RETURN(SafetensorsFile f, OpenSafetensors(shard_path));
    std::set<std::string> present;
    for (const auto& t : f.header.tensors) {
      present.insert(t.name);
      auto [it, inserted] = owner.emplace(t.name, shard);
      if (!inserted) {
        return Err("{}: tensor {} is stored in both {} and {}", index_path, t.name, it->second,
                   shard);
      }
    }
    for (const auto& name : mapped) {
      if (!present.count(name)) {
        return Err("{}: tensor {} is missing from shard {} named by {}", shard_path, name, shard,
                   index_path);
      }
    }
    AddFile(ck, f);
  }
  ck->metadata.emplace_back("shards", std::to_string(shard_tensors.size()));
  return Status::Ok();
}


// ---- Quantized checkpoints ----

std::string Shape(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// A module-name pattern as compressed-tensors ("re:" targets) and GPTQ (`dynamic` keys) apply it:
// Python's re.match, anchored at the start only.
struct NamePattern {
  std::string text;
  std::regex re;
  bool Matches(const std::string& name) const {
    return std::regex_search(name, re, std::regex_constants::match_continuous);
  }
};

Result<NamePattern> CompilePattern(const std::string& text, const std::string& where) {
  try {
    return NamePattern{text, std::regex(text, std::regex::ECMAScript)};
  } catch (const std::regex_error& e) {
    return Err("{}: invalid regular expression '{}' ({})", where, text, e.what());
  }
}

// Reads the little-endian 32-bit word `i` of a tensor (safetensors data need not be aligned).
uint32_t Word(const TensorView& t, uint64_t i) {
  uint32_t w;
  std::memcpy(&w, t.data + 4 * i, 4);
  return w;
}

// The tensors of the checkpoint by name, and which of them a quantized view replaces.
class TensorTable {
 public:
  explicit TensorTable(const Checkpoint& ck) {
    for (const auto& t : ck.tensors) by_name_[t.name] = &t;
  }
  const TensorView* Find(const std::string& name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  // Modules (name prefixes) that have a tensor named <module>.<suffix>, in name order.
  std::vector<std::string> ModulesWith(const std::string& suffix) const {
    std::vector<std::string> out;
    for (const auto& [name, t] : by_name_) {
      if (EndsWith(name, "." + suffix)) out.push_back(name.substr(0, name.size() - suffix.size() - 1));
    }
    return out;
  }

 private:
  std::map<std::string, const TensorView*> by_name_;
};

// Replaces the component tensors in `consumed` by `views`, each view taking the place of its
// first component (so tensors stay in file order).
void ReplaceComponents(Checkpoint* ck, const std::set<std::string>& consumed,
                       std::map<std::string, TensorView> views_by_anchor) {
  std::vector<TensorView> out;
  for (auto& t : ck->tensors) {
    auto it = views_by_anchor.find(t.name);
    if (it != views_by_anchor.end()) {
      out.push_back(std::move(it->second));
    } else if (!consumed.count(t.name)) {
      out.push_back(std::move(t));
    }
  }
  ck->tensors = std::move(out);
}

// Checks the logical [N, K] of a quantized module against the model config when the module is
// one of the model's linear layers.
Status CheckAgainstConfig(const Checkpoint& ck, const TensorView& anchor, const std::string& module,
                          int64_t n, int64_t k) {
  const auto id = ParseCanonicalName(module + ".weight");
  if (!id || !RoleInfo(id->role).is_matrix) {
    return Err("{}: tensor {} is quantized but {}.weight is not a linear layer of this model", anchor.file,
               anchor.name, module);
  }
  const std::vector<int64_t> want = ExpectedShape(ck.config, *id);
  if (want != std::vector<int64_t>{n, k}) {
    return Err("{}: tensor {} at offset {} holds a [{}, {}] weight, config implies {}", anchor.file,
               anchor.name, anchor.file_offset, n, k, Shape(want));
  }
  return Status::Ok();
}

Result<DType> ScaleDType(const TensorView& scale) {
  if (scale.dtype == DType::kF16 || scale.dtype == DType::kBF16 || scale.dtype == DType::kF32) return scale.dtype;
  return Err("{}: tensor {} has dtype {}, expected F16, BF16 or F32 scales", scale.file, scale.name,
             DTypeName(scale.dtype));
}

// JSON accessors naming the key in errors (`where` is "config.json: quantization_config...").
const Json* Member(const Json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return nullptr;
  return &obj[key];
}

Result<std::string> StringMember(const Json& obj, const char* key, const std::string& where) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string()) return Err("{}.{} must be a string, found {}", where, key, v->dump());
  return v->get<std::string>();
}

Result<std::optional<int64_t>> IntMember(const Json& obj, const char* key, const std::string& where) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer()) return Err("{}.{} must be an integer, found {}", where, key, v->dump());
  return std::optional<int64_t>(v->get<int64_t>());
}

Result<std::optional<bool>> BoolMember(const Json& obj, const char* key, const std::string& where) {
  const Json* v = Member(obj, key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return Err("{}.{} must be true or false, found {}", where, key, v->dump());
  return std::optional<bool>(v->get<bool>());
}

Result<RtnScheme> SchemeForBits(int64_t bits, const std::string& where) {
  if (bits == 4) return RtnScheme::kInt4;
  if (bits == 8) return RtnScheme::kInt8;
  return Err("{}: {}-bit weights are not supported (rtnq reads 4 and 8 bits)", where, bits);
}

// -- compressed-tensors pack-quantized --

struct CtGroup {
  std::string where;                   // "config.json: quantization_config.config_groups.group_0"
  std::vector<NamePattern> patterns;   // "re:" targets
  std::vector<std::string> names;      // other targets: exact module names ("Linear" is the class)
  bool linear = false;                 // targets the Linear class
  int bits = 0;
  bool channel = false;                // one scale per row
  int64_t group_size = 0;              // strategy group
};

Result<CtGroup> ParseCtGroup(const Json& g, const std::string& where, const std::string& top_format) {
  CtGroup out;
  out.where = where;
  if (!g.is_object()) return Err("{} must be an object", where);
  RTNQ_ASSIGN_OR_RETURN(std::string format, StringMember(g, "format", where));
  if (format.empty()) format = top_format;
  if (format != "pack-quantized") {
    return Err("{}: compressed-tensors format '{}' is not supported (rtnq reads pack-quantized)", where,
               format.empty() ? "(none)" : format);
  }
  if (Member(g, "input_activations") != nullptr || Member(g, "output_activations") != nullptr) {
    return Err("{}: activation quantization is not supported (weight-only pack-quantized only)", where);
  }
  const Json* targets = Member(g, "targets");
  if (targets == nullptr || !targets->is_array()) return Err("{}.targets must be an array of strings", where);
  for (const auto& t : *targets) {
    if (!t.is_string()) return Err("{}.targets must be an array of strings, found {}", where, t.dump());
    const std::string s = t.get<std::string>();
    if (StartsWith(s, "re:")) {
      RTNQ_ASSIGN_OR_RETURN(NamePattern p, CompilePattern(s.substr(3), where + ".targets"));
      out.patterns.push_back(std::move(p));
    } else if (s == "Linear") {
      out.linear = true;
    } else {
      out.names.push_back(s);
    }
  }
  const Json* w = Member(g, "weights");
  const std::string ww = where + ".weights";
  if (w == nullptr || !w->is_object()) return Err("{} must be an object", ww);
  RTNQ_ASSIGN_OR_RETURN(auto bits, IntMember(*w, "num_bits", ww));
  if (!bits) return Err("{}.num_bits is missing", ww);
  RTNQ_RETURN_IF_ERROR(SchemeForBits(*bits, ww + ".num_bits").status());
  out.bits = static_cast<int>(*bits);
  RTNQ_ASSIGN_OR_RETURN(std::string type, StringMember(*w, "type", ww));
  if (!type.empty() && type != "int") return Err("{}.type '{}' is not supported (int only)", ww, type);
  RTNQ_ASSIGN_OR_RETURN(auto symmetric, BoolMember(*w, "symmetric", ww));
  if (symmetric && !*symmetric) {
    return Err("{}: asymmetric quantization (symmetric: false) is not supported", ww);
  }
  RTNQ_ASSIGN_OR_RETURN(auto dynamic, BoolMember(*w, "dynamic", ww));
  if (dynamic && *dynamic) return Err("{}: dynamic weight quantization is not supported", ww);
  if (const Json* a = Member(*w, "actorder"); a != nullptr && !(a->is_boolean() && !a->get<bool>())) {
    return Err("{}: act-order (actorder: {}) is not supported", ww, a->dump());
  }
  RTNQ_ASSIGN_OR_RETURN(std::string strategy, StringMember(*w, "strategy", ww));
  RTNQ_ASSIGN_OR_RETURN(auto group_size, IntMember(*w, "group_size", ww));
  if (strategy == "channel") {
    out.channel = true;
  } else if (strategy == "group" || (strategy.empty() && group_size)) {
    if (!group_size || *group_size <= 0) {
      return Err("{}: strategy group needs a positive group_size", ww);
    }
    out.group_size = *group_size;
  } else {
    return Err("{}: quantization strategy '{}' is not supported (group or channel)", ww,
               strategy.empty() ? "(none)" : strategy);
  }
  return out;
}

// vLLM's order: module names and regex targets before class names.
const CtGroup* MatchCtGroup(const std::vector<CtGroup>& groups, const std::string& module) {
  for (const auto& g : groups) {
    for (const auto& n : g.names) {
      if (n == module) return &g;
    }
    for (const auto& p : g.patterns) {
      if (p.Matches(module)) return &g;
    }
  }
  for (const auto& g : groups) {
    if (g.linear) return &g;
  }
  return nullptr;
}

Status ApplyCompressedTensors(const Json& qc, const std::string& where, Checkpoint* ck) {
  RTNQ_ASSIGN_OR_RETURN(std::string top_format, StringMember(qc, "format", where));
  RTNQ_ASSIGN_OR_RETURN(std::string status, StringMember(qc, "quantization_status", where));
  if (!status.empty() && status != "compressed") {
    return Err("{}: quantization_status '{}' is not supported (compressed only)", where, status);
  }
  if (const Json* sp = Member(qc, "sparsity_config"); sp != nullptr && sp->is_object() && !sp->empty()) {
    RTNQ_ASSIGN_OR_RETURN(std::string sparse, StringMember(*sp, "format", where + ".sparsity_config"));
    if (sparse != "dense") return Err("{}: sparse weights (sparsity_config format '{}') are not supported", where, sparse);
  }
  const Json* groups_json = Member(qc, "config_groups");
  if (groups_json == nullptr || !groups_json->is_object()) return Err("{}.config_groups must be an object", where);
  std::vector<CtGroup> groups;
  for (const auto& [name, g] : groups_json->items()) {
    RTNQ_ASSIGN_OR_RETURN(CtGroup group, ParseCtGroup(g, where + ".config_groups." + name, top_format));
    groups.push_back(std::move(group));
  }

  const TensorTable table(*ck);
  std::set<std::string> consumed;
  std::map<std::string, TensorView> views;
  for (const std::string& module : table.ModulesWith("weight_packed")) {
    const TensorView* packed = table.Find(module + ".weight_packed");
    auto component = [&](const char* suffix) { return table.Find(module + "." + suffix); };
    const TensorView* scale = component("weight_scale");
    const TensorView* shape = component("weight_shape");
    if (scale == nullptr) return Err("{}: tensor {} has no {}.weight_scale", packed->file, packed->name, module);
    if (shape == nullptr) return Err("{}: tensor {} has no {}.weight_shape", packed->file, packed->name, module);
    if (const TensorView* z = component("weight_zero_point")) {
      return Err("{}: tensor {}: asymmetric quantization (zero points) is not supported", z->file, z->name);
    }
    if (const TensorView* gi = component("weight_g_idx")) {
      return Err("{}: tensor {}: act-order (g_idx) is not supported", gi->file, gi->name);
    }
    if (const TensorView* w = component("weight")) {
      return Err("{}: tensor {} and {} both hold module {}", w->file, w->name, packed->name, module);
    }
    if ((shape->dtype != DType::kI64 && shape->dtype != DType::kI32) || shape->shape != std::vector<int64_t>{2}) {
      return Err("{}: tensor {} at offset {} must be I64 [2] (the [N, K] of the weight), found {} {}",
                 shape->file, shape->name, shape->file_offset, DTypeName(shape->dtype), Shape(shape->shape));
    }
    int64_t nk[2];
    for (int i = 0; i < 2; ++i) {
      if (shape->dtype == DType::kI64) {
        std::memcpy(&nk[i], shape->data + 8 * i, 8);
      } else {
        int32_t v;
        std::memcpy(&v, shape->data + 4 * i, 4);
        nk[i] = v;
      }
    }
    const int64_t n = nk[0], k = nk[1];
    if (n <= 0 || k <= 0) return Err("{}: tensor {} holds [{}, {}], not a weight shape", shape->file, shape->name, n, k);
    RTNQ_RETURN_IF_ERROR(CheckAgainstConfig(*ck, *shape, module, n, k));

    const CtGroup* group = MatchCtGroup(groups, module);
    if (packed->dtype != DType::kI32 || packed->shape.size() != 2 || packed->shape[0] != n) {
      return Err("{}: tensor {} at offset {} is {} {}, expected I32 [{}, words] for weight_shape [{}, {}]",
                 packed->file, packed->name, packed->file_offset, DTypeName(packed->dtype),
                 Shape(packed->shape), n, n, k);
    }
    const int64_t words = packed->shape[1];
    int bits = group != nullptr ? group->bits : 0;
    if (bits == 0) {  // no config group names it: infer from the row length
      for (int b : {4, 8}) {
        if (words == (k * b + 31) / 32) bits = b;
      }
    }
    if (bits == 0 || words != (k * bits + 31) / 32) {
      return Err("{}: tensor {} has {} words per row; {} inputs at {} bits need {}{}", packed->file, packed->name,
                 words, k, bits == 0 ? 4 : bits, (k * (bits == 0 ? 4 : bits) + 31) / 32,
                 group != nullptr ? " (" + group->where + ")" : std::string(" (no config group targets it)"));
    }
    RTNQ_ASSIGN_OR_RETURN(DType scale_dtype, ScaleDType(*scale));
    if (scale->shape.size() != 2 || scale->shape[0] != n || scale->shape[1] <= 0 || k % scale->shape[1] != 0) {
      return Err("{}: tensor {} at offset {} has shape {}, expected [{}, K/G] with K/G dividing {}", scale->file,
                 scale->name, scale->file_offset, Shape(scale->shape), n, k);
    }
    const int64_t scale_cols = scale->shape[1];
    if (group != nullptr) {
      const bool ok = group->channel ? scale_cols == 1
                                     : scale_cols == (group->group_size >= k ? 1 : k / group->group_size) &&
                                           (group->group_size >= k || k % group->group_size == 0);
      if (!ok) {
        return Err("{}: tensor {} has {} scale columns for K = {}, but {} says {}", scale->file, scale->name,
                   scale_cols, k, group->where,
                   group->channel ? std::string("strategy channel") : fmt::format("group_size {}", group->group_size));
      }
    }
    RTNQ_ASSIGN_OR_RETURN(RtnScheme scheme, SchemeForBits(bits, packed->name));
    TensorView v;
    v.name = module + ".weight";
    v.file_name = packed->file_name;
    v.dtype = DType::kU8;
    v.shape = {n, k};
    v.data = packed->data;
    v.nbytes = packed->nbytes;
    v.code_row_bytes = static_cast<uint64_t>(words) * 4;
    v.file = packed->file;
    v.file_offset = packed->file_offset;
    // A group spanning exactly the row is kept as the config states it (g64 at K = 64), so the
    // view compares equal to the plan that wrote it.
    const bool config_group = group != nullptr && !group->channel && group->group_size == k / scale_cols;
    v.rtn = RtnFormat{scheme, static_cast<int32_t>(scale_cols == 1 && !config_group ? 0 : k / scale_cols),
                      scale_dtype};
    v.scales = scale->data;
    v.scales_nbytes = scale->nbytes;
    RTNQ_RETURN_IF_ERROR(ValidateQuantizedView(v));
    for (const char* suffix : {"weight_packed", "weight_scale", "weight_shape"}) consumed.insert(module + "." + suffix);
    views.emplace(packed->name, std::move(v));
  }
  if (views.empty()) return Err("{}: compressed-tensors checkpoint without any weight_packed tensor", where);
  ReplaceComponents(ck, consumed, std::move(views));
  return Status::Ok();
}

// -- GPTQ --

struct GptqDefaults {
  int64_t bits = 0;        // 0: infer from qweight rows
  int64_t group_size = -1; // -1: one group per row
  bool has_group = false;
};

struct GptqOverride {
  NamePattern pattern;
  bool skip = false;  // "-:" entry: the module is not quantized
  std::optional<int64_t> bits, group_size;
};

// Repacks a GPTQ module into rtnq's canonical layout in one owned buffer: codes [N][K*b/8], then
// scales [N][K/G] (transposed from GPTQ's [K/G][N]).
std::shared_ptr<uint8_t[]> RepackGptq(const TensorView& qweight, const TensorView& scales, const RtnFormat& f,
                                      int64_t n, int64_t k) {
  const int bits = f.bits(), pf = 32 / bits;
  const uint64_t code_bytes = f.CodeBytes(n, k), row_bytes = f.CodeBytes(1, k);
  const int64_t groups = scales.shape[0];
  const size_t esize = Info(f.scale_dtype).block_bytes;
  auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[code_bytes + f.ScaleBytes(n, k)]());
  uint8_t* codes = buf.get();
  const uint32_t mask = (1u << bits) - 1;
  for (int64_t r = 0; r < k / pf; ++r) {
    for (int64_t col = 0; col < n; ++col) {
      const uint32_t word = Word(qweight, static_cast<uint64_t>(r * n + col));
      uint8_t* row = codes + col * row_bytes;
      for (int i = 0; i < pf; ++i) {
        const int64_t kk = r * pf + i;
        const uint8_t code = static_cast<uint8_t>((word >> (bits * i)) & mask);
        if (bits == 8) row[kk] = code;
        else row[kk >> 1] |= static_cast<uint8_t>(code << (4 * (kk & 1)));
      }
    }
  }
  uint8_t* out_scales = codes + code_bytes;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t col = 0; col < n; ++col) {
      std::memcpy(out_scales + (col * groups + g) * esize, scales.data + (g * n + col) * esize, esize);
    }
  }
  return buf;
}

Status ApplyGptq(const Json& qc, const std::string& where, Checkpoint* ck) {
  RTNQ_ASSIGN_OR_RETURN(std::string format, StringMember(qc, "checkpoint_format", where));
  if (!format.empty() && format != "gptq") {
    return Err("{}: GPTQ checkpoint_format '{}' is not supported (gptq only)", where, format);
  }
  RTNQ_ASSIGN_OR_RETURN(auto sym, BoolMember(qc, "sym", where));
  if (sym && !*sym) return Err("{}: asymmetric GPTQ is not supported (sym: false)", where);
  RTNQ_ASSIGN_OR_RETURN(auto desc_act, BoolMember(qc, "desc_act", where));
  if (desc_act && *desc_act) return Err("{}: act-order GPTQ is not supported (desc_act: true)", where);
  GptqDefaults defaults;
  RTNQ_ASSIGN_OR_RETURN(auto bits, IntMember(qc, "bits", where));
  if (bits) {
    RTNQ_RETURN_IF_ERROR(SchemeForBits(*bits, where + ".bits").status());
    defaults.bits = *bits;
  }
  RTNQ_ASSIGN_OR_RETURN(auto group_size, IntMember(qc, "group_size", where));
  if (group_size) {
    defaults.group_size = *group_size;
    defaults.has_group = true;
  }
  std::vector<GptqOverride> overrides;
  if (const Json* dyn = Member(qc, "dynamic")) {
    if (!dyn->is_object()) return Err("{}.dynamic must be an object", where);
    for (const auto& [key, value] : dyn->items()) {
      const std::string dw = where + ".dynamic[" + key + "]";
      GptqOverride o;
      std::string pattern = key;
      if (StartsWith(key, "-:")) {
        o.skip = true;
        pattern = key.substr(2);
      } else if (StartsWith(key, "+:")) {
        pattern = key.substr(2);
      }
      RTNQ_ASSIGN_OR_RETURN(o.pattern, CompilePattern(pattern, dw));
      if (!value.is_object()) return Err("{} must be an object", dw);
      RTNQ_ASSIGN_OR_RETURN(o.bits, IntMember(value, "bits", dw));
      if (o.bits) RTNQ_RETURN_IF_ERROR(SchemeForBits(*o.bits, dw + ".bits").status());
      RTNQ_ASSIGN_OR_RETURN(o.group_size, IntMember(value, "group_size", dw));
      overrides.push_back(std::move(o));
    }
  }

  const TensorTable table(*ck);
  std::set<std::string> consumed;
  std::map<std::string, TensorView> views;
  for (const std::string& module : table.ModulesWith("qweight")) {
    const TensorView* qweight = table.Find(module + ".qweight");
    auto component = [&](const char* suffix) { return table.Find(module + "." + suffix); };
    const TensorView* qzeros = component("qzeros");
    const TensorView* scales = component("scales");
    const TensorView* g_idx = component("g_idx");
    if (scales == nullptr) return Err("{}: tensor {} has no {}.scales", qweight->file, qweight->name, module);
    if (qzeros == nullptr) return Err("{}: tensor {} has no {}.qzeros", qweight->file, qweight->name, module);
    if (const TensorView* w = component("weight")) {
      return Err("{}: tensor {} and {} both hold module {}", w->file, w->name, qweight->name, module);
    }
    const auto id = ParseCanonicalName(module + ".weight");
    if (!id || !RoleInfo(id->role).is_matrix) {
      return Err("{}: tensor {} is quantized but {}.weight is not a linear layer of this model", qweight->file,
                 qweight->name, module);
    }
    const std::vector<int64_t> expected = ExpectedShape(ck->config, *id);
    const int64_t n = expected[0], k = expected[1];
    int64_t module_bits = defaults.bits, module_group = defaults.group_size;
    bool has_group = defaults.has_group;
    for (const auto& o : overrides) {  // first match wins
      if (!o.pattern.Matches(module)) continue;
      if (o.skip) {
        return Err("{}: tensor {} is quantized but quantization_config.dynamic excludes it (-:{})", qweight->file,
                   qweight->name, o.pattern.text);
      }
      if (o.bits) module_bits = *o.bits;
      if (o.group_size) {
        module_group = *o.group_size;
        has_group = true;
      }
      break;
    }
    if (qweight->dtype != DType::kI32 || qweight->shape.size() != 2 || qweight->shape[1] != n ||
        qweight->shape[0] <= 0) {
      return Err("{}: tensor {} at offset {} is {} {}, expected I32 [K*bits/32, {}]", qweight->file, qweight->name,
                 qweight->file_offset, DTypeName(qweight->dtype), Shape(qweight->shape), n);
    }
    if (module_bits == 0) module_bits = 32 * qweight->shape[0] / k;  // inferred when the config has no bits
    if (module_bits != 4 && module_bits != 8) {
      return Err("{}: tensor {} has {} rows for K = {}: {} bits are not supported", qweight->file, qweight->name,
                 qweight->shape[0], k, module_bits);
    }
    const int64_t pf = 32 / module_bits;
    if (k % pf != 0 || n % pf != 0 || qweight->shape[0] != k / pf) {
      return Err("{}: tensor {} at offset {} has shape {}, expected [{}, {}] for a [{}, {}] weight at {} bits",
                 qweight->file, qweight->name, qweight->file_offset, Shape(qweight->shape), k / pf, n, n, k,
                 module_bits);
    }
    RTNQ_ASSIGN_OR_RETURN(DType scale_dtype, ScaleDType(*scales));
    if (scales->shape.size() != 2 || scales->shape[1] != n || scales->shape[0] <= 0 || k % scales->shape[0] != 0) {
      return Err("{}: tensor {} at offset {} has shape {}, expected [K/G, {}] with K/G dividing {}", scales->file,
                 scales->name, scales->file_offset, Shape(scales->shape), n, k);
    }
    const int64_t groups = scales->shape[0];
    if (has_group) {
      const int64_t want = module_group <= 0 || module_group >= k ? 1 : k / module_group;
      if (groups != want || (module_group > 0 && module_group < k && k % module_group != 0)) {
        return Err("{}: tensor {} has {} groups for K = {}, but the config's group_size is {}", scales->file,
                   scales->name, groups, k, module_group);
      }
    }
    const int64_t g_len = k / groups;
    if (qzeros->dtype != DType::kI32 || qzeros->shape != std::vector<int64_t>{groups, n / pf}) {
      return Err("{}: tensor {} at offset {} is {} {}, expected I32 [{}, {}]", qzeros->file, qzeros->name,
                 qzeros->file_offset, DTypeName(qzeros->dtype), Shape(qzeros->shape), groups, n / pf);
    }
    // Symmetric GPTQ ("v1" convention) stores zero = bias - 1 in every field.
    const uint32_t want_word = module_bits == 4 ? 0x77777777u : 0x7f7f7f7fu;
    for (uint64_t i = 0; i < static_cast<uint64_t>(groups * (n / pf)); ++i) {
      if (Word(*qzeros, i) != want_word) {
        return Err("{}: tensor {} at offset {}: word {} is {:#010x}, expected {:#010x}: asymmetric GPTQ is not "
                   "supported",
                   qzeros->file, qzeros->name, qzeros->file_offset + 4 * i, i, Word(*qzeros, i), want_word);
      }
    }
    if (g_idx != nullptr) {
      if ((g_idx->dtype != DType::kI32) || g_idx->shape != std::vector<int64_t>{k}) {
        return Err("{}: tensor {} at offset {} is {} {}, expected I32 [{}]", g_idx->file, g_idx->name,
                   g_idx->file_offset, DTypeName(g_idx->dtype), Shape(g_idx->shape), k);
      }
      for (int64_t kk = 0; kk < k; ++kk) {
        const int32_t g = static_cast<int32_t>(Word(*g_idx, static_cast<uint64_t>(kk)));
        if (g != kk / g_len) {
          return Err("{}: tensor {}: g_idx[{}] is {}, expected {}: act-order GPTQ is not supported", g_idx->file,
                     g_idx->name, kk, g, kk / g_len);
        }
      }
    }
    RTNQ_ASSIGN_OR_RETURN(RtnScheme scheme, SchemeForBits(module_bits, qweight->name));
    // As for compressed-tensors, a group_size equal to K stays a group (not "row").
    const bool config_group = has_group && module_group == g_len;
    const RtnFormat f{scheme, static_cast<int32_t>(groups == 1 && !config_group ? 0 : g_len), scale_dtype};
    RTNQ_RETURN_IF_ERROR(f.CheckShape(n, k).WithContext(qweight->name));
    std::shared_ptr<uint8_t[]> buf = RepackGptq(*qweight, *scales, f, n, k);
    TensorView v;
    v.name = module + ".weight";
    v.file_name = qweight->file_name;
    v.dtype = DType::kU8;
    v.shape = {n, k};
    v.data = buf.get();
    v.code_row_bytes = f.CodeBytes(1, k);
    v.nbytes = f.CodeBytes(n, k);  // == qweight's bytes, so the overlap check stays meaningful
    v.file = qweight->file;
    v.file_offset = qweight->file_offset;
    v.rtn = f;
    v.scales = buf.get() + v.nbytes;
    v.scales_nbytes = f.ScaleBytes(n, k);
    RTNQ_RETURN_IF_ERROR(ValidateQuantizedView(v));
    ck->owned.push_back(std::shared_ptr<const void>(buf, buf.get()));
    for (const char* suffix : {"qweight", "qzeros", "scales", "g_idx"}) consumed.insert(module + "." + suffix);
    views.emplace(qweight->name, std::move(v));
  }
  if (views.empty()) return Err("{}: GPTQ checkpoint without any qweight tensor", where);
  ReplaceComponents(ck, consumed, std::move(views));
  return Status::Ok();
}

// Reads config.json's quantization_config (if any) and rewrites the quantized modules' tensors.
Status ApplyQuantizationConfig(const std::string& config_path, Checkpoint* ck) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Err("{}: invalid JSON", config_path);
  const Json* qc = Member(j, "quantization_config");
  if (qc == nullptr) return Status::Ok();
  const std::string where = config_path + ": quantization_config";
  if (!qc->is_object()) return Err("{} must be an object", where);
  RTNQ_ASSIGN_OR_RETURN(std::string method, StringMember(*qc, "quant_method", where));
  Status status;
  if (method == "compressed-tensors") {
    status = ApplyCompressedTensors(*qc, where, ck);
  } else if (method == "gptq") {
    status = ApplyGptq(*qc, where, ck);
  } else {
    return Err("{}: quant_method '{}' is not supported (rtnq reads compressed-tensors and gptq)", where,
               method.empty() ? "(none)" : method);
  }
  if (status.ok()) ck->metadata.emplace_back("quant_method", method);
  return status;
}

}  // namespace

Result<Checkpoint> OpenHfCheckpoint(const std::string& path, const OpenOptions& options) {
  // The directory, and a specific weights file when `path` names one.
  std::string dir = path, weights_file;
  if (!IsDirectory(path)) {
    if (!PathExists(path)) return Err("{}: no such file or directory", path);
    const fs::path parent = fs::path(path).parent_path();
    dir = parent.empty() ? std::string(".") : parent.string();
    if (EndsWith(path, ".safetensors")) weights_file = path;
  }
  Checkpoint ck;
  ck.path = path;
  ck.format = CheckpointFormat::kHfSafetensors;

  const std::string config_path = Join(dir, "config.json");
  if (!PathExists(config_path)) return Err("{}: no config.json in the model directory", config_path);
  RTNQ_ASSIGN_OR_RETURN(HfConfig config, ReadHfConfig(config_path));
  ck.config = config.config;
  const std::string gen_path = Join(dir, "generation_config.json");
  if (PathExists(gen_path)) {
    RTNQ_ASSIGN_OR_RETURN(std::string gen_text, ReadFileToString(gen_path));
    RTNQ_RETURN_IF_ERROR(ApplyGenerationConfig(gen_text, gen_path, &ck.config));
  }
  ck.metadata.emplace_back("architecture", config.architecture);
  if (!config.model_type.empty()) ck.metadata.emplace_back("model_type", config.model_type);
  if (!config.torch_dtype.empty()) ck.metadata.emplace_back("torch_dtype", config.torch_dtype);

  const std::string single = Join(dir, "model.safetensors");
  const std::string index = Join(dir, "model.safetensors.index.json");
  // A named shard of an indexed model opens the whole model; any other named file opens alone.
  const bool named_single = !weights_file.empty() &&
                            (fs::path(weights_file).filename() == "model.safetensors" ||
                             !PathExists(index));
  if (named_single) {
    RTNQ_ASSIGN_OR_RETURN(SafetensorsFile f, OpenSafetensors(weights_file));
    AddFile(&ck, f);
  } else if (weights_file.empty() && PathExists(single)) {
    RTNQ_ASSIGN_OR_RETURN(SafetensorsFile f, OpenSafetensors(single));
    AddFile(&ck, f);
  } else if (PathExists(index)) {
    RTNQ_RETURN_IF_ERROR(AddShards(dir, index, &ck));
  } else {
    return Err("{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  RTNQ_RETURN_IF_ERROR(ApplyQuantizationConfig(config_path, &ck));

  std::string tokenizer_path = options.tokenizer_path;
  if (tokenizer_path.empty() && PathExists(Join(dir, "tokenizer.json"))) {
    tokenizer_path = Join(dir, "tokenizer.json");
  }
  if (!tokenizer_path.empty()) {
    RTNQ_ASSIGN_OR_RETURN(TokenizerSpec spec, ReadTokenizerJson(tokenizer_path));
    // tokenizer.json does not say which token is BOS/EOS; the model config does.
    if (spec.bos_id < 0 && !ck.config.bos_token_ids.empty()) spec.bos_id = ck.config.bos_token_ids[0];
    if (spec.eos_id < 0 && !ck.config.eos_token_ids.empty()) spec.eos_id = ck.config.eos_token_ids[0];
    ck.tokenizer = std::move(spec);
  }
  return ck;
}

}  // namespace rtnq
