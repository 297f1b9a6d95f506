#include "common.h"

#include <cstdio>

#include "base/timer.h"
#include "quant/quantize_model.h"
#include "command.h"

namespace rtnq::cli {

void ModelFlags::Add(CLI::App* cmd, bool with_runtime) {
  cmd->add_option("MODEL", model_path, "HF directory, .gguf file or llama2.c .bin")->required();
  cmd->add_option("--tokenizer", tokenizer_path,
                  "tokenizer file: llama2.c tok*.bin, or an HF tokenizer.json overriding the model's");
  cmd->add_flag("--json", json, "machine-readable output");
  if (with_runtime) {
    cmd->add_option("-t,--threads", threads, "worker threads (default: all cores, or RTNQ_THREADS)");
    cmd->add_option("--precision", precision,
                    "weights in memory: as-stored (F32 stays F32, BF16 stays BF16), f32 or bf16")
        ->check(CLI::IsMember({"as-stored", "f32", "bf16"}));
  }
}

void ModelFlags::AddQuantization(CLI::App* cmd) {
  plan.Add(cmd);
  cmd->add_option("--arithmetic", arithmetic,
                  "RTN arithmetic: fp32 (default) or vllm (bit-identical to vLLM's on-the-fly RTN)")
      ->check(CLI::IsMember({"fp32", "vllm"}));
  cmd->add_flag("--allow-nonfinite", allow_nonfinite, "quantize NaN/Inf weights instead of failing");
  cmd->add_option("--act", act,
                  "activations of the matmuls: int8 (default: RTN matmuls on per-token, per-group int8, "
                  "W8A8/W4A8 VNNI/AMX kernels), f32 (exact weight-only W8A16/W4A16) or bf16 (BF16 and RTN "
                  "matmuls on bf16-rounded activations, AMX tiles)")
      ->check(CLI::IsMember({"f32", "int8", "bf16"}));
}

Status CheckActivationsRunFast(ActType act) {
  if (act == ActType::kBF16 && !IsaAtLeast(SelectedIsa(), Isa::kAmx)) {
    return Err("--act bf16 runs on AMX tiles, which this CPU (ISA {}) does not offer; use int8 or f32",
               IsaName(SelectedIsa()));
  }
  return Status();
}

Result<LoadedModel> LoadForRun(const ModelFlags& flags, int max_sequences, int max_context,
                               bool need_model) {
  Timer timer;
  LoadedModel loaded;
  OpenOptions open_options;
  open_options.tokenizer_path = flags.tokenizer_path;
  RTNQ_ASSIGN_OR_RETURN(loaded.checkpoint, OpenCheckpoint(flags.model_path, open_options));
  if (loaded.checkpoint.tokenizer) {
    RTNQ_ASSIGN_OR_RETURN(loaded.tokenizer, Tokenizer::Create(*loaded.checkpoint.tokenizer));
  }
  if (flags.plan.Any()) {
    RTNQ_ASSIGN_OR_RETURN(QuantPlan plan, flags.plan.Build());
    RTNQ_ASSIGN_OR_RETURN(CompiledPlan compiled,
                          CompilePlanForCheckpoint(plan, loaded.checkpoint, flags.plan.strict));
    loaded.plan = std::make_unique<CompiledPlan>(std::move(compiled));
  }
  if (need_model) {
    RTNQ_ASSIGN_OR_RETURN(loaded.model, BuildModel(loaded.checkpoint, flags, loaded.plan.get(),
                                                   max_sequences, max_context));
  }
  loaded.load_seconds = timer.Seconds();
  return loaded;
}

Result<std::unique_ptr<Model>> BuildModel(const Checkpoint& checkpoint, const ModelFlags& flags,
                                          const CompiledPlan* plan, int max_sequences, int max_context) {
  ModelOptions options;
  options.plan = plan;
  options.arithmetic = flags.arithmetic == "vllm" ? RtnArithmetic::kVllm : RtnArithmetic::kFp32;
  options.allow_nonfinite = flags.allow_nonfinite;
  if (!ParseActType(flags.act, &options.activations)) {
    return Err("--act: unknown activation type '{}' (valid: f32, int8, bf16)", flags.act);
  }
  RTNQ_RETURN_IF_ERROR(CheckActivationsRunFast(options.activations));
  options.threads = flags.threads;
  options.max_sequences = max_sequences;
  options.max_context = max_context;
  options.precision = flags.precision == "f32"    ? WeightPrecision::kF32
                      : flags.precision == "bf16" ? WeightPrecision::kBF16
                                                  : WeightPrecision::kAsStored;
  return Model::Load(checkpoint, options);
}

nlohmann::json QuantizationJson(const Model& model, const CompiledPlan* plan) {
  const LoadStats s = model.load_stats();
  nlohmann::json j = {{"load_seconds", s.seconds}, {"weight_bytes", s.weight_bytes}, {"mapped_bytes", s.mapped_bytes}};
  if (plan != nullptr) {
    j["bits_per_weight"] = plan->BitsPerWeight();
    j["quantized_tensors"] = s.quantized_tensors;
    j["quantize_seconds"] = s.quantize_seconds;
    j["first_touch_seconds"] = s.first_touch_seconds;
    j["source_bytes"] = s.source_bytes;
    j["quantized_bytes"] = s.quantized_bytes;
    j["gb_per_second"] = s.quantize_seconds > 0 ? s.source_bytes / 1e9 / s.quantize_seconds : 0.0;
  }
  return j;
}

void ReportQuantization(const Model& model, const CompiledPlan* plan) {
  if (plan == nullptr) return;
  const LoadStats s = model.load_stats();
  std::fprintf(stderr,
               "quantized %d tensors while loading: %.2f GB read in %.2f s (%.2f GB/s; %.2f s of it faulting "
               "in fresh memory), %s of weights%s, %.3f bits per weight\n",
               s.quantized_tensors, s.source_bytes / 1e9, s.quantize_seconds,
               s.quantize_seconds > 0 ? s.source_bytes / 1e9 / s.quantize_seconds : 0.0, s.first_touch_seconds,
               HumanBytes(static_cast<double>(s.weight_bytes)).c_str(),
               s.mapped_bytes > 0
                   ? (" (" + HumanBytes(static_cast<double>(s.mapped_bytes)) + " of them read in place from the checkpoint)").c_str()
                   : "",
               plan->BitsPerWeight());
}

void Fail(const std::string& command, const Status& status) {
  std::fprintf(stderr, "rtnq %s: %s\n", command.c_str(), status.message().c_str());
  SetExitCode(1);
}

namespace {

// Length of the UTF-8 sequence started by lead byte c (1 for invalid leads: passed through).
size_t Utf8SequenceLength(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xe) return 3;
  if ((c >> 3) == 0x1e) return 4;
  return 1;
}

}  // namespace

std::string Utf8Stream::Push(const std::string& bytes) {
  pending_ += bytes;
  size_t complete = 0;
  while (complete < pending_.size()) {
    const size_t len = Utf8SequenceLength(static_cast<unsigned char>(pending_[complete]));
    if (complete + len > pending_.size()) break;
    complete += len;
  }
  std::string out = pending_.substr(0, complete);
  pending_.erase(0, complete);
  return out;
}

std::string Utf8Stream::Flush() { return std::exchange(pending_, {}); }

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", bytes, units[u]) : fmt::format("{:.2f} {}", bytes, units[u]);
}

}  // namespace rtnq::cli
