// Reading quantized HF checkpoints (compressed-tensors pack-quantized and GPTQ) into canonical RTN
// views. The checkpoints are packed here by hand from the documented layouts
// (docs/formats/compressed-tensors.md, gptq.md) from known integer levels and exact scales, so the
// reader is checked against the layout itself, not against rtnq's exporters.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>

#include "arch/tensor_role.h"
#include "base/half.h"
#include "io/checkpoint.h"
#include "io/hf_config.h"
#include "io/hf_test_util.h"
#include "io/safetensors_writer.h"
#include "io/synthetic_model.h"

namespace rtnq {
namespace {

using testing::ScratchDir;
using Json = nlohmann::ordered_json;

struct Scheme {
  std::string method;  // "compressed-tensors" or "gptq"
  int bits = 4;
  int group = 32;      // 0: one group per row
  DType scale_dtype = DType::kBF16;
};

// Level of element (n, k) of the tensor with index `t`: covers the whole signed range.
int Level(int t, int64_t n, int64_t k, int bits) {
  const int range = 1 << bits;
  return static_cast<int>((n * 7 + k * 3 + t * 5 + (n * k) % 11) % range) - range / 2;
}

// Scale of group g of row n: (1 + (n + g + t) % 5) / 128, exact in bf16, f16 and f32.
float ScaleValue(int t, int64_t n, int64_t g) { return static_cast<float>(1 + (n + g + t) % 5) / 128.0f; }

void AppendScale(DType dtype, float s, std::string& out) {
  if (dtype == DType::kF32) {
    out.append(reinterpret_cast<const char*>(&s), 4);
    return;
  }
  const uint16_t h = dtype == DType::kF16 ? F32ToF16(s) : F32ToBf16(s);
  out.append(reinterpret_cast<const char*>(&h), 2);
}

template <typename T>
void AppendPod(T v, std::string& out) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// An HF directory with every block linear layer quantized in `scheme`; other tensors F32.
class QuantizedModelBuilder {
 public:
  explicit QuantizedModelBuilder(const Scheme& scheme) : scheme_(scheme) {
    config_ = SyntheticConfig("tiny-llama3", 1).value();
    int t = 0;
    for (const TensorId& id : RequiredTensors(config_)) {
      const std::string name = CanonicalName(id);
      const std::vector<int64_t> shape = ExpectedShape(config_, id);
      const TensorRoleInfo& role = RoleInfo(id.role);
      if (role.is_matrix && role.per_layer) {
        quantized_.push_back(name);
        index_[name] = t;
        if (scheme.method == "gptq") AddGptq(name, shape, t);
        else AddCompressedTensors(name, shape, t);
      } else {
        std::string bytes;
        int64_t elems = 1;
        for (int64_t d : shape) elems *= d;
        for (int64_t i = 0; i < elems; ++i) AppendPod(static_cast<float>(std::sin(0.1 * i + t)) * 0.05f, bytes);
        Add(name, DType::kF32, shape, std::move(bytes));
      }
      ++t;
    }
    qconfig_ = scheme.method == "gptq" ? GptqConfig() : CompressedTensorsConfig();
  }

  const ModelConfig& config() const { return config_; }
  const std::vector<std::string>& quantized() const { return quantized_; }
  int index(const std::string& name) const { return index_.at(name); }
  Json& qconfig() { return qconfig_; }
  // Tensor name -> (spec, bytes), editable before Write() to build malformed checkpoints.
  std::map<std::string, std::pair<TensorSpec, std::string>>& tensors() { return tensors_; }

  std::string Write(const ScratchDir& dir) const {
    Json config = HfConfigJson(config_, "float32");
    if (!qconfig_.is_null()) config["quantization_config"] = qconfig_;
    testing::WriteAll(dir / "config.json", config.dump(2));
    std::vector<TensorSpec> specs;
    std::vector<std::string> data;
    for (const auto& [name, t] : tensors_) {
      specs.push_back(t.first);
      data.push_back(t.second);
    }
    testing::WriteAll(dir / "model.safetensors", SerializeSafetensors(specs, data).value());
    return dir.path();
  }

