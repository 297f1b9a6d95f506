// Subcommands of the rtnq binary: one file each (cmd_<name>.cpp) that registers itself here.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace rtnq::cli {

// Adds a subcommand to `app`. The callback it installs sets the process exit code through
// SetExitCode(); errors are printed as one line "rtnq <cmd>: <message>" on stderr.
using Registrar = void (*)(CLI::App& app);

void RegisterInspect(CLI::App& app);
void RegisterGenerate(CLI::App& app);
void RegisterPerplexity(CLI::App& app);
void RegisterTokenize(CLI::App& app);
void RegisterSynth(CLI::App& app);
void RegisterFit(CLI::App& app);
void RegisterQuantize(CLI::App& app);
void RegisterBench(CLI::App& app);

void SetExitCode(int code);
int ExitCode();

}  // namespace rtnq::cli
