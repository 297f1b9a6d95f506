// `rtnq bench gemm` and `rtnq bench e2e` at tiny settings: the JSON has every cell, the numbers
// are consistent with each other (bytes are PackedWeight::bytes(), rates and percentages follow
// from the reported times and bandwidth, speedups from the baseline rows), the 16-bit model
// agrees with itself exactly, and --plot writes a valid PNG. Timings are never asserted: the
// machine is shared and noisy.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "kernels/matmul.h"
#include "testing/paths.h"
#include "testing/run.h"

namespace rtnq {
namespace {

using testing::RunCommand;
using nlohmann::json;

std::string Rtnq() { return testing::RtnqBinary(); }

void ExpectRel(double actual, double expected, const std::string& what) {
  EXPECT_NEAR(actual, expected, 1e-9 * std::max(1.0, std::fabs(expected))) << what;
}

void ExpectOneLineError(const testing::CommandResult& r, const std::string& command, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("rtnq " + command + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

uint32_t BigEndian32(const std::string& s, size_t at) {
  return (static_cast<uint32_t>(static_cast<uint8_t>(s[at])) << 24) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(s[at + 2])) << 8) | static_cast<uint8_t>(s[at + 3]);
}

// Packed bytes of a 256x512 (K x N) weight of `type`/`act`, packed here as the bench does.
uint64_t PackedBytes(const std::string& type, ActType act) {
  constexpr int64_t k = 256, n = 512;
  if (type == "f32" || type == "bf16") {
    const DType d = type == "f32" ? DType::kF32 : DType::kBF16;
    std::vector<uint8_t> rows(n * k * (d == DType::kF32 ? 4 : 2), 0);
    return PackedWeight::Pack(d, rows.data(), n, k, act).value().bytes();
  }
  RtnFormat f;
  f.scheme = type[1] == '8' ? RtnScheme::kInt8 : RtnScheme::kInt4;
  f.group = std::stoi(type.substr(type.find('g') + 1));
  f.scale_dtype = DType::kBF16;
  std::vector<uint8_t> codes(f.CodeBytes(n, k), 0x88), scales(f.ScaleBytes(n, k), 0);
  return PackedWeight::Pack(f, codes.data(), scales.data(), n, k, act).value().bytes();
}

ActType ActOf(const std::string& act_type) {
  ActType a = ActType::kF32;
  EXPECT_TRUE(ParseActType(act_type, &a)) << act_type;
  return a;
}

TEST(BenchCli, GemmJsonCellsAreConsistentAndThePlotIsAPng) {
  testing::TempDir dir;
  const std::string png = dir.path() + "/gemm.png";
  auto r = RunCommand(Rtnq() + " bench gemm --shapes 256x512 --m 1,4 --repeats 2 --min-time 0 --rotate-mib 1 "
                               "--probe-mib 16 --json --plot " + png);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["command"], "bench gemm");
  EXPECT_EQ(j["threads"], 1);
  EXPECT_EQ(j["dram"]["threads"], 1);
  EXPECT_EQ(j["dram"]["passes"], 7);
  const double dram = j["dram"]["best_gbps"];
  EXPECT_GT(dram, 0);
  EXPECT_GE(dram, j["dram"]["median_gbps"].get<double>());

  // Every default variant at every M, unless listed as skipped (no kernel on this CPU).
  std::set<std::string> expected = {"f32-a16",    "bf16-a16",    "bf16-bf16",  "w8g128-a16",
                                    "w4g128-a16", "w4g32-a16",   "w8g128-bf16", "w4g128-bf16",
                                    "w4g32-bf16", "w8g128-a8",   "w4g128-a8",  "w4g32-a8"};
  for (const auto& s : j["skipped"]) {
    for (auto it = expected.begin(); it != expected.end();) {
      it = s.get<std::string>().find(" " + *it + ":") != std::string::npos ? expected.erase(it) : std::next(it);
    }
  }
  EXPECT_TRUE(expected.count("f32-a16") && expected.count("bf16-a16") && expected.count("w4g128-a16"));
  std::map<int, std::set<std::string>> seen;
  std::map<int, double> bf16_best;
  for (const auto& c : j["results"]) {
    const int m = c["m"];
    if (c["type"] == "bf16") {
      bf16_best[m] = bf16_best.count(m) ? std::min(bf16_best[m], c["seconds"].get<double>()) : c["seconds"].get<double>();
    }
  }
  for (const auto& c : j["results"]) {
    const std::string label = c["label"];
    const int m = c["m"];
    seen[m].insert(label);
    EXPECT_EQ(c["shape"], "256x512");
    EXPECT_EQ(c["k"], 256);
    EXPECT_EQ(c["n"], 512);
    EXPECT_EQ(label, c["type"].get<std::string>() + "-" + c["act"].get<std::string>());
    const uint64_t bytes = c["weight_bytes"];
    EXPECT_EQ(bytes, PackedBytes(c["type"], ActOf(c["act_type"]))) << label;
    ExpectRel(c["bits_per_weight"], 8.0 * bytes / (256.0 * 512.0), label);
    EXPECT_GE(c["calls"].get<int>(), 2);
    EXPECT_EQ(c["rotation_bytes"].get<uint64_t>(), bytes * c["copies"].get<uint64_t>());
    EXPECT_GE(c["rotation_bytes"].get<uint64_t>(), uint64_t{1} << 20) << "one rotation covers --rotate-mib";
    const double sec = c["seconds"];
    ASSERT_GT(sec, 0);
    EXPECT_LE(c["seconds_min"].get<double>(), sec);
    ExpectRel(c["gbps"], bytes / sec / 1e9, label);
    ExpectRel(c["pct_dram"], 100.0 * c["gbps"].get<double>() / dram, label);
    ExpectRel(c["gflops"], 2.0 * m * 256 * 512 / sec / 1e9, label);
    ExpectRel(c["speedup_vs_bf16"], bf16_best[m] / sec, label);
    EXPECT_FALSE(c["kernel"].get<std::string>().empty());
  }
  for (int m : {1, 4}) EXPECT_EQ(seen[m], expected) << "M=" << m;

