// The rtnq binary as users run it: outputs parse, bad inputs give one-line errors and a non-zero
// exit status, never a crash.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>

#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

using testing::RunCommand;

std::string Stories(const std::string& file) {
  return testing::DataDir() + "/models/stories260K/" + file;
}

std::string Rtnq() { return testing::RtnqBinary(); }

void ExpectOneLineError(const testing::CommandResult& r, const std::string& command,
                        const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("rtnq " + command + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(Cli, InspectJsonDescribesStoriesGguf) {
  auto r = RunCommand(Rtnq() + " inspect " + Stories("stories260K-F32.gguf") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["config"]["num_layers"], 5);
  EXPECT_EQ(j["config"]["hidden_size"], 64);
  EXPECT_EQ(j["config"]["num_kv_heads"], 4);
  EXPECT_EQ(j["tokenizer"]["vocab_size"], 512);
  // 1 embedding + 5 layers x 9 + final norm + output (llama.cpp's converter writes the shared
  // classifier out as its own tensor).
  EXPECT_EQ(j["tensors"].size(), 48u);
  EXPECT_EQ(j["totals"]["bits_per_weight"], 32.0);
}

TEST(Cli, InspectTextAndLlama2cAgreeOnParameters) {
  auto gguf = RunCommand(Rtnq() + " inspect " + Stories("stories260K-F32.gguf") + " --json");
  auto bin = RunCommand(Rtnq() + " inspect " + Stories("stories260K.bin") + " --tokenizer " +
                        Stories("tok512.bin") + " --json");
  ASSERT_EQ(gguf.exit_code, 0) << gguf.err;
  ASSERT_EQ(bin.exit_code, 0) << bin.err;
  // The same model: llama.cpp's converter writes the shared classifier out as output.weight (so the
  // GGUF counts one more matrix) and records a context of 128 where the .bin says 512.
  const auto a = nlohmann::json::parse(gguf.out)["config"], b = nlohmann::json::parse(bin.out)["config"];
  for (const char* key : {"hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads",
                          "head_dim", "vocab_size"}) {
    EXPECT_EQ(a[key], b[key]) << key;
  }
  // GGUF stores epsilon as f32.
  EXPECT_FLOAT_EQ(a["rms_norm_eps"].get<float>(), b["rms_norm_eps"].get<float>());
  EXPECT_EQ(a["parameters"].get<int64_t>() - b["parameters"].get<int64_t>(), 512 * 64);
  auto text = RunCommand(Rtnq() + " inspect " + Stories("stories260K-Q4_0.gguf"));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("Q4_0"), std::string::npos);
}

TEST(Cli, TokenizeMatchesBetweenFormats) {
  auto a = RunCommand(Rtnq() + " tokenize " + Stories("stories260K-F32.gguf") +
                      " -p 'Once upon a time' --ids");
  auto b = RunCommand(Rtnq() + " tokenize " + Stories("stories260K.bin") + " --tokenizer " +
                      Stories("tok512.bin") + " -p 'Once upon a time' --ids");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.out.rfind("1 ", 0), 0u) << "BOS first: " << a.out;
}

TEST(Cli, MissingAndUnknownFilesFailCleanly) {
  ExpectOneLineError(RunCommand(Rtnq() + " inspect /nonexistent/model.gguf"), "inspect",
                     "/nonexistent/model.gguf");
  ExpectOneLineError(RunCommand(Rtnq() + " generate /etc/hostname -p hi"), "generate",
                     "unknown model format");
  ExpectOneLineError(RunCommand(Rtnq() + " perplexity " + Stories("stories260K-F32.gguf") +
                                " -f /nonexistent.txt"),
                     "perplexity", "/nonexistent.txt");
}

TEST(Cli, TruncatedGgufFailsWithOneLine) {
  testing::TempDir dir;
  const std::string src = testing::ReadAll(Stories("stories260K-F32.gguf"));
  for (size_t len : {size_t{3}, size_t{100}, src.size() / 2, src.size() - 1}) {
    const std::string path = dir.path() + "/cut.gguf";
    std::ofstream(path, std::ios::binary).write(src.data(), static_cast<std::streamsize>(len));
    auto r = RunCommand(Rtnq() + " inspect " + path);
    ExpectOneLineError(r, "inspect", "cut.gguf");
  }
}

TEST(Cli, LlamaCBinWithoutTokenizerExplains) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/model.bin";
  const std::string src = testing::ReadAll(Stories("stories260K.bin"));
  std::ofstream(path, std::ios::binary).write(src.data(), static_cast<std::streamsize>(src.size()));
  ExpectOneLineError(RunCommand(Rtnq() + " generate " + path + " -p hi -n 2"), "generate",
                     "--tokenizer");
}

TEST(Cli, GenerateJsonReportsSpeedAndIsDeterministic) {
  const std::string cmd = Rtnq() + " generate " + Stories("stories260K-F32.gguf") +
                          " -p 'Once upon a time' -n 16 --temp 0.9 --top-p 0.9 --seed 3 --json";
  auto a = RunCommand(cmd), b = RunCommand(cmd);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(ja["sequences"][0]["tokens"], jb["sequences"][0]["tokens"]);
  EXPECT_EQ(ja["sequences"][0]["tokens"].size(), 16u);
  EXPECT_GT(ja["timing"]["generation_tokens_per_second"].get<double>(), 0.0);
  EXPECT_GT(ja["timing"]["prompt_tokens_per_second"].get<double>(), 0.0);
}

