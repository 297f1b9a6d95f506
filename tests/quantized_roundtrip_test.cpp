// Quantized checkpoints written by rtnq's exporters (compressed-tensors, GPTQ) and read back:
// the model loaded from the export runs the stored codes and scales directly, so its logits are
// bitwise those of the same plan quantized on the fly from the source model (GPTQ stores f16
// scales, so its reference plan uses f16 scales). Also: a plan that changes a stored precision
// re-quantizes from the dequantized rows; the export re-exports; `rtnq inspect` shows precisions.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

#include "io/synthetic_model.h"
#include "model/model.h"
#include "quant/export.h"
#include "quant/quantize_model.h"
#include "quant/tensor_rows.h"
#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("rtnq_qload_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

Result<CompiledPlan> Compile(const Checkpoint& ck, const std::string& text) {
  RTNQ_ASSIGN_OR_RETURN(QuantPlan plan, QuantPlan::ParseText(text, "<test>"));
  return CompilePlanForCheckpoint(plan, ck, /*strict=*/false);
}

// The plan with every RTN decision's scales stored as `dtype`.
CompiledPlan WithScaleDType(CompiledPlan plan, DType dtype) {
  for (auto& d : plan.tensors) {
    if (d.precision.IsQuantized()) d.precision.rtn.scale_dtype = dtype;
  }
  return plan;
}

std::vector<float> Logits(const Checkpoint& ck, const CompiledPlan* plan,
                          WeightPrecision precision = WeightPrecision::kAsStored) {
  ModelOptions options;
  options.plan = plan;
  options.precision = precision;
  options.threads = 2;
  auto model = Model::Load(ck, options);
  EXPECT_TRUE(model.ok()) << model.status().message();
  if (!model.ok()) return {};
  const std::vector<int32_t> tokens = {1, 17, 200, 5, 99, 318, 42, 7};
  std::vector<BatchItem> batch;
  for (int32_t t : tokens) batch.push_back({0, t, true});
  std::vector<float> logits(tokens.size() * (*model)->config().vocab_size);
  EXPECT_TRUE((*model)->Forward(batch, logits.data()).ok());
  return logits;
}

// `ck` with every quantized view replaced by its rows dequantized to F32 (TensorRows::ReadF32).
struct DequantizedCopy {
  Checkpoint ck;
  std::vector<std::vector<float>> storage;
};

std::unique_ptr<DequantizedCopy> Dequantize(const Checkpoint& src) {
  auto out = std::make_unique<DequantizedCopy>();
  out->ck = src;
  for (TensorView& v : out->ck.tensors) {
    if (!v.rtn) continue;
    const TensorRows rows(v);
    std::vector<float> values(static_cast<size_t>(rows.rows() * rows.cols()));
    for (int64_t r = 0; r < rows.rows(); ++r) rows.ReadF32(r, values.data() + r * rows.cols());
    out->storage.push_back(std::move(values));
    v.rtn.reset();
    v.dtype = DType::kF32;
    v.data = reinterpret_cast<const uint8_t*>(out->storage.back().data());
    v.nbytes = out->storage.back().size() * 4;
    v.scales = nullptr;
    v.scales_nbytes = 0;
    v.code_row_bytes = 0;
  }
  return out;
}

