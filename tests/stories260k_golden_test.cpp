// stories260K against llama.cpp (llama-cpp-python, tests/golden/stories260K_llamacpp.json, made by
// scripts/reference/llamacpp_ref.py): tokenization, greedy continuations, logits and
// llama-perplexity values, from the GGUF conversions and from the original llama2.c checkpoint.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "eval/perplexity.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "model/sampler.h"
#include "testing/paths.h"
#include "tokenizer/tokenizer.h"

namespace rtnq {
namespace {

const nlohmann::json& Golden() {
  static const nlohmann::json golden = [] {
    std::ifstream f(testing::SourceDir() + "/tests/golden/stories260K_llamacpp.json");
    return nlohmann::json::parse(f);
  }();
  return golden;
}

std::string Stories(const std::string& file) { return testing::DataDir() + "/models/stories260K/" + file; }

struct Loaded {
  Checkpoint checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Model> model;
};

Loaded Load(const std::string& path, int max_context, const std::string& tokenizer = "") {
  Loaded l;
  auto ck = OpenCheckpoint(path, {.tokenizer_path = tokenizer});
  EXPECT_TRUE(ck.ok()) << ck.status().message();
  l.checkpoint = std::move(ck).value();
  auto tok = Tokenizer::Create(*l.checkpoint.tokenizer);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  l.tokenizer = std::move(tok).value();
  ModelOptions options;
  options.max_context = max_context;
  auto model = Model::Load(l.checkpoint, options);
  EXPECT_TRUE(model.ok()) << model.status().message();
  l.model = std::move(model).value();
  return l;
}

std::vector<int32_t> Greedy(Loaded& l, const std::vector<int32_t>& prompt, int n) {
  Model& m = *l.model;
  m.ClearSequence(0);
  const int vocab = static_cast<int>(m.config().vocab_size);
  std::vector<float> logits(vocab);
  std::vector<BatchItem> batch;
  for (size_t i = 0; i < prompt.size(); ++i) batch.push_back({0, prompt[i], i + 1 == prompt.size()});
  EXPECT_TRUE(m.Forward(batch, logits.data()).ok());
  Sampler greedy(SamplingParams{});
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = greedy.Sample(logits.data(), vocab);
    out.push_back(next);
    if (next == l.tokenizer->eos_id()) break;
    BatchItem item{0, next, true};
    EXPECT_TRUE(m.Forward({&item, 1}, logits.data()).ok());
  }
  return out;
}

// Greedy continuations equal llama.cpp's for the GGUF conversions and for the llama2.c original.
TEST(Stories260kGolden, GreedyContinuationsMatchLlamaCpp) {
  struct Case {
    std::string file, tokenizer, golden_key;
  } cases[] = {
      {"stories260K-F32.gguf", "", "generated_ids_f32_kv_f32"},
      {"stories260K.bin", Stories("tok512.bin"), "generated_ids_f32_kv_f32"},
      {"stories260K-F16.gguf", "", "generated_ids_f16"},
      {"stories260K-BF16.gguf", "", "generated_ids_bf16"},
  };
  const int n = Golden()["greedy"]["max_new_tokens"];
  for (const Case& c : cases) {
    Loaded l = Load(Stories(c.file), 128, c.tokenizer);
    for (const auto& p : Golden()["greedy"]["prompts"]) {
      const auto prompt_ids = p["prompt_ids"].get<std::vector<int32_t>>();
      std::vector<int32_t> ours = l.tokenizer->Encode(p["prompt"].get<std::string>());
      if (ours.empty()) ours.push_back(l.tokenizer->bos_id());
      EXPECT_EQ(ours, prompt_ids) << c.file << ": " << p["prompt"];
      EXPECT_EQ(Greedy(l, prompt_ids, n), p[c.golden_key].get<std::vector<int32_t>>())
          << c.file << ": " << p["prompt"];
    }
  }
}

TEST(Stories260kGolden, LogitsMatchLlamaCpp) {
  const auto& g = Golden()["logits"];
  Loaded l = Load(Stories("stories260K-F32.gguf"), 128);
  const auto ids = g["token_ids"].get<std::vector<int32_t>>();
  const int vocab = g["n_vocab"];
  std::vector<BatchItem> batch;
  for (int32_t id : ids) batch.push_back({0, id, true});
  std::vector<float> logits(ids.size() * vocab);
  ASSERT_TRUE(l.model->Forward(batch, logits.data()).ok());
  double max_diff = 0;
  for (size_t i = 0; i < g["rows"].size(); ++i) {
    for (int v = 0; v < vocab; ++v) {
      max_diff = std::max(max_diff, std::fabs(logits[i * vocab + v] - g["rows"][i][v].get<double>()));
    }
  }
  // llama.cpp and rtnq sum in different orders; logits are O(10), printed to 7 digits.
  EXPECT_LT(max_diff, 2e-4);
}

// llama-perplexity's number, within 0.1%. Release builds run the whole text; sanitizer builds a
// prefix, compared with llama.cpp's running value after the same number of chunks.
TEST(Stories260kGolden, PerplexityMatchesLlamaPerplexity) {
  std::ifstream f(testing::DataDir() + "/text/tinystories_val.txt", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  if (!text.empty() && text.back() == '\n') text.pop_back();  // as llama.cpp reads -f files
  const auto& golden = Golden()["perplexity"];
#ifdef NDEBUG
  const int chunks_full = 0, chunks_quant = 48;
#else
  const int chunks_full = 8, chunks_quant = 8;
#endif
  for (const char* type : {"F32", "BF16", "Q8_0", "Q4_0"}) {
    const bool full = std::string(type) == "F32" || std::string(type) == "BF16";
    const int chunks = full ? chunks_full : chunks_quant;
    Loaded l = Load(Stories(std::string("stories260K-") + type + ".gguf"), 512);
    const auto tokens = l.tokenizer->Encode(text);
    EXPECT_EQ(static_cast<int64_t>(tokens.size()), golden["n_tokens"].get<int64_t>());
    PerplexityOptions options;
    options.n_ctx = 512;
    options.max_chunks = chunks;
    options.bos_id = l.tokenizer->bos_id();
    auto r = ComputePerplexity(*l.model, tokens, options);
    ASSERT_TRUE(r.ok()) << r.status().message();
    const auto& ref = golden["results"][type];
    const double want = chunks == 0 ? ref["ppl"].get<double>() : ref["chunk_ppl"][chunks - 1].get<double>();
    if (chunks == 0) {
      EXPECT_EQ(r->chunks, ref["n_chunk"].get<int>());
    }
    EXPECT_NEAR(r->ppl / want, 1.0, 1e-3) << type << ": rtnq " << r->ppl << ", llama.cpp " << want;
  }
}

}  // namespace
}  // namespace rtnq
