// llama2.c reader tests: stories260K.bin against llama.cpp's GGUF conversion of the same model,
// tok512.bin against the vocabulary embedded in that GGUF, and malformed copies.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "io/checkpoint_readers.h"
#include "io/gguf.h"
#include "io/llama2c.h"
#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

using Bytes = std::vector<uint8_t>;

std::string StoriesPath(const std::string& name) {
  return testing::DataDir() + "/models/stories260K/" + name;
}

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

const TensorView* FindView(const Checkpoint& ck, const std::string& name) {
  for (const auto& t : ck.tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

using testing::TempDir;

TEST(Llama2cTest, OpensStories260K) {
  auto ck = OpenLlama2cCheckpoint(StoriesPath("stories260K.bin"), {});
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  const ModelConfig& c = ck->config;
  EXPECT_EQ(ck->format, CheckpointFormat::kLlama2c);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.bos_token_ids, std::vector<int32_t>{1});
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
  // embed, 9 per layer, final norm; no lm_head (shared classifier).
  ASSERT_EQ(ck->tensors.size(), 1u + 5 * 9 + 1);
  EXPECT_EQ(FindView(*ck, "lm_head.weight"), nullptr);
  const TensorView* q = FindView(*ck, "model.layers.2.self_attn.q_proj.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->file_name, "wq[2]");
  EXPECT_EQ(q->rope_permuted_heads, 8);
  EXPECT_EQ(FindView(*ck, "model.layers.2.self_attn.k_proj.weight")->rope_permuted_heads, 4);
  // The wq slice for layer 2 starts after the embedding, 5 rms_att rows and 2 wq matrices.
  EXPECT_EQ(q->file_offset, 28u + 4 * (512 * 64 + 5 * 64 + 2 * 64 * 64));
  const TensorView& last = ck->tensors.back();
  EXPECT_EQ(last.name, "model.norm.weight");
  // After rms_final come freq_cis_real/imag (512 x 4 floats each), then the end of the file.
  EXPECT_EQ(last.file_offset + last.nbytes + 2 * 512 * 4 * 4, ck->files[0]->size());
  ASSERT_TRUE(ck->tokenizer.has_value());  // tok512.bin found next to the model
  EXPECT_EQ(ck->tokenizer->tokens.size(), 512u);
}

TEST(Llama2cTest, TensorsEqualGgufF32BitForBit) {
  auto bin = OpenLlama2cCheckpoint(StoriesPath("stories260K.bin"), {});
  auto gguf = OpenGgufCheckpoint(StoriesPath("stories260K-F32.gguf"), {});
  ASSERT_TRUE(bin.ok()) << bin.status().message();
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  for (const TensorView& t : bin->tensors) {
    const TensorView* g = FindView(*gguf, t.name);
    ASSERT_NE(g, nullptr) << t.name;
    EXPECT_EQ(g->shape, t.shape) << t.name;
    EXPECT_EQ(g->dtype, t.dtype) << t.name;
    // Both keep llama2.c's interleaved q/k rows: the same permutation status.
    EXPECT_EQ(g->rope_permuted_heads, t.rope_permuted_heads) << t.name;
    ASSERT_EQ(g->nbytes, t.nbytes) << t.name;
    EXPECT_EQ(std::memcmp(g->data, t.data, t.nbytes), 0) << t.name;
  }
  // The converter wrote the shared classifier out as output.weight.
  const TensorView* head = FindView(*gguf, "lm_head.weight");
  const TensorView* embed = FindView(*bin, "model.embed_tokens.weight");
  ASSERT_NE(head, nullptr);
  ASSERT_EQ(head->nbytes, embed->nbytes);
  EXPECT_EQ(std::memcmp(head->data, embed->data, head->nbytes), 0);

  // Same config, except what the converter chose differently: an explicit output.weight and
  // its default context of 128.
  ModelConfig a = bin->config, b = gguf->config;
  EXPECT_NEAR(a.rms_norm_eps, b.rms_norm_eps, 1e-12);  // GGUF stores 1e-5 as f32
  EXPECT_EQ(a.max_position_embeddings, 512);
  EXPECT_EQ(b.max_position_embeddings, 128);
  EXPECT_TRUE(a.tie_word_embeddings);
  EXPECT_FALSE(b.tie_word_embeddings);
  b.rms_norm_eps = a.rms_norm_eps;
  b.max_position_embeddings = a.max_position_embeddings;
  b.tie_word_embeddings = a.tie_word_embeddings;
  EXPECT_EQ(a.family, b.family);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.hidden_size, b.hidden_size);
  EXPECT_EQ(a.intermediate_size, b.intermediate_size);
  EXPECT_EQ(a.num_layers, b.num_layers);
  EXPECT_EQ(a.num_heads, b.num_heads);
  EXPECT_EQ(a.num_kv_heads, b.num_kv_heads);
  EXPECT_EQ(a.head_dim, b.head_dim);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling.type, b.rope_scaling.type);
  EXPECT_EQ(a.attention_bias, b.attention_bias);
  EXPECT_EQ(a.bos_token_ids, b.bos_token_ids);
  EXPECT_EQ(a.eos_token_ids, b.eos_token_ids);
}

