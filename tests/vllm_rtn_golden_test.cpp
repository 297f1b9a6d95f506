// rtnq's `vllm` arithmetic against an independent torch implementation of vLLM's rtn_quantize
// (tests/golden/vllm_rtn.json, made by scripts/reference/vllm_rtn_ref.py): identical codes and
// scales, bit for bit, on synthetic bf16 matrices (outlier channels, zero groups, exact ties) and
// on every matrix of stories260K rounded to bf16.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>

#include "base/half.h"
#include "io/checkpoint.h"
#include "quant/rtn.h"
#include "testing/paths.h"

namespace rtnq {
namespace {

std::string Fnv1a64(const std::vector<uint8_t>& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : data) {
    h ^= b;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

uint64_t SplitMix64(uint64_t* state) {
  *state += 0x9e3779b97f4a7c15ull;
  uint64_t z = *state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Mirrors synthetic_bf16() in scripts/reference/vllm_rtn_ref.py.
std::vector<uint16_t> SyntheticBf16(int rows, int cols, uint64_t seed, int group) {
  std::vector<uint16_t> bits(static_cast<size_t>(rows) * cols);
  uint64_t state = seed;
  for (size_t i = 0; i < bits.size(); ++i) {
    const uint64_t r = SplitMix64(&state);
    const uint64_t sign = (r >> 63) & 1;
    uint64_t exponent = 120 + (r >> 8) % 8;
    if ((i % cols) % 37 == 5) exponent += 4;
    bits[i] = static_cast<uint16_t>((sign << 15) | (exponent << 7) | (r & 0x7f));
  }
  for (int k = 0; k < group; ++k) bits[cols + k] = 0;
  bits[2 * cols] = F32ToBf16(1.875f);
  for (int k = 1; k < group; ++k) bits[2 * cols + k] = F32ToBf16(static_cast<float>(((k - 1) % 15) - 7) / 8.0f);
  return bits;
}

void ExpectMatches(const nlohmann::json& c, const uint16_t* w, int64_t rows, int64_t cols) {
  const RtnFormat f{c["bits"] == 8 ? RtnScheme::kInt8 : RtnScheme::kInt4, c["group"].get<int32_t>(), DType::kBF16};
  auto m = AllocateRtnMatrix(f, rows, cols);
  ASSERT_TRUE(m.ok()) << c["name"] << ": " << m.status().message();
  RtnQuantizeRows(w, DType::kBF16, 0, rows, RtnArithmetic::kVllm, &*m);
  EXPECT_EQ(Fnv1a64(m->codes), c["codes_fnv1a64"].get<std::string>()) << c["name"];
  EXPECT_EQ(Fnv1a64(m->scales), c["scales_fnv1a64"].get<std::string>()) << c["name"];
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(RtnLevel(f, m->CodeRow(0), k) + f.bias(), c["first_codes"][k].get<int>()) << c["name"] << " k=" << k;
  }
}

TEST(VllmRtnGolden, CodesAndScalesAreBitIdentical) {
  std::ifstream f(testing::SourceDir() + "/tests/golden/vllm_rtn.json");
  ASSERT_TRUE(f.good());
  const auto golden = nlohmann::json::parse(f);
  auto ck = OpenCheckpoint(testing::DataDir() + "/models/stories260K/stories260K-F32.gguf");
  ASSERT_TRUE(ck.ok()) << ck.status().message();
  int checked = 0;
  for (const auto& c : golden["cases"]) {
    const std::string name = c["name"];
    const int64_t rows = c["rows"], cols = c["cols"];
    if (name.rfind("synthetic_", 0) == 0) {
      const int bits = c["bits"], group = c["group"];
      const auto w = SyntheticBf16(static_cast<int>(rows), static_cast<int>(cols),
                                   1000 + bits * 10 + group, group ? group : static_cast<int>(cols));
      ExpectMatches(c, w.data(), rows, cols);
      ++checked;
      continue;
    }
    // "stories260K/<gguf tensor name>_b<bits>_g<group>"
    const std::string tensor = name.substr(12, name.rfind("_b") - 12);
    const TensorView* view = nullptr;
    for (const auto& t : ck->tensors) {
      if (t.file_name == tensor) view = &t;
    }
    ASSERT_NE(view, nullptr) << tensor;
    ASSERT_EQ(view->NumElements(), rows * cols) << tensor;
    std::vector<uint16_t> w(static_cast<size_t>(rows * cols));
    const float* src = reinterpret_cast<const float*>(view->data);
    for (size_t i = 0; i < w.size(); ++i) w[i] = F32ToBf16(src[i]);
    ExpectMatches(c, w.data(), rows, cols);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(golden["cases"].size()));
  EXPECT_GE(checked, 80);
}

}  // namespace
}  // namespace rtnq
