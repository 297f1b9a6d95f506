#include "quant/memory_plan.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace rtnq {
namespace {

struct KnownDevice {
  const char* name;
  uint64_t mib;  // total memory as nvidia-smi reports it
};

constexpr KnownDevice kDevices[] = {
    {"H100-80GB", 81559}, {"H100", 81559},       {"H200", 143771},     {"H200-141GB", 143771},
    {"A100-80GB", 81920}, {"A100-40GB", 40960},  {"L40S", 46068},      {"L4", 23034},
    {"A10G", 23028},      {"RTX4090", 24564},    {"B200", 183359},     {"MI300X", 196592},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(x) == std::tolower(y); });
}

uint64_t DivUp(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

}  // namespace

std::vector<std::string> KnownDeviceNames() {
  std::vector<std::string> names;
  for (const auto& d : kDevices) names.emplace_back(d.name);
  return names;
}

Result<DeviceSpec> ParseDeviceSpec(std::string_view text) {
  DeviceSpec spec;
  std::string_view name = text;
  if (auto x = text.find_first_of("xX"); x != std::string_view::npos && x > 0) {
    int count = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + x, count);
    if (ec == std::errc() && p == text.data() + x) {
      if (count <= 0 || count > 1024) return Err("device count in '{}' must be 1..1024", text);
      spec.count = count;
      name = text.substr(x + 1);
    }
  }
  for (const auto& d : kDevices) {
    if (EqualsIgnoreCase(name, d.name)) {
      spec.name = d.name;
      spec.bytes = d.mib << 20;
      return spec;
    }
  }
  // A plain size: "24GB" (10^9 bytes) or "24GiB".
  double size = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), size);
  const std::string_view unit(p, name.data() + name.size() - p);
  if (ec == std::errc() && size > 0 && (EqualsIgnoreCase(unit, "GB") || EqualsIgnoreCase(unit, "GiB"))) {
    spec.name = std::string(name);
    spec.bytes = static_cast<uint64_t>(size * (EqualsIgnoreCase(unit, "GB") ? 1e9 : 1073741824.0));
    return spec;
  }
  std::string known;
  for (const auto& d : kDevices) known += (known.empty() ? "" : ", ") + std::string(d.name);
  return Err("unknown device '{}' (use COUNTxNAME with NAME one of {}, or a size like 24GB / 80GiB)", text, known);
}

Result<FitResult> FitOnDevices(const ModelConfig& config, const CompiledPlan& plan,
                               const DeviceSpec& devices, const FitOptions& options) {
  const uint64_t tp = static_cast<uint64_t>(devices.count);
  if (config.num_heads % static_cast<int64_t>(tp) != 0) {
    return Err("{} attention heads cannot be split over {} devices", config.num_heads, tp);
  }
  FitResult r;
  r.devices = devices;
  // K/V heads split across devices; with more devices than heads each device keeps one (replicas).
  r.kv_heads_per_device = std::max<int64_t>(1, config.num_kv_heads / static_cast<int64_t>(tp));
  for (const TensorDecision& t : plan.tensors) {
    r.weight_bytes_total += t.bytes;
    uint64_t per_device;
    switch (t.id.role) {
      case TensorRole::kAttnNorm:
      case TensorRole::kMlpNorm:
      case TensorRole::kFinalNorm: per_device = t.bytes; break;  // replicated
      case TensorRole::kAttnK:
      case TensorRole::kAttnV:
      case TensorRole::kAttnKBias:
      case TensorRole::kAttnVBias:
        per_device = DivUp(t.bytes * r.kv_heads_per_device, config.num_kv_heads);
        break;
      default: per_device = DivUp(t.bytes, tp);  // split by rows, columns or vocab
    }
    r.weight_bytes_per_device += per_device;
  }
  const double usable = options.memory_utilization * static_cast<double>(devices.bytes);
  r.budget_bytes_per_device = usable > options.reserve_bytes ? static_cast<uint64_t>(usable) - options.reserve_bytes : 0;
  r.kv_bytes_per_token = 2ull * config.num_layers * r.kv_heads_per_device * config.head_dim *
                         options.kv_bytes_per_element;
  r.weights_fit = r.weight_bytes_per_device < r.budget_bytes_per_device;
  if (r.weights_fit) {
    r.max_kv_tokens = static_cast<int64_t>((r.budget_bytes_per_device - r.weight_bytes_per_device) /
                                           r.kv_bytes_per_token);
    r.max_context = std::min<int64_t>(r.max_kv_tokens, config.max_position_embeddings);
    for (int64_t ctx : {2048, 8192, 32768, 131072}) {
      if (ctx > config.max_position_embeddings || r.max_kv_tokens < ctx) break;
      r.batch_at_context.push_back({ctx, r.max_kv_tokens / ctx});
    }
  }
  return r;
}

}  // namespace rtnq