 private:
  void Add(const std::string& name, DType dtype, std::vector<int64_t> shape, std::string bytes) {
    tensors_[name] = {TensorSpec{name, dtype, std::move(shape)}, std::move(bytes)};
  }

  int64_t Groups(int64_t k) const { return scheme_.group == 0 ? 1 : k / scheme_.group; }

  void AddCompressedTensors(const std::string& name, const std::vector<int64_t>& shape, int t) {
    const std::string module = name.substr(0, name.size() - 7);
    const int64_t n = shape[0], k = shape[1], b = scheme_.bits, pf = 32 / b;
    const int64_t words = (k * b + 31) / 32, groups = Groups(k);
    std::string packed, scales, nk;
    for (int64_t row = 0; row < n; ++row) {
      for (int64_t c = 0; c < words; ++c) {
        uint32_t word = 0;
        for (int64_t i = 0; i < pf && c * pf + i < k; ++i) {
          const uint32_t code = static_cast<uint32_t>(Level(t, row, c * pf + i, b) + (1 << (b - 1)));
          word |= code << (b * i);
        }
        AppendPod(word, packed);
      }
      for (int64_t g = 0; g < groups; ++g) AppendScale(scheme_.scale_dtype, ScaleValue(t, row, g), scales);
    }
    AppendPod<int64_t>(n, nk);
    AppendPod<int64_t>(k, nk);
    Add(module + ".weight_packed", DType::kI32, {n, words}, packed);
    Add(module + ".weight_scale", scheme_.scale_dtype, {n, groups}, scales);
    Add(module + ".weight_shape", DType::kI64, {2}, nk);
  }

  void AddGptq(const std::string& name, const std::vector<int64_t>& shape, int t) {
    const std::string module = name.substr(0, name.size() - 7);
    const int64_t n = shape[0], k = shape[1], b = scheme_.bits, pf = 32 / b, groups = Groups(k);
    std::string qweight, qzeros, scales, g_idx;
    for (int64_t r = 0; r < k / pf; ++r) {
      for (int64_t col = 0; col < n; ++col) {
        uint32_t word = 0;
        for (int64_t i = 0; i < pf; ++i) {
          word |= static_cast<uint32_t>(Level(t, col, r * pf + i, b) + (1 << (b - 1))) << (b * i);
        }
        AppendPod(word, qweight);
      }
    }
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t c = 0; c < n / pf; ++c) AppendPod<uint32_t>(b == 4 ? 0x77777777u : 0x7f7f7f7fu, qzeros);
      for (int64_t col = 0; col < n; ++col) AppendScale(DType::kF16, ScaleValue(t, col, g), scales);
    }
    for (int64_t kk = 0; kk < k; ++kk) AppendPod<int32_t>(static_cast<int32_t>(kk / (k / groups)), g_idx);
    Add(module + ".qweight", DType::kI32, {k / pf, n}, qweight);
    Add(module + ".qzeros", DType::kI32, {groups, n / pf}, qzeros);
    Add(module + ".scales", DType::kF16, {groups, n}, scales);
    Add(module + ".g_idx", DType::kI32, {k}, g_idx);
  }

  Json CompressedTensorsConfig() const {
    Json w;
    w["num_bits"] = scheme_.bits;
    w["type"] = "int";
    w["symmetric"] = true;
    w["strategy"] = scheme_.group == 0 ? "channel" : "group";
    w["group_size"] = scheme_.group == 0 ? Json(nullptr) : Json(scheme_.group);
    w["dynamic"] = false;
    w["actorder"] = nullptr;
    Json g;
    g["targets"] = {"Linear"};
    g["weights"] = w;
    g["input_activations"] = nullptr;
    g["format"] = "pack-quantized";
    Json q;
    q["quant_method"] = "compressed-tensors";
    q["format"] = "pack-quantized";
    q["quantization_status"] = "compressed";
    q["config_groups"] = {{"group_0", g}};
    q["ignore"] = {"lm_head"};
    return q;
  }

