// GGUF reader tests on llama.cpp's own files (stories260K conversions, vocab-only GGUFs) and on
// malformed copies of them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "format/dtype.h"
#include "io/checkpoint_readers.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

using Bytes = std::vector<uint8_t>;

std::string StoriesPath(const std::string& name) {
  return testing::DataDir() + "/models/stories260K/" + name;
}
std::string VocabPath(const std::string& name) {
  return testing::DataDir() + "/tokenizer/llama.cpp-vocab/ggml-vocab-" + name + ".gguf";
}

Bytes ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

using testing::TempDir;

template <typename T>
void Put(Bytes& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
template <typename T>
void PutAt(Bytes& b, size_t offset, T v) {
  ASSERT_LE(offset + sizeof(T), b.size());
  std::memcpy(b.data() + offset, &v, sizeof(T));
}
void PutString(Bytes& b, const std::string& s) {
  Put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

// Offset of the length field of the GGUF string `s` (a key or a tensor name) in `b`.
size_t FindGgufString(const Bytes& b, const std::string& s) {
  Bytes pattern;
  PutString(pattern, s);
  const auto it = std::search(b.begin(), b.end(), pattern.begin(), pattern.end());
  EXPECT_NE(it, b.end()) << s;
  return it - b.begin();
}
// Offsets inside the tensor info of `name`.
size_t NDimsOffset(const Bytes& b, const std::string& name) {
  return FindGgufString(b, name) + 8 + name.size();
}

void PutValue(Bytes& b, const GgufValue& v);
void PutPayload(Bytes& b, GgufType t, const GgufValue& v) {
  switch (t) {
    case GgufType::kUint8: Put<uint8_t>(b, std::get<uint64_t>(v.value)); break;
    case GgufType::kInt8: Put<int8_t>(b, std::get<int64_t>(v.value)); break;
    case GgufType::kUint16: Put<uint16_t>(b, std::get<uint64_t>(v.value)); break;
    case GgufType::kInt16: Put<int16_t>(b, std::get<int64_t>(v.value)); break;
    case GgufType::kUint32: Put<uint32_t>(b, std::get<uint64_t>(v.value)); break;
    case GgufType::kInt32: Put<int32_t>(b, std::get<int64_t>(v.value)); break;
    case GgufType::kUint64: Put<uint64_t>(b, std::get<uint64_t>(v.value)); break;
    case GgufType::kInt64: Put<int64_t>(b, std::get<int64_t>(v.value)); break;
    case GgufType::kFloat32: Put<float>(b, std::get<double>(v.value)); break;
    case GgufType::kFloat64: Put<double>(b, std::get<double>(v.value)); break;
    case GgufType::kBool: Put<uint8_t>(b, std::get<bool>(v.value)); break;
    case GgufType::kString: PutString(b, std::get<std::string>(v.value)); break;
    case GgufType::kArray: {
      const auto& items = std::get<std::vector<GgufValue>>(v.value);
      Put<uint32_t>(b, static_cast<uint32_t>(v.array_type));
      Put<uint64_t>(b, items.size());
      for (const auto& item : items) PutPayload(b, v.array_type, item);
      break;
    }
  }
}
void PutValue(Bytes& b, const GgufValue& v) {
  Put<uint32_t>(b, static_cast<uint32_t>(v.type));
  PutPayload(b, v.type, v);
}

struct TensorToWrite {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t ggml_type;
  Bytes data;
};

// Serializes a GGUF the way llama.cpp's writer does: header, metadata, tensor infos, zero
// padding to the alignment, tensor data each padded to the alignment.
Bytes WriteGguf(const std::vector<std::pair<std::string, GgufValue>>& kvs,
                const std::vector<TensorToWrite>& tensors, uint32_t version = 3,
                uint64_t alignment = 32) {
  Bytes b;
  Put<uint32_t>(b, 0x46554747);
  Put<uint32_t>(b, version);
  Put<uint64_t>(b, tensors.size());
  Put<uint64_t>(b, kvs.size());
  for (const auto& [k, v] : kvs) {
    PutString(b, k);
    PutValue(b, v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    PutString(b, t.name);
    Put<uint32_t>(b, t.dims.size());
    for (int64_t d : t.dims) Put<uint64_t>(b, d);
    Put<uint32_t>(b, t.ggml_type);
    Put<uint64_t>(b, offset);
    offset += (t.data.size() + alignment - 1) / alignment * alignment;
  }
  for (const auto& t : tensors) {
    b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
    b.insert(b.end(), t.data.begin(), t.data.end());
  }
  if (!tensors.empty()) b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
  return b;
}

// Re-serializes a parsed file, leaving out tensor `skip`.
Bytes Reserialize(const GgufFile& g, const std::string& skip = "") {
  std::vector<TensorToWrite> tensors;
  for (const auto& t : g.tensors) {
    if (t.name == skip) continue;
    const uint8_t* p = g.file->data() + t.offset;
    tensors.push_back({t.name, t.dims, GgmlTypeId(t.dtype), Bytes(p, p + t.nbytes)});
  }
  return WriteGguf(g.metadata, tensors, g.version, g.alignment);
}

GgufValue U32(uint64_t v) { return GgufValue{GgufType::kUint32, v}; }
GgufValue Str(const std::string& s) { return GgufValue{GgufType::kString, s}; }
GgufValue Array(GgufType element_type, std::vector<GgufValue> items) {
  GgufValue v{GgufType::kArray, std::move(items)};
  v.array_type = element_type;
  return v;
}

std::string ParseError(const Bytes& b) {
  auto r = ParseGguf(b.data(), b.size(), "mem.gguf");
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

std::string OpenError(TempDir& dir, const Bytes& b) {
  const std::string path = dir.Write("bad.gguf", b);
  auto r = OpenGgufCheckpoint(path, {});
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.status().message();
}

TEST(GgufTest, ParsesStoriesF32Header) {
  auto g = ReadGguf(StoriesPath("stories260K-F32.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  EXPECT_EQ(g->version, 3u);
  EXPECT_EQ(g->alignment, 32u);
  EXPECT_EQ(g->tensors.size(), 48u);
  EXPECT_EQ(g->metadata.size(), 19u);
  EXPECT_EQ(g->data_offset % 32, 0u);
  const GgufValue* arch = g->Find("general.architecture");
  ASSERT_NE(arch, nullptr);
  EXPECT_EQ(arch->type, GgufType::kString);
  EXPECT_EQ(*arch->AsString(), "llama");
  const GgufValue* dim = g->Find("llama.embedding_length");
  ASSERT_NE(dim, nullptr);
  EXPECT_EQ(dim->type, GgufType::kUint32);
  EXPECT_EQ(dim->AsInt(), 64);
  const GgufValue* eps = g->Find("llama.attention.layer_norm_rms_epsilon");
  ASSERT_NE(eps, nullptr);
  EXPECT_EQ(eps->type, GgufType::kFloat32);
  EXPECT_EQ(static_cast<float>(*eps->AsFloat()), 1e-5f);
  EXPECT_EQ(eps->ToDisplayString(), "1e-05");
  const GgufValue* tokens = g->Find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->array_type, GgufType::kString);
  EXPECT_EQ(tokens->AsArray()->size(), 512u);
  EXPECT_EQ(tokens->ToDisplayString(3), "[\"<unk>\", \"<s>\", \"</s>\", ... 509 more] (string[512])");
  EXPECT_EQ(g->Find("tokenizer.ggml.scores")->array_type, GgufType::kFloat32);
  EXPECT_EQ(g->Find("tokenizer.ggml.token_type")->array_type, GgufType::kInt32);
  // 0xFFFFFFFF is stored as uint32 and must not turn negative.
  EXPECT_EQ(g->Find("tokenizer.ggml.padding_token_id")->AsInt(), 0xFFFFFFFF);
  EXPECT_EQ(g->KeyOffset("tokenizer.ggml.tokens"), 24u);

  const GgufTensorInfo* q = g->FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dims, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(q->nbytes, 64u * 64 * 4);
  const GgufTensorInfo* down = g->FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->dims, (std::vector<int64_t>{172, 64}));
}

TEST(GgufTest, ReserializingGivesTheSameBytes) {
  for (const char* name : {"stories260K-F32.gguf", "stories260K-Q4_1.gguf"}) {
    auto g = ReadGguf(StoriesPath(name));
    ASSERT_TRUE(g.ok()) << g.status().message();
    const Bytes original = ReadBytes(StoriesPath(name));
    EXPECT_TRUE(Reserialize(*g) == original) << name;
  }
}

TEST(GgufTest, AllValueTypesAndNestedArrays) {
  std::vector<std::pair<std::string, GgufValue>> kvs = {
      {"u8", {GgufType::kUint8, uint64_t{255}}},
      {"i8", {GgufType::kInt8, int64_t{-128}}},
      {"u16", {GgufType::kUint16, uint64_t{65535}}},
      {"i16", {GgufType::kInt16, int64_t{-32768}}},
      {"u32", {GgufType::kUint32, uint64_t{4000000000}}},
      {"i32", {GgufType::kInt32, int64_t{-2000000000}}},
      {"f32", {GgufType::kFloat32, 0.5}},
      {"bool", {GgufType::kBool, true}},
      {"str", Str("h\xC3\xA9llo")},
      {"nested", Array(GgufType::kArray, {Array(GgufType::kInt16, {GgufValue{GgufType::kInt16, int64_t{-3}}}),
                                          Array(GgufType::kString, {Str("a"), Str("b")})})},
      {"u64", {GgufType::kUint64, uint64_t{18446744073709551615u}}},
      {"i64", {GgufType::kInt64, int64_t{-9000000000000000000}}},
      {"f64", {GgufType::kFloat64, 1e300}},
      {"empty", Array(GgufType::kFloat64, {})},
  };
  const Bytes b = WriteGguf(kvs, {});
  auto g = ParseGguf(b.data(), b.size(), "types.gguf");
  ASSERT_TRUE(g.ok()) << g.status().message();
  ASSERT_EQ(g->metadata.size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {
    EXPECT_EQ(g->metadata[i].first, kvs[i].first);
    EXPECT_EQ(g->metadata[i].second.type, kvs[i].second.type);
  }
  EXPECT_EQ(g->Find("u8")->AsInt(), 255);
  EXPECT_EQ(g->Find("i8")->AsInt(), -128);
  EXPECT_EQ(g->Find("u32")->AsInt(), 4000000000);
  EXPECT_EQ(g->Find("i64")->AsInt(), -9000000000000000000);
  EXPECT_EQ(g->Find("u64")->AsInt(), std::nullopt);  // beyond int64
  EXPECT_EQ(g->Find("u64")->ToDisplayString(), "18446744073709551615");
  EXPECT_EQ(g->Find("f32")->AsFloat(), 0.5);
  EXPECT_EQ(g->Find("f64")->AsFloat(), 1e300);
  EXPECT_EQ(g->Find("bool")->ToDisplayString(), "true");
  EXPECT_EQ(*g->Find("str")->AsString(), "h\xC3\xA9llo");
  const auto* nested = g->Find("nested")->AsArray();
  ASSERT_EQ(nested->size(), 2u);
  EXPECT_EQ((*nested)[0].AsArray()->at(0).AsInt(), -3);
  EXPECT_EQ(*(*nested)[1].AsArray()->at(1).AsString(), "b");
  EXPECT_EQ(g->Find("nested")->ToDisplayString(),
            "[[-3] (int16[1]), [\"a\", \"b\"] (string[2])] (array[2])");
  EXPECT_TRUE(g->Find("empty")->AsArray()->empty());
  // Typed getters report the key, its offset and the types.
  auto wrong = g->GetInt("str");
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find(
                fmt::format("metadata key str at offset {}: expected an integer, found string",
                            g->KeyOffset("str"))),
            std::string::npos)
      << wrong.status().message();
  EXPECT_FALSE(g->GetArray("nested", GgufType::kString).ok());
  EXPECT_TRUE(g->GetArray("nested", GgufType::kArray).ok());
}

TEST(GgufTest, VersionTwoAndCustomAlignment) {
  auto g = ReadGguf(StoriesPath("stories260K-F32.gguf"));
  ASSERT_TRUE(g.ok());
  auto kvs = g->metadata;
  kvs.emplace_back("general.alignment", U32(64));
  std::vector<TensorToWrite> tensors;
  for (const auto& t : g->tensors) {
    const uint8_t* p = g->file->data() + t.offset;
    tensors.push_back({t.name, t.dims, 0, Bytes(p, p + t.nbytes)});
  }
  const Bytes b = WriteGguf(kvs, tensors, 2, 64);
  auto g2 = ParseGguf(b.data(), b.size(), "v2.gguf");
  ASSERT_TRUE(g2.ok()) << g2.status().message();
  EXPECT_EQ(g2->version, 2u);
  EXPECT_EQ(g2->alignment, 64u);
  for (const auto& t : g2->tensors) {
    EXPECT_EQ(t.offset % 64, 0u);
    const GgufTensorInfo* orig = g->FindTensor(t.name);
    EXPECT_EQ(std::memcmp(b.data() + t.offset, g->file->data() + orig->offset, t.nbytes), 0);
  }
  for (uint64_t bad : {0, 48, 3}) {
    auto kvs_bad = g->metadata;
    kvs_bad.emplace_back("general.alignment", U32(bad));
    const Bytes bb = WriteGguf(kvs_bad, {});
    const std::string msg = ParseError(bb);
    EXPECT_NE(msg.find("general.alignment"), std::string::npos) << msg;
    EXPECT_NE(msg.find("power of two"), std::string::npos) << msg;
  }
}

TEST(GgufTest, OpensStoriesF32Checkpoint) {
  auto ck = OpenGgufCheckpoint(StoriesPath("stories260K-F32.gguf"), {});
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  const ModelConfig& c = ck->config;
  EXPECT_EQ(ck->format, CheckpointFormat::kGguf);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 172);
  EXPECT_EQ(c.num_layers, 5);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 8);
  EXPECT_EQ(c.max_position_embeddings, 128);  // what llama-convert-llama2c-to-ggml wrote
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_EQ(c.rope_theta, 10000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScalingType::kNone);
  EXPECT_FALSE(c.tie_word_embeddings);  // the converter wrote output.weight
  EXPECT_EQ(c.bos_token_ids, std::vector<int32_t>{1});
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{2});
  ASSERT_EQ(ck->tensors.size(), 48u);
  std::map<std::string, const TensorView*> by_name;
  for (const auto& t : ck->tensors) by_name[t.name] = &t;
  ASSERT_EQ(by_name.size(), 48u);
  const TensorView* q = by_name.at("model.layers.3.self_attn.q_proj.weight");
  EXPECT_EQ(q->file_name, "blk.3.attn_q.weight");
  EXPECT_EQ(q->shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(q->rope_permuted_heads, 8);
  const TensorView* k = by_name.at("model.layers.3.self_attn.k_proj.weight");
  EXPECT_EQ(k->shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(k->rope_permuted_heads, 4);
  EXPECT_EQ(by_name.at("model.layers.3.self_attn.v_proj.weight")->rope_permuted_heads, 0);
  EXPECT_EQ(by_name.at("model.layers.0.mlp.down_proj.weight")->shape, (std::vector<int64_t>{64, 172}));
  EXPECT_EQ(by_name.at("model.layers.0.mlp.gate_proj.weight")->shape, (std::vector<int64_t>{172, 64}));
  EXPECT_EQ(by_name.at("model.norm.weight")->shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(by_name.at("lm_head.weight")->file_name, "output.weight");
  EXPECT_EQ(by_name.at("model.embed_tokens.weight")->shape, (std::vector<int64_t>{512, 64}));
  for (const auto& t : ck->tensors) {
    EXPECT_EQ(t.dtype, DType::kF32);
    EXPECT_EQ(t.data, ck->files[0]->data() + t.file_offset);
  }
  ASSERT_TRUE(ck->tokenizer.has_value());
  EXPECT_EQ(ck->tokenizer->tokens.size(), 512u);
  EXPECT_EQ(ck->metadata.size(), 19u);
  EXPECT_EQ(ck->metadata[0].first, "tokenizer.ggml.tokens");
}

TEST(GgufTest, Llama3RopeFreqsTensor) {
  auto g = ReadGguf(StoriesPath("stories260K-F32.gguf"));
  ASSERT_TRUE(g.ok());
  auto kvs = g->metadata;
  kvs.emplace_back("llama.rope.freq_base", GgufValue{GgufType::kFloat32, 500000.0});
  // What llama.cpp's converter computes for head_dim 8, theta 5e5, llama3 factor 8, low 1,
  // high 4, original context 8192 (wavelengths 6.3, 167, 4443, 118000).
  const float factors[] = {1.0f, 1.0f, 2.6945300102233887f, 8.0f};
  auto write = [&](const float* f) {
    std::vector<TensorToWrite> tensors;
    for (const auto& t : g->tensors) {
      const uint8_t* p = g->file->data() + t.offset;
      tensors.push_back({t.name, t.dims, 0, Bytes(p, p + t.nbytes)});
    }
    const auto* fb = reinterpret_cast<const uint8_t*>(f);
    tensors.push_back({"rope_freqs.weight", {4}, 0, Bytes(fb, fb + 16)});
    return WriteGguf(kvs, tensors);
  };
  TempDir dir;
  auto ck = OpenGgufCheckpoint(dir.Write("l3.gguf", write(factors)), {});
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_EQ(ck->config.rope_theta, 500000.0);
  EXPECT_EQ(ck->config.rope_scaling.type, RopeScalingType::kLlama3);
  EXPECT_EQ(ck->config.rope_scaling.factor, 8.0);
  EXPECT_EQ(ck->config.rope_scaling.original_max_position, 8192);
  EXPECT_EQ(ck->tensors.size(), 48u);  // rope_freqs is folded into the config
  const float wrong[] = {1.0f, 1.0f, 3.0f, 8.0f};
  ck = OpenGgufCheckpoint(dir.Write("l3bad.gguf", write(wrong)), {});
  ASSERT_FALSE(ck.ok());
  EXPECT_NE(ck.status().message().find("tensor rope_freqs.weight at offset"), std::string::npos)
      << ck.status().message();
  EXPECT_NE(ck.status().message().find("element 2 is 3"), std::string::npos) << ck.status().message();
}

// Largest |x - f32| a dtype's rounding or block quantization may introduce for one 32-block of
// reference values (llama.cpp's quantize_row_*_ref: Q8_0 d = amax/127, Q4_0 d = max/-8 with the
// top code clamped, Q4_1 d = (max-min)/15 from min).
double BlockTolerance(DType t, const float* ref, size_t n) {
  float amax = 0, lo = ref[0], hi = ref[0];
  for (size_t i = 0; i < n; ++i) {
    amax = std::max(amax, std::abs(ref[i]));
    lo = std::min(lo, ref[i]);
    hi = std::max(hi, ref[i]);
  }
  // Plus the f16 rounding of the scale (relative 2^-11) times the largest code, and of the min.
  double bound = 0;
  switch (t) {
    case DType::kQ8_0: bound = amax / 127.0 * 0.5 + amax / 2048.0; break;
    case DType::kQ4_0: bound = amax / 8.0 + amax / 2048.0; break;
    case DType::kQ4_1: bound = (hi - lo) / 15.0 * (0.5 + 15.0 / 2048) + std::abs(lo) / 2048.0; break;
    default: break;
  }
  return bound * 1.001 + 1e-7;
}

TEST(GgufTest, ConvertedTypesMatchF32WithinTheirPrecision) {
  auto ref = OpenGgufCheckpoint(StoriesPath("stories260K-F32.gguf"), {});
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  for (const char* type : {"F16", "BF16", "Q8_0", "Q4_0", "Q4_1"}) {
    auto ck = OpenGgufCheckpoint(StoriesPath(fmt::format("stories260K-{}.gguf", type)), {});
    ASSERT_TRUE(ck.ok()) << ck.status().message();
    EXPECT_EQ(ck->config.hidden_size, ref->config.hidden_size);
    ASSERT_EQ(ck->tensors.size(), ref->tensors.size());
    const DType file_type = *ParseDType(type);
    for (const TensorView& t : ck->tensors) {
      const TensorView* r = nullptr;
      for (const auto& rt : ref->tensors) {
        if (rt.name == t.name) r = &rt;
      }
      ASSERT_NE(r, nullptr) << t.name;
      ASSERT_EQ(t.shape, r->shape) << t.name;
      if (t.shape.size() == 1) {
        EXPECT_EQ(t.dtype, DType::kF32) << type << " " << t.name;  // norms stay F32
      } else if (t.name.find("down_proj") != std::string::npos && Info(file_type).quantized) {
        EXPECT_EQ(t.dtype, DType::kF16) << t.name;  // 172 columns: not a whole number of blocks
      } else if (t.name != "lm_head.weight") {
        EXPECT_EQ(t.dtype, file_type) << type << " " << t.name;
      }
      EXPECT_EQ(t.rope_permuted_heads, r->rope_permuted_heads);
      const int64_t cols = t.shape.back();
      std::vector<float> row(cols);
      const auto* ref_rows = reinterpret_cast<const float*>(r->data);
      const uint64_t row_bytes = *DTypeBytes(t.dtype, cols);
      const int64_t n_rows = static_cast<int64_t>(r->nbytes / 4) / cols;
      double worst_ratio = 0;
      for (int64_t i = 0; i < n_rows; ++i) {
        DequantizeRow(t.dtype, t.data + i * row_bytes, row.data(), cols);
        const float* want = ref_rows + i * cols;
        for (int64_t j = 0; j < cols; ++j) {
          double tol = 0;
          switch (t.dtype) {
            case DType::kF32: tol = 0; break;
            case DType::kF16: tol = std::abs(want[j]) / 2048.0 + 6e-8; break;  // 11-bit significand
            case DType::kBF16: tol = std::abs(want[j]) / 256.0; break;          // 8-bit significand
            default: tol = BlockTolerance(t.dtype, want + j / 32 * 32, 32);
          }
          const double err = std::abs(row[j] - want[j]);
          ASSERT_LE(err, tol) << type << " " << t.name << " row " << i << " col " << j;
          if (tol > 0) worst_ratio = std::max(worst_ratio, err / tol);
        }
      }
      // Rounding actually happened where it should (a copy of F32 would make this 0).
      if (t.dtype != DType::kF32) {
        EXPECT_GT(worst_ratio, 0.05) << type << " " << t.name;
      }
    }
  }
}

TEST(GgufTest, VocabOnlyFiles) {
  struct Case {
    const char* name;
    size_t tokens;
    TokenizerKind kind;
    bool add_bos;
    int32_t bos, eos;
  };
  for (const Case& c : {Case{"llama-spm", 32000, TokenizerKind::kSentencePieceBpe, true, 1, 2},
                        Case{"gpt-2", 50257, TokenizerKind::kByteLevelBpe, false, 50256, 50256},
                        Case{"phi-3", 32064, TokenizerKind::kSentencePieceBpe, true, 1, 32000}}) {
    auto g = ReadGguf(VocabPath(c.name));
    ASSERT_TRUE(g.ok()) << g.status().message();
    EXPECT_TRUE(g->tensors.empty());
    auto spec = TokenizerFromGguf(*g);
    ASSERT_TRUE(spec.ok()) << spec.status().message();
    EXPECT_EQ(spec->tokens.size(), c.tokens) << c.name;
    EXPECT_EQ(spec->kind, c.kind) << c.name;
    EXPECT_EQ(spec->add_bos, c.add_bos) << c.name;
    EXPECT_FALSE(spec->add_eos);
    EXPECT_EQ(spec->bos_id, c.bos);
    EXPECT_EQ(spec->eos_id, c.eos);
    EXPECT_EQ(spec->types.size(), c.tokens);
    if (c.kind == TokenizerKind::kByteLevelBpe) {
      EXPECT_EQ(spec->merges.size(), 50000u);
      EXPECT_EQ(spec->merges[0], "\xC4\xA0 t");  // "Ġ t"
      EXPECT_EQ(spec->pre, "gpt-2");
      EXPECT_FALSE(spec->add_space_prefix);
      EXPECT_EQ(spec->tokens[0], "!");
    } else {
      EXPECT_EQ(spec->scores.size(), c.tokens);
      EXPECT_EQ(spec->tokens[1], "<s>");
      EXPECT_EQ(spec->tokens[3], "<0x00>");
      EXPECT_EQ(spec->types[3], TokenType::kByte);
      EXPECT_EQ(spec->unk_id, 0);
      EXPECT_TRUE(spec->add_space_prefix);
      EXPECT_EQ(spec->pre, "default");
    }
  }
  auto phi = ReadGguf(VocabPath("phi-3"));
  EXPECT_EQ(TokenizerFromGguf(*phi)->pad_id, 32000);
  // No tensors: the checkpoint readers refuse them with the reason.
  auto gpt2 = OpenGgufCheckpoint(VocabPath("gpt-2"), {});
  ASSERT_FALSE(gpt2.ok());
  EXPECT_NE(gpt2.status().message().find("unsupported architecture \"gpt2\""), std::string::npos)
      << gpt2.status().message();
  auto spm = OpenGgufCheckpoint(VocabPath("llama-spm"), {});
  ASSERT_FALSE(spm.ok());
  EXPECT_NE(spm.status().message().find("missing tensor model.embed_tokens.weight (GGUF name token_embd.weight)"),
            std::string::npos)
      << spm.status().message();
}

TEST(GgufTest, TokenizerValidation) {
  auto g = ReadGguf(StoriesPath("stories260K-F32.gguf"));
  ASSERT_TRUE(g.ok());
  auto with = [&](const std::string& key, GgufValue v) {
    GgufFile copy = *g;
    bool replaced = false;
    for (auto& [k, val] : copy.metadata) {
      if (k == key) { val = v; replaced = true; }
    }
    if (!replaced) { copy.metadata.emplace_back(key, v); copy.metadata_offsets.push_back(0); }
    auto r = TokenizerFromGguf(copy);
    return r.ok() ? std::string("OK") : r.status().message();
  };
  EXPECT_NE(with("tokenizer.ggml.model", Str("bert")).find("found \"bert\""), std::string::npos);
  EXPECT_NE(with("tokenizer.ggml.bos_token_id", U32(512)).find("below the vocabulary size 512, found 512"),
            std::string::npos);
  EXPECT_NE(with("tokenizer.ggml.scores", Array(GgufType::kFloat32, {GgufValue{GgufType::kFloat32, 0.0}}))
                .find("expected 512 scores"),
            std::string::npos);
  EXPECT_NE(with("tokenizer.ggml.token_type", Array(GgufType::kInt32, {}))
                .find("expected 512 types"),
            std::string::npos);
  EXPECT_NE(with("tokenizer.ggml.tokens", Str("x")).find("expected array of string, found string"),
            std::string::npos);
  EXPECT_NE(with("tokenizer.ggml.model", Str("gpt2")).find("without tokenizer.ggml.merges"),
            std::string::npos);
  EXPECT_EQ(with("tokenizer.ggml.add_bos_token", GgufValue{GgufType::kBool, false}), "OK");
}

// ---- Malformed files: each gives a one-line error naming the object; none may crash. ----

class MalformedGgufTest : public ::testing::Test {
 protected:
  void SetUp() override { good_ = ReadBytes(StoriesPath("stories260K-F32.gguf")); }
  Bytes good_;
  TempDir dir_;
};

TEST_F(MalformedGgufTest, Truncated) {
  const auto g = ParseGguf(good_.data(), good_.size(), "f32");
  ASSERT_TRUE(g.ok());
  for (size_t n : {size_t{0}, size_t{3}, size_t{7}, size_t{20}, size_t{30}, size_t{6000},
                   size_t{11400}, size_t{11500}, g->data_offset + 100, good_.size() - 1}) {
    const Bytes b(good_.begin(), good_.begin() + n);
    const std::string msg = ParseError(b);
    EXPECT_NE(msg.find("mem.gguf: "), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    if (n >= g->data_offset) {
      EXPECT_NE(msg.find("runs past the end of the file"), std::string::npos) << msg;
      EXPECT_NE(msg.find("tensor "), std::string::npos) << msg;
    }
  }
  std::string msg = ParseError(Bytes(good_.begin(), good_.begin() + 6000));
  EXPECT_NE(msg.find("metadata key tokenizer.ggml.tokens at offset 24"), std::string::npos) << msg;
  msg = OpenError(dir_, Bytes(good_.begin(), good_.begin() + 11500));
  EXPECT_NE(msg.find("bad.gguf: header at offset 8: tensor count 48 cannot fit in the 153 bytes left"),
            std::string::npos) << msg;
}

TEST_F(MalformedGgufTest, BadMagicAndVersion) {
  Bytes b = good_;
  b[3] = 'X';
  EXPECT_NE(ParseError(b).find("bad magic"), std::string::npos);
  for (uint32_t v : {1u, 4u, 0x03000000u}) {
    b = good_;
    PutAt<uint32_t>(b, 4, v);
    const std::string msg = ParseError(b);
    EXPECT_NE(msg.find(fmt::format("unsupported GGUF version {}", v)), std::string::npos) << msg;
  }
}

TEST_F(MalformedGgufTest, HugeCountsDoNotAllocate) {
  Bytes b = good_;
  PutAt<uint64_t>(b, 16, uint64_t{1} << 60);
  EXPECT_NE(ParseError(b).find("metadata count 1152921504606846976"), std::string::npos);
  b = good_;
  PutAt<uint64_t>(b, 8, uint64_t{1} << 60);
  EXPECT_NE(ParseError(b).find("tensor count 1152921504606846976"), std::string::npos);
  // tokenizer.ggml.tokens: key length at 24, key (21 bytes), type, element type, count.
  b = good_;
  PutAt<uint64_t>(b, 24 + 8 + 21 + 4 + 4, uint64_t{1} << 60);
  std::string msg = ParseError(b);
  EXPECT_NE(msg.find("metadata key tokenizer.ggml.tokens at offset 24: array of 1152921504606846976 string"),
            std::string::npos) << msg;
  // String length past the end: the first key, then the first token string.
  b = good_;
  PutAt<uint64_t>(b, 24, uint64_t{1} << 40);
  msg = ParseError(b);
  EXPECT_NE(msg.find("metadata entry #0 at offset 24: key of length 1099511627776"), std::string::npos) << msg;
  b = good_;
  PutAt<uint64_t>(b, 24 + 8 + 21 + 4 + 4 + 8, uint64_t{0xFFFFFFFFFFFFFFF0});
  msg = ParseError(b);
  EXPECT_NE(msg.find("tokenizer.ggml.tokens at offset 24: string of length"), std::string::npos) << msg;
  // Invalid value types.
  b = good_;
  PutAt<uint32_t>(b, 24 + 8 + 21, 13);
  EXPECT_NE(ParseError(b).find("expected a value type 0..12, found 13"), std::string::npos);
  b = good_;
  PutAt<uint32_t>(b, 24 + 8 + 21 + 4, 77);
  EXPECT_NE(ParseError(b).find("array element type 0..12"), std::string::npos);
}

TEST_F(MalformedGgufTest, DeepNestingAndBadBool) {
  GgufValue v{GgufType::kUint8, uint64_t{1}};
  for (int i = 0; i < 20; ++i) v = Array(v.type, {v});
  std::string msg = ParseError(WriteGguf({{"deep", v}}, {}));
  EXPECT_NE(msg.find("metadata key deep at offset 24: arrays nested more than 8 deep"), std::string::npos) << msg;
  Bytes b = WriteGguf({{"flag", {GgufType::kBool, true}}}, {});
  b.back() = 2;
  msg = ParseError(b);
  EXPECT_NE(msg.find("metadata key flag at offset 24: expected bool 0 or 1"), std::string::npos) << msg;
}

TEST_F(MalformedGgufTest, DuplicateKeyAndTensor) {
  Bytes b = good_;
  const size_t eos = FindGgufString(b, "tokenizer.ggml.eos_token_id");
  std::memcpy(b.data() + eos + 8 + 15, "bos", 3);
  std::string msg = ParseError(b);
  EXPECT_NE(msg.find(fmt::format("metadata key tokenizer.ggml.bos_token_id at offset {}: duplicate key", eos)),
            std::string::npos) << msg;
  b = good_;
  b[FindGgufString(b, "blk.2.attn_k.weight") + 8 + 11] = 'v';
  msg = ParseError(b);
  // Reported at the second occurrence, the real attn_v that follows the renamed attn_k.
  const size_t v = FindGgufString(good_, "blk.2.attn_v.weight");
  EXPECT_NE(msg.find(fmt::format("tensor blk.2.attn_v.weight at offset {}: duplicate tensor name", v)),
            std::string::npos) << msg;
}

TEST_F(MalformedGgufTest, TensorInfoErrors) {
  const std::string name = "blk.3.attn_q.weight";
  const size_t nd = NDimsOffset(good_, name);
  const size_t dims = nd + 4, type = dims + 16, offset = type + 4;
  const size_t info = nd - 8 - name.size();
  const std::string where = fmt::format("tensor {} at offset {}: ", name, info);
  auto expect = [&](Bytes b, const std::string& what) {
    const std::string msg = ParseError(b);
    EXPECT_NE(msg.find(where + what), std::string::npos) << msg;
  };
  Bytes b = good_;
  PutAt<uint32_t>(b, nd, 5);
  expect(b, "expected 1..4 dims, found 5");
  b = good_;
  PutAt<uint32_t>(b, nd, 0);
  expect(b, "expected 1..4 dims, found 0");
  b = good_;
  PutAt<uint64_t>(b, dims + 8, 0);
  expect(b, "dimension 1 must be positive");
  b = good_;
  PutAt<uint64_t>(b, dims, uint64_t{1} << 40);
  PutAt<uint64_t>(b, dims + 8, uint64_t{1} << 40);
  expect(b, "element count overflows at dimension 1");
  b = good_;
  PutAt<uint64_t>(b, dims, uint64_t{1} << 63);
  expect(b, "dimension 0 must be positive and fit in int64");
  b = good_;
  PutAt<uint32_t>(b, type, 12);
  expect(b, "unsupported ggml type id 12 (Q4_K)");
  b = good_;
  PutAt<uint32_t>(b, type, 1000);
  expect(b, "unsupported ggml type id 1000 (unknown)");
  b = good_;
  PutAt<uint32_t>(b, type, 8);  // Q8_0 over rows of 64: fine for parsing, but rows of 63 are not
  PutAt<uint64_t>(b, dims, 63);
  expect(b, "row length 63 is not a multiple of the Q8_0 block size 32");
  uint64_t rel = 0;
  std::memcpy(&rel, good_.data() + offset, 8);
  b = good_;
  PutAt<uint64_t>(b, offset, rel + 4);
  expect(b, fmt::format("data offset {} is not a multiple of the alignment 32", rel + 4));
  b = good_;
  PutAt<uint64_t>(b, offset, uint64_t{1} << 40);
  expect(b, "data at relative offset 1099511627776 (16384 bytes) runs past the end of the file");
  b = good_;
  PutAt<uint64_t>(b, offset, 0xFFFFFFFFFFFFFFE0);  // offset + data_offset overflows
  expect(b, "data at relative offset 18446744073709551584 (16384 bytes) runs past the end");
  b = good_;
  PutAt<uint64_t>(b, offset, rel - 32);  // overlaps the tensor stored before it
  const std::string msg = ParseError(b);
  EXPECT_NE(msg.find("overlaps tensor"), std::string::npos) << msg;
  EXPECT_NE(msg.find(name), std::string::npos) << msg;
}

TEST_F(MalformedGgufTest, CheckpointLevelErrors) {
  auto g = ReadGguf(StoriesPath("stories260K-F32.gguf"));
  ASSERT_TRUE(g.ok());
  // Unknown architecture (same length, so offsets stay valid).
  Bytes b = good_;
  const size_t arch = FindGgufString(b, "general.architecture");
  b[arch + 8 + 20 + 4 + 8 + 4] = 'x';  // "llama" -> "llamx"
  std::string msg = OpenError(dir_, b);
  EXPECT_NE(msg.find("general.architecture at offset"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unsupported architecture \"llamx\""), std::string::npos) << msg;
  // A renamed tensor is one rtnq does not know.
  b = good_;
  const size_t q = FindGgufString(b, "blk.3.attn_q.weight");
  b[q + 8 + 11] = 'x';
  msg = OpenError(dir_, b);
  EXPECT_NE(msg.find("tensor blk.3.attn_x.weight at offset"), std::string::npos) << msg;
  // A missing tensor (file rebuilt without it).
  msg = OpenError(dir_, Reserialize(*g, "blk.3.attn_q.weight"));
  EXPECT_NE(msg.find("missing tensor model.layers.3.self_attn.q_proj.weight (GGUF name blk.3.attn_q.weight)"),
            std::string::npos) << msg;
  // A layer beyond block_count.
  b = good_;
  b[q + 8 + 4] = '7';
  msg = OpenError(dir_, b);
  EXPECT_NE(msg.find("layer 7 is out of range (block_count 5)"), std::string::npos) << msg;
  // A config key of the wrong type.
  auto kvs = g->metadata;
  for (auto& [k, v] : kvs) {
    if (k == "llama.embedding_length") v = Str("64");
  }
  GgufFile copy = *g;
  copy.metadata = kvs;
  std::vector<TensorToWrite> none;
  msg = OpenError(dir_, WriteGguf(kvs, none));
  EXPECT_NE(msg.find("metadata key llama.embedding_length at offset 11052: expected an integer, found string"),
            std::string::npos) << msg;
  // Config inconsistent with itself.
  for (auto& [k, v] : kvs) {
    if (k == "llama.embedding_length") v = U32(64);
    if (k == "llama.attention.head_count_kv") v = U32(3);
  }
  msg = OpenError(dir_, WriteGguf(kvs, none));
  EXPECT_NE(msg.find("not a multiple of num_key_value_heads 3"), std::string::npos) << msg;
}

}  // namespace
}  // namespace rtnq
