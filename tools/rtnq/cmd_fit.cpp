// rtnq fit MODEL|config.json|SHAPE --devices 4xH100-80GB [--quant rtn4 | --plan FILE]: weight bytes
// per device under tensor parallelism, KV bytes per token, and the context x batch that fits.
#include <cstdio>

#include "arch/shapes.h"
#include "command.h"
#include "common.h"
#include "io/hf_config.h"
#include "plan_flags.h"
#include "quant/quantize_model.h"
#include "quant/memory_plan.h"

namespace rtnq::cli {
namespace {

struct FitFlags {
  std::string model;
  std::string devices;
  PlanFlags plan;
  FitOptions options;
  double reserve_gib = 2.0;
  std::string kv_dtype = "bf16";
  bool json = false;
};

// A model to fit: a named shape, a config.json / HF directory (no weights needed), or any checkpoint.
struct FitModel {
  ModelConfig config;
  std::vector<TensorSource> sources;
  std::optional<Checkpoint> checkpoint;
};

Result<FitModel> Describe(const std::string& model) {
  FitModel out;
  DType dtype = DType::kBF16;
  if (auto shape = KnownShape(model)) {
    out.config = *shape;
  } else if (IsDirectory(model) && !PathExists(model + "/config.json")) {
    return Err("{}: no config.json", model);
  } else if (model.ends_with("config.json") ||
             (IsDirectory(model) && !PathExists(model + "/model.safetensors") &&
              !PathExists(model + "/model.safetensors.index.json"))) {
    // Only the configuration: enough to size the model.
    RTNQ_ASSIGN_OR_RETURN(HfConfig hf, ReadHfConfig(IsDirectory(model) ? model + "/config.json" : model));
    out.config = hf.config;
    if (hf.torch_dtype == "float32") dtype = DType::kF32;
    if (hf.torch_dtype == "float16") dtype = DType::kF16;
  } else {
    RTNQ_ASSIGN_OR_RETURN(Checkpoint ck, OpenCheckpoint(model));
    out.config = ck.config;
    out.checkpoint = std::move(ck);
    return out;
  }
  RTNQ_RETURN_IF_ERROR(out.config.Validate().WithContext(model));
  for (const TensorId& id : RequiredTensors(out.config)) out.sources.push_back({id, dtype});
  return out;
}

// Compiles the plan; tensors an already-quantized checkpoint stores as RTN and the plan keeps stay
// quantized in memory, so they count their stored bytes.
Result<CompiledPlan> CompileForFit(const QuantPlan& plan, const FitModel& model, bool strict) {
  if (!model.checkpoint) return CompilePlan(plan, model.config, model.sources, strict);
  RTNQ_ASSIGN_OR_RETURN(CompiledPlan compiled, CompilePlanForCheckpoint(plan, *model.checkpoint, strict));
  for (TensorDecision& d : compiled.tensors) {
    const TensorView* view = model.checkpoint->Find(d.name);
    if (d.precision.kind != Precision::Kind::kKeep || view == nullptr || !view->IsQuantized()) continue;
    compiled.total_bytes += view->StoredBytes() - d.bytes;
    d.bytes = view->StoredBytes();
  }
  return compiled;
}

void Run(FitFlags& flags) {
  auto model = Describe(flags.model);
  if (!model.ok()) return Fail("fit", model.status());
  auto plan = flags.plan.Build();
  if (!plan.ok()) return Fail("fit", plan.status());
  auto compiled = CompileForFit(*plan, *model, flags.plan.strict);
  if (!compiled.ok()) return Fail("fit", compiled.status());
  auto devices = ParseDeviceSpec(flags.devices);
  if (!devices.ok()) return Fail("fit", devices.status());
  flags.options.reserve_bytes = static_cast<uint64_t>(flags.reserve_gib * 1073741824.0);
  flags.options.kv_bytes_per_element = flags.kv_dtype == "fp8" ? 1 : 2;
  auto fit = FitOnDevices(model->config, *compiled, *devices, flags.options);
  if (!fit.ok()) return Fail("fit", fit.status());
  const double gib = 1073741824.0;

  if (flags.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : fit->batch_at_context) rows.push_back({{"context", r.context}, {"max_batch", r.max_batch}});
    nlohmann::json out = {{"model", flags.model},
                          {"plan", plan->ToText()},
                          {"bits_per_weight", compiled->BitsPerWeight()},
                          {"devices", {{"count", devices->count}, {"name", devices->name}, {"bytes", devices->bytes}}},
                          {"weight_bytes_total", fit->weight_bytes_total},
                          {"weight_bytes_per_device", fit->weight_bytes_per_device},
                          {"budget_bytes_per_device", fit->budget_bytes_per_device},
                          {"memory_utilization", flags.options.memory_utilization},
                          {"reserve_bytes_per_device", flags.options.reserve_bytes},
                          {"kv_heads_per_device", fit->kv_heads_per_device},
                          {"kv_bytes_per_token_per_device", fit->kv_bytes_per_token},
                          {"fits", fit->weights_fit},
                          {"max_kv_tokens", fit->max_kv_tokens},
                          {"max_context", fit->max_context},
                          {"batch_at_context", rows}};
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("model:     %s, %.2f B weights, %.3f bits per weight (%s)\n", flags.model.c_str(),
              compiled->total_weights / 1e9, compiled->BitsPerWeight(),
              plan->base.Name().c_str());
  std::printf("devices:   %d x %s (%.1f GiB each), tensor parallel %d\n", devices->count,
              devices->name.c_str(), devices->bytes / gib, devices->count);
  std::printf("weights:   %.2f GiB total, %.2f GiB per device; budget %.2f GiB per device "
              "(%.0f%% utilization - %.1f GiB reserve)\n",
              fit->weight_bytes_total / gib, fit->weight_bytes_per_device / gib,
              fit->budget_bytes_per_device / gib, flags.options.memory_utilization * 100, flags.reserve_gib);
  std::printf("kv cache:  %lld kv heads per device, %llu bytes per token per device (%s)\n",
              (long long)fit->kv_heads_per_device, (unsigned long long)fit->kv_bytes_per_token,
              flags.kv_dtype.c_str());
  if (!fit->weights_fit) {
    std::printf("result:    DOES NOT FIT: weights need %.2f GiB per device, %.2f GiB available\n",
                fit->weight_bytes_per_device / gib, fit->budget_bytes_per_device / gib);
    return;
  }
  std::printf("result:    fits; %lld tokens of KV cache, max context %lld\n", (long long)fit->max_kv_tokens,
              (long long)fit->max_context);
  for (const auto& r : fit->batch_at_context) {
    std::printf("           context %7lld: batch up to %lld\n", (long long)r.context, (long long)r.max_batch);
  }
}

}  // namespace

void RegisterFit(CLI::App& app) {
  auto flags = std::make_shared<FitFlags>();
  auto* cmd = app.add_subcommand("fit", "How a model fits on accelerators under tensor parallelism");
  cmd->add_option("MODEL", flags->model, "checkpoint, HF directory, config.json, or a shape name (rtnq synth --help)")
      ->required();
  cmd->add_option("--devices", flags->devices, "e.g. 4xH100-80GB, 8xA100-40GB, 2x24GB")->required();
  flags->plan.Add(cmd);
  cmd->add_option("--utilization", flags->options.memory_utilization, "fraction of device memory used")
      ->capture_default_str();
  cmd->add_option("--reserve-gib", flags->reserve_gib, "per-device memory kept for activations and runtime")
      ->capture_default_str();
  cmd->add_option("--kv-dtype", flags->kv_dtype, "KV cache element type")->check(CLI::IsMember({"bf16", "fp8"}));
  cmd->add_flag("--json", flags->json, "machine-readable output");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
