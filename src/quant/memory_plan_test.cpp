#include "quant/memory_plan.h"

#include <gtest/gtest.h>

#include "arch/shapes.h"

namespace rtnq {
namespace {

CompiledPlan Compile(const ModelConfig& c, const std::string& plan_text) {
  std::vector<TensorSource> src;
  for (const TensorId& id : RequiredTensors(c)) src.push_back({id, DType::kBF16});
  auto plan = QuantPlan::ParseText(plan_text, "test");
  EXPECT_TRUE(plan.ok());
  auto compiled = CompilePlan(*plan, c, src, false);
  EXPECT_TRUE(compiled.ok()) << compiled.status().message();
  return *compiled;
}

TEST(Fit, Llama405BFitsFourH100AtRtn4ButNotAtBf16) {
  const ModelConfig c = *KnownShape("llama-3.1-405b");
  auto dev = ParseDeviceSpec("4xH100-80GB");
  ASSERT_TRUE(dev.ok());
  auto rtn4 = FitOnDevices(c, Compile(c, "default int4:g128\n"), *dev);
  auto bf16 = FitOnDevices(c, Compile(c, "default keep\n"), *dev);
  ASSERT_TRUE(rtn4.ok() && bf16.ok());
  EXPECT_TRUE(rtn4->weights_fit);
  EXPECT_FALSE(bf16->weights_fit);
  // BF16: 405.9e9 weights * 2 bytes / 4 devices ~= 203 GB each.
  EXPECT_NEAR(bf16->weight_bytes_per_device / 1e9, 203, 1.5);
  // RTN-4 g128 (bf16 scales) on the linear layers, bf16 embeddings and lm_head: ~54 GB each.
  EXPECT_NEAR(rtn4->weight_bytes_per_device / 1e9, 54.4, 1.0);
  // 126 layers x 2 (K,V) x 2 kv heads per device x 128 x 2 bytes.
  EXPECT_EQ(rtn4->kv_bytes_per_token, 126u * 2 * 2 * 128 * 2);
  EXPECT_GT(rtn4->max_kv_tokens, 100000);
}

TEST(Fit, KvHeadsAreReplicatedBeyondTheirCount) {
  const ModelConfig c = *KnownShape("llama-3.1-8b");
  auto r = FitOnDevices(c, Compile(c, "default keep\n"), *ParseDeviceSpec("16x24GB"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kv_heads_per_device, 1);
}

TEST(Fit, DeviceSpecs) {
  EXPECT_EQ(ParseDeviceSpec("h200")->bytes, 143771ull << 20);
  EXPECT_EQ(ParseDeviceSpec("2x24GB")->bytes, 24000000000ull);
  EXPECT_EQ(ParseDeviceSpec("2x24GB")->count, 2);
  auto bad = ParseDeviceSpec("4xTPU");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("H100-80GB"), std::string::npos);
  EXPECT_FALSE(ParseDeviceSpec("0xH100").ok());
}

}  // namespace
}  // namespace rtnq
