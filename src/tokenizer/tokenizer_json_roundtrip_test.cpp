// tokenizer.json -> TokenizerSpec -> Tokenizer: encode/decode through the HF reader.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "arch/shapes.h"
#include "io/synthetic_tokenizer.h"
#include "io/tokenizer_json.h"
#include "tokenizer/gpt2_files.h"
#include "tokenizer/tokenizer_test_util.h"

namespace rtnq {
namespace {

using Json = nlohmann::json;
using testing::DataDir;
using testing::IdsToString;
using testing::ReadVocabCases;
using testing::VocabDir;

constexpr EncodeOptions kPlain{.add_special = false, .parse_special = false};

std::unique_ptr<Tokenizer> FromJson(const Json& j) {
  auto spec = ParseTokenizerJson(j.dump(), "test.json");
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  if (!spec.ok()) return nullptr;
  auto tok = Tokenizer::Create(*spec);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return tok.ok() ? std::move(*tok) : nullptr;
}

// "Ġ" is GPT-2's symbol for the space byte.
TEST(TokenizerJsonRoundTrip, SmallByteLevelBpe) {
  const Json j = Json::parse(R"({
    "added_tokens": [
      {"id": 8, "content": "<|begin_of_text|>", "special": true},
      {"id": 9, "content": "<|end_of_text|>", "special": true},
      {"id": 10, "content": "<tool>", "special": false}],
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE",
      "vocab": {"a": 0, "b": 1, "c": 2, "\u0120": 3, "ab": 4, "abc": 5, "\u0120a": 6, "\u0120ab": 7},
      "merges": [["a", "b"], ["ab", "c"], ["\u0120", "a"], ["\u0120a", "b"], ["\u0120", "ab"]]}
  })");
  auto tok = FromJson(j);
  ASSERT_NE(tok, nullptr);
  // "abc ab" pre-tokenizes to "abc" and " ab". In " ab" the pair (a, b) has the lowest rank, so
  // it merges first and "Ġ ab" (rank 4) finishes the word; "Ġa b" never applies. <tool> is
  // user-defined: split out even without parse_special.
  const std::vector<int32_t> ids = tok->Encode("abc ab<tool>c", {});
  EXPECT_EQ(ids, (std::vector<int32_t>{8, 5, 7, 10, 2}));
  EXPECT_EQ(tok->Decode(ids), "abc ab<tool>c");
  EXPECT_EQ(tok->Encode("ab<|end_of_text|>", {.add_special = false, .parse_special = true}),
            (std::vector<int32_t>{4, 9}));
  EXPECT_EQ(tok->TokenToPiece(7), " ab");
  EXPECT_EQ(tok->TokenToPiece(9), "");
  EXPECT_EQ(tok->Decode(tok->Encode("cab  ba", kPlain)), "cab  ba");
}

// OpenAI's GPT-2 files rewritten as a tokenizers-style tokenizer.json give llama.cpp's ids.
TEST(TokenizerJsonRoundTrip, Gpt2AsTokenizerJsonMatchesTheVectors) {
  auto spec = ReadGpt2Vocab(DataDir() + "/tokenizer/gpt2/encoder.json", DataDir() + "/tokenizer/gpt2/vocab.bpe");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  Json vocab = Json::object();
  for (size_t i = 0; i + 1 < spec->tokens.size(); ++i) vocab[spec->tokens[i]] = i;
  Json j;
  j["added_tokens"] = Json::array({{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  j["post_processor"] = {{"type", "ByteLevel"}};
  j["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", spec->merges}};
  auto tok = FromJson(j);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->eos_id(), 50256);
  const auto cases = ReadVocabCases(VocabDir() + "/ggml-vocab-gpt-2.gguf");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    const auto ids = tok->Encode(c.text, kPlain);
    EXPECT_EQ(IdsToString(ids), IdsToString(c.ids)) << c.text;
    EXPECT_EQ(tok->Decode(ids), c.text);
  }
}