  Json GptqConfig() const {
    Json q;
    q["quant_method"] = "gptq";
    q["bits"] = scheme_.bits;
    q["group_size"] = scheme_.group == 0 ? -1 : scheme_.group;
    q["desc_act"] = false;
    q["sym"] = true;
    q["checkpoint_format"] = "gptq";
    return q;
  }

  Scheme scheme_;
  ModelConfig config_;
  std::vector<std::string> quantized_;
  std::map<std::string, int> index_;
  std::map<std::string, std::pair<TensorSpec, std::string>> tensors_;
  Json qconfig_;
};

std::string ExpectedName(const Scheme& s) {
  RtnFormat f;
  f.scheme = s.bits == 4 ? RtnScheme::kInt4 : RtnScheme::kInt8;
  f.group = s.group;
  f.scale_dtype = s.method == "gptq" ? DType::kF16 : s.scale_dtype;
  return f.Name();
}

void PrintTo(const Scheme& s, std::ostream* os) { *os << s.method << " int" << s.bits << " g" << s.group; }

class QuantizedReadTest : public ::testing::TestWithParam<Scheme> {};

TEST_P(QuantizedReadTest, ViewsDecodeToTheLevelsTimesScales) {
  const Scheme scheme = GetParam();
  QuantizedModelBuilder builder(scheme);
  ScratchDir dir;
  auto ck = OpenCheckpoint(builder.Write(dir));
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  // One view per quantized module; no component tensors left over.
  EXPECT_EQ(ck->tensors.size(), RequiredTensors(builder.config()).size());
  for (const std::string& name : builder.quantized()) {
    const TensorView* v = ck->Find(name);
    ASSERT_NE(v, nullptr) << name;
    ASSERT_TRUE(v->rtn.has_value()) << name;
    EXPECT_EQ(v->rtn->Name(), ExpectedName(scheme)) << name;
    EXPECT_EQ(v->PrecisionName(), ExpectedName(scheme));
    const int64_t n = v->shape[0], k = v->shape[1];
    EXPECT_EQ(v->shape, ExpectedShape(builder.config(), *ParseCanonicalName(name)));
    EXPECT_EQ(v->scales_nbytes, v->rtn->ScaleBytes(n, k));
    EXPECT_EQ(v->StoredBytes(), v->nbytes + v->scales_nbytes);
    const uint64_t scale_row = v->rtn->ScaleBytes(1, k);
    const int t = builder.index(name);
    const int64_t g_len = scheme.group == 0 ? k : scheme.group;
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n; ++r) {
      RtnDequantizeRow(*v->rtn, v->data + r * v->code_row_bytes, v->scales + r * scale_row, k, row.data());
      for (int64_t kk = 0; kk < k; ++kk) {
        const float want = static_cast<float>(Level(t, r, kk, scheme.bits)) * ScaleValue(t, r, kk / g_len);
        ASSERT_EQ(row[kk], want) << name << " row " << r << " col " << kk;
      }
    }
  }
  // Kept tensors stay plain floats.
  const TensorView* embed = ck->Find("model.embed_tokens.weight");
  ASSERT_NE(embed, nullptr);
  EXPECT_FALSE(embed->rtn.has_value());
  EXPECT_EQ(embed->dtype, DType::kF32);
  // A copy of the checkpoint keeps the owned (GPTQ) buffers alive.
  Checkpoint copy = *ck;
  const TensorView* q = copy.Find(builder.quantized()[0]);
  ck = Err("dropped");
  std::vector<float> row(static_cast<size_t>(q->shape[1]));
  RtnDequantizeRow(*q->rtn, q->data, q->scales, q->shape[1], row.data());
  EXPECT_EQ(row[1], static_cast<float>(Level(builder.index(builder.quantized()[0]), 0, 1, scheme.bits)) *
                        ScaleValue(builder.index(builder.quantized()[0]), 0, 0));
}