  // The PNG: signature, an IHDR of the reported size, an IEND at the end.
  ASSERT_TRUE(j.contains("plot"));
  const std::string bytes = testing::ReadAll(png);
  ASSERT_GT(bytes.size(), 64u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(BigEndian32(bytes, 8), 13u);
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  EXPECT_EQ(BigEndian32(bytes, 16), j["plot"]["width"].get<uint32_t>());
  EXPECT_EQ(BigEndian32(bytes, 20), j["plot"]["height"].get<uint32_t>());
  EXPECT_GE(j["plot"]["width"].get<int>(), 1000);
  EXPECT_GE(j["plot"]["height"].get<int>(), 400);
  EXPECT_EQ(bytes.substr(bytes.size() - 8, 4), "IEND");
  EXPECT_NE(bytes.find("IDAT"), std::string::npos);
}

TEST(BenchCli, GemmTextHasOneTablePerShape) {
  auto r = RunCommand(Rtnq() + " bench gemm --shapes 256x512,512x256 --m 2 --types w4g32 --act a16 --repeats 1 "
                               "--min-time 0 --rotate-mib 1 --probe-mib 16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("256x512  (K=256 in, N=512 out)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("512x256  (K=512 in, N=256 out)"), std::string::npos) << r.out;
  // The baseline is run even though --types leaves bf16 out.
  EXPECT_NE(r.out.find("bf16-a16"), std::string::npos);
  EXPECT_NE(r.out.find("w4g32-a16"), std::string::npos);
  EXPECT_EQ(r.out.find("w4g32-a8"), std::string::npos);
}

TEST(BenchCli, GemmRejectsBadFlagsInOneLine) {
  ExpectOneLineError(RunCommand(Rtnq() + " bench gemm --shapes 100x7"), "bench gemm", "--shapes");
  ExpectOneLineError(RunCommand(Rtnq() + " bench gemm --types w3g128"), "bench gemm", "w3g128");
  ExpectOneLineError(RunCommand(Rtnq() + " bench gemm --m 1,0"), "bench gemm", "--m");
  ExpectOneLineError(RunCommand(Rtnq() + " bench gemm --act a4"), "bench gemm", "a4");
}

class BenchE2e : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    model_ = dir_->path() + "/tiny";
    auto r = RunCommand(Rtnq() + " synth --shape tiny-llama3 --seed 3 --dtype bf16 -o " + model_);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static testing::TempDir* dir_;
  static std::string model_;
};
testing::TempDir* BenchE2e::dir_ = nullptr;
std::string BenchE2e::model_;

TEST_F(BenchE2e, JsonRunsAreConsistentAndTheSixteenBitModelAgreesWithItself) {
  auto r = RunCommand(Rtnq() + " bench e2e " + model_ +
                      " --quant none,rtn8:g32,rtn4:g32 --act f32,int8 --threads 1,2 --batch 1,3 --prefill 16 "
                      "--decode 4 --probe-mib 16 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["command"], "bench e2e");
  ASSERT_EQ(j["dram"].size(), 2u);
  // Per thread count: the 16-bit model on f32 activations, on AMX hosts again on bf16 activations,
  // then 2 quantizations x 2 activation types.
  size_t nones = 0;
  for (const auto& run : j["runs"]) nones += run["quant"] == "none" ? 1 : 0;
  ASSERT_TRUE(nones == 2 || nones == 4) << nones;
  const size_t per_thread = nones / 2 + 4;
  ASSERT_EQ(j["runs"].size(), 2u * per_thread);
  EXPECT_EQ(j["agreement_stream"]["tokens"].size(), 64u);
  std::map<int, json> none;                        // the f32-activation 16-bit run: the reference
  std::map<int, double> best_prefill;              // the faster 16-bit run, per phase and batch
  std::map<int, std::vector<double>> best_decode;
  for (const auto& run : j["runs"]) {
    if (run["quant"] != "none") continue;
    const int t = run["threads"];
    if (run["act"] == "f32") none[t] = run;
    else EXPECT_EQ(run["act"], "bf16");
    best_prefill[t] = std::max(best_prefill[t], run["prefill"]["tokens_per_second"].get<double>());
    best_decode[t].resize(2, 0.0);
    for (size_t b = 0; b < 2; ++b)
      best_decode[t][b] = std::max(best_decode[t][b], run["decode"][b]["tokens_per_second"].get<double>());
  }
  ASSERT_EQ(none.size(), 2u);
  for (const auto& [t, run] : none) {
    // Same weights, same stream: exact agreement at every thread count (the kernels' exactness
    // contract makes the logits bitwise independent of threads and batch position).
    EXPECT_EQ(run["agreement"]["top1_pct"], 100.0) << t;
    EXPECT_EQ(run["agreement"]["kl_mean"], 0.0) << t;
    EXPECT_EQ(run["load"]["quantized_tensors"], 0);
  }
  std::map<std::string, double> kl;
  for (size_t i = 0; i < j["runs"].size(); ++i) {
    const json& run = j["runs"][i];
    const int t = run["threads"];
    const std::string what = run["quant"].get<std::string>() + "/" + run["act"].get<std::string>() + "/t" +
                             std::to_string(t);
    const size_t at = i % per_thread, first_rtn4 = nones / 2 + 2;
    EXPECT_EQ(run["quant"], at < nones / 2 ? "none" : (at < first_rtn4 ? "rtn8:g32" : "rtn4:g32")) << "16-bit first";
    const double dram = run["dram_read_gbps"];
    EXPECT_EQ(dram, j["dram"][t == 1 ? 0 : 1]["best_gbps"].get<double>());
    EXPECT_EQ(run["agreement"]["positions"], 64);
    EXPECT_GE(run["agreement"]["top1_pct"].get<double>(), 0);
    EXPECT_LE(run["agreement"]["top1_pct"].get<double>(), 100);
    EXPECT_GE(run["agreement"]["kl_mean"].get<double>(), 0);
    if (t == 1) kl[run["quant"].get<std::string>() + "/" + run["act"].get<std::string>()] = run["agreement"]["kl_mean"];
    const double bytes_per_token = run["weight_bytes_per_token"];
    ASSERT_GT(bytes_per_token, 0);
    ExpectRel(run["prefill"]["speedup_vs_16bit"], run["prefill"]["tokens_per_second"].get<double>() / best_prefill[t],
              what);
    ASSERT_EQ(run["decode"].size(), 2u);
    for (size_t b = 0; b < 2; ++b) {
      const json& d = run["decode"][b];
      const int batch = d["batch"];
      EXPECT_EQ(batch, b == 0 ? 1 : 3);
      EXPECT_EQ(d["tokens"], batch * 4);
      ExpectRel(d["tokens_per_second"], d["tokens"].get<double>() / d["seconds"].get<double>(), what);
      ExpectRel(d["memory_bound_tokens_per_second"], dram * 1e9 * batch / bytes_per_token, what);
      ExpectRel(d["pct_of_limit"], 100.0 * d["tokens_per_second"].get<double>() /
                                       d["memory_bound_tokens_per_second"].get<double>(), what);
      ExpectRel(d["speedup_vs_16bit"], d["tokens_per_second"].get<double>() / best_decode[t][b], what);
    }
    if (run["quant"] != "none") {
      EXPECT_GT(run["load"]["quantized_tensors"].get<int>(), 0) << what;
      EXPECT_LT(run["model_bytes"].get<uint64_t>(), none[t]["model_bytes"].get<uint64_t>()) << what;
      EXPECT_GT(run["plan_bits_per_weight"].get<double>(), 0) << what;
    }
  }
  // 8-bit weights stay closer to the 16-bit model than 4-bit ones.
  EXPECT_LT(kl["rtn8:g32/f32"], kl["rtn4:g32/f32"]);
  EXPECT_LT(kl["rtn8:g32/int8"], kl["rtn4:g32/int8"]);
}

TEST_F(BenchE2e, RunsTheSixteenBitReferenceEvenWhenNotAsked) {
  auto r = RunCommand(Rtnq() + " bench e2e " + model_ +
                      " --quant rtn4:g32 --threads 1 --batch 1 --prefill 8 --decode 2 --probe-mib 16");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("none"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rtn4:g32"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("100.0%"), std::string::npos) << "the 16-bit row agrees fully: " << r.out;
}

TEST_F(BenchE2e, RejectsBadInputInOneLine) {
  ExpectOneLineError(RunCommand(Rtnq() + " bench e2e " + dir_->path() + "/missing"), "bench e2e", "missing");
  ExpectOneLineError(RunCommand(Rtnq() + " bench e2e " + model_ + " --quant rtn5"), "bench e2e", "rtn5");
  ExpectOneLineError(RunCommand(Rtnq() + " bench e2e " + model_ + " --act int4"), "bench e2e", "int4");
  ExpectOneLineError(RunCommand(Rtnq() + " bench e2e " + model_ + " --batch 0"), "bench e2e", "--batch");
}

}  // namespace
}  // namespace rtnq
