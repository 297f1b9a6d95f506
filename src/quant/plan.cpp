#include "quant/plan.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <sstream>

#include "base/file.h"

namespace rtnq {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t pos = 0;
  while (true) {
    const size_t end = s.find(sep, pos);
    parts.push_back(Trim(s.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos)));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  return parts;
}

std::optional<int> ParseInt(std::string_view s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

constexpr std::string_view kPrecisionHint =
    "valid precisions: keep, bf16, f16, f32, int8|int4|rtn8|rtn4 with optional :g32|:g64|:g128|:row "
    "and :bf16|:f16|:f32 scales";

constexpr std::string_view kModuleHint =
    "valid modules: embed, lm_head, attn_q, attn_k, attn_v, attn_o, mlp_gate, mlp_up, mlp_down, "
    "and the groups qkv, gate_up, attn, mlp, linear";

uint64_t DecisionBytes(const TensorDecision& d) {
  const int64_t rows = d.shape.empty() ? 0 : d.shape[0];
  const int64_t cols = d.shape.size() > 1 ? d.shape[1] : 1;
  const uint64_t elems = static_cast<uint64_t>(rows) * cols;
  switch (d.precision.kind) {
    case Precision::Kind::kRtn: return d.precision.rtn.TotalBytes(rows, cols);
    case Precision::Kind::kBF16:
    case Precision::Kind::kF16: return elems * 2;
    case Precision::Kind::kF32: return elems * 4;
    case Precision::Kind::kKeep: {
      // Kept tensors keep their 16/32-bit dtype; a block-quantized source is decoded to F32.
      const auto& info = Info(d.source_dtype);
      return info.quantized ? elems * 4 : elems * info.block_bytes;
    }
  }
  return 0;
}

}  // namespace

std::string Precision::Name() const {
  switch (kind) {
    case Kind::kKeep: return "keep";
    case Kind::kBF16: return "bf16";
    case Kind::kF16: return "f16";
    case Kind::kF32: return "f32";
    case Kind::kRtn: return rtn.Name();
  }
  return "?";
}

Result<Precision> ParsePrecision(std::string_view text) {
  text = Trim(text);
  Precision p;
  if (text == "keep") return p;
  if (text == "bf16") p.kind = Precision::Kind::kBF16;
  else if (text == "f16" || text == "fp16") p.kind = Precision::Kind::kF16;
  else if (text == "f32" || text == "fp32") p.kind = Precision::Kind::kF32;
  else {
    auto f = ParseRtnFormat(text);
    if (!f.ok()) return Err("unknown precision '{}' ({})", text, kPrecisionHint);
    p.kind = Precision::Kind::kRtn;
    p.rtn = *f;
  }
  return p;
}

Result<LayerSet> LayerSet::Parse(std::string_view text) {
  LayerSet set;
  set.text_ = std::string(Trim(text));
  if (set.text_.empty()) return Err("empty layer set");
  for (std::string_view part : Split(text, ',')) {
    Item item{Item::Kind::kAll};
    auto count_after = [&](std::string_view prefix) -> std::optional<int> {
      std::string_view rest = part.substr(prefix.size());
      if (!rest.empty() && rest[0] == ':') rest.remove_prefix(1);
      auto n = ParseInt(rest);
      if (!n || *n <= 0) return std::nullopt;
      return n;
    };
    if (part == "all") {
      item.kind = Item::Kind::kAll;
    } else if (part.rfind("first", 0) == 0 || part.rfind("last", 0) == 0 || part.rfind("middle", 0) == 0) {
      const std::string_view prefix = part[0] == 'f' ? "first" : part[0] == 'l' ? "last" : "middle";
      auto n = count_after(prefix);
      if (!n) return Err("bad layer set item '{}': expected {}:N with N > 0", part, prefix);
      item.kind = prefix == "first" ? Item::Kind::kFirst : prefix == "last" ? Item::Kind::kLast : Item::Kind::kMiddle;
      item.a = *n;
    } else if (auto dash = part.find('-', 1); dash != std::string_view::npos) {
      auto a = ParseInt(part.substr(0, dash)), b = ParseInt(part.substr(dash + 1));
      if (!a || !b || *a < 0 || *b < *a) return Err("bad layer range '{}': expected A-B with 0 <= A <= B", part);
      item.kind = Item::Kind::kRange;
      item.a = *a;
      item.b = *b;
    } else if (auto n = ParseInt(part)) {
      item.kind = Item::Kind::kIndex;
      item.a = *n;  // negative: from the end (-1 = last layer)
    } else {
      return Err("bad layer set item '{}' (use all, N, -N, A-B, first:N, last:N, middle:N)", part);
    }
    set.items_.push_back(item);
  }
  return set;
}

