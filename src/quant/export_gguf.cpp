// GGUF export for llama.cpp (docs/formats/gguf.md): int8 tensors become Q8_0 and int4 tensors
// Q4_0 — llama.cpp's own round-to-nearest types with blocks of 32, produced bit-for-bit as
// gguf-py's quantizer does — and kept tensors keep their 16/32-bit type (1-D tensors F32, as
// llama.cpp's converter writes them). q/k rows go back to llama.cpp's interleaved-RoPE order.
#include <cmath>

#include "format/ggml_quant.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "io/rope_permute.h"
#include "quant/export.h"
#include "quant/export_writer.h"
#include "quant/tensor_rows.h"

namespace rtnq {
namespace {

// llama.cpp applies llama3 RoPE scaling through a per-frequency factor tensor, rope_freqs.weight.
std::vector<float> Llama3RopeFactors(const ModelConfig& c) {
  const RopeScaling& s = c.rope_scaling;
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  std::vector<float> factors;
  for (int64_t i = 0; i < c.head_dim / 2; ++i) {
    const double freq = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / c.head_dim);
    const double wavelen = 2 * M_PI / freq;
    double f = 1.0;
    if (wavelen > low_wavelen) {
      f = s.factor;
    } else if (wavelen >= high_wavelen) {
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) /
                            (s.high_freq_factor - s.low_freq_factor);
      f = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    factors.push_back(static_cast<float>(f));
  }
  return factors;
}

void SetModelKeys(GgufWriter& w, const Checkpoint& ck, const std::string& plan_text) {
  const ModelConfig& c = ck.config;
  w.SetString("general.architecture", "llama");
  w.SetString("general.name", "rtnq export");
  w.SetUint32("general.quantization_version", 2);
  w.SetUint32("llama.context_length", static_cast<uint32_t>(c.max_position_embeddings));
  w.SetUint32("llama.embedding_length", static_cast<uint32_t>(c.hidden_size));
  w.SetUint32("llama.block_count", static_cast<uint32_t>(c.num_layers));
  w.SetUint32("llama.feed_forward_length", static_cast<uint32_t>(c.intermediate_size));
  w.SetUint32("llama.attention.head_count", static_cast<uint32_t>(c.num_heads));
  w.SetUint32("llama.attention.head_count_kv", static_cast<uint32_t>(c.num_kv_heads));
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", static_cast<float>(c.rms_norm_eps));
  w.SetFloat32("llama.rope.freq_base", static_cast<float>(c.rope_theta));
  w.SetUint32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  w.SetUint32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  if (c.rope_scaling.type == RopeScalingType::kLinear) {
    w.SetString("llama.rope.scaling.type", "linear");
    w.SetFloat32("llama.rope.scaling.factor", static_cast<float>(c.rope_scaling.factor));
  }
  w.SetString("rtnq.plan", plan_text);
}

void SetTokenizerKeys(GgufWriter& w, const TokenizerSpec& t) {
  const bool spm = t.kind == TokenizerKind::kSentencePieceBpe;
  w.SetString("tokenizer.ggml.model", spm ? "llama" : "gpt2");
  w.SetString("tokenizer.ggml.pre", t.pre);
  w.SetStringArray("tokenizer.ggml.tokens", t.tokens);
  std::vector<float> scores = t.scores;
  scores.resize(t.tokens.size(), 0.0f);
  w.SetFloat32Array("tokenizer.ggml.scores", scores);
  std::vector<int32_t> types(t.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  for (size_t i = 0; i < t.types.size() && i < types.size(); ++i) types[i] = static_cast<int32_t>(t.types[i]);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  if (!t.merges.empty()) w.SetStringArray("tokenizer.ggml.merges", t.merges);
  if (t.bos_id >= 0) w.SetUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(t.bos_id));
  if (t.eos_id >= 0) w.SetUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(t.eos_id));
  if (t.unk_id >= 0) w.SetUint32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(t.unk_id));
  if (t.pad_id >= 0) w.SetUint32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(t.pad_id));
  w.SetBool("tokenizer.ggml.add_bos_token", t.add_bos);
  w.SetBool("tokenizer.ggml.add_eos_token", t.add_eos);
  if (spm) w.SetBool("tokenizer.ggml.add_space_prefix", t.add_space_prefix);
}

struct GgufTensorPlan {
  const TensorDecision* decision;
  DType dtype;
  int64_t rope_heads;  // > 0: write rows in interleaved-RoPE order for this many heads
};

}  // namespace

