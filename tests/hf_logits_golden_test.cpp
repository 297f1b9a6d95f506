// rtnq's logits against HF transformers (CPU torch, eager attention; tests/golden/hf_synth_*.json,
// made by scripts/reference/hf_ref.py) on seeded synthetic models in the Llama-3.1 style (GQA,
// llama3 RoPE scaling, tied embeddings) and the Qwen2 style (qkv bias), with F32 and BF16 weights.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "io/checkpoint.h"
#include "io/synthetic_model.h"
#include "model/model.h"
#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

struct GoldenCase {
  const char* file;
  double tolerance;  // max |rtnq - HF| / max |HF| over a prompt's logits
};

class HfLogitsGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(HfLogitsGolden, MatchesTransformers) {
  const GoldenCase& c = GetParam();
  std::ifstream f(testing::SourceDir() + "/tests/golden/" + c.file);
  ASSERT_TRUE(f.good()) << c.file;
  const nlohmann::json golden = nlohmann::json::parse(f);

  testing::TempDir dir;
  SynthOptions options;
  options.shape = golden["synth"]["shape"];
  options.seed = golden["synth"]["seed"];
  options.dtype = golden["synth"]["dtype"] == "f32" ? DType::kF32 : DType::kBF16;
  options.force = true;
  auto summary = WriteSyntheticModel(dir.path(), options);
  ASSERT_TRUE(summary.ok()) << summary.status().message();
  const auto sha = testing::RunCommand("sha256sum " + dir.path() + "/model.safetensors");
  ASSERT_EQ(sha.out.substr(0, 64), golden["model_safetensors_sha256"].get<std::string>())
      << "golden is stale: rtnq synth now writes different weights; run scripts/reference/hf_ref.py";

  auto ck = OpenCheckpoint(dir.path());
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  auto model = Model::Load(*ck, {});
  ASSERT_TRUE(model.ok()) << model.status().message();
  const int vocab = golden["vocab_size"];
  for (const auto& prompt : golden["prompts"]) {
    const auto ids = prompt["token_ids"].get<std::vector<int32_t>>();
    (*model)->ClearSequence(0);
    std::vector<BatchItem> batch;
    for (int32_t id : ids) batch.push_back({0, id, true});
    std::vector<float> logits(ids.size() * vocab);
    ASSERT_TRUE((*model)->Forward(batch, logits.data()).ok());
    double max_err = 0, max_ref = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      for (int v = 0; v < vocab; ++v) {
        const double ref = prompt["logits"][i][v].get<double>();
        max_ref = std::max(max_ref, std::fabs(ref));
        max_err = std::max(max_err, std::fabs(logits[i * vocab + v] - ref));
      }
      const float* row = &logits[i * vocab];
      EXPECT_EQ(std::max_element(row, row + vocab) - row, prompt["argmax"][i].get<int>())
          << c.file << " prompt of " << ids.size() << " tokens, position " << i;
    }
    EXPECT_LE(max_err / max_ref, c.tolerance) << c.file << " prompt of " << ids.size() << " tokens";
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, HfLogitsGolden,
                         ::testing::Values(GoldenCase{"hf_synth_tiny-llama3_s1_f32.json", 1e-4},
                                           GoldenCase{"hf_synth_tiny-llama3_s1_bf16.json", 1e-2},
                                           GoldenCase{"hf_synth_tiny-qwen2_s2_f32.json", 1e-4},
                                           GoldenCase{"hf_synth_tiny-qwen2_s2_bf16.json", 1e-2}),
                         [](const auto& info) {
                           std::string n = info.param.file;
                           n = n.substr(9, n.size() - 14);
                           for (char& ch : n) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace rtnq