Status LayerSet::Check(int num_layers) const {
  for (const Item& it : items_) {
    const bool bad = (it.kind == Item::Kind::kIndex && (it.a >= num_layers || it.a < -num_layers)) ||
                     (it.kind == Item::Kind::kRange && it.b >= num_layers) ||
                     ((it.kind == Item::Kind::kFirst || it.kind == Item::Kind::kLast ||
                       it.kind == Item::Kind::kMiddle) && it.a > num_layers);
    if (bad) return Err("layer set '{}' reaches past the model's {} layers", text_, num_layers);
  }
  return Status::Ok();
}

bool LayerSet::Contains(int layer, int n) const {
  for (const Item& it : items_) {
    switch (it.kind) {
      case Item::Kind::kAll: return true;
      case Item::Kind::kIndex:
        if (layer == (it.a < 0 ? n + it.a : it.a)) return true;
        break;
      case Item::Kind::kRange:
        if (layer >= it.a && layer <= it.b) return true;
        break;
      case Item::Kind::kFirst:
        if (layer < it.a) return true;
        break;
      case Item::Kind::kLast:
        if (layer >= n - it.a) return true;
        break;
      case Item::Kind::kMiddle: {
        // The it.a layers centred on n/2 (for odd leftovers, the extra layer goes first).
        const int begin = (n - it.a) / 2;
        if (layer >= begin && layer < begin + it.a) return true;
        break;
      }
    }
  }
  return false;
}

Result<std::vector<TensorRole>> ParseModuleList(std::string_view text) {
  std::vector<TensorRole> roles;
  auto add = [&](std::initializer_list<TensorRole> rs) { roles.insert(roles.end(), rs); };
  for (std::string_view m : Split(text, ',')) {
    if (m == "qkv") add({TensorRole::kAttnQ, TensorRole::kAttnK, TensorRole::kAttnV});
    else if (m == "gate_up") add({TensorRole::kMlpGate, TensorRole::kMlpUp});
    else if (m == "attn") add({TensorRole::kAttnQ, TensorRole::kAttnK, TensorRole::kAttnV, TensorRole::kAttnO});
    else if (m == "mlp") add({TensorRole::kMlpGate, TensorRole::kMlpUp, TensorRole::kMlpDown});
    else if (m == "linear")
      add({TensorRole::kAttnQ, TensorRole::kAttnK, TensorRole::kAttnV, TensorRole::kAttnO,
           TensorRole::kMlpGate, TensorRole::kMlpUp, TensorRole::kMlpDown});
    else if (auto r = ParseRoleShortName(m)) {
      if (!RoleInfo(*r).is_matrix) {
        return Err("module '{}' cannot be given a precision: norms and biases always stay 16/32-bit", m);
      }
      roles.push_back(*r);
    }
    else return Err("unknown module '{}' ({})", m, kModuleHint);
  }
  return roles;
}

