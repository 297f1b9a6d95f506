// compressed-tensors "pack-quantized" export (docs/formats/compressed-tensors.md). The packed
// int32 words hold codes c[i] at bits b*i, little-endian: byte for byte the same as rtnq's
// canonical code layout, so weight_packed is written straight from the quantizer's output.
#include <nlohmann/json.hpp>

#include <map>

#include "base/file.h"
#include "quant/export.h"
#include "quant/export_writer.h"

namespace rtnq {
namespace {

nlohmann::ordered_json WeightArgs(const RtnFormat& f) {
  nlohmann::ordered_json w;
  w["num_bits"] = f.bits();
  w["type"] = "int";
  w["symmetric"] = true;
  w["group_size"] = f.group == 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(f.group);
  w["strategy"] = f.group == 0 ? "channel" : "group";
  w["block_structure"] = nullptr;
  w["dynamic"] = false;
  w["actorder"] = nullptr;
  w["observer"] = "minmax";
  w["observer_kwargs"] = nlohmann::ordered_json::object();
  return w;
}

// Regex targets (re:...) covering every module decided `precision`, grouped per vLLM unit.
std::vector<std::string> TargetsFor(const CompiledPlan& plan, const Precision& precision) {
  std::map<VllmUnit, std::vector<int>> layers;
  for (const auto& t : plan.tensors) {
    if (!(t.precision == precision) || UnitOf(t.id.role) == VllmUnit::kOther) continue;
    auto& l = layers[UnitOf(t.id.role)];
    if (l.empty() || l.back() != t.id.layer) l.push_back(t.id.layer);
  }
  std::vector<std::string> targets;
  for (const auto& [unit, ls] : layers) targets.push_back("re:" + UnitPattern(unit, ls));
  return targets;
}

Result<std::string> QuantizationConfig(const CompiledPlan& plan) {
  const std::vector<Precision> precisions = QuantizedPrecisions(plan);
  nlohmann::ordered_json groups = nlohmann::ordered_json::object();
  for (size_t i = 0; i < precisions.size(); ++i) {
    nlohmann::ordered_json g;
    // The most common precision catches every Linear; the others name their modules, which vLLM
    // and compressed-tensors match before class names.
    g["targets"] = i == 0 ? std::vector<std::string>{"Linear"} : TargetsFor(plan, precisions[i]);
    g["weights"] = WeightArgs(precisions[i].rtn);
    g["input_activations"] = nullptr;
    g["output_activations"] = nullptr;
    g["format"] = "pack-quantized";
    groups["group_" + std::to_string(i)] = g;
  }
  std::vector<std::string> ignore;
  bool has_lm_head = false;
  for (const auto& t : plan.tensors) {
    const bool linear = RoleInfo(t.id.role).is_matrix && t.id.role != TensorRole::kEmbed;
    if (linear && !t.precision.IsQuantized()) ignore.push_back(ModulePrefix(t.name));
    has_lm_head |= t.id.role == TensorRole::kLmHead;
  }
  // With tied embeddings there is no lm_head tensor, but HF transformers still builds an
  // nn.Linear lm_head; without this entry the "Linear" target quantizes it (compressed-tensors
  // attaches an uninitialized scale to it and the logits come out garbage).
  if (!has_lm_head) ignore.push_back("lm_head");
  nlohmann::ordered_json q;
  q["quant_method"] = "compressed-tensors";
  q["format"] = "pack-quantized";
  q["quantization_status"] = "compressed";
  q["config_groups"] = groups;
  q["ignore"] = ignore;
  q["kv_cache_scheme"] = nullptr;
  // No "sparsity_config" key: compressed-tensors (0.9.4 .. 0.12) treats any present value, even {},
  // as a sparsity compressor to look up by its "format" and fails on the missing name; its own
  // writer leaves the key out for dense models. vLLM reads a missing key as no sparsity.
  q["global_compression_ratio"] = nullptr;
  return q.dump();
}

}  // namespace

Result<ExportResult> ExportCompressedTensors(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                             const ExportOptions& options) {
  RTNQ_RETURN_IF_ERROR(CheckVllmFusedPrecisions(plan));
  for (const auto& t : plan.tensors) {
    if ((t.id.role == TensorRole::kEmbed || t.id.role == TensorRole::kLmHead) && t.precision.IsQuantized()) {
      return Err("{}: compressed-tensors export keeps {} at 16 bit (vLLM loads only Linear layers "
                 "quantized in this format); use --format gguf or gptq to quantize it",
                 t.name, RoleInfo(t.id.role).short_name);
    }
  }
  if (QuantizedPrecisions(plan).empty()) {
    return Err("the plan quantizes nothing; compressed-tensors export needs at least one quantized layer");
  }
  RTNQ_ASSIGN_OR_RETURN(std::string qconfig, QuantizationConfig(plan));
  RTNQ_ASSIGN_OR_RETURN(auto dir, AtomicDirectory::Create(options.output, options.overwrite));
  ExportResult result;

  std::vector<OutputTensor> tensors;
  // A quantized tensor yields three outputs that share one quantization.
  auto pending = std::make_shared<std::map<std::string, RtnMatrix>>();
  for (const TensorDecision& d : plan.tensors) {
    const TensorDecision* decision = &d;
    if (!d.precision.IsQuantized()) {
      tensors.push_back(KeptOutput(checkpoint, d, &result));
      continue;
    }
    const RtnFormat f = d.precision.rtn;
    const std::string prefix = ModulePrefix(d.name);
    const int64_t n = d.shape[0], k = d.shape[1];
    // Rows are padded with zero bits to whole 32-bit words, as compressed-tensors packs them.
    const int64_t words_per_row = (k * f.bits() + 31) / 32;
    TensorSpec packed_spec{prefix + ".weight_packed", DType::kI32, {n, words_per_row}};
    tensors.push_back({std::move(packed_spec),
                       [&, decision, f, pending, words_per_row](std::vector<uint8_t>& out) -> Status {
                         RTNQ_ASSIGN_OR_RETURN(RtnMatrix m, QuantizeDecision(checkpoint, *decision, f, options, &result));
                         const size_t row_bytes = m.code_row_bytes();
                         for (int64_t r = 0; r < m.rows; ++r) {
                           out.insert(out.end(), m.CodeRow(r), m.CodeRow(r) + row_bytes);
                           out.resize(out.size() + words_per_row * 4 - row_bytes, 0);
                         }
                         (*pending)[decision->name] = std::move(m);
                         return Status::Ok();
                       }});
    tensors.push_back({{prefix + ".weight_scale", f.scale_dtype, {n, k / f.GroupLength(k)}},
                       [decision, pending](std::vector<uint8_t>& out) {
                         const RtnMatrix& m = pending->at(decision->name);
                         out.insert(out.end(), m.scales.begin(), m.scales.end());
                         pending->erase(decision->name);
                         return Status::Ok();
                       }});
    tensors.push_back({{prefix + ".weight_shape", DType::kI64, {2}}, [n, k](std::vector<uint8_t>& out) {
                         const int64_t shape[2] = {n, k};
                         const auto* p = reinterpret_cast<const uint8_t*>(shape);
                         out.insert(out.end(), p, p + sizeof(shape));
                         return Status::Ok();
                       }});
  }
  RTNQ_RETURN_IF_ERROR(WriteHfExport(dir->temp_path(), checkpoint, tensors, qconfig, options, &result));
  RTNQ_RETURN_IF_ERROR(CommitExport(*dir, &result));
  return result;
}

}  // namespace rtnq
