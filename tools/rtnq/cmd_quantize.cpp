// rtnq quantize MODEL [--quant rtn4 | --plan FILE ...] (--dry-run | -o OUT [--format F]):
// prints the per-tensor plan, or writes a quantized checkpoint vLLM / HF / llama.cpp load.
#include <unistd.h>

#include <cstdio>

#include "base/thread_pool.h"
#include "base/timer.h"
#include "command.h"
#include "common.h"
#include "plan_flags.h"
#include "quant/export.h"

namespace rtnq::cli {
namespace {

struct QuantizeFlags {
  ModelFlags model;
  PlanFlags plan;
  std::string output;
  std::string format = "compressed-tensors";
  std::string arithmetic = "fp32";
  bool dry_run = false;
  bool allow_nonfinite = false;
  bool force = false;
  bool progress = false;
};

nlohmann::json PlanJson(const CompiledPlan& compiled, const QuantPlan& plan) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& t : compiled.tensors) {
    nlohmann::json row = {{"name", t.name},
                          {"shape", t.shape},
                          {"source_dtype", DTypeName(t.source_dtype)},
                          {"precision", t.precision.Name()},
                          {"bytes", t.bytes}};
    if (t.rule >= 0) row["rule"] = plan.rules[t.rule].text;
    if (!t.note.empty()) row["note"] = t.note;
    tensors.push_back(row);
  }
  return {{"plan", plan.ToText()},
          {"tensors", tensors},
          {"totals",
           {{"weights", compiled.total_weights},
            {"bytes", compiled.total_bytes},
            {"gib", compiled.total_bytes / 1073741824.0},
            {"bits_per_weight", compiled.BitsPerWeight()}}}};
}

void PrintPlan(const CompiledPlan& compiled, const QuantPlan& plan) {
  std::printf("plan:\n");
  std::string text = plan.ToText();
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    std::printf("  %s\n", text.substr(pos, end - pos).c_str());
    pos = end + 1;
  }
  std::printf("\n%-48s %-14s %-16s %12s  %s\n", "tensor", "shape", "precision", "bytes", "note");
  for (const auto& t : compiled.tensors) {
    std::printf("%-48s %-14s %-16s %12llu  %s\n", t.name.c_str(), ShapeString(t.shape).c_str(),
                t.precision.Name().c_str(), (unsigned long long)t.bytes, t.note.c_str());
  }
  std::printf("\n%.3f M weights, %s, %.3f bits per weight\n", compiled.total_weights / 1e6,
              HumanBytes(static_cast<double>(compiled.total_bytes)).c_str(), compiled.BitsPerWeight());
}

void Run(const QuantizeFlags& flags) {
  auto loaded = LoadForRun(flags.model, 1, 0, /*need_model=*/false);
  if (!loaded.ok()) return Fail("quantize", loaded.status());
  auto plan = flags.plan.Build();
  if (!plan.ok()) return Fail("quantize", plan.status());
  if (!flags.plan.Any()) return Fail("quantize", Err("nothing to do: give --quant, --plan or a rule"));
  auto compiled = CompilePlanForCheckpoint(*plan, loaded->checkpoint, flags.plan.strict);
  if (!compiled.ok()) return Fail("quantize", compiled.status());

  if (flags.dry_run) {
    if (flags.model.json) {
      std::printf("%s\n", PlanJson(*compiled, *plan).dump(2).c_str());
    } else {
      PrintPlan(*compiled, *plan);
    }
    return;
  }
  if (flags.output.empty()) return Fail("quantize", Err("-o OUT is required unless --dry-run"));
  auto format = ParseExportFormat(flags.format);
  if (!format.ok()) return Fail("quantize", format.status());

  ThreadPool pool(flags.model.threads > 0 ? flags.model.threads : DefaultThreadCount());
  ExportOptions options;
  options.format = *format;
  options.output = flags.output;
  options.overwrite = flags.force;
  options.quantize.arithmetic = flags.arithmetic == "vllm" ? RtnArithmetic::kVllm : RtnArithmetic::kFp32;
  options.quantize.allow_nonfinite = flags.allow_nonfinite;
  options.plan_text = plan->ToText();
  options.pool = &pool;
  const bool show = flags.progress || (!flags.model.json && isatty(STDERR_FILENO));
  Timer timer;
  if (show) {
    options.progress = [&](size_t done, size_t total, uint64_t bytes) {
      std::fprintf(stderr, "\r[%zu/%zu] %.2f GB read, %.2f GB/s", done, total, bytes / 1e9,
                   bytes / 1e9 / std::max(1e-9, timer.Seconds()));
    };
  }
  auto result = ExportCheckpoint(loaded->checkpoint, *compiled, options);
  if (show) std::fprintf(stderr, "\n");
  if (!result.ok()) return Fail("quantize", result.status());

  const double gbps = result->seconds > 0 ? result->source_bytes / 1e9 / result->seconds : 0;
  if (flags.model.json) {
    nlohmann::json out = PlanJson(*compiled, *plan);
    out.erase("tensors");
    out["output"] = flags.output;
    out["format"] = ExportFormatName(*format);
    out["arithmetic"] = RtnArithmeticName(options.quantize.arithmetic);
    out["files"] = result->files;
    out["bytes_written"] = result->bytes_written;
    out["source_bytes"] = result->source_bytes;
    out["seconds"] = result->seconds;
    out["quantize_seconds"] = result->quantize_seconds;
    out["gb_per_second"] = gbps;
    std::printf("%s\n", out.dump(2).c_str());
    return;
  }
  std::printf("wrote %s (%s, %s, %.3f bits per weight) in %.2f s: %.2f GB of weights at %.2f GB/s "
              "(RTN itself %.2f s)\n",
              flags.output.c_str(), ExportFormatName(*format),
              HumanBytes(static_cast<double>(result->bytes_written)).c_str(), compiled->BitsPerWeight(),
              result->seconds, result->source_bytes / 1e9, gbps, result->quantize_seconds);
}

}  // namespace

void RegisterQuantize(CLI::App& app) {
  auto flags = std::make_shared<QuantizeFlags>();
  auto* cmd = app.add_subcommand("quantize", "Quantize a model by RTN (selective precision) and export it");
  flags->model.Add(cmd, /*with_runtime=*/false);
  cmd->add_option("-t,--threads", flags->model.threads, "worker threads (default: all cores, or RTNQ_THREADS)");
  flags->plan.Add(cmd);
  cmd->add_option("-o,--output", flags->output, "output directory (compressed-tensors, gptq) or .gguf file");
  cmd->add_option("--format", flags->format, "compressed-tensors (default), gptq or gguf")
      ->check(CLI::IsMember({"compressed-tensors", "ct", "gptq", "gguf"}));
  cmd->add_option("--arithmetic", flags->arithmetic,
                  "fp32 (default, most accurate) or vllm (bit-identical to vLLM's on-the-fly RTN)")
      ->check(CLI::IsMember({"fp32", "vllm"}));
  cmd->add_flag("--dry-run", flags->dry_run, "print the per-tensor plan and totals; write nothing");
  cmd->add_flag("--allow-nonfinite", flags->allow_nonfinite, "quantize NaN/Inf weights instead of failing");
  cmd->add_flag("--force", flags->force, "overwrite an existing output");
  cmd->add_flag("--progress", flags->progress, "show progress on stderr");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
