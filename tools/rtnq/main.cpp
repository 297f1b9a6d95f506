// rtnq: data-free round-to-nearest quantization and inference for LLaMA-family models.
#include <cstdio>

#include "command.h"

namespace rtnq::cli {
namespace {
int g_exit_code = 0;
}  // namespace
void SetExitCode(int code) { g_exit_code = code; }
int ExitCode() { return g_exit_code; }
}  // namespace rtnq::cli

int main(int argc, char** argv) {
  CLI::App app{"rtnq: data-free round-to-nearest quantization and inference for LLaMA-family models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rtnq 0.1.0");
  for (auto reg : {rtnq::cli::RegisterInspect, rtnq::cli::RegisterGenerate,
                   rtnq::cli::RegisterPerplexity, rtnq::cli::RegisterTokenize,
                   rtnq::cli::RegisterSynth, rtnq::cli::RegisterQuantize,
                   rtnq::cli::RegisterFit, rtnq::cli::RegisterBench}) {
    reg(app);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return rtnq::cli::ExitCode();
}