TEST(Cli, BatchedGenerateEqualsSingleRuns) {
  const std::string base = Rtnq() + " generate " + Stories("stories260K-F32.gguf") + " -n 20 --json";
  auto batched = RunCommand(base + " -p 'The dog' -p 'Lily wanted to' -p 'Tom'");
  ASSERT_EQ(batched.exit_code, 0) << batched.err;
  auto jb = nlohmann::json::parse(batched.out);
  const char* prompts[] = {"The dog", "Lily wanted to", "Tom"};
  for (int i = 0; i < 3; ++i) {
    auto single = RunCommand(base + " -p '" + prompts[i] + "'");
    ASSERT_EQ(single.exit_code, 0) << single.err;
    EXPECT_EQ(nlohmann::json::parse(single.out)["sequences"][0]["tokens"],
              jb["sequences"][i]["tokens"])
        << prompts[i];
  }
}

TEST(Cli, FitShows405BAtRtn4OnFourH100sButNotBf16) {
  auto rtn4 = RunCommand(Rtnq() + " fit llama-3.1-405b --quant rtn4 --devices 4xH100-80GB --json");
  auto bf16 = RunCommand(Rtnq() + " fit llama-3.1-405b --devices 4xH100-80GB --json");
  ASSERT_EQ(rtn4.exit_code, 0) << rtn4.err;
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  const auto a = nlohmann::json::parse(rtn4.out), b = nlohmann::json::parse(bf16.out);
  EXPECT_TRUE(a["fits"].get<bool>());
  EXPECT_FALSE(b["fits"].get<bool>());
  EXPECT_GT(a["max_kv_tokens"].get<int64_t>(), 100000);
  ExpectOneLineError(RunCommand(Rtnq() + " fit llama-3.1-405b --devices 4xTPU"), "fit", "unknown device");
}

TEST(Cli, QuantizeDryRunShowsPlanAndFallbacks) {
  auto r = RunCommand(Rtnq() + " quantize " + Stories("stories260K-F32.gguf") +
                      " --quant rtn4:g32 --upcast-layers first:1 --dry-run --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  int int8 = 0, kept_down = 0;
  for (const auto& t : j["tensors"]) {
    if (t["precision"].get<std::string>().rfind("int8", 0) == 0) ++int8;
    if (t["name"].get<std::string>().find("down_proj") != std::string::npos && t["precision"] == "keep") {
      EXPECT_NE(t["note"].get<std::string>().find("172"), std::string::npos);
      ++kept_down;
    }
  }
  EXPECT_EQ(int8, 6);  // q k v o gate up of layer 0 (down_proj falls back to keep)
  EXPECT_EQ(kept_down, 5);
  ExpectOneLineError(RunCommand(Rtnq() + " quantize " + Stories("stories260K-F32.gguf") + " --quant rtn5 --dry-run"),
                     "quantize", "valid precisions");
  ExpectOneLineError(RunCommand(Rtnq() + " quantize " + Stories("stories260K-F32.gguf") +
                                " --quant rtn4:g32 --strict --dry-run"),
                     "quantize", "down_proj");
  ExpectOneLineError(RunCommand(Rtnq() + " quantize " + Stories("stories260K-F32.gguf") +
                                " --quant rtn4 --rule 'layers=7 -> int8' --dry-run"),
                     "quantize", "--rule");
}

TEST(Cli, QuantizeWritesAtomicallyAndNeverOverwritesUnasked) {
  testing::TempDir dir;
  const std::string out = dir.path() + "/q.gguf";
  const std::string cmd = Rtnq() + " quantize " + Stories("stories260K-F32.gguf") +
                          " --quant rtn8:g32 --format gguf -o " + out;
  auto first = RunCommand(cmd);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  ExpectOneLineError(RunCommand(cmd), "quantize", "--force");
  EXPECT_EQ(RunCommand(cmd + " --force").exit_code, 0);
  // A failing export (GPTQ cannot hold stories260K's 172-row gate_proj at 4 bits) leaves nothing.
  const std::string gptq = dir.path() + "/gptq";
  ExpectOneLineError(RunCommand(Rtnq() + " quantize " + Stories("stories260K-F32.gguf") +
                                " --quant rtn4:g32 --format gptq -o " + gptq),
                     "quantize", "gate_proj");
  EXPECT_EQ(RunCommand("ls " + dir.path()).out, "q.gguf\n");
}

TEST(Cli, NonFiniteWeightsNameTheTensor) {
  testing::TempDir dir;
  std::string bytes = testing::ReadAll(Stories("stories260K-F32.gguf"));
  auto ck = RunCommand(Rtnq() + " inspect " + Stories("stories260K-F32.gguf") + " --json");
  const auto j = nlohmann::json::parse(ck.out);
  uint64_t offset = 0;
  for (const auto& t : j["tensors"]) {
    if (t["name"] == "model.layers.2.mlp.up_proj.weight") offset = t["offset"].get<uint64_t>();
  }
  ASSERT_GT(offset, 0u);
  const float nan = std::nanf("");
  std::memcpy(&bytes[offset + 4 * 70], &nan, 4);
  const std::string path = dir.path() + "/nan.gguf";
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ExpectOneLineError(RunCommand(Rtnq() + " perplexity " + path + " -f " + testing::DataDir() +
                                "/text/tinystories_val.txt --quant rtn4:g32 --chunks 1"),
                     "perplexity", "model.layers.2.mlp.up_proj.weight");
  auto allowed = RunCommand(Rtnq() + " quantize " + path + " --quant rtn4:g32 --allow-nonfinite -o " +
                            dir.path() + "/ok.gguf --format gguf");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
}

}  // namespace
}  // namespace rtnq
