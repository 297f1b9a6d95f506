// rtnq tokenize MODEL -p TEXT: token ids and pieces as the model's tokenizer produces them.
#include <cstdio>

#include "command.h"
#include "common.h"

namespace rtnq::cli {
namespace {

struct TokenizeFlags {
  ModelFlags model;
  std::string prompt;
  std::string file;
  bool no_bos = false;
  bool parse_special = false;
  bool ids_only = false;
};

void Run(const TokenizeFlags& flags) {
  auto loaded = LoadForRun(flags.model, 1, 0, /*need_model=*/false);
  if (!loaded.ok()) return Fail("tokenize", loaded.status());
  if (!loaded->tokenizer) {
    return Fail("tokenize", Err("{}: the model has no tokenizer (pass --tokenizer FILE)",
                                flags.model.model_path));
  }
  std::string text = flags.prompt;
  if (!flags.file.empty()) {
    auto contents = ReadFileToString(flags.file);
    if (!contents.ok()) return Fail("tokenize", contents.status());
    text = *contents;
  }
  const Tokenizer& tok = *loaded->tokenizer;
  const auto ids = tok.Encode(text, {.add_special = !flags.no_bos, .parse_special = flags.parse_special});
  if (flags.model.json) {
    nlohmann::json out = {{"ids", ids}, {"count", ids.size()}};
    auto& pieces = out["pieces"] = nlohmann::json::array();
    for (int32_t id : ids) {
      // Pieces may be partial UTF-8; the JSON keeps them valid by replacing invalid bytes.
      pieces.push_back(tok.spec().tokens[id]);
    }
    std::printf("%s\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  if (flags.ids_only) {
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
    std::printf("\n");
    return;
  }
  for (int32_t id : ids) {
    std::printf("%6d -> '%s'\n", id, tok.spec().tokens[id].c_str());
  }
  std::printf("%zu tokens\n", ids.size());
}

}  // namespace

void RegisterTokenize(CLI::App& app) {
  auto flags = std::make_shared<TokenizeFlags>();
  auto* cmd = app.add_subcommand("tokenize", "Show how the model's tokenizer splits a text");
  flags->model.Add(cmd, /*with_runtime=*/false);
  auto* p = cmd->add_option("-p,--prompt", flags->prompt, "text to tokenize");
  auto* f = cmd->add_option("-f,--file", flags->file, "tokenize a file's contents instead");
  p->excludes(f);
  cmd->add_flag("--no-bos", flags->no_bos, "do not add BOS/EOS even if the tokenizer would");
  cmd->add_flag("--parse-special", flags->parse_special,
                "recognise special-token texts such as <|eot_id|> in the input");
  cmd->add_flag("--ids", flags->ids_only, "print only the ids, space separated");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
