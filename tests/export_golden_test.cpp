// rtnq's exports against the formats' own libraries (tests/golden/export_*.json, made by
// scripts/reference/export_ref.py). Each test re-runs the same `rtnq synth` / `rtnq quantize`
// commands through the binary, decodes the output here, and compares:
//   compressed-tensors  per-tensor hash of the weights decoded with RtnDequantizeRow (rounded once
//                       to the scales' dtype) == compressed-tensors' ModelCompressor.decompress;
//                       rtnq loading the export gives HF transformers' logits
//   GPTQ                per-tensor hash of the weights decoded from qweight/qzeros/scales/g_idx
//                       == the script's numpy GPTQ decoder
//   GGUF                Q8_0/Q4_0 tensor bytes == gguf-py's gguf.quants.quantize; `rtnq perplexity`
//                       on the export within 0.5% of llama.cpp's
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "base/file.h"
#include "base/half.h"
#include "format/rtn_format.h"
#include "io/checkpoint.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

std::string Fnv1a64(const uint8_t* data, size_t size) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

template <typename T>
std::string Fnv1a64(const std::vector<T>& v) {
  return Fnv1a64(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(T));
}

nlohmann::json Golden(const std::string& name) {
  std::ifstream f(testing::SourceDir() + "/tests/golden/" + name);
  EXPECT_TRUE(f.good()) << name;
  return f.good() ? nlohmann::json::parse(f) : nlohmann::json::object();
}

std::string Quote(const std::string& s) { return fmt::format("'{}'", s); }

// Runs rtnq with `args`; fails the test with its stderr when it fails.
::testing::AssertionResult Rtnq(const std::string& args, std::string* out = nullptr) {
  const auto r = testing::RunCommand(testing::RtnqBinary() + " " + args);
  if (out) *out = r.out;
  if (r.exit_code != 0) return ::testing::AssertionFailure() << "rtnq " << args << ": " << r.err;
  return ::testing::AssertionSuccess();
}

// `rtnq synth` of the golden's model into dir/synth, checked against the golden's sha256.
::testing::AssertionResult Synth(const nlohmann::json& golden, const std::string& dir) {
  const auto& s = golden["synth"];
  const std::string out = dir + "/synth";
  auto r = Rtnq(fmt::format("synth --shape {} --seed {} --dtype {} -o {}", s["shape"].get<std::string>(),
                            s["seed"].get<int>(), s["dtype"].get<std::string>(), Quote(out)));
  if (!r) return r;
  const auto sha = testing::RunCommand("sha256sum " + Quote(out + "/model.safetensors"));
  if (sha.out.substr(0, 64) != golden["model_safetensors_sha256"].get<std::string>()) {
    return ::testing::AssertionFailure()
           << "golden is stale: rtnq synth now writes different weights; run scripts/reference/export_ref.py";
  }
  return ::testing::AssertionSuccess();
}

std::string QuantizeArgs(const nlohmann::json& c) {
  std::string args;
  for (const auto& a : c["rtnq_args"]) args += fmt::format(" {}", Quote(a.get<std::string>()));
  return args;
}

std::map<std::string, const SafetensorsTensor*> ByName(const SafetensorsFile& f) {
  std::map<std::string, const SafetensorsTensor*> m;
  for (const auto& t : f.header.tensors) m[t.name] = &t;
  return m;
}

// --- compressed-tensors ------------------------------------------------------------------------

