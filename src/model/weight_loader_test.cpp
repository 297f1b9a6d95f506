// WeightLoader::LoadLinears: RTN tensors of several linears share one work queue across threads;
// the packed panels must be byte-identical to loading each linear alone on one thread.
// WeightLoader::LoadEmbedding: an untied embedding kept at its stored precision is read from the
// checkpoint's mapping, with the same rows as the packed copy, and outlives the Checkpoint.
#include "model/weight_loader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "io/synthetic_model.h"
#include "quant/quantize_model.h"

namespace rtnq {
namespace {

struct Fixture {
  std::string dir;
  Checkpoint ck;
  CompiledPlan plan;
};

std::unique_ptr<Fixture> Make(const std::string& tag, const std::string& plan_text,
                              const char* shape = "tiny-llama3", DType dtype = DType::kBF16) {
  auto f = std::make_unique<Fixture>();
  f->dir = (std::filesystem::temp_directory_path() / ("rtnq_weight_loader_" + tag + "_" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(f->dir);
  SynthOptions so;
  so.shape = shape;
  so.seed = 12;
  so.dtype = dtype;
  so.threads = 1;
  EXPECT_TRUE(WriteSyntheticModel(f->dir, so).ok());
  auto ck = OpenCheckpoint(f->dir);
  EXPECT_TRUE(ck.ok()) << ck.status().message();
  if (!ck.ok()) return nullptr;
  f->ck = std::move(ck).value();
  auto plan = QuantPlan::ParseText(plan_text, "<test>");
  EXPECT_TRUE(plan.ok());
  auto compiled = CompilePlanForCheckpoint(*plan, f->ck, /*strict=*/false);
  EXPECT_TRUE(compiled.ok()) << compiled.status().message();
  if (!compiled.ok()) return nullptr;
  f->plan = std::move(compiled).value();
  return f;
}

std::vector<std::vector<TensorId>> LayerLinears(int layers) {
  std::vector<std::vector<TensorId>> out;
  for (int l = 0; l < layers; ++l) {
    out.push_back({{TensorRole::kAttnQ, l}, {TensorRole::kAttnK, l}, {TensorRole::kAttnV, l}});
    out.push_back({{TensorRole::kAttnO, l}});
    out.push_back({{TensorRole::kMlpGate, l}, {TensorRole::kMlpUp, l}});
    out.push_back({{TensorRole::kMlpDown, l}});
  }
  return out;
}

void ExpectSamePanels(const LinearWeights& a, const LinearWeights& b, size_t index) {
  ASSERT_EQ(a.parts.size(), b.parts.size()) << index;
  EXPECT_EQ(a.col_offset, b.col_offset) << index;
  for (size_t p = 0; p < a.parts.size(); ++p) {
    ASSERT_EQ(a.parts[p].bytes(), b.parts[p].bytes()) << index;
    ASSERT_EQ(a.parts[p].weight_type(), b.parts[p].weight_type()) << index;
    EXPECT_EQ(std::memcmp(a.parts[p].panel(0), b.parts[p].panel(0), a.parts[p].bytes()), 0)
        << "linear " << index << " part " << p;
  }
}

TEST(WeightLoader, SharedQueueAcrossLinearsMatchesOneByOne) {
  // Mixed formats inside fused linears and a kept (bf16) part, so runs of different precisions
  // and dense parts go through the same call.
  auto f = Make("queue", "default int4:g32\nlayers=first:1 -> int8:g64\n"
                          "layers=last:1 modules=attn_v,mlp_up -> int8:g32\nlayers=1 modules=attn_k -> bf16\n");
  ASSERT_NE(f, nullptr);
  const auto linears = LayerLinears(static_cast<int>(f->ck.config.num_layers));
  ModelOptions opt{WeightPrecision::kAsStored, 1, 1, 16};
  opt.plan = &f->plan;
  ThreadPool one(1), three(3);
  WeightLoader serial(f->ck, opt, &one);
  std::vector<LinearWeights> want;
  for (const auto& ids : linears) {
    auto lw = serial.LoadLinear(ids);
    ASSERT_TRUE(lw.ok()) << lw.status().message();
    want.push_back(std::move(lw).value());
  }
  WeightLoader batched(f->ck, opt, &three);
  auto got = batched.LoadLinears(linears);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSamePanels((*got)[i], want[i], i);
  EXPECT_EQ(batched.stats().quantized_tensors, serial.stats().quantized_tensors);
  EXPECT_EQ(batched.stats().source_bytes, serial.stats().source_bytes);
  EXPECT_EQ(batched.stats().quantized_bytes, serial.stats().quantized_bytes);
  EXPECT_EQ(batched.stats().weight_bytes, serial.stats().weight_bytes);
  EXPECT_GT(serial.stats().quantized_tensors, 0);
  std::filesystem::remove_all(f->dir);
}

std::vector<float> EmbeddingRow(const Embedding& e, int64_t token, int64_t hidden) {
  std::vector<float> row(static_cast<size_t>(hidden));
  e.Row(token, row.data());
  return row;
}

TEST(WeightLoader, UntiedEmbeddingIsReadFromTheMappingWhenKeptAsStored) {
  struct Case {
    DType stored;
    WeightPrecision precision;
    const char* plan;
    bool mapped;
  };
  const Case cases[] = {
      {DType::kBF16, WeightPrecision::kAsStored, "default int4:g32\n", true},
      {DType::kBF16, WeightPrecision::kBF16, "default keep\n", true},
      {DType::kBF16, WeightPrecision::kF32, "default keep\n", true},
      {DType::kF32, WeightPrecision::kAsStored, "default keep\n", true},
      {DType::kF16, WeightPrecision::kAsStored, "default keep\n", true},  // decoded exactly to f32
      {DType::kF32, WeightPrecision::kBF16, "default keep\n", false},  // rounded to bf16: a copy
      {DType::kF32, WeightPrecision::kAsStored, "modules=embed -> bf16\n", false},
      {DType::kBF16, WeightPrecision::kAsStored, "modules=embed -> f32\n", true},
      {DType::kBF16, WeightPrecision::kAsStored, "modules=embed -> int8:g32\n", false},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "case " << i << ": " << DTypeName(c.stored) << ", " << c.plan);
    auto f = Make("embed" + std::to_string(i++), c.plan, "tiny-qwen2", c.stored);
    ASSERT_NE(f, nullptr);
    ASSERT_FALSE(f->ck.config.tie_word_embeddings);
    const int64_t hidden = f->ck.config.hidden_size, vocab = f->ck.config.vocab_size;
    ModelOptions opt{c.precision, 1, 1, 16};
    opt.plan = &f->plan;
    ThreadPool pool(2);
    WeightLoader loader(f->ck, opt, &pool);
    auto embedding = loader.LoadEmbedding(/*tied=*/false);
    ASSERT_TRUE(embedding.ok()) << embedding.status().message();
    EXPECT_EQ(embedding->mapped(), c.mapped);
    const uint64_t stored = f->ck.Find("model.embed_tokens.weight")->StoredBytes();
    EXPECT_EQ(loader.stats().mapped_bytes, c.mapped ? stored : 0);
    EXPECT_EQ(loader.stats().weight_bytes, embedding->bytes());
    // The same rows as the packed copy that loading made before.
    WeightLoader packed_loader(f->ck, opt, &pool);
    auto packed = packed_loader.LoadEmbedding(/*tied=*/true);
    ASSERT_TRUE(packed.ok()) << packed.status().message();
    EXPECT_FALSE(packed->mapped());
    for (int64_t token : {int64_t{0}, int64_t{1}, vocab / 2, vocab - 1}) {
      const auto a = EmbeddingRow(*embedding, token, hidden), b = EmbeddingRow(*packed, token, hidden);
      EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0) << "token " << token;
    }
    // The mapped rows stay readable after the Checkpoint (and its file) are gone.
    if (c.mapped) {
      const auto before = EmbeddingRow(*embedding, vocab - 1, hidden);
      f->ck = Checkpoint();
      std::filesystem::remove_all(f->dir);
      const auto after = EmbeddingRow(*embedding, vocab - 1, hidden);
      EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * 4), 0);
    }
    std::filesystem::remove_all(f->dir);
  }
}

}  // namespace
}  // namespace rtnq