struct Case {
  std::string name;
  std::string shape;
  ExportFormat format;
  std::string plan;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class QuantizedRoundTrip : public ::testing::TestWithParam<Case> {};

// What other loaders (vLLM, HF) read from config.json: a decoder-layer linear is left unquantized
// exactly when the plan does not quantize it (kept, or an explicit bf16/f16/f32). GPTQ: the first
// `dynamic` pattern that matches at the start of the module name decides ("-:" = not quantized);
// compressed-tensors: the `ignore` list.
void ExpectConfigMarksUnquantizedModules(const std::string& dir, ExportFormat format, const CompiledPlan& plan) {
  std::ifstream in(dir + "/config.json");
  const nlohmann::json q = nlohmann::json::parse(in)["quantization_config"];
  for (const TensorDecision& d : plan.tensors) {
    const std::string suffix = "_proj.weight";
    if (d.name.find(".layers.") == std::string::npos || d.name.size() < suffix.size() ||
        d.name.compare(d.name.size() - suffix.size(), suffix.size(), suffix) != 0) {
      continue;
    }
    const std::string module = d.name.substr(0, d.name.size() - 7);
    bool excluded = false;
    if (format == ExportFormat::kGptq) {
      const nlohmann::json dynamic = q.value("dynamic", nlohmann::json::object());
      for (const auto& [key, value] : dynamic.items()) {
        if (std::regex_search(module, std::regex(key.substr(2)), std::regex_constants::match_continuous)) {
          excluded = key.rfind("-:", 0) == 0;
          break;
        }
      }
    } else {
      const auto& ignore = q["ignore"];
      excluded = std::find(ignore.begin(), ignore.end(), module) != ignore.end();
    }
    EXPECT_EQ(excluded, !d.precision.IsQuantized()) << module << " is " << d.precision.Name();
  }
}

TEST_P(QuantizedRoundTrip, LoadedLogitsEqualOnTheFlyQuantization) {
  const Case& c = GetParam();
  TempDir src_dir("src"), out_dir("out");
  SynthOptions synth;
  synth.shape = c.shape;
  synth.seed = 7;
  synth.threads = 1;
  ASSERT_TRUE(WriteSyntheticModel(src_dir.path(), synth).ok());
  auto src = OpenCheckpoint(src_dir.path());
  ASSERT_TRUE(src.ok()) << src.status().message();
  auto plan = Compile(*src, c.plan);
  ASSERT_TRUE(plan.ok()) << plan.status().message();

  ExportOptions options;
  options.format = c.format;
  options.output = out_dir.path();
  options.plan_text = c.plan;
  auto exported = ExportCheckpoint(*src, *plan, options);
  ASSERT_TRUE(exported.ok()) << exported.status().message();

  auto out = OpenCheckpoint(out_dir.path());
  ASSERT_TRUE(out.ok()) << out.status().message();
  // What the export should hold: the plan, with f16 scales for GPTQ.
  const CompiledPlan reference = c.format == ExportFormat::kGptq ? WithScaleDType(*plan, DType::kF16) : *plan;
  int quantized = 0;
  for (const TensorDecision& d : reference.tensors) {
    const TensorView* v = out->Find(d.name);
    ASSERT_NE(v, nullptr) << d.name;
    if (d.precision.IsQuantized()) {
      ASSERT_TRUE(v->rtn.has_value()) << d.name;
      EXPECT_EQ(*v->rtn, d.precision.rtn) << d.name << ": " << v->rtn->Name() << " vs " << d.precision.Name();
      ++quantized;
    } else {
      EXPECT_FALSE(v->rtn.has_value()) << d.name;
    }
  }
  EXPECT_GT(quantized, 0);
  ExpectConfigMarksUnquantizedModules(out_dir.path(), c.format, reference);

  const std::vector<float> on_the_fly = Logits(*src, &reference);
  ASSERT_FALSE(on_the_fly.empty());
  // Loaded as stored (no plan): bitwise the on-the-fly model, with nothing re-quantized.
  EXPECT_EQ(Logits(*out, nullptr), on_the_fly);
  {
    auto model = Model::Load(*out, ModelOptions{});
    ASSERT_TRUE(model.ok()) << model.status().message();
    EXPECT_EQ((*model)->load_stats().quantized_tensors, 0);
    EXPECT_GT((*model)->load_stats().quantized_bytes, 0u);
  }
  // A plan equal to the stored precisions packs them as stored too.
  auto same = Compile(*out, c.plan);
  ASSERT_TRUE(same.ok()) << same.status().message();
  const CompiledPlan same_plan = c.format == ExportFormat::kGptq ? WithScaleDType(*same, DType::kF16) : *same;
  EXPECT_EQ(Logits(*out, &same_plan), on_the_fly);
  // The same weights pre-dequantized to F32 (RTN kernels' contract: bitwise equal).
  auto dequantized = Dequantize(*out);
  EXPECT_EQ(Logits(dequantized->ck, nullptr), on_the_fly);
  // --precision f32 decodes the stored weights to F32 panels: the same values again.
  EXPECT_EQ(Logits(*out, nullptr, WeightPrecision::kF32), Logits(dequantized->ck, nullptr, WeightPrecision::kF32));

  // A plan that changes the precision re-quantizes from the dequantized rows: bitwise what the
  // same plan gives on the pre-dequantized copy.
  auto requant = Compile(*out, "default int8:row:f32\n");
  ASSERT_TRUE(requant.ok()) << requant.status().message();
  auto requant_ref = Compile(dequantized->ck, "default int8:row:f32\n");
  ASSERT_TRUE(requant_ref.ok());
  const std::vector<float> requantized = Logits(*out, &*requant);
  EXPECT_EQ(requantized, Logits(dequantized->ck, &*requant_ref));
  EXPECT_NE(requantized, on_the_fly);

  // Re-exporting the quantized checkpoint in its own plan reproduces the stored codes only via
  // the dequantized values; here it must at least write a checkpoint that opens with the same
  // precisions.
  TempDir again_dir("again");
  ExportOptions again = options;
  again.output = again_dir.path();
  auto again_plan = Compile(*out, c.plan);
  ASSERT_TRUE(again_plan.ok());
  ASSERT_TRUE(ExportCheckpoint(*out, *again_plan, again).ok());
  auto reopened = OpenCheckpoint(again_dir.path());
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  for (const TensorDecision& d : reference.tensors) {
    EXPECT_EQ(reopened->Find(d.name)->PrecisionName(), out->Find(d.name)->PrecisionName()) << d.name;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Exports, QuantizedRoundTrip,
    ::testing::Values(
        Case{"CtLlamaInt4G32", "tiny-llama3", ExportFormat::kCompressedTensors, "default int4:g32\n"},
        Case{"CtLlamaInt8Row", "tiny-llama3", ExportFormat::kCompressedTensors, "default int8:row\n"},
        Case{"CtLlamaInt4UpcastFirst", "tiny-llama3", ExportFormat::kCompressedTensors,
             "default int4:g32\nlayers=first:1 -> int8:g32:f16\n"},
        Case{"CtQwenInt4RowF32", "tiny-qwen2", ExportFormat::kCompressedTensors, "default int4:row:f32\n"},
        // g64 does not divide tiny-llama3's intermediate 160: down_proj is kept.
        Case{"CtLlamaInt8G64KeepsMisfits", "tiny-llama3", ExportFormat::kCompressedTensors, "default int8:g64\n"},
        Case{"GptqLlamaInt4G32", "tiny-llama3", ExportFormat::kGptq, "default int4:g32\n"},
        Case{"GptqLlamaInt8Row", "tiny-llama3", ExportFormat::kGptq, "default int8:row\n"},
        Case{"GptqLlamaInt4UpcastFirst", "tiny-llama3", ExportFormat::kGptq,
             "default int4:g32\nlayers=first:1 -> int8:row\n"},
        Case{"GptqQwenInt4G32LmHead", "tiny-qwen2", ExportFormat::kGptq,
             "default int4:g32\nmodules=lm_head -> int4:g32\n"},
        Case{"GptqQwenInt8G32", "tiny-qwen2", ExportFormat::kGptq, "default int8:g32\n"},
        Case{"GptqLlamaInt4G64KeepsMisfits", "tiny-llama3", ExportFormat::kGptq, "default int4:g64\n"},
        // Explicit 16-bit precisions must be marked unquantized like kept ones.
        Case{"GptqLlamaInt4Layer1Bf16", "tiny-llama3", ExportFormat::kGptq, "default int4:g32\nlayers=1 -> bf16\n"},
        Case{"CtLlamaInt4DownF16", "tiny-llama3", ExportFormat::kCompressedTensors,
             "default int4:g32\nmodules=mlp_down -> f16\n"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(QuantizedCli, QuantizeThenInspectShowsPrecisions) {
  TempDir src_dir("cli_src"), ct_dir("cli_ct"), gptq_dir("cli_gptq");
  const std::string rtnq = testing::RtnqBinary();
  auto synth = testing::RunCommand(rtnq + " synth --shape tiny-llama3 -t 1 -o " + src_dir.path());
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  auto ct = testing::RunCommand(rtnq + " quantize " + src_dir.path() +
                                " --quant rtn4:g32 --upcast-layers first:1 --upcast-to int8:g32 -o " + ct_dir.path());
  ASSERT_EQ(ct.exit_code, 0) << ct.err;
  auto gptq = testing::RunCommand(rtnq + " quantize " + src_dir.path() + " --quant rtn4:g32 --format gptq -o " +
                                  gptq_dir.path());
  ASSERT_EQ(gptq.exit_code, 0) << gptq.err;

  auto text = testing::RunCommand(rtnq + " inspect " + ct_dir.path());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("int4:g32:bf16"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("int8:g32:bf16"), std::string::npos) << text.out;

  auto json = testing::RunCommand(rtnq + " inspect --json " + gptq_dir.path());
  ASSERT_EQ(json.exit_code, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  auto ck = OpenCheckpoint(gptq_dir.path());
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  uint64_t total = 0;
  int quantized = 0;
  for (const auto& t : j["tensors"]) {
    const TensorView* v = ck->Find(t["name"].get<std::string>());
    ASSERT_NE(v, nullptr);
    if (v->rtn) {
      ++quantized;
      EXPECT_EQ(t["dtype"], "int4:g32:f16");
      // True bytes: K/2 code bytes and K/32 f16 scales per row.
      EXPECT_EQ(t["bytes"].get<uint64_t>(), static_cast<uint64_t>(v->shape[0] * (v->shape[1] / 2 + v->shape[1] / 32 * 2)));
    }
    total += t["bytes"].get<uint64_t>();
  }
  EXPECT_EQ(quantized, 7 * ck->config.num_layers);
  EXPECT_EQ(j["totals"]["bytes"].get<uint64_t>(), total);
  EXPECT_TRUE(j["totals"]["by_dtype"].contains("int4:g32:f16"));

  // The metadata names the quantization method read.
  auto gen = testing::RunCommand(rtnq + " inspect " + gptq_dir.path() + " --metadata");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_NE(gen.out.find("quant_method = gptq"), std::string::npos) << gen.out;
}

TEST(QuantizedCli, MalformedCheckpointGivesOneLineError) {
  TempDir src_dir("bad_src"), ct_dir("bad_ct");
  const std::string rtnq = testing::RtnqBinary();
  ASSERT_EQ(testing::RunCommand(rtnq + " synth --shape tiny-llama3 -t 1 -o " + src_dir.path()).exit_code, 0);
  ASSERT_EQ(testing::RunCommand(rtnq + " quantize " + src_dir.path() + " --quant rtn4:g32 -o " + ct_dir.path()).exit_code,
            0);
  // Unknown quant_method in config.json.
  const std::string config_path = ct_dir / "config.json";
  auto config = nlohmann::json::parse(testing::ReadAll(config_path));
  config["quantization_config"]["quant_method"] = "bitsandbytes";
  std::ofstream(config_path) << config.dump(2);
  auto r = testing::RunCommand(rtnq + " inspect " + ct_dir.path());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("quant_method 'bitsandbytes'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace rtnq