Result<ExportResult> ExportGguf(const Checkpoint& checkpoint, const CompiledPlan& plan,
                                const ExportOptions& options) {
  const ModelConfig& c = checkpoint.config;
  if (c.family == ArchFamily::kQwen2 || c.attention_bias) {
    return Err("GGUF export supports the llama architecture (LLaMA, Mistral); this model is {}",
               ArchFamilyName(c.family));
  }
  if (!checkpoint.tokenizer) return Err("{}: GGUF export needs the model's tokenizer (pass --tokenizer)", checkpoint.path);

  GgufWriter w;
  SetModelKeys(w, checkpoint, options.plan_text);
  SetTokenizerKeys(w, *checkpoint.tokenizer);

  std::vector<GgufTensorPlan> order;
  for (const TensorDecision& d : plan.tensors) {
    DType dtype = d.shape.size() == 1 ? DType::kF32 : KeptDType(d.source_dtype);
    if (d.precision.IsQuantized()) {
      dtype = d.precision.rtn.scheme == RtnScheme::kInt8 ? DType::kQ8_0 : DType::kQ4_0;
      if (d.shape[1] % 32 != 0) {
        return Err("{}: {} inputs are not a multiple of GGUF's block of 32; keep it (fallback keep)",
                   d.name, d.shape[1]);
      }
    }
    const int64_t heads = d.id.role == TensorRole::kAttnQ ? c.num_heads
                          : d.id.role == TensorRole::kAttnK ? c.num_kv_heads : 0;
    order.push_back({&d, dtype, heads});
    RTNQ_RETURN_IF_ERROR(w.AddTensor(GgufTensorName(d.id), d.shape, dtype));
  }
  std::vector<float> rope_factors;
  if (c.rope_scaling.type == RopeScalingType::kLlama3) {
    rope_factors = Llama3RopeFactors(c);
    RTNQ_RETURN_IF_ERROR(w.AddTensor("rope_freqs.weight", {static_cast<int64_t>(rope_factors.size())}, DType::kF32));
  }

  ExportResult result;
  Status st = w.Write(options.output, options.overwrite, [&](size_t i, std::vector<uint8_t>& bytes) -> Status {
    if (i == order.size()) {  // rope_freqs
      std::memcpy(bytes.data(), rope_factors.data(), bytes.size());
      return Status::Ok();
    }
    const GgufTensorPlan& t = order[i];
    const TensorView* view = checkpoint.Find(t.decision->name);
    const TensorRows rows(*view);
    const int64_t n = rows.rows(), k = rows.cols();
    const size_t out_row = bytes.size() / static_cast<size_t>(n);
    std::vector<float> row(k);
    result.source_bytes += view->nbytes;
    for (int64_t r = 0; r < n; ++r) {
      // Canonical row r goes to GGUF row InterleavedRowForHfRow(r) for q/k.
      const int64_t dst = t.rope_heads > 0 ? InterleavedRowForHfRow(r, n / t.rope_heads) : r;
      uint8_t* out = bytes.data() + dst * out_row;
      if (t.dtype == view->dtype) {
        std::memcpy(out, rows.Raw(r), out_row);
        continue;
      }
      rows.ReadF32(r, row.data());
      if (!options.quantize.allow_nonfinite) {
        for (int64_t j = 0; j < k; ++j) {
          if (!std::isfinite(row[j])) {
            return Err("{}: tensor {}: non-finite weight {} at row {}, column {} (use --allow-nonfinite)",
                       view->file, view->name, row[j], r, j);
          }
        }
      }
      switch (t.dtype) {
        case DType::kQ8_0: QuantizeRowQ8_0(row.data(), out, k); break;
        case DType::kQ4_0: QuantizeRowQ4_0(row.data(), out, k); break;
        case DType::kF32: std::memcpy(out, row.data(), out_row); break;
        default: return Err("{}: cannot convert {} to {}", view->name, DTypeName(view->dtype), DTypeName(t.dtype));
      }
    }
    if (options.progress) options.progress(i + 1, order.size(), result.source_bytes);
    return Status::Ok();
  });
  RTNQ_RETURN_IF_ERROR(st);
  result.files.push_back(options.output);
  RTNQ_ASSIGN_OR_RETURN(auto written, MappedFile::Open(options.output));
  result.bytes_written = written->size();
  return result;
}

}  // namespace rtnq