TEST(ExportGolden, CompressedTensorsDecodesLikeTheLibrary) {
  const nlohmann::json golden = Golden("export_compressed_tensors.json");
  ASSERT_TRUE(golden.contains("cases"));
  testing::TempDir dir;
  ASSERT_TRUE(Synth(golden, dir.path()));
  int checked = 0;
  for (const auto& [label, c] : golden["cases"].items()) {
    SCOPED_TRACE(label);
    const std::string out = dir.path() + "/ct_" + label;
    ASSERT_TRUE(Rtnq("quantize " + Quote(dir.path() + "/synth") + QuantizeArgs(c) +
                     " --format compressed-tensors -o " + Quote(out)));
    auto st = OpenSafetensors(out + "/model.safetensors");
    ASSERT_TRUE(st.ok()) << st.status().message();
    const auto tensors = ByName(*st);
    size_t packed_count = 0;
    for (const auto& [name, t] : tensors) packed_count += name.ends_with(".weight_packed");
    ASSERT_EQ(packed_count, c["tensors"].size());
    for (const auto& t : c["tensors"]) {
      const std::string module = t["module"];
      SCOPED_TRACE(module);
      const auto* packed = tensors.at(module + ".weight_packed");
      const auto* scale = tensors.at(module + ".weight_scale");
      const auto* shape = tensors.at(module + ".weight_shape");
      ASSERT_EQ(packed->dtype, DType::kI32);
      ASSERT_EQ(shape->dtype, DType::kI64);
      int64_t nk[2];
      std::memcpy(nk, st->TensorData(*shape), sizeof(nk));
      const int64_t n = nk[0], k = nk[1];
      EXPECT_EQ(std::vector<int64_t>({n, k}), t["shape"].get<std::vector<int64_t>>());
      // Bits from the packed width (rows padded to 32-bit words), group from the scales' width.
      const int64_t words = packed->shape[1];
      const int bits = words == (k * 8 + 31) / 32 ? 8 : words == (k * 4 + 31) / 32 ? 4 : 0;
      ASSERT_NE(bits, 0) << words << " words per row for K=" << k;
      EXPECT_EQ(bits, t["num_bits"].get<int>()) << "the library matched another config group";
      const int64_t groups = scale->shape[1];
      if (t["group_size"].is_null()) {
        EXPECT_EQ(groups, 1);
      } else {
        EXPECT_EQ(k / groups, t["group_size"].get<int64_t>());
      }
      const RtnFormat f{bits == 8 ? RtnScheme::kInt8 : RtnScheme::kInt4, groups == 1 ? 0 : static_cast<int32_t>(k / groups),
                        scale->dtype};
      const bool bf16 = scale->dtype == DType::kBF16;
      ASSERT_TRUE(bf16 || scale->dtype == DType::kF16);
      EXPECT_EQ(t["dtype"].get<std::string>(), bf16 ? "bfloat16" : "float16");
      const size_t scale_row_bytes = static_cast<size_t>(groups) * 2;
      std::vector<float> row(k);
      std::vector<uint16_t> decoded;
      for (int64_t r = 0; r < n; ++r) {
        RtnDequantizeRow(f, st->TensorData(*packed) + r * words * 4, st->TensorData(*scale) + r * scale_row_bytes,
                         k, row.data());
        for (float w : row) decoded.push_back(bf16 ? F32ToBf16(w) : F32ToF16(w));
      }
      EXPECT_EQ(Fnv1a64(decoded), t["fnv1a64"].get<std::string>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 60);
}

// Largest |rtnq - reference| / max |reference| over each prompt's logits.
std::vector<double> LogitErrors(Model& model, const nlohmann::json& prompts) {
  std::vector<double> errors;
  for (const auto& prompt : prompts) {
    const auto ids = prompt["token_ids"].get<std::vector<int32_t>>();
    const int vocab = static_cast<int>(prompt["logits"][0].size());
    model.ClearSequence(0);
    std::vector<BatchItem> batch;
    for (int32_t id : ids) batch.push_back({0, id, true});
    std::vector<float> logits(ids.size() * vocab);
    EXPECT_TRUE(model.Forward(batch, logits.data()).ok());
    double max_err = 0, max_ref = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      for (int v = 0; v < vocab; ++v) {
        const double ref = prompt["logits"][i][v].get<double>();
        max_ref = std::max(max_ref, std::fabs(ref));
        max_err = std::max(max_err, std::fabs(logits[i * vocab + v] - ref));
      }
    }
    errors.push_back(max_err / max_ref);
  }
  return errors;
}

// rtnq reading its own export (hf_checkpoint's compressed-tensors reader; level * scale in f32)
// against HF transformers' LlamaForCausalLM in f32 on (a) the same f32 products of the codes
// compressed-tensors unpacks: same arithmetic, tolerance as hf_logits_golden_test's f32 cases;
// (b) the weights as compressed-tensors decompresses them (products rounded to 16 bit): on this
// synthetic model that rounding alone moves the logits by up to 1.6e-2 of their range.
TEST(ExportGolden, CompressedTensorsLogitsMatchTransformers) {
  const nlohmann::json golden = Golden("export_compressed_tensors.json");
  ASSERT_TRUE(golden.contains("cases"));
  testing::TempDir dir;
  ASSERT_TRUE(Synth(golden, dir.path()));
  for (const auto& [label, c] : golden["cases"].items()) {
    SCOPED_TRACE(label);
    const auto& hf = c["hf_transformers"];
    ASSERT_TRUE(hf["loads"].get<bool>()) << hf.value("error", "");
    EXPECT_TRUE(hf["weights_identical_to_decompress"].get<bool>());
    const std::string out = dir.path() + "/ct_" + label;
    ASSERT_TRUE(Rtnq("quantize " + Quote(dir.path() + "/synth") + QuantizeArgs(c) +
                     " --format compressed-tensors -o " + Quote(out)));
    auto ck = OpenCheckpoint(out);
    ASSERT_TRUE(ck.ok()) << ck.status().message();
    auto model = Model::Load(*ck, {});
    ASSERT_TRUE(model.ok()) << model.status().message();
    for (double e : LogitErrors(**model, hf["prompts_f32_products"])) EXPECT_LE(e, 1e-4);
    for (double e : LogitErrors(**model, hf["prompts"])) EXPECT_LE(e, 3e-2);
  }
}

// --- GPTQ --------------------------------------------------------------------------------------

uint32_t Word(const SafetensorsFile& f, const SafetensorsTensor& t, int64_t i) {
  uint32_t w;
  std::memcpy(&w, f.TensorData(t) + 4 * i, 4);
  return w;
}

// GPTQ convention: qweight [K/pf, N] packed along K, qzeros [K/G, N/pf] packed along N and stored
// minus one, scales f16 [K/G, N], g_idx [K]; w[n][k] = (q - (z + 1)) * s, one f32 rounding.
TEST(ExportGolden, GptqDecodesLikeTheReferenceDecoder) {
  const nlohmann::json golden = Golden("export_gptq.json");
  ASSERT_TRUE(golden.contains("cases"));
  testing::TempDir dir;
  ASSERT_TRUE(Synth(golden, dir.path()));
  int checked = 0;
  for (const auto& [label, c] : golden["cases"].items()) {
    SCOPED_TRACE(label);
    const std::string out = dir.path() + "/gptq_" + label;
    ASSERT_TRUE(Rtnq("quantize " + Quote(dir.path() + "/synth") + QuantizeArgs(c) + " --format gptq -o " + Quote(out)));
    auto st = OpenSafetensors(out + "/model.safetensors");
    ASSERT_TRUE(st.ok()) << st.status().message();
    const auto tensors = ByName(*st);
    for (const auto& t : c["tensors"]) {
      const std::string module = t["module"];
      SCOPED_TRACE(module);
      const auto& qweight = *tensors.at(module + ".qweight");
      const auto& qzeros = *tensors.at(module + ".qzeros");
      const auto& scales = *tensors.at(module + ".scales");
      const auto& g_idx = *tensors.at(module + ".g_idx");
      ASSERT_EQ(scales.dtype, DType::kF16);
      const int64_t k = g_idx.shape[0], n = qweight.shape[1];
      const int64_t pf = k / qweight.shape[0];
      const int bits = static_cast<int>(32 / pf);
      ASSERT_TRUE(bits == 4 || bits == 8) << bits;
      EXPECT_EQ(bits, t["bits"].get<int>());
      EXPECT_EQ(std::vector<int64_t>({n, k}), t["shape"].get<std::vector<int64_t>>());
      const int64_t groups = scales.shape[0];
      EXPECT_EQ(groups == 1 ? -1 : k / groups, t["group_size"].get<int64_t>());
      const uint32_t mask = (1u << bits) - 1;
      std::vector<float> w(static_cast<size_t>(n * k));
      for (int64_t kk = 0; kk < k; ++kk) {
        const int32_t g = static_cast<int32_t>(Word(*st, g_idx, kk));
        ASSERT_TRUE(g >= 0 && g < groups) << "g_idx[" << kk << "] = " << g;
        for (int64_t col = 0; col < n; ++col) {
          const uint32_t q = (Word(*st, qweight, (kk / pf) * n + col) >> (bits * (kk % pf))) & mask;
          const uint32_t z = ((Word(*st, qzeros, g * (n / pf) + col / pf) >> (bits * (col % pf))) & mask) + 1;
          uint16_t s;
          std::memcpy(&s, st->TensorData(scales) + 2 * (g * n + col), 2);
          w[col * k + kk] = static_cast<float>(static_cast<int>(q) - static_cast<int>(z)) * F16ToF32(s);
        }
      }
      EXPECT_EQ(Fnv1a64(w), t["f32_fnv1a64"].get<std::string>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 60);
}

// --- GGUF --------------------------------------------------------------------------------------

class ExportGgufGolden : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new nlohmann::json(Golden("export_gguf.json"));
    dir_ = new testing::TempDir;
    for (const auto& [label, c] : (*golden_)["cases"].items()) {
      const std::string out = dir_->path() + "/stories260K-" + label + ".gguf";
      const std::string src = testing::DataDir() + "/models/stories260K/stories260K-F32.gguf";
      if (Rtnq("quantize " + Quote(src) + QuantizeArgs(c) + " --format gguf -o " + Quote(out))) exports_[label] = out;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete golden_;
  }
  static nlohmann::json* golden_;
  static testing::TempDir* dir_;
  static std::map<std::string, std::string> exports_;
};
nlohmann::json* ExportGgufGolden::golden_ = nullptr;
testing::TempDir* ExportGgufGolden::dir_ = nullptr;
std::map<std::string, std::string> ExportGgufGolden::exports_;

TEST_F(ExportGgufGolden, QuantizedTensorsEqualGgufPy) {
  ASSERT_TRUE(golden_->contains("cases"));
  int checked = 0;
  for (const auto& [label, c] : (*golden_)["cases"].items()) {
    SCOPED_TRACE(label);
    ASSERT_TRUE(exports_.count(label)) << "rtnq quantize failed";
    auto gguf = ReadGguf(exports_[label]);
    ASSERT_TRUE(gguf.ok()) << gguf.status().message();
    std::map<std::string, const GgufTensorInfo*> by_name;
    for (const auto& t : gguf->tensors) by_name[t.name] = &t;
    ASSERT_EQ(by_name.size(), c["tensors"].size());
    for (const auto& t : c["tensors"]) {
      const std::string name = t["name"];
      SCOPED_TRACE(name);
      ASSERT_TRUE(by_name.count(name));
      const GgufTensorInfo& info = *by_name[name];
      EXPECT_EQ(DTypeName(info.dtype), t["type"].get<std::string>());
      if (!t.contains("gguf_quantize_fnv1a64")) continue;
      EXPECT_TRUE(t["rtnq_bytes_equal"].get<bool>()) << "the golden says rtnq's bytes differed when it was made";
      ASSERT_EQ(info.nbytes, t["nbytes"].get<uint64_t>());
      EXPECT_EQ(Fnv1a64(gguf->file->data() + info.offset, info.nbytes), t["gguf_quantize_fnv1a64"].get<std::string>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 20);
}

TEST_F(ExportGgufGolden, PerplexityMatchesLlamaCpp) {
  ASSERT_TRUE(golden_->contains("cases"));
  const auto& settings = (*golden_)["perplexity_settings"];
  ASSERT_EQ(settings["max_chunks"].get<int>(), 0) << "golden made with --max-chunks (debug)";
  const std::string text = testing::DataDir() + "/" + settings["text"].get<std::string>();
  for (const auto& [label, c] : (*golden_)["cases"].items()) {
    SCOPED_TRACE(label);
    ASSERT_TRUE(exports_.count(label)) << "rtnq quantize failed";
    std::string out;
    ASSERT_TRUE(Rtnq(fmt::format("perplexity {} -f {} --ctx {} --json", Quote(exports_[label]), Quote(text),
                                 settings["n_ctx"].get<int>()),
                     &out));
    const auto j = nlohmann::json::parse(out);
    const auto& ref = c["perplexity"];
    EXPECT_EQ(j["chunks"].get<int>(), ref["n_chunk"].get<int>());
    EXPECT_EQ(j["tokens_scored"].get<int64_t>(), ref["tokens_scored"].get<int64_t>());
    const double ppl = j["ppl"], want = ref["ppl"];
    EXPECT_NEAR(ppl, want, 0.005 * want) << "rtnq " << ppl << " vs llama.cpp " << want;
  }
}

}  // namespace
}  // namespace rtnq