TEST(Llama2cTest, TokenizerAgreesWithGgufVocab) {
  auto tok = ReadLlama2cTokenizer(StoriesPath("tok512.bin"), 512);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  auto g = ReadGguf(StoriesPath("stories260K-F32.gguf"));
  ASSERT_TRUE(g.ok());
  auto ref = TokenizerFromGguf(*g);
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  ASSERT_EQ(tok->tokens.size(), ref->tokens.size());
  ASSERT_EQ(tok->scores.size(), ref->scores.size());
  ASSERT_EQ(tok->types.size(), ref->types.size());
  for (size_t i = 0; i < ref->tokens.size(); ++i) {
    EXPECT_EQ(tok->tokens[i], ref->tokens[i]) << "token " << i;
    EXPECT_EQ(tok->scores[i], ref->scores[i]) << "token " << i;
    EXPECT_EQ(tok->types[i], ref->types[i]) << "token " << i;
  }
  EXPECT_EQ(tok->tokens[259], "\xE2\x96\x81t");  // " t" in the file, "▁t" in SentencePiece
  EXPECT_EQ(tok->kind, ref->kind);
  EXPECT_EQ(tok->bos_id, ref->bos_id);
  EXPECT_EQ(tok->eos_id, ref->eos_id);
  EXPECT_EQ(tok->unk_id, ref->unk_id);
  EXPECT_EQ(tok->add_bos, ref->add_bos);
  EXPECT_EQ(tok->add_eos, ref->add_eos);
  EXPECT_EQ(tok->add_space_prefix, ref->add_space_prefix);
}

class MalformedLlama2cTest : public ::testing::Test {
 protected:
  void SetUp() override { good_ = ReadBytes(StoriesPath("stories260K.bin")); }
  std::string Error(const Bytes& b) {
    auto r = ParseLlama2c(b.data(), b.size(), "m.bin");
    EXPECT_FALSE(r.ok());
    const std::string msg = r.ok() ? "" : r.status().message();
    EXPECT_EQ(msg.rfind("m.bin: ", 0), 0u) << msg;
    return msg;
  }
  Bytes WithField(int field, int32_t v) {
    Bytes b = good_;
    std::memcpy(b.data() + 4 * field, &v, 4);
    return b;
  }
  Bytes good_;
};

