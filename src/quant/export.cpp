#include "quant/export.h"

#include <algorithm>
#include <map>

#include "base/timer.h"

namespace rtnq {

Result<ExportFormat> ParseExportFormat(const std::string& name) {
  if (name == "compressed-tensors" || name == "ct") return ExportFormat::kCompressedTensors;
  if (name == "gptq") return ExportFormat::kGptq;
  if (name == "gguf") return ExportFormat::kGguf;
  return Err("unknown export format '{}' (valid: compressed-tensors, gptq, gguf)", name);
}

const char* ExportFormatName(ExportFormat f) {
  switch (f) {
    case ExportFormat::kCompressedTensors: return "compressed-tensors";
    case ExportFormat::kGptq: return "gptq";
    case ExportFormat::kGguf: return "gguf";
  }
  return "?";
}

VllmUnit UnitOf(TensorRole role) {
  switch (role) {
    case TensorRole::kAttnQ:
    case TensorRole::kAttnK:
    case TensorRole::kAttnV: return VllmUnit::kQkv;
    case TensorRole::kAttnO: return VllmUnit::kO;
    case TensorRole::kMlpGate:
    case TensorRole::kMlpUp: return VllmUnit::kGateUp;
    case TensorRole::kMlpDown: return VllmUnit::kDown;
    default: return VllmUnit::kOther;
  }
}

std::string UnitPattern(VllmUnit unit, const std::vector<int>& layers) {
  std::string alternatives;
  for (int l : layers) alternatives += fmt::format("{}{}", alternatives.empty() ? "" : "|", l);
  const std::string layer = layers.size() == 1 ? alternatives : "(" + alternatives + ")";
  switch (unit) {
    case VllmUnit::kQkv: return "model\\.layers\\." + layer + "\\.self_attn\\.(q|k|v|qkv)_proj$";
    case VllmUnit::kO: return "model\\.layers\\." + layer + "\\.self_attn\\.o_proj$";
    case VllmUnit::kGateUp: return "model\\.layers\\." + layer + "\\.mlp\\.(gate|up|gate_up)_proj$";
    case VllmUnit::kDown: return "model\\.layers\\." + layer + "\\.mlp\\.down_proj$";
    case VllmUnit::kOther: break;
  }
  return "";
}

std::string ModulePrefix(const std::string& weight_name) {
  const size_t dot = weight_name.rfind('.');
  return dot == std::string::npos ? weight_name : weight_name.substr(0, dot);
}

std::vector<Precision> QuantizedPrecisions(const CompiledPlan& plan) {
  std::vector<std::pair<Precision, int>> counts;
  for (const auto& t : plan.tensors) {
    if (!t.precision.IsQuantized()) continue;
    auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == t.precision; });
    if (it == counts.end()) counts.push_back({t.precision, 1});
    else ++it->second;
  }
  std::stable_sort(counts.begin(), counts.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<Precision> out;
  for (const auto& c : counts) out.push_back(c.first);
  return out;
}

Status CheckVllmFusedPrecisions(const CompiledPlan& plan) {
  std::map<std::pair<int, VllmUnit>, const TensorDecision*> first;
  for (const auto& t : plan.tensors) {
    const VllmUnit unit = UnitOf(t.id.role);
    if (unit == VllmUnit::kOther) continue;
    auto [it, inserted] = first.emplace(std::make_pair(t.id.layer, unit), &t);
    if (!inserted && !(it->second->precision == t.precision)) {
      return Err("{} is {} but {} is {}: vLLM fuses them into one module, which needs one precision "
                 "(make the plan treat them alike, e.g. modules=qkv or modules=gate_up)",
                 it->second->name, it->second->precision.Name(), t.name, t.precision.Name());
    }
  }
  return Status::Ok();
}

Result<ExportResult> ExportCheckpoint(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                      const ExportOptions& options) {
  Timer timer;
  Result<ExportResult> result = Err("unreachable");
  switch (options.format) {
    case ExportFormat::kCompressedTensors:
      result = ExportCompressedTensors(checkpoint, plan, options);
      break;
    case ExportFormat::kGptq: result = ExportGptq(checkpoint, plan, options); break;
    case ExportFormat::kGguf: result = ExportGguf(checkpoint, plan, options); break;
  }
  if (result.ok()) result->seconds = timer.Seconds();
  return result;
}

}  // namespace rtnq
