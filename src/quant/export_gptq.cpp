// GPTQ export (docs/formats/gptq.md): RTN is GPTQ's symmetric grid without error feedback, so its
// codes are GPTQ codes. Per quantized Linear with N outputs, K inputs, pf = 32 / bits:
//   qweight int32 [K/pf, N]   word (r, n) holds code[n][r*pf + i] at bits bits*i
//   qzeros  int32 [K/G, N/pf] every field bias-1 (the "v1" convention loaders add 1 back to)
//   scales  f16   [K/G, N]
//   g_idx   int32 [K]         k / G
// Precisions other than the base one become `dynamic` overrides that also match vLLM's fused
// module names; kept linear layers become "-:" (not quantized) entries.
#include <nlohmann/json.hpp>

#include <map>

#include "base/file.h"
#include "quant/export.h"
#include "quant/export_writer.h"

namespace rtnq {
namespace {

int32_t GroupSizeJson(const RtnFormat& f) { return f.group == 0 ? -1 : f.group; }

// Patterns, per vLLM unit, for the linear modules whose precision satisfies `match`.
template <typename Match>
std::vector<std::string> PatternsFor(const CompiledPlan& plan, Match match) {
  std::map<VllmUnit, std::vector<int>> layers;
  for (const auto& t : plan.tensors) {
    if (!match(t.precision) || UnitOf(t.id.role) == VllmUnit::kOther) continue;
    auto& l = layers[UnitOf(t.id.role)];
    if (l.empty() || l.back() != t.id.layer) l.push_back(t.id.layer);
  }
  std::vector<std::string> patterns;
  for (const auto& [unit, ls] : layers) patterns.push_back(UnitPattern(unit, ls));
  return patterns;
}

std::string QuantizationConfig(const CompiledPlan& plan, const Precision& base, bool lm_head) {
  nlohmann::ordered_json dynamic = nlohmann::ordered_json::object();
  for (const Precision& p : QuantizedPrecisions(plan)) {
    if (p == base) continue;
    for (const auto& pattern : PatternsFor(plan, [&](const Precision& q) { return q == p; })) {
      dynamic["+:" + pattern] = {{"bits", p.rtn.bits()}, {"group_size", GroupSizeJson(p.rtn)}};
    }
  }
  // Every linear the plan does not quantize (keep, or an explicit bf16/f16/f32) is left out.
  for (const auto& pattern : PatternsFor(plan, [](const Precision& q) { return !q.IsQuantized(); })) {
    dynamic["-:" + pattern] = nlohmann::ordered_json::object();
  }
  nlohmann::ordered_json q;
  q["quant_method"] = "gptq";
  q["bits"] = base.rtn.bits();
  q["group_size"] = GroupSizeJson(base.rtn);
  q["desc_act"] = false;
  q["sym"] = true;
  q["lm_head"] = lm_head;
  q["checkpoint_format"] = "gptq";
  q["true_sequential"] = true;
  q["static_groups"] = false;
  q["modules_in_block_to_quantize"] = {{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"},
                                       {"self_attn.o_proj"},
                                       {"mlp.gate_proj", "mlp.up_proj"},
                                       {"mlp.down_proj"}};
  if (!dynamic.empty()) q["dynamic"] = dynamic;
  return q.dump();
}

// RTN codes [N][K] (rtnq layout) -> qweight [K/pf][N].
void PackQweight(const RtnMatrix& m, std::vector<uint8_t>& out) {
  const int bits = m.format.bits(), pf = 32 / bits;
  const int64_t n = m.rows, k = m.cols;
  std::vector<uint32_t> words(static_cast<size_t>(k / pf * n), 0);
  for (int64_t row = 0; row < n; ++row) {
    const uint8_t* codes = m.CodeRow(row);
    for (int64_t kk = 0; kk < k; ++kk) {
      const uint32_t code = static_cast<uint32_t>(RtnLevel(m.format, codes, kk) + m.format.bias());
      words[(kk / pf) * n + row] |= code << (bits * (kk % pf));
    }
  }
  const auto* p = reinterpret_cast<const uint8_t*>(words.data());
  out.insert(out.end(), p, p + words.size() * 4);
}

}  // namespace

Result<ExportResult> ExportGptq(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                const ExportOptions& options) {
  RTNQ_RETURN_IF_ERROR(CheckVllmFusedPrecisions(plan));
  const std::vector<Precision> precisions = QuantizedPrecisions(plan);
  if (precisions.empty()) return Err("the plan quantizes nothing; GPTQ export needs at least one quantized layer");
  const Precision& base = precisions[0];
  bool lm_head = false;
  for (const auto& t : plan.tensors) {
    if (!t.precision.IsQuantized()) continue;
    const RtnFormat& f = t.precision.rtn;
    const int pf = 32 / f.bits();
    if (t.id.role == TensorRole::kEmbed) {
      return Err("{}: GPTQ cannot hold a quantized embedding; keep it (drop the embed rule)", t.name);
    }
    if (t.id.role == TensorRole::kLmHead) {
      if (!(t.precision == base)) {
        return Err("{}: GPTQ quantizes lm_head only at the base precision {}, not {}", t.name, base.Name(),
                   t.precision.Name());
      }
      lm_head = true;
    }
    if (t.shape[1] % pf != 0 || t.shape[0] % pf != 0) {
      return Err("{}: shape [{}, {}] is not a multiple of {} codes per 32-bit word", t.name, t.shape[0],
                 t.shape[1], pf);
    }
  }
  const std::string qconfig = QuantizationConfig(plan, base, lm_head);
  RTNQ_ASSIGN_OR_RETURN(auto dir, AtomicDirectory::Create(options.output, options.overwrite));
  ExportResult result;

  std::vector<OutputTensor> tensors;
  auto pending = std::make_shared<std::map<std::string, RtnMatrix>>();
  for (const TensorDecision& d : plan.tensors) {
    const TensorDecision* decision = &d;
    if (!d.precision.IsQuantized()) {
      tensors.push_back(KeptOutput(checkpoint, d, &result));
      continue;
    }
    // GPTQ scales are fp16: quantize against fp16 scales so the stored scales are the ones used.
    RtnFormat f = d.precision.rtn;
    f.scale_dtype = DType::kF16;
    const std::string prefix = ModulePrefix(d.name);
    const int64_t n = d.shape[0], k = d.shape[1], pf = 32 / f.bits(), groups = k / f.GroupLength(k);
    tensors.push_back({{prefix + ".qweight", DType::kI32, {k / pf, n}},
                       [&, decision, f, pending](std::vector<uint8_t>& out) -> Status {
                         RTNQ_ASSIGN_OR_RETURN(RtnMatrix m, QuantizeDecision(checkpoint, *decision, f, options, &result));
                         PackQweight(m, out);
                         (*pending)[decision->name] = std::move(m);
                         return Status::Ok();
                       }});
    tensors.push_back({{prefix + ".qzeros", DType::kI32, {groups, n / pf}}, [f, groups, n, pf](std::vector<uint8_t>& out) {
                         const uint32_t word = f.bits() == 4 ? 0x77777777u : 0x7f7f7f7fu;
                         for (int64_t i = 0; i < groups * (n / pf); ++i) {
                           const auto* p = reinterpret_cast<const uint8_t*>(&word);
                           out.insert(out.end(), p, p + 4);
                         }
                         return Status::Ok();
                       }});
    tensors.push_back({{prefix + ".scales", DType::kF16, {groups, n}}, [decision, pending, groups, n](std::vector<uint8_t>& out) {
                         const RtnMatrix& m = pending->at(decision->name);
                         // [N][groups] -> [groups][N]
                         for (int64_t g = 0; g < groups; ++g) {
                           for (int64_t row = 0; row < n; ++row) {
                             const uint8_t* s = m.ScaleRow(row) + 2 * g;
                             out.insert(out.end(), s, s + 2);
                           }
                         }
                         pending->erase(decision->name);
                         return Status::Ok();
                       }});
    tensors.push_back({{prefix + ".g_idx", DType::kI32, {k}}, [f, k](std::vector<uint8_t>& out) {
                         for (int64_t kk = 0; kk < k; ++kk) {
                           const int32_t g = static_cast<int32_t>(kk / f.GroupLength(k));
                           const auto* p = reinterpret_cast<const uint8_t*>(&g);
                           out.insert(out.end(), p, p + 4);
                         }
                         return Status::Ok();
                       }});
  }
  RTNQ_RETURN_IF_ERROR(WriteHfExport(dir->temp_path(), checkpoint, tensors, qconfig, options, &result));
  // Older GPTQ loaders read quantize_config.json instead of config.json's quantization_config.
  const std::string qc_path = dir->temp_path() + "/quantize_config.json";
  RTNQ_RETURN_IF_ERROR(WriteFileAtomic(qc_path, nlohmann::json::parse(qconfig).dump(2) + "\n", false));
  result.files.push_back(qc_path);
  RTNQ_RETURN_IF_ERROR(CommitExport(*dir, &result));
  return result;
}

}  // namespace rtnq
