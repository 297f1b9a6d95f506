// WeightLoader::LoadLinears: RTN tensors of several linears share one work queue across threads;
// the packed panels must be byte-identical to loading each linear alone on one thread.
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

std::unique_ptr<Fixture> Make(const std::string& tag, const std::string& plan_text) {
  auto f = std::make_unique<Fixture>();
  f->dir = (std::filesystem::temp_directory_path() / ("rtnq_weight_loader_" + tag + "_" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(f->dir);
  SynthOptions so;
  so.shape = "tiny-llama3";
  so.seed = 12;
  so.dtype = DType::kBF16;
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

}  // namespace
}  // namespace rtnq
