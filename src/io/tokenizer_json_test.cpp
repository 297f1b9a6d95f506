// ParseTokenizerJson: the BPE flavours it recognises, what it fills in, and its errors.
#include "io/tokenizer_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "arch/shapes.h"
#include "io/synthetic_tokenizer.h"

namespace rtnq {
namespace {

using Json = nlohmann::json;

// A byte-level BPE over {a, b, c, ab, abc} (in GPT-2 symbol form these bytes are themselves),
// with two special tokens and one user-defined token, shaped like tokenizers' output.
Json ByteLevelJson() {
  return Json::parse(R"({
    "version": "1.0",
    "added_tokens": [
      {"id": 5, "content": "<|begin_of_text|>", "special": true},
      {"id": 6, "content": "<|end_of_text|>", "special": true},
      {"id": 7, "content": "<tool>", "special": false}
    ],
    "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [5], "tokens": ["<|begin_of_text|>"]}}},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "dropout": null, "unk_token": null, "byte_fallback": false,
              "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4},
              "merges": ["a b", "ab c"]}
  })");
}

std::string Message(const Result<TokenizerSpec>& r) { return r.ok() ? "OK" : r.status().message(); }

TEST(TokenizerJson, ReadsAByteLevelBpe) {
  auto spec = ParseTokenizerJson(ByteLevelJson().dump(), "t.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_EQ(spec->kind, TokenizerKind::kByteLevelBpe);
  EXPECT_EQ(spec->pre, "gpt-2");
  EXPECT_TRUE(spec->pre_regex.empty());
  EXPECT_EQ(spec->tokens, (std::vector<std::string>{"a", "b", "c", "ab", "abc", "<|begin_of_text|>",
                                                     "<|end_of_text|>", "<tool>"}));
  EXPECT_EQ(spec->merges, (std::vector<std::string>{"a b", "ab c"}));
  EXPECT_EQ(spec->types[0], TokenType::kNormal);
  EXPECT_EQ(spec->types[5], TokenType::kControl);
  EXPECT_EQ(spec->types[7], TokenType::kUserDefined);
  EXPECT_EQ(spec->bos_id, 5);
  EXPECT_TRUE(spec->add_bos);
  EXPECT_EQ(spec->eos_id, 6);  // by name: the post-processor adds no EOS
  EXPECT_FALSE(spec->add_eos);
  EXPECT_FALSE(spec->add_space_prefix);
}

TEST(TokenizerJson, ReadsArrayMergesAndKnownSplitPatterns) {
  Json j = ByteLevelJson();
  j["model"]["merges"] = Json::parse(R"([["a", "b"], ["ab", "c"]])");
  j["model"]["ignore_merges"] = true;
  j["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
       "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]})");
  auto spec = ParseTokenizerJson(j.dump(), "t.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_EQ(spec->pre, "llama-bpe");
  EXPECT_TRUE(spec->ignore_merges);
  EXPECT_EQ(spec->merges, (std::vector<std::string>{"a b", "ab c"}));

  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\p{L}+|\\s+";
  spec = ParseTokenizerJson(j.dump(), "t.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_EQ(spec->pre, "custom");
  EXPECT_EQ(spec->pre_regex, "\\p{L}+|\\s+");

  // SmolLM / StarCoder: single digits, then GPT-2's regex.
  j["pre_tokenizer"] = Json::parse(R"({"type": "Sequence", "pretokenizers": [
      {"type": "Digits", "individual_digits": true},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]})");
  spec = ParseTokenizerJson(j.dump(), "t.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_EQ(spec->pre, "smollm");
  EXPECT_TRUE(spec->pre_regex.empty());
}

TEST(TokenizerJson, ReadsASentencePieceStyleBpe) {
  const Json j = Json::parse(R"({
    "added_tokens": [{"id": 0, "content": "<unk>", "special": true},
                     {"id": 1, "content": "<s>", "special": true},
                     {"id": 2, "content": "</s>", "special": true}],
    "normalizer": {"type": "Sequence", "normalizers": [
        {"type": "Prepend", "prepend": "\u2581"},
        {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    "pre_tokenizer": null,
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
              "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "\u2581": 4, "h": 5, "i": 6,
                        "\u2581h": 7, "\u2581hi": 8},
              "merges": ["\u2581 h", "\u2581h i"]}
  })");
  auto spec = ParseTokenizerJson(j.dump(), "spm.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_EQ(spec->kind, TokenizerKind::kSentencePieceBpe);
  EXPECT_TRUE(spec->add_space_prefix);
  EXPECT_TRUE(spec->add_bos);
  EXPECT_EQ(spec->bos_id, 1);
  EXPECT_EQ(spec->eos_id, 2);
  EXPECT_EQ(spec->unk_id, 0);
  EXPECT_EQ(spec->types[0], TokenType::kUnknown);
  EXPECT_EQ(spec->types[1], TokenType::kControl);
  EXPECT_EQ(spec->types[3], TokenType::kByte);
  ASSERT_EQ(spec->scores.size(), 9u);
  EXPECT_EQ(spec->scores[7], 0.0f);   // produced by merge 0
  EXPECT_EQ(spec->scores[8], -1.0f);  // merge 1
  EXPECT_LT(spec->scores[5], -1.0f);  // no merge makes "h"
}

TEST(TokenizerJson, MetaspaceDecidesTheSpacePrefix) {
  Json j = Json::parse(R"({"pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
      "prepend_scheme": "never", "split": false},
      "model": {"type": "BPE", "byte_fallback": true, "vocab": {"a": 0}, "merges": []}})");
  auto spec = ParseTokenizerJson(j.dump(), "m.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_EQ(spec->kind, TokenizerKind::kSentencePieceBpe);
  EXPECT_FALSE(spec->add_space_prefix);
  j["pre_tokenizer"]["prepend_scheme"] = "first";
  spec = ParseTokenizerJson(j.dump(), "m.json");
  ASSERT_TRUE(spec.ok()) << Message(spec);
  EXPECT_TRUE(spec->add_space_prefix);
}

void ExpectError(const Json& j, const std::string& needle) {
  auto spec = ParseTokenizerJson(j.dump(), "bad.json");
  ASSERT_FALSE(spec.ok()) << "expected an error mentioning " << needle;
  EXPECT_NE(spec.status().message().find("bad.json"), std::string::npos) << spec.status().message();
  EXPECT_NE(spec.status().message().find(needle), std::string::npos) << spec.status().message();
}

TEST(TokenizerJson, RejectsBrokenFilesNamingTheKey) {
  EXPECT_FALSE(ParseTokenizerJson("{\"model\": ", "bad.json").ok());
  EXPECT_FALSE(ParseTokenizerJson("[]", "bad.json").ok());
  Json j = ByteLevelJson();
  j["model"]["vocab"]["c"] = 9;  // hole at 2, out of range
  ExpectError(j, "model.vocab");
  j = ByteLevelJson();
  j["added_tokens"][2]["id"] = 4;  // clashes with "abc"
  ExpectError(j, "added_tokens[2]");
  j = ByteLevelJson();
  j["model"]["merges"][1] = "ab d";
  ExpectError(j, "model.merges[1]");
  j = ByteLevelJson();
  j["model"]["merges"][0] = "b c";  // "bc" is not a token
  ExpectError(j, "model.merges[0]");
  j = ByteLevelJson();
  j["model"]["type"] = "Unigram";
  ExpectError(j, "model.type");
  j = ByteLevelJson();
  j["pre_tokenizer"] = Json::parse(R"({"type": "Whitespace"})");
  ExpectError(j, "pre_tokenizer.type");
  j = ByteLevelJson();
  j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<nope>";
  ExpectError(j, "post_processor");
  j = ByteLevelJson();
  j["model"]["vocab"]["a"] = "zero";
  ExpectError(j, "model.vocab");
}

// The tokenizer.json rtnq writes with synthetic models (reserved special tokens after the BPE
// vocabulary, TemplateProcessing with BOS) must load as-is.
TEST(TokenizerJson, LoadsTheSyntheticModelTokenizer) {
  for (const char* shape : {"tiny-llama3", "tiny-qwen2"}) {
    auto config = KnownShape(shape);
    ASSERT_TRUE(config.has_value()) << shape;
    auto vocab = BuildSyntheticVocab(*config);
    ASSERT_TRUE(vocab.ok()) << vocab.status().message();
    auto spec = ParseTokenizerJson(SyntheticTokenizerJson(*config, *vocab), "synthetic.json");
    ASSERT_TRUE(spec.ok()) << Message(spec);
    EXPECT_EQ(spec->kind, TokenizerKind::kByteLevelBpe) << shape;
    EXPECT_EQ(spec->tokens, vocab->tokens) << shape;
    EXPECT_EQ(spec->merges, vocab->merges) << shape;
    EXPECT_EQ(static_cast<int64_t>(spec->tokens.size()), config->vocab_size) << shape;
    if (!config->bos_token_ids.empty()) {
      EXPECT_EQ(spec->bos_id, config->bos_token_ids[0]) << shape;
      EXPECT_TRUE(spec->add_bos) << shape;
      EXPECT_EQ(spec->types[spec->bos_id], TokenType::kControl) << shape;
    }
  }
}

}  // namespace
}  // namespace rtnq
