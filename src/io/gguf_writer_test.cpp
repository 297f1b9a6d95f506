#include "io/gguf_writer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>

#include "format/ggml_quant.h"
#include "io/gguf.h"

namespace rtnq {
namespace {

TEST(GgufWriter, RoundTripsThroughTheReader) {
  const std::string path = ::testing::TempDir() + "/rtnq_writer_test.gguf";
  std::remove(path.c_str());
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint32("llama.block_count", 2);
  w.SetFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "a", "b"});
  w.SetInt32Array("tokenizer.ggml.token_type", {2, 1, 1});
  ASSERT_TRUE(w.AddTensor("a.weight", {3, 5}, DType::kF32).ok());
  ASSERT_TRUE(w.AddTensor("b.weight", {2, 64}, DType::kQ8_0).ok());
  EXPECT_FALSE(w.AddTensor("c.weight", {2, 40}, DType::kQ4_0).ok());

  std::vector<float> a(15), b(128);
  for (int i = 0; i < 15; ++i) a[i] = i * 0.5f;
  for (int i = 0; i < 128; ++i) b[i] = std::sin(i * 0.1f);
  Status st = w.Write(path, false, [&](size_t i, std::vector<uint8_t>& bytes) {
    if (i == 0) std::memcpy(bytes.data(), a.data(), bytes.size());
    else QuantizeRowQ8_0(b.data(), bytes.data(), b.size());
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_FALSE(w.Write(path, false, [](size_t, std::vector<uint8_t>&) { return Status::Ok(); }).ok())
      << "must not overwrite without being asked";

  auto g = ReadGguf(path);
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->version, 3u);
  EXPECT_EQ(*g->Find("general.architecture")->AsString(), "llama");
  EXPECT_EQ(g->Find("llama.block_count")->AsInt(), 2);
  EXPECT_EQ(g->Find("tokenizer.ggml.tokens")->AsArray()->size(), 3u);
  ASSERT_EQ(g->tensors.size(), 2u);
  EXPECT_EQ(g->tensors[0].dims, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(g->tensors[1].dtype, DType::kQ8_0);
  EXPECT_EQ(std::memcmp(g->file->data() + g->tensors[0].offset, a.data(), 60), 0);
  std::vector<float> back(128);
  DequantizeRow(DType::kQ8_0, g->file->data() + g->tensors[1].offset, back.data(), 128);
  for (int i = 0; i < 128; ++i) EXPECT_NEAR(back[i], b[i], 1.0 / 127);
  std::remove(path.c_str());
}

TEST(GgufWriter, FailedFillLeavesNoFile) {
  const std::string path = ::testing::TempDir() + "/rtnq_writer_fail.gguf";
  std::remove(path.c_str());
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("x", {1, 32}, DType::kF32).ok());
  Status st = w.Write(path, false, [](size_t, std::vector<uint8_t>&) { return Err("boom"); });
  EXPECT_FALSE(st.ok());
  FILE* f = std::fopen(path.c_str(), "rb");
  EXPECT_EQ(f, nullptr);
  if (f) std::fclose(f);
}

}  // namespace
}  // namespace rtnq
