// rtnq synth --shape NAME -o DIR: a deterministic, seeded synthetic model written as an HF
// directory (config.json, tokenizer.json, safetensors weights).
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdio>

#include "arch/shapes.h"
#include "command.h"
#include "common.h"
#include "io/synthetic_model.h"

namespace rtnq::cli {
namespace {

struct SynthFlags {
  std::string shape;
  std::string output;
  uint64_t seed = 0;
  std::string dtype = "bf16";
  int64_t layers = 0;
  int threads = 0;
  bool force = false;
  bool json = false;
  bool progress = false;
};

// "12% 1.23 GB/s" on one rewritten stderr line, at most ~5 times a second.
class ProgressLine {
 public:
  void Update(uint64_t done, uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double gbps = seconds > 0 ? static_cast<double>(done) / seconds / 1e9 : 0.0;
    std::fprintf(stderr, "\rrtnq synth: %5.1f%%  %s / %s  %.2f GB/s", total ? 100.0 * done / total : 100.0,
                 HumanBytes(static_cast<double>(done)).c_str(),
                 HumanBytes(static_cast<double>(total)).c_str(), gbps);
    if (done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_;
};

std::string CountString(double n) {
  if (n >= 1e9) return fmt::format("{:.2f}B", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f}M", n / 1e6);
  return fmt::format("{:.1f}K", n / 1e3);
}

void Run(const SynthFlags& flags) {
  SynthOptions options;
  options.shape = flags.shape;
  options.seed = flags.seed;
  options.layers = flags.layers;
  options.force = flags.force;
  options.threads = flags.threads;
  std::string upper = flags.dtype;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const auto dtype = ParseDType(upper);
  if (!dtype || Info(*dtype).quantized) {
    return Fail("synth", Err("--dtype {}: expected bf16, f16 or f32", flags.dtype));
  }
  options.dtype = *dtype;
  ProgressLine progress;
  if (flags.progress || isatty(STDERR_FILENO)) {
    options.progress = [&progress](uint64_t done, uint64_t total) { progress.Update(done, total); };
  }
  auto summary = WriteSyntheticModel(flags.output, options);
  if (!summary.ok()) return Fail("synth", summary.status());
  const double gbps = summary->seconds > 0 ? summary->bytes / summary->seconds / 1e9 : 0.0;
  if (flags.json) {
    nlohmann::json out = {{"path", summary->path},
                          {"shape", summary->shape},
                          {"seed", flags.seed},
                          {"dtype", std::string(DTypeName(options.dtype))},
                          {"layers", summary->config.num_layers},
                          {"params", summary->parameters},
                          {"bytes", summary->bytes},
                          {"seconds", summary->seconds},
                          {"files", summary->files}};
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("wrote %s: %s (%d layers), seed %llu, %s, %s parameters, %s in %zu files, "
              "%.1f s (%.2f GB/s)\n",
              summary->path.c_str(), summary->shape.c_str(),
              static_cast<int>(summary->config.num_layers),
              static_cast<unsigned long long>(flags.seed), std::string(DTypeName(options.dtype)).c_str(),
              CountString(static_cast<double>(summary->parameters)).c_str(), HumanBytes(static_cast<double>(summary->bytes)).c_str(),
              summary->files.size(), summary->seconds, gbps);
}

}  // namespace

void RegisterSynth(CLI::App& app) {
  auto flags = std::make_shared<SynthFlags>();
  std::string shapes;
  for (const auto& s : KnownShapeNames()) shapes += (shapes.empty() ? "" : ", ") + s;
  auto* cmd = app.add_subcommand("synth", "Write a deterministic synthetic model in HF format");
  cmd->add_option("--shape", flags->shape, "model shape: " + shapes)->required();
  cmd->add_option("-o,--output", flags->output, "output directory")->required();
  cmd->add_option("--seed", flags->seed, "random seed (same seed, same bytes)");
  cmd->add_option("--dtype", flags->dtype, "bf16 (default), f16 or f32");
  cmd->add_option("--layers", flags->layers, "override the shape's layer count");
  cmd->add_option("-t,--threads", flags->threads, "generator threads (default: all)");
  cmd->add_flag("--force", flags->force, "write into a non-empty directory");
  cmd->add_flag("--progress", flags->progress, "show progress on stderr even if not a terminal");
  cmd->add_flag("--json", flags->json, "print a JSON summary");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