Status QuantPlan::AddRule(std::string_view line, const std::string& source) {
  line = Trim(line);
  auto fail = [&](const Status& s) { return s.WithContext(source); };
  if (line.rfind("default", 0) == 0 && (line.size() == 7 || std::isspace(static_cast<unsigned char>(line[7])))) {
    auto p = ParsePrecision(line.substr(7));
    if (!p.ok()) return fail(p.status());
    base = *p;
    return Status::Ok();
  }
  if (line.rfind("fallback", 0) == 0) {
    const std::string_view v = Trim(line.substr(8));
    if (v == "keep") fallback = GroupFallback::kKeep;
    else if (v == "row") fallback = GroupFallback::kPerRow;
    else return fail(Err("unknown fallback '{}' (keep or row)", v));
    return Status::Ok();
  }
  const size_t arrow = line.find("->");
  if (arrow == std::string_view::npos) {
    return fail(Err("cannot parse rule '{}': expected '[layers=SET] [modules=LIST] -> PRECISION', "
                    "'default PRECISION' or 'fallback keep|row'", line));
  }
  PlanRule rule;
  rule.source = source;
  rule.text = std::string(line);
  auto precision = ParsePrecision(line.substr(arrow + 2));
  if (!precision.ok()) return fail(precision.status());
  rule.precision = *precision;
  std::istringstream selectors{std::string(line.substr(0, arrow))};
  std::string sel;
  while (selectors >> sel) {
    const std::string_view s = sel;
    if (s.rfind("layers=", 0) == 0) {
      auto set = LayerSet::Parse(s.substr(7));
      if (!set.ok()) return fail(set.status());
      rule.layers = *set;
    } else if (s.rfind("modules=", 0) == 0) {
      auto roles = ParseModuleList(s.substr(8));
      if (!roles.ok()) return fail(roles.status());
      rule.roles = *roles;
    } else {
      return fail(Err("unknown selector '{}' in rule '{}' (use layers=... and modules=...)", s, line));
    }
  }
  rules.push_back(std::move(rule));
  return Status::Ok();
}

Result<QuantPlan> QuantPlan::ParseText(std::string_view text, const std::string& source) {
  QuantPlan plan;
  int line_no = 0;
  for (std::string_view line : Split(text, '\n')) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    if (Trim(line).empty()) continue;
    RTNQ_RETURN_IF_ERROR(plan.AddRule(line, fmt::format("{}:{}", source, line_no)));
  }
  return plan;
}

Result<QuantPlan> QuantPlan::ParseJson(std::string_view json, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Err("{}: not a JSON object", source);
  QuantPlan plan;
  if (j.contains("default")) {
    if (!j["default"].is_string()) return Err("{}: \"default\" must be a string", source);
    RTNQ_RETURN_IF_ERROR(plan.AddRule("default " + j["default"].get<std::string>(), source));
  }
  if (j.contains("fallback")) {
    if (!j["fallback"].is_string()) return Err("{}: \"fallback\" must be a string", source);
    RTNQ_RETURN_IF_ERROR(plan.AddRule("fallback " + j["fallback"].get<std::string>(), source));
  }
  if (j.contains("rules")) {
    if (!j["rules"].is_array()) return Err("{}: \"rules\" must be an array", source);
    int i = 0;
    for (const auto& r : j["rules"]) {
      const std::string where = fmt::format("{}: rules[{}]", source, i++);
      if (!r.is_object() || !r.contains("precision") || !r["precision"].is_string()) {
        return Err("{}: expected an object with a \"precision\" string", where);
      }
      std::string line;
      if (r.contains("layers")) {
        if (!r["layers"].is_string()) return Err("{}: \"layers\" must be a string", where);
        line += "layers=" + r["layers"].get<std::string>() + " ";
      }
      if (r.contains("modules")) {
        std::string modules;
        if (r["modules"].is_string()) {
          modules = r["modules"].get<std::string>();
        } else if (r["modules"].is_array()) {
          for (const auto& m : r["modules"]) {
            if (!m.is_string()) return Err("{}: \"modules\" entries must be strings", where);
            modules += (modules.empty() ? "" : ",") + m.get<std::string>();
          }
        } else {
          return Err("{}: \"modules\" must be a string or an array of strings", where);
        }
        line += "modules=" + modules + " ";
      }
      line += "-> " + r["precision"].get<std::string>();
      RTNQ_RETURN_IF_ERROR(plan.AddRule(line, where));
    }
  }
  return plan;
}

