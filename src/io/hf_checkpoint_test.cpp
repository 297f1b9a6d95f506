// OpenHfCheckpoint / OpenCheckpoint on HF directories: path forms, shards, extra tensors, and
// malformed directories built by editing a synthetic model.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "io/checkpoint.h"
#include "io/hf_test_util.h"
#include "io/safetensors.h"
#include "io/safetensors_writer.h"
#include "io/synthetic_model.h"

namespace rtnq {
namespace {

using ::rtnq::testing::ReadAll;
using ::rtnq::testing::ScratchDir;
using ::rtnq::testing::WriteAll;
namespace fs = std::filesystem;

// A tiny-llama3 synthetic model without tokenizer.json (the tokenizer reader is tested elsewhere).
void WriteTiny(const std::string& dir, uint64_t max_shard_bytes = 4ull << 30) {
  SynthOptions o;
  o.shape = "tiny-llama3";
  o.dtype = DType::kF32;
  o.threads = 2;
  o.max_shard_bytes = max_shard_bytes;
  auto s = WriteSyntheticModel(dir, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  fs::remove(dir + "/tokenizer.json");
}

// Rewrites a safetensors file keeping the tensors for which keep(name) is true, plus `extra`.
void RewriteWeights(const std::string& path, const std::function<bool(const std::string&)>& keep,
                    const std::vector<std::pair<TensorSpec, std::string>>& extra = {}) {
  auto f = OpenSafetensors(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  std::vector<TensorSpec> specs;
  std::vector<std::string> data;
  for (const auto& t : f->header.tensors) {
    if (!keep(t.name)) continue;
    specs.push_back({t.name, t.dtype, t.shape});
    data.emplace_back(reinterpret_cast<const char*>(f->TensorData(t)), t.nbytes);
  }
  for (const auto& [spec, bytes] : extra) {
    specs.push_back(spec);
    data.push_back(bytes);
  }
  auto bytes = SerializeSafetensors(specs, data);
  ASSERT_TRUE(bytes.ok()) << bytes.status().message();
  WriteAll(path, *bytes);
}

void EditConfig(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(ReadAll(dir + "/config.json"));
  edit(j);
  WriteAll(dir + "/config.json", j.dump());
}

std::string OpenError(const std::string& path, const OpenOptions& options = {}) {
  auto ck = OpenCheckpoint(path, options);
  EXPECT_FALSE(ck.ok()) << "opened a malformed model at " << path;
  return ck.ok() ? "" : ck.status().message();
}

TEST(HfCheckpoint, OpensFromTheDirectoryConfigOrWeightsPath) {
  ScratchDir dir;
  WriteTiny(dir.path());
  for (const std::string& path :
       {dir.path(), dir / "config.json", dir / "model.safetensors"}) {
    auto ck = OpenCheckpoint(path);
    ASSERT_TRUE(ck.ok()) << path << ": " << ck.status().message();
    EXPECT_EQ(ck->path, path);
    EXPECT_EQ(ck->config.hidden_size, 64);
    EXPECT_EQ(ck->files.size(), 1u);
    const TensorView* embed = ck->Find("model.embed_tokens.weight");
    ASSERT_NE(embed, nullptr);
    EXPECT_EQ(embed->file, dir / "model.safetensors");
    EXPECT_EQ(embed->file_name, embed->name);
    // Views point into the mapping at the recorded offset.
    EXPECT_EQ(embed->data, ck->files[0]->data() + embed->file_offset);
    std::map<std::string, std::string> meta(ck->metadata.begin(), ck->metadata.end());
    EXPECT_EQ(meta["architecture"], "LlamaForCausalLM");
    EXPECT_EQ(meta["torch_dtype"], "float32");
    EXPECT_EQ(meta["safetensors.format"], "pt");
    EXPECT_EQ(meta["safetensors.rtnq_synth_shape"], "tiny-llama3");
  }
}

TEST(HfCheckpoint, ShardedModelOpensFromAnyShard) {
  ScratchDir dir;
  WriteTiny(dir.path(), 200 * 1024);
  for (const std::string& path : {dir.path(), dir / "model-00002-of-00004.safetensors"}) {
    auto ck = OpenCheckpoint(path);
    ASSERT_TRUE(ck.ok()) << ck.status().message();
    EXPECT_EQ(ck->files.size(), 4u);
    EXPECT_NE(ck->Find("model.norm.weight"), nullptr);
  }
}

TEST(HfCheckpoint, ExtraTensorsAreKeptAndHarmless) {
  ScratchDir dir;
  WriteTiny(dir.path());
  const std::string inv_freq = "model.layers.0.self_attn.rotary_emb.inv_freq";
  RewriteWeights(dir / "model.safetensors", [](const std::string&) { return true; },
                 {{{inv_freq, DType::kF32, {8}}, std::string(32, '\0')}});
  auto ck = OpenCheckpoint(dir.path());
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  ASSERT_NE(ck->Find(inv_freq), nullptr);
  EXPECT_EQ(ck->Find(inv_freq)->shape, std::vector<int64_t>{8});
}

TEST(HfCheckpoint, GenerationConfigSuppliesMissingTokenIds) {
  ScratchDir dir;
  WriteTiny(dir.path());
  EditConfig(dir.path(), [](nlohmann::json& j) {
    j.erase("bos_token_id");
    j["eos_token_id"] = nullptr;
  });
  WriteAll(dir / "generation_config.json", R"({"bos_token_id": 318, "eos_token_id": [319, 7]})");
  auto ck = OpenCheckpoint(dir.path());
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_EQ(ck->config.bos_token_ids, std::vector<int32_t>{318});
  EXPECT_EQ(ck->config.eos_token_ids, (std::vector<int32_t>{319, 7}));
}

TEST(HfCheckpoint, MissingTensorIsNamed) {
  ScratchDir dir;
  WriteTiny(dir.path());
  RewriteWeights(dir / "model.safetensors",
                 [](const std::string& n) { return n != "model.layers.1.mlp.up_proj.weight"; });
  const std::string m = OpenError(dir.path());
  EXPECT_CONTAINS(m, "missing tensor model.layers.1.mlp.up_proj.weight");
}

TEST(HfCheckpoint, ConfigShapeMismatchNamesTensorAndShapes) {
  ScratchDir dir;
  WriteTiny(dir.path());
  EditConfig(dir.path(), [](nlohmann::json& j) { j["intermediate_size"] = 128; });
  const std::string m = OpenError(dir.path());
  EXPECT_CONTAINS(m, dir / "model.safetensors");
  EXPECT_CONTAINS(m, "model.layers.0.mlp.gate_proj.weight");
  EXPECT_CONTAINS(m, "[160, 64]");
  EXPECT_CONTAINS(m, "[128, 64]");
}

TEST(HfCheckpoint, BadConfigsAreReportedWithTheFile) {
  ScratchDir dir;
  WriteTiny(dir.path());
  EditConfig(dir.path(), [](nlohmann::json& j) { j["architectures"] = {"PhiForCausalLM"}; });
  std::string m = OpenError(dir.path());
  EXPECT_CONTAINS(m, dir / "config.json");
  EXPECT_CONTAINS(m, "unsupported architecture PhiForCausalLM");

  WriteAll(dir / "config.json", "{\"vocab_size\": 320,");
  m = OpenError(dir.path());
  EXPECT_CONTAINS(m, dir / "config.json");
  EXPECT_CONTAINS(m, "invalid JSON");

  fs::remove(dir / "config.json");
  m = OpenError(dir.path());
  EXPECT_CONTAINS(m, "no config.json");
}

TEST(HfCheckpoint, ShardProblemsAreNamed) {
  ScratchDir dir;
  WriteTiny(dir.path(), 200 * 1024);
  const std::string index_path = dir / "model.safetensors.index.json";
  const std::string index = ReadAll(index_path);

  // A tensor the index places in the wrong shard.
  auto j = nlohmann::json::parse(index);
  const std::string first_shard = j["weight_map"]["model.embed_tokens.weight"];
  ASSERT_EQ(first_shard, "model-00001-of-00004.safetensors");
  j["weight_map"]["model.embed_tokens.weight"] = "model-00004-of-00004.safetensors";
  WriteAll(index_path, j.dump());
  std::string m = OpenError(dir.path());
  EXPECT_CONTAINS(m, "tensor model.embed_tokens.weight is missing from shard model-00004-of-00004");

  // A shard path escaping the directory.
  j["weight_map"]["model.embed_tokens.weight"] = "../elsewhere.safetensors";
  WriteAll(index_path, j.dump());
  EXPECT_CONTAINS(OpenError(dir.path()), "must be a file name in the same directory");

  // A deleted shard.
  WriteAll(index_path, index);
  fs::remove(dir / "model-00002-of-00004.safetensors");
  m = OpenError(dir.path());
  EXPECT_CONTAINS(m, index_path);
  EXPECT_CONTAINS(m, "shard model-00002-of-00004.safetensors");
  EXPECT_CONTAINS(m, "is missing");

  WriteAll(index_path, "{\"weight_map\": 3}");
  EXPECT_CONTAINS(OpenError(dir.path()), "weight_map");
  fs::remove(index_path);
  EXPECT_CONTAINS(OpenError(dir.path()), "no model.safetensors or model.safetensors.index.json");
}

TEST(HfCheckpoint, CorruptWeightsFileIsNamed) {
  ScratchDir dir;
  WriteTiny(dir.path());
  const std::string weights = ReadAll(dir / "model.safetensors");
  WriteAll(dir / "model.safetensors", weights.substr(0, weights.size() / 2));
  const std::string m = OpenError(dir.path());
  EXPECT_CONTAINS(m, dir / "model.safetensors");
  EXPECT_CONTAINS(m, "past the data section");
}

TEST(HfCheckpoint, TokenizerOverrideMustExist) {
  ScratchDir dir;
  WriteTiny(dir.path());
  OpenOptions options;
  options.tokenizer_path = dir / "missing-tokenizer.json";
  EXPECT_CONTAINS(OpenError(dir.path(), options), "missing-tokenizer.json");
}

}  // namespace
}  // namespace rtnq