INSTANTIATE_TEST_SUITE_P(
    Formats, QuantizedReadTest,
    ::testing::Values(Scheme{"compressed-tensors", 4, 32, DType::kBF16}, Scheme{"compressed-tensors", 8, 32, DType::kF16},
                      Scheme{"compressed-tensors", 4, 0, DType::kF32}, Scheme{"compressed-tensors", 8, 0, DType::kBF16},
                      Scheme{"gptq", 4, 32}, Scheme{"gptq", 8, 32}, Scheme{"gptq", 4, 0}, Scheme{"gptq", 8, 0}),
    [](const ::testing::TestParamInfo<Scheme>& info) {
      const Scheme& s = info.param;
      return fmt::format("{}Int{}{}", s.method == "gptq" ? "Gptq" : "Ct", s.bits,
                         s.group == 0 ? std::string("Row") : fmt::format("G{}", s.group));
    });

// Opens a builder's checkpoint after `edit` and expects a one-line error containing every `parts`.
void ExpectError(QuantizedModelBuilder& builder, const std::vector<std::string>& parts) {
  ScratchDir dir;
  auto ck = OpenCheckpoint(builder.Write(dir));
  ASSERT_FALSE(ck.ok());
  const std::string message = ck.status().message();
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const auto& p : parts) EXPECT_CONTAINS(message, p);
}

const char kQ[] = "model.layers.0.self_attn.q_proj";

TEST(QuantizedReadErrors, CompressedTensorsMissingScale) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  b.tensors().erase(std::string(kQ) + ".weight_scale");
  ExpectError(b, {std::string(kQ) + ".weight_packed", "weight_scale"});
}

TEST(QuantizedReadErrors, CompressedTensorsMissingShape) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  b.tensors().erase(std::string(kQ) + ".weight_shape");
  ExpectError(b, {std::string(kQ) + ".weight_packed", "weight_shape"});
}

TEST(QuantizedReadErrors, CompressedTensorsWrongWeightShape) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  std::string& nk = b.tensors()[std::string(kQ) + ".weight_shape"].second;
  const int64_t k = 128;  // the model's K is 64
  std::memcpy(nk.data() + 8, &k, 8);
  ExpectError(b, {std::string(kQ) + ".weight_shape", "[64, 128]", "[64, 64]"});
}

TEST(QuantizedReadErrors, CompressedTensorsScaleColumnsNotDividingK) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  auto& scale = b.tensors()[std::string(kQ) + ".weight_scale"];
  scale.first.shape = {64, 3};  // K = 64
  scale.second.resize(64 * 3 * 2);
  ExpectError(b, {std::string(kQ) + ".weight_scale", "[64, 3]"});
}

TEST(QuantizedReadErrors, CompressedTensorsScaleColumnsDisagreeWithConfig) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  auto& scale = b.tensors()[std::string(kQ) + ".weight_scale"];
  scale.first.shape = {64, 4};  // group 16, config says 32
  scale.second.resize(64 * 4 * 2);
  ExpectError(b, {std::string(kQ) + ".weight_scale", "group_size 32"});
}

TEST(QuantizedReadErrors, CompressedTensorsZeroPoints) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  const std::string name = std::string(kQ) + ".weight_zero_point";
  b.tensors()[name] = {TensorSpec{name, DType::kI32, {64, 1}}, std::string(64 * 4, '\0')};
  ExpectError(b, {name, "asymmetric"});
}

TEST(QuantizedReadErrors, CompressedTensorsWrongWordCount) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  b.qconfig()["config_groups"]["group_0"]["weights"]["num_bits"] = 8;  // words hold 4-bit codes
  ExpectError(b, {".weight_packed", "8 bits"});
}

