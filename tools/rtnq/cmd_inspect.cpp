// rtnq inspect MODEL [--json]: architecture, tokenizer, tensor table and totals.
#include <cstdio>
#include <map>

#include "arch/tensor_role.h"
#include "command.h"
#include "common.h"

namespace rtnq::cli {
namespace {

struct InspectFlags {
  ModelFlags model;
  bool metadata = false;
};

nlohmann::json ConfigJson(const ModelConfig& c) {
  nlohmann::json rope = {{"theta", c.rope_theta}};
  switch (c.rope_scaling.type) {
    case RopeScalingType::kNone: rope["scaling"] = nullptr; break;
    case RopeScalingType::kLinear:
      rope["scaling"] = {{"type", "linear"}, {"factor", c.rope_scaling.factor}};
      break;
    case RopeScalingType::kLlama3:
      rope["scaling"] = {{"type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
      break;
  }
  return {{"family", ArchFamilyName(c.family)},
          {"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size},
          {"intermediate_size", c.intermediate_size},
          {"num_layers", c.num_layers},
          {"num_heads", c.num_heads},
          {"num_kv_heads", c.num_kv_heads},
          {"head_dim", c.head_dim},
          {"rms_norm_eps", c.rms_norm_eps},
          {"rope", rope},
          {"max_position_embeddings", c.max_position_embeddings},
          {"tie_word_embeddings", c.tie_word_embeddings},
          {"attention_bias", c.attention_bias},
          {"bos_token_ids", c.bos_token_ids},
          {"eos_token_ids", c.eos_token_ids},
          {"parameters", c.NumParameters()}};
}

nlohmann::json TokenizerJson(const TokenizerSpec& t) {
  return {{"kind", t.kind == TokenizerKind::kSentencePieceBpe ? "sentencepiece-bpe" : "byte-level-bpe"},
          {"pre", t.pre},
          {"vocab_size", t.tokens.size()},
          {"merges", t.merges.size()},
          {"bos_id", t.bos_id},
          {"eos_id", t.eos_id},
          {"add_bos", t.add_bos}};
}

void Run(const InspectFlags& flags) {
  OpenOptions open_options;
  open_options.tokenizer_path = flags.model.tokenizer_path;
  auto ck = OpenCheckpoint(flags.model.model_path, open_options);
  if (!ck.ok()) return Fail("inspect", ck.status());

  std::map<std::string, std::pair<int64_t, uint64_t>> by_dtype;  // dtype -> (elements, bytes)
  int64_t total_elems = 0;
  uint64_t total_bytes = 0;
  for (const auto& t : ck->tensors) {
    // Quantized views show their precision (int4:g32:bf16) and count codes + scales.
    auto& agg = by_dtype[t.PrecisionName()];
    agg.first += t.NumElements();
    agg.second += t.StoredBytes();
    total_elems += t.NumElements();
    total_bytes += t.StoredBytes();
  }
  const double bits_per_weight = total_elems ? 8.0 * total_bytes / total_elems : 0.0;

  if (flags.model.json) {
    nlohmann::json out;
    out["path"] = ck->path;
    out["format"] = CheckpointFormatName(ck->format);
    out["config"] = ConfigJson(ck->config);
    out["tokenizer"] = ck->tokenizer ? TokenizerJson(*ck->tokenizer) : nlohmann::json(nullptr);
    auto& tensors = out["tensors"] = nlohmann::json::array();
    for (const auto& t : ck->tensors) {
      tensors.push_back({{"name", t.name},
                         {"file_name", t.file_name},
                         {"dtype", t.PrecisionName()},
                         {"shape", t.shape},
                         {"bytes", t.StoredBytes()},
                         {"file", t.file},
                         {"offset", t.file_offset}});
    }
    out["totals"] = {{"tensors", ck->tensors.size()},
                     {"elements", total_elems},
                     {"bytes", total_bytes},
                     {"bits_per_weight", bits_per_weight}};
    for (const auto& [dtype, agg] : by_dtype) {
      out["totals"]["by_dtype"][dtype] = {{"elements", agg.first}, {"bytes", agg.second}};
    }
    if (flags.metadata) {
      for (const auto& [k, v] : ck->metadata) out["metadata"][k] = v;
    }
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }

  const ModelConfig& c = ck->config;
  std::printf("model:      %s (%s)\n", ck->path.c_str(), CheckpointFormatName(ck->format));
  std::printf("arch:       %s, %lld layers, hidden %lld, intermediate %lld, heads %lld (kv %lld), "
              "head_dim %lld, vocab %lld\n",
              ArchFamilyName(c.family), (long long)c.num_layers, (long long)c.hidden_size,
              (long long)c.intermediate_size, (long long)c.num_heads, (long long)c.num_kv_heads,
              (long long)c.head_dim, (long long)c.vocab_size);
  const char* scaling = c.rope_scaling.type == RopeScalingType::kLlama3   ? "llama3"
                        : c.rope_scaling.type == RopeScalingType::kLinear ? "linear"
                                                                          : "none";
  std::printf("rope:       theta %g, scaling %s (factor %g), max positions %lld\n", c.rope_theta,
              scaling, c.rope_scaling.factor, (long long)c.max_position_embeddings);
  std::printf("other:      rms_eps %g, tied embeddings %s, qkv bias %s\n", c.rms_norm_eps,
              c.tie_word_embeddings ? "yes" : "no", c.attention_bias ? "yes" : "no");
  if (ck->tokenizer) {
    const auto& t = *ck->tokenizer;
    std::printf("tokenizer:  %s (pre %s), %zu tokens, %zu merges, bos %d, eos %d, add_bos %s\n",
                t.kind == TokenizerKind::kSentencePieceBpe ? "sentencepiece-bpe" : "byte-level-bpe",
                t.pre.c_str(), t.tokens.size(), t.merges.size(), t.bos_id, t.eos_id,
                t.add_bos ? "yes" : "no");
  } else {
    std::printf("tokenizer:  none (pass --tokenizer)\n");
  }
  std::printf("\n%-52s %-14s %-16s %12s\n", "tensor", "dtype", "shape", "bytes");
  for (const auto& t : ck->tensors) {
    std::printf("%-52s %-14s %-16s %12llu\n", t.name.c_str(), t.PrecisionName().c_str(),
                ShapeString(t.shape).c_str(), (unsigned long long)t.StoredBytes());
  }
  std::printf("\n%zu tensors, %.3f M weights, %s, %.2f bits per weight\n", ck->tensors.size(),
              total_elems / 1e6, HumanBytes(static_cast<double>(total_bytes)).c_str(), bits_per_weight);
  for (const auto& [dtype, agg] : by_dtype) {
    std::printf("  %-14s %14lld weights %12s\n", dtype.c_str(), (long long)agg.first,
                HumanBytes(static_cast<double>(agg.second)).c_str());
  }
  if (flags.metadata) {
    std::printf("\nmetadata:\n");
    for (const auto& [k, v] : ck->metadata) std::printf("  %s = %s\n", k.c_str(), v.c_str());
  }
}

}  // namespace

void RegisterInspect(CLI::App& app) {
  auto flags = std::make_shared<InspectFlags>();
  auto* cmd = app.add_subcommand("inspect", "Show a model's architecture, tensors and sizes");
  flags->model.Add(cmd, /*with_runtime=*/false);
  cmd->add_flag("--metadata", flags->metadata, "also list the file's metadata keys");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
