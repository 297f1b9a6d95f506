// Writing a quantized checkpoint that serving engines load:
//   compressed-tensors  "pack-quantized" safetensors + config.json quantization_config with one
//                       config group per precision (vLLM, HF transformers; rtnq's native format)
//   gptq                qweight/qzeros/scales/g_idx, sym, desc_act=false, per-module `dynamic`
//   gguf                llama.cpp: int8 -> Q8_0, int4 -> Q4_0 (llama.cpp's RTN, block 32), kept
//                       tensors F16/BF16/F32
// Every output appears atomically (a temporary file or directory renamed at the end).
// docs/formats/ describes each layout.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "io/checkpoint.h"
#include "quant/plan.h"
#include "quant/quantize_model.h"

namespace rtnq {

enum class ExportFormat { kCompressedTensors, kGptq, kGguf };
Result<ExportFormat> ParseExportFormat(const std::string& name);
const char* ExportFormatName(ExportFormat f);

struct ExportOptions {
  ExportFormat format = ExportFormat::kCompressedTensors;
  std::string output;        // directory (compressed-tensors, gptq) or .gguf file
  bool overwrite = false;
  QuantizeOptions quantize;
  std::string plan_text;     // stored in the output's metadata
  ThreadPool* pool = nullptr;
  // Called after each tensor: (tensors done, total, bytes of source weights read so far).
  std::function<void(size_t, size_t, uint64_t)> progress;
};

struct ExportResult {
  std::vector<std::string> files;
  uint64_t bytes_written = 0;
  uint64_t source_bytes = 0;       // bytes of checkpoint weights read
  double quantize_seconds = 0;     // time spent in RTN itself
  double seconds = 0;
};

Result<ExportResult> ExportCheckpoint(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                      const ExportOptions& options);

// vLLM fuses q/k/v into qkv_proj and gate/up into gate_up_proj: all parts of a fused module must
// share one precision. Returns an error naming the first layer where they differ.
Status CheckVllmFusedPrecisions(const CompiledPlan& plan);

// --- shared by the exporters -----------------------------------------------------------------

// The serving engines' unit of precision: the fused module a linear layer belongs to.
enum class VllmUnit { kQkv, kO, kGateUp, kDown, kOther };
VllmUnit UnitOf(TensorRole role);

// A regular expression (Python `re` syntax, anchored at the end) matching the modules of `unit`
// in `layers` by their HF names and by vLLM's fused names.
std::string UnitPattern(VllmUnit unit, const std::vector<int>& layers);

// HF module prefix of a weight: "model.layers.3.mlp.down_proj" for ".../down_proj.weight".
std::string ModulePrefix(const std::string& weight_name);

// Distinct precisions of the quantized linear layers, the most common first.
std::vector<Precision> QuantizedPrecisions(const CompiledPlan& plan);

Result<ExportResult> ExportCompressedTensors(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                             const ExportOptions& options);
Result<ExportResult> ExportGptq(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                const ExportOptions& options);
Result<ExportResult> ExportGguf(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                const ExportOptions& options);

}  // namespace rtnq