TEST(QuantizedReadErrors, CompressedTensorsAsymmetricConfig) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  b.qconfig()["config_groups"]["group_0"]["weights"]["symmetric"] = false;
  ExpectError(b, {"group_0.weights", "asymmetric"});
}

TEST(QuantizedReadErrors, CompressedTensorsOtherStrategyAndFormat) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  b.qconfig()["config_groups"]["group_0"]["weights"]["strategy"] = "tensor";
  ExpectError(b, {"strategy 'tensor'"});
  QuantizedModelBuilder c({"compressed-tensors", 4, 32});
  c.qconfig()["format"] = "naive-quantized";
  c.qconfig()["config_groups"]["group_0"].erase("format");
  ExpectError(c, {"format 'naive-quantized'"});
}

TEST(QuantizedReadErrors, UnknownQuantMethod) {
  QuantizedModelBuilder b({"compressed-tensors", 4, 32});
  b.qconfig()["quant_method"] = "awq";
  ExpectError(b, {"quant_method 'awq'", "config.json"});
}

TEST(QuantizedReadErrors, GptqAsymmetricZeros) {
  QuantizedModelBuilder b({"gptq", 4, 32});
  std::string& zeros = b.tensors()[std::string(kQ) + ".qzeros"].second;
  zeros[5] = 0x12;
  ExpectError(b, {std::string(kQ) + ".qzeros", "asymmetric GPTQ is not supported"});
  QuantizedModelBuilder c({"gptq", 4, 32});
  c.qconfig()["sym"] = false;
  ExpectError(c, {"asymmetric GPTQ is not supported"});
}

TEST(QuantizedReadErrors, GptqActOrder) {
  QuantizedModelBuilder b({"gptq", 4, 32});
  std::string& g_idx = b.tensors()[std::string(kQ) + ".g_idx"].second;
  const int32_t g = 1;
  std::memcpy(g_idx.data(), &g, 4);  // g_idx[0] = 1
  ExpectError(b, {std::string(kQ) + ".g_idx", "act-order"});
  QuantizedModelBuilder c({"gptq", 4, 32});
  c.qconfig()["desc_act"] = true;
  ExpectError(c, {"act-order"});
}

TEST(QuantizedReadErrors, GptqShapesAndBits) {
  QuantizedModelBuilder b({"gptq", 4, 32});
  b.tensors().erase(std::string(kQ) + ".scales");
  ExpectError(b, {std::string(kQ) + ".qweight", ".scales"});
  QuantizedModelBuilder c({"gptq", 4, 32});
  c.qconfig()["bits"] = 8;  // qweight rows hold 4-bit codes
  ExpectError(c, {".qweight", "8 bits"});
  QuantizedModelBuilder d({"gptq", 4, 32});
  d.qconfig()["group_size"] = 64;
  ExpectError(d, {".scales", "group_size is 64"});
}

TEST(QuantizedReadErrors, GptqDynamicOverridesBits) {
  // A `dynamic` override gives layer 0's q/k/v 8 bits; the file still holds 4-bit codes there.
  QuantizedModelBuilder b({"gptq", 4, 32});
  b.qconfig()["dynamic"] = {{"+:model\\.layers\\.0\\.self_attn\\.(q|k|v)_proj$", {{"bits", 8}}}};
  ExpectError(b, {"self_attn.", "8 bits"});
  // Without bits in the config they are inferred from the rows (32 * rows / K).
  QuantizedModelBuilder c({"gptq", 4, 32});
  c.qconfig().erase("bits");
  ScratchDir dir;
  auto ck = OpenCheckpoint(c.Write(dir));
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  EXPECT_EQ(ck->Find(std::string(kQ) + ".weight")->PrecisionName(), "int4:g32:f16");
}

}  // namespace
}  // namespace rtnq