// The LLaMA SentencePiece vocab as transformers' converter writes it: merges (a, b) for every
// token a+b whose halves are tokens, ordered by the merged token's score. Read back with merge
// ranks standing in for scores, it must reproduce the SentencePiece encodings.
TEST(TokenizerJsonRoundTrip, LlamaSpmAsTokenizerJsonMatchesTheVectors) {
  const std::string path = VocabDir() + "/ggml-vocab-llama-spm.gguf";
  auto gguf = ReadGguf(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  auto spm = TokenizerFromGguf(*gguf);
  ASSERT_TRUE(spm.ok()) << spm.status().message();
  std::map<std::string, int32_t> ids;
  for (size_t i = 0; i < spm->tokens.size(); ++i) ids[spm->tokens[i]] = static_cast<int32_t>(i);
  struct MergeRow {
    float score;
    int32_t result;
    std::string left, right;
  };
  std::vector<MergeRow> rows;
  for (size_t t = 0; t < spm->tokens.size(); ++t) {
    if (spm->types[t] != TokenType::kNormal) continue;
    const std::string& text = spm->tokens[t];
    for (size_t cut = 1; cut < text.size(); ++cut) {
      const std::string left = text.substr(0, cut), right = text.substr(cut);
      if (ids.count(left) && ids.count(right)) rows.push_back({spm->scores[t], static_cast<int32_t>(t), left, right});
    }
  }
  std::stable_sort(rows.begin(), rows.end(), [](const MergeRow& a, const MergeRow& b) {
    return a.score != b.score ? a.score > b.score : a.result < b.result;
  });
  Json vocab = Json::object();
  Json added = Json::array();
  for (size_t i = 0; i < spm->tokens.size(); ++i) {
    vocab[spm->tokens[i]] = i;
    if (spm->types[i] == TokenType::kControl || spm->types[i] == TokenType::kUnknown) {
      added.push_back({{"id", i}, {"content", spm->tokens[i]}, {"special", true}});
    }
  }
  Json merges = Json::array();
  for (const MergeRow& r : rows) merges.push_back(Json::array({r.left, r.right}));
  Json j;
  j["added_tokens"] = added;
  j["normalizer"] = {{"type", "Sequence"},
                     {"normalizers", Json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                                  {{"type", "Replace"}, {"pattern", {{"String", " "}}},
                                                   {"content", "\xE2\x96\x81"}}})}};
  j["post_processor"] = {{"type", "TemplateProcessing"},
                         {"single", Json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                 {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})}};
  j["model"] = {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}};
  auto tok = FromJson(j);
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->Encode("Hello", {}), (std::vector<int32_t>{1, 15043}));
  const auto cases = ReadVocabCases(path);
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    const auto got = tok->Encode(c.text, kPlain);
    EXPECT_EQ(IdsToString(got), IdsToString(c.ids)) << c.text;
    EXPECT_EQ(tok->Decode(got), c.text);
  }
}

TEST(TokenizerJsonRoundTrip, SyntheticModelTokenizerEncodesItsCorpus) {
  auto config = KnownShape("tiny-llama3");
  ASSERT_TRUE(config.has_value());
  auto vocab = BuildSyntheticVocab(*config);
  ASSERT_TRUE(vocab.ok()) << vocab.status().message();
  auto spec = ParseTokenizerJson(SyntheticTokenizerJson(*config, *vocab), "synthetic.json");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  auto tok = Tokenizer::Create(*spec);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  const std::string corpus = SyntheticTokenizerCorpus();
  const auto ids = (*tok)->Encode(corpus, {});
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids[0], config->bos_token_ids[0]);
  EXPECT_LT(ids.size(), corpus.size() / 2);  // the merges were learned on this very text
  EXPECT_EQ((*tok)->Decode(ids), corpus);
  for (int32_t id : ids) {
    EXPECT_TRUE(id < vocab->num_bpe_tokens || id == config->bos_token_ids[0]) << id;
  }
  const int32_t eos = config->eos_token_ids[0];
  const auto special = (*tok)->Encode(spec->tokens[eos], {.add_special = false, .parse_special = true});
  EXPECT_EQ(special, std::vector<int32_t>{eos});
}

}  // namespace
}  // namespace rtnq
