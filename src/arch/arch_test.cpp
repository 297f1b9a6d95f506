#include <gtest/gtest.h>

#include "arch/shapes.h"
#include "arch/tensor_role.h"

namespace rtnq {
namespace {

TEST(Arch, CanonicalNamesRoundTrip) {
  const ModelConfig c = *KnownShape("tiny-qwen2");
  for (const TensorId& id : RequiredTensors(c)) {
    const std::string name = CanonicalName(id);
    auto back = ParseCanonicalName(name);
    ASSERT_TRUE(back.has_value()) << name;
    EXPECT_EQ(*back, id) << name;
  }
  EXPECT_FALSE(ParseCanonicalName("model.layers.x.mlp.up_proj.weight").has_value());
  EXPECT_FALSE(ParseCanonicalName("model.layers.1.mlp.upx_proj.weight").has_value());
}

TEST(Arch, KnownShapesValidateAndCountParameters) {
  for (const auto& name : KnownShapeNames()) {
    EXPECT_TRUE(KnownShape(name)->Validate().ok()) << name;
  }
  // Llama-3.1-8B has 8.03 B parameters, Llama-3.2-1B 1.24 B.
  EXPECT_NEAR(KnownShape("llama-3.1-8b")->NumParameters() / 1e9, 8.03, 0.01);
  EXPECT_NEAR(KnownShape("llama-3.2-1b")->NumParameters() / 1e9, 1.24, 0.01);
  EXPECT_NEAR(KnownShape("llama-3.1-405b")->NumParameters() / 1e9, 405.9, 0.5);
}

TEST(Arch, ValidateRejectsBadHeads) {
  ModelConfig c = *KnownShape("tiny-llama3");
  c.num_kv_heads = 3;
  EXPECT_FALSE(c.Validate().ok());
}

}  // namespace
}  // namespace rtnq