Result<QuantPlan> QuantPlan::ReadFile(const std::string& path) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return ParseJson(text, path);
  return ParseText(text, path);
}

std::string QuantPlan::ToText() const {
  std::string out = "default " + base.Name() + "\n";
  if (fallback == GroupFallback::kPerRow) out += "fallback row\n";
  for (const auto& r : rules) out += r.text + "\n";
  return out;
}

Result<CompiledPlan> CompilePlan(const QuantPlan& plan, const ModelConfig& config,
                                 const std::vector<TensorSource>& tensors, bool strict) {
  const int n_layers = static_cast<int>(config.num_layers);
  for (const auto& rule : plan.rules) {
    if (rule.layers) RTNQ_RETURN_IF_ERROR(rule.layers->Check(n_layers).WithContext(rule.source));
  }
  CompiledPlan compiled;
  std::vector<int> matches(plan.rules.size(), 0), effective(plan.rules.size(), 0);
  for (const TensorSource& src : tensors) {
    const TensorRoleInfo& role = RoleInfo(src.id.role);
    TensorDecision d;
    d.id = src.id;
    d.name = CanonicalName(src.id);
    d.shape = ExpectedShape(config, src.id);
    d.source_dtype = src.dtype;
    // Linear layers in the blocks follow the default; embeddings, lm_head, norms and biases are
    // kept unless a rule names them (norms and biases never change).
    const bool block_linear = role.is_matrix && role.per_layer;
    if (block_linear) d.precision = plan.base;
    if (role.is_matrix) {
      for (size_t i = 0; i < plan.rules.size(); ++i) {
        const PlanRule& rule = plan.rules[i];
        const bool role_ok = rule.roles.empty()
                                 ? block_linear
                                 : std::find(rule.roles.begin(), rule.roles.end(), src.id.role) != rule.roles.end();
        const bool layer_ok = !rule.layers || (role.per_layer && rule.layers->Contains(src.id.layer, n_layers));
        if (!role_ok || !layer_ok) continue;
        ++matches[i];
        d.precision = rule.precision;
        d.rule = static_cast<int>(i);
      }
      if (d.rule >= 0) ++effective[d.rule];
    }
    if (d.precision.IsQuantized()) {
      const Status fits = d.precision.rtn.CheckShape(d.shape[0], d.shape[1]);
      if (!fits.ok()) {
        if (strict) return Err("tensor {} cannot be stored as {}: {} (--strict)", d.name, d.precision.Name(), fits.message());
        RtnFormat per_row = d.precision.rtn;
        per_row.group = 0;
        if (plan.fallback == GroupFallback::kPerRow && per_row.CheckShape(d.shape[0], d.shape[1]).ok()) {
          d.note = fmt::format("{} does not fit ({}); one group per row", d.precision.Name(), fits.message());
          d.precision.rtn = per_row;
        } else {
          d.note = fmt::format("{} does not fit ({}); kept", d.precision.Name(), fits.message());
          d.precision = Precision{};
        }
      }
    }
    d.bytes = DecisionBytes(d);
    compiled.total_bytes += d.bytes;
    compiled.total_weights += static_cast<int64_t>(d.shape[0]) * (d.shape.size() > 1 ? d.shape[1] : 1);
    compiled.tensors.push_back(std::move(d));
  }
  for (size_t i = 0; i < plan.rules.size(); ++i) {
    if (matches[i] == 0) {
      return Err("{}: rule '{}' matches no tensor of this model", plan.rules[i].source, plan.rules[i].text);
    }
    if (effective[i] == 0) {
      return Err("{}: rule '{}' has no effect: later rules override every tensor it matches",
                 plan.rules[i].source, plan.rules[i].text);
    }
  }
  return compiled;
}

}  // namespace rtnq