TEST_F(MalformedLlama2cTest, SizeMismatch) {
  ASSERT_EQ(good_.size(), 1056540u);
  Bytes b(good_.begin(), good_.end() - 4);
  std::string msg = Error(b);
  EXPECT_NE(msg.find("file is 1056536 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find("implies 1056540 bytes with a shared classifier (1187612 with a separate one)"),
            std::string::npos) << msg;
  b = good_;
  b.resize(b.size() + 4);
  EXPECT_NE(Error(b).find("file is 1056544 bytes"), std::string::npos);
  // Negative vocab_size: a separate classifier the file does not have.
  msg = Error(WithField(5, -512));
  EXPECT_NE(msg.find("vocab_size -512"), std::string::npos) << msg;
  EXPECT_NE(msg.find("implies 1187612 bytes with a separate classifier (1056540 with a shared one)"),
            std::string::npos) << msg;
  // Header fields that change the size.
  EXPECT_NE(Error(WithField(1, 173)).find("hidden_dim 173"), std::string::npos);
  EXPECT_NE(Error(WithField(6, 1 << 30)).find("implies"), std::string::npos);
}

TEST_F(MalformedLlama2cTest, BadHeaderFields) {
  const char* names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int f = 0; f < 7; ++f) {
    for (int32_t v : {0, -1, INT32_MIN}) {
      if (f == 5 && v == -1) continue;  // a valid separate-classifier marker (size then mismatches)
      const std::string msg = Error(WithField(f, v));
      EXPECT_NE(msg.find(fmt::format("header field {} at offset {}", names[f], 4 * f)), std::string::npos)
          << msg;
      EXPECT_NE(msg.find(fmt::format("found {}", v)), std::string::npos) << msg;
    }
  }
  EXPECT_NE(Error(WithField(3, 7)).find("dim 64 is not a multiple of n_heads 7"), std::string::npos);
  EXPECT_NE(Error(WithField(4, 3)).find("not a multiple of num_key_value_heads 3"), std::string::npos);
  EXPECT_NE(Error(WithField(0, 1 << 30)).find("out of the supported range"), std::string::npos);
  EXPECT_NE(Error(WithField(3, 64)).find("head_dim 1 must be even"), std::string::npos);
  EXPECT_NE(Error(Bytes(good_.begin(), good_.begin() + 27)).find("too short"), std::string::npos);
  EXPECT_NE(Error(Bytes()).find("file is 0 bytes"), std::string::npos);
  // Versioned export.py files start with "ak42" and a version number.
  Bytes v2 = WithField(0, 0x616b3432);
  std::memcpy(v2.data() + 4, "\x02\0\0\0", 4);
  EXPECT_NE(Error(v2).find("llama2.c version-2 export not supported (legacy only)"), std::string::npos);
}

TEST_F(MalformedLlama2cTest, Tokenizer) {
  const Bytes tok = ReadBytes(StoriesPath("tok512.bin"));
  auto error = [](const Bytes& b, int64_t vocab) {
    auto r = ParseLlama2cTokenizer(b.data(), b.size(), "t.bin", vocab);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_TRUE(ParseLlama2cTokenizer(tok.data(), tok.size(), "t.bin", 512).ok());
  EXPECT_NE(error(tok, 511).find("bytes left after 511 token records"), std::string::npos);
  EXPECT_NE(error(tok, 513).find("token 512 at offset 6227"), std::string::npos);
  EXPECT_NE(error(tok, int64_t{1} << 40).find("1099511627776 token records need"), std::string::npos);
  EXPECT_NE(error(Bytes(tok.begin(), tok.end() - 1), 512).find("token 511 at offset"), std::string::npos);
  Bytes b = tok;
  const int32_t huge = 1 << 30;
  std::memcpy(b.data() + 8, &huge, 4);  // token 0's length
  EXPECT_NE(error(b, 512).find("token 0 at offset 4: length 1073741824 runs past"), std::string::npos);
  const int32_t negative = -5;
  std::memcpy(b.data() + 8, &negative, 4);
  EXPECT_NE(error(b, 512).find("length -5"), std::string::npos);
  b = tok;
  std::memcpy(b.data(), &negative, 4);
  EXPECT_NE(error(b, 512).find("max_token_length at offset 0"), std::string::npos);
  EXPECT_NE(error(tok, 2).find("too small"), std::string::npos);
}

TEST_F(MalformedLlama2cTest, OpenWithExplicitTokenizer) {
  TempDir dir;
  const std::string model = dir.Write("model.bin", good_);
  // No tok512.bin next to it: no tokenizer, not an error.
  auto ck = OpenLlama2cCheckpoint(model, {});
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_FALSE(ck->tokenizer.has_value());
  ck = OpenLlama2cCheckpoint(model, {.tokenizer_path = StoriesPath("tok512.bin")});
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_EQ(ck->tokenizer->tokens.size(), 512u);
  const std::string bad_tok = dir.Write("tok.bin", Bytes{1, 0, 0, 0});
  ck = OpenLlama2cCheckpoint(model, {.tokenizer_path = bad_tok});
  ASSERT_FALSE(ck.ok());
  EXPECT_NE(ck.status().message().find(bad_tok), std::string::npos);
  auto missing = OpenLlama2cCheckpoint(dir.Write("short.bin", Bytes(good_.begin(), good_.begin() + 100)), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("short.bin: file is 100 bytes"), std::string::npos)
      << missing.status().message();
}

}  // namespace
}  // namespace rtnq
