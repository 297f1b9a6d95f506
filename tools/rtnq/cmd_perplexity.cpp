// rtnq perplexity MODEL -f TEXT --ctx N: llama.cpp-compatible perplexity (see eval/perplexity.h).
#include <unistd.h>

#include <cstdio>

#include "command.h"
#include "common.h"
#include "eval/perplexity.h"

namespace rtnq::cli {
namespace {

struct PerplexityFlags {
  ModelFlags model;
  std::string file;
  PerplexityOptions options;
  bool progress = false;
};

void Run(const PerplexityFlags& flags) {
  auto text = ReadFileToString(flags.file);
  if (!text.ok()) return Fail("perplexity", text.status());
  auto loaded = LoadForRun(flags.model, 1, flags.options.n_ctx);
  if (!loaded.ok()) return Fail("perplexity", loaded.status());
  if (!loaded->tokenizer) {
    return Fail("perplexity", Err("{}: the model has no tokenizer (pass --tokenizer FILE)",
                                  flags.model.model_path));
  }
  if (!flags.model.json) ReportQuantization(*loaded->model, loaded->plan.get());
  const Tokenizer& tok = *loaded->tokenizer;
  // llama.cpp drops one trailing newline of a -f file; doing the same keeps token counts equal.
  std::string contents = *text;
  if (!contents.empty() && contents.back() == '\n') contents.pop_back();
  const auto tokens = tok.Encode(contents, {.add_special = true});
  PerplexityOptions options = flags.options;
  options.bos_id = tok.spec().add_bos ? tok.bos_id() : -1;

  const bool show = flags.progress || (!flags.model.json && isatty(STDERR_FILENO));
  auto progress = [&](int done, int total, double ppl) {
    if (show) std::fprintf(stderr, "\r[%d/%d] ppl %.4f", done, total, ppl);
  };
  auto result = ComputePerplexity(*loaded->model, tokens, options, progress);
  if (show) std::fprintf(stderr, "\n");
  if (!result.ok()) return Fail("perplexity", result.status().WithContext(flags.file));

  const double tps = result->seconds > 0 ? result->chunks * options.n_ctx / result->seconds : 0;
  if (flags.model.json) {
    nlohmann::json out = {{"model", flags.model.model_path},
                          {"file", flags.file},
                          {"ppl", result->ppl},
                          {"ppl_stderr", result->ppl_stderr},
                          {"mean_nll", result->mean_nll},
                          {"n_ctx", options.n_ctx},
                          {"chunks", result->chunks},
                          {"tokens_total", result->tokens_total},
                          {"tokens_scored", result->tokens_scored},
                          {"chunk_ppl", result->chunk_ppl},
                          {"seconds", result->seconds},
                          {"tokens_per_second", tps},
                          {"threads", loaded->model->threads()},
                          {"load", QuantizationJson(*loaded->model, loaded->plan.get())}};
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("ppl = %.4f +/- %.4f  (%d chunks of %d tokens, %lld scored, %.1f s, %.0f tok/s)\n",
              result->ppl, result->ppl_stderr, result->chunks, options.n_ctx,
              (long long)result->tokens_scored, result->seconds, tps);
}

}  // namespace

void RegisterPerplexity(CLI::App& app) {
  auto flags = std::make_shared<PerplexityFlags>();
  auto* cmd = app.add_subcommand("perplexity", "Perplexity of a text file, as llama-perplexity computes it");
  flags->model.Add(cmd);
  flags->model.AddQuantization(cmd);
  cmd->add_option("-f,--file", flags->file, "text file")->required();
  cmd->add_option("-c,--ctx", flags->options.n_ctx, "tokens per chunk")->capture_default_str();
  cmd->add_option("-b,--batch", flags->options.n_batch, "tokens per forward pass")->capture_default_str();
  cmd->add_option("--chunks", flags->options.max_chunks, "stop after this many chunks (0 = all)");
  cmd->add_flag("--progress", flags->progress, "print running perplexity per chunk to stderr");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
