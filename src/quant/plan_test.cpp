#include "quant/plan.h"

#include <gtest/gtest.h>

#include "arch/shapes.h"

namespace rtnq {
namespace {

std::vector<TensorSource> Sources(const ModelConfig& c, DType dtype = DType::kBF16) {
  std::vector<TensorSource> s;
  for (const TensorId& id : RequiredTensors(c)) s.push_back({id, dtype});
  return s;
}

const TensorDecision& Find(const CompiledPlan& p, TensorRole role, int layer) {
  for (const auto& d : p.tensors) {
    if (d.id.role == role && d.id.layer == layer) return d;
  }
  throw std::runtime_error("not found");
}

ModelConfig Model8B() { return *KnownShape("llama-3.1-8b"); }

TEST(LayerSet, ParsesAllForms) {
  auto s = LayerSet::Parse("first:2,last:1,10-11,-3");
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::vector<int> in;
  for (int l = 0; l < 32; ++l) if (s->Contains(l, 32)) in.push_back(l);
  EXPECT_EQ(in, (std::vector<int>{0, 1, 10, 11, 29, 31}));
  auto mid = LayerSet::Parse("middle:4");
  in.clear();
  for (int l = 0; l < 32; ++l) if (mid->Contains(l, 32)) in.push_back(l);
  EXPECT_EQ(in, (std::vector<int>{14, 15, 16, 17}));
  EXPECT_FALSE(LayerSet::Parse("first:0").ok());
  EXPECT_FALSE(LayerSet::Parse("5-2").ok());
  EXPECT_FALSE(LayerSet::Parse("some").ok());
  EXPECT_FALSE(LayerSet::Parse("40")->Check(32).ok());
}

TEST(Plan, HorizontalVerticalHybridAreOneLineEach) {
  const ModelConfig c = Model8B();
  auto plan = QuantPlan::ParseText(
      "default int4:g128\n"
      "layers=first:2,last:2 -> int8   # horizontal\n"
      "modules=mlp_down -> int8:g64    # vertical\n"
      "layers=middle:2 modules=qkv -> int8:row\n",
      "plan.txt");
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  auto compiled = CompilePlan(*plan, c, Sources(c), /*strict=*/true);
  ASSERT_TRUE(compiled.ok()) << compiled.status().message();
  EXPECT_EQ(Find(*compiled, TensorRole::kAttnQ, 0).precision.Name(), "int8:g128:bf16");
  EXPECT_EQ(Find(*compiled, TensorRole::kAttnQ, 5).precision.Name(), "int4:g128:bf16");
  EXPECT_EQ(Find(*compiled, TensorRole::kMlpDown, 5).precision.Name(), "int8:g64:bf16");
  EXPECT_EQ(Find(*compiled, TensorRole::kMlpDown, 0).precision.Name(), "int8:g64:bf16");  // later wins
  EXPECT_EQ(Find(*compiled, TensorRole::kAttnK, 16).precision.Name(), "int8:row:bf16");
  EXPECT_EQ(Find(*compiled, TensorRole::kAttnO, 16).precision.Name(), "int4:g128:bf16");
  EXPECT_EQ(Find(*compiled, TensorRole::kEmbed, -1).precision.Name(), "keep");
  EXPECT_EQ(Find(*compiled, TensorRole::kAttnNorm, 3).precision.Name(), "keep");
  // int4 g128 with bf16 scales: 4 + 16/128 = 4.125 bits for the quantized matrices.
  const auto& up = Find(*compiled, TensorRole::kMlpUp, 7);
  EXPECT_EQ(up.bytes, 14336ull * 4096 / 2 + 14336ull * 4096 / 128 * 2);
}

TEST(Plan, RulesThatMatchNothingOrAreShadowedPointAtTheRule) {
  const ModelConfig c = Model8B();
  auto plan = QuantPlan::ParseText("default int4\nmodules=lm_head layers=0 -> int8\n", "p.txt");
  ASSERT_TRUE(plan.ok());
  auto r = CompilePlan(*plan, c, Sources(c), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.txt:2"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("matches no tensor"), std::string::npos);

  plan = QuantPlan::ParseText("default int4\nmodules=mlp_down -> int8\nmodules=mlp -> keep\n", "p.txt");
  r = CompilePlan(*plan, c, Sources(c), false);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("p.txt:2: rule 'modules=mlp_down -> int8' has no effect"),
            std::string::npos)
      << r.status().message();

  auto bad = QuantPlan::ParseText("modules=attn_norm -> int8\n", "p.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("norms and biases always stay"), std::string::npos);
  bad = QuantPlan::ParseText("default int5\n", "p.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("valid precisions"), std::string::npos);
  bad = QuantPlan::ParseText("layers=99 -> int8\n", "p.txt");
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(CompilePlan(*bad, c, Sources(c), false).ok());
}

TEST(Plan, GroupFallbackForIndivisibleInputs) {
  // stories260K's down_proj has 172 inputs: not a multiple of 32.
  ModelConfig c = *KnownShape("tiny-llama3");
  c.intermediate_size = 172;
  auto keep = QuantPlan::ParseText("default int4:g32\n", "p");
  auto compiled = CompilePlan(*keep, c, Sources(c, DType::kF32), false);
  ASSERT_TRUE(compiled.ok());
  const auto& down = Find(*compiled, TensorRole::kMlpDown, 0);
  EXPECT_EQ(down.precision.Name(), "keep");
  EXPECT_NE(down.note.find("172"), std::string::npos) << down.note;
  EXPECT_EQ(down.bytes, 64u * 172 * 4);

  auto row = QuantPlan::ParseText("default int4:g32\nfallback row\n", "p");
  compiled = CompilePlan(*row, c, Sources(c, DType::kF32), false);
  ASSERT_TRUE(compiled.ok());
  EXPECT_EQ(Find(*compiled, TensorRole::kMlpDown, 1).precision.Name(), "int4:row:bf16");

  auto strict = CompilePlan(*keep, c, Sources(c, DType::kF32), true);
  ASSERT_FALSE(strict.ok());
  EXPECT_NE(strict.status().message().find("mlp.down_proj"), std::string::npos);
}

TEST(Plan, JsonFormEqualsTextForm) {
  auto j = QuantPlan::ParseJson(
      R"({"default": "int4:g128", "rules": [{"layers": "first:2", "precision": "int8"},
           {"modules": ["mlp_down", "attn_v"], "precision": "int8"}]})", "plan.json");
  ASSERT_TRUE(j.ok()) << j.status().message();
  auto t = QuantPlan::ParseText(j->ToText(), "roundtrip");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->ToText(), j->ToText());
  const ModelConfig c = Model8B();
  auto a = CompilePlan(*j, c, Sources(c), true);
  auto b = CompilePlan(*t, c, Sources(c), true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->total_bytes, b->total_bytes);
  EXPECT_FALSE(QuantPlan::ParseJson(R"({"rules": [{"layers": 3}]})", "x.json").ok());
}

}  // namespace
}  // namespace rtnq
