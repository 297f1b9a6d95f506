// Shared plumbing of the rtnq subcommands: opening a model with its tokenizer, the common flags,
// error reporting and small output helpers.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "base/status.h"
#include "io/checkpoint.h"
#include "plan_flags.h"
#include "quant/plan.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace rtnq::cli {

// Flags every model-running command shares.
struct ModelFlags {
  std::string model_path;
  std::string tokenizer_path;
  int threads = 0;
  std::string precision = "as-stored";
  bool json = false;
  // Quantization while loading (generate, perplexity): --quant / --plan / upcast rules.
  PlanFlags plan;
  std::string arithmetic = "fp32";
  bool allow_nonfinite = false;
  // Activations of the RTN matmuls: int8 (default: per-token int8, VNNI kernels) or f32 (exact
  // weight-only). docs/benchmarks.md has the speed and accuracy measurements behind the default.
  std::string act = "int8";

  void Add(CLI::App* cmd, bool with_runtime = true);
  // Adds the plan flags and --arithmetic / --allow-nonfinite / --act (on-the-fly RTN).
  void AddQuantization(CLI::App* cmd);
};

struct LoadedModel {
  Checkpoint checkpoint;
  std::unique_ptr<CompiledPlan> plan;    // set when the flags ask for quantization
  std::unique_ptr<Tokenizer> tokenizer;  // null when the checkpoint has none
  std::unique_ptr<Model> model;          // null when only the tokenizer was requested
  double load_seconds = 0;
};

// bf16 activations run fast only on AMX tiles (RTN weights have just a scalar kernel elsewhere):
// an error naming the alternatives when the selected ISA lacks them.
Status CheckActivationsRunFast(ActType act);

Result<LoadedModel> LoadForRun(const ModelFlags& flags, int max_sequences, int max_context,
                               bool need_model = true);

// Builds the model, quantizing on the fly when `plan` is not null.
Result<std::unique_ptr<Model>> BuildModel(const Checkpoint& checkpoint, const ModelFlags& flags,
                                          const CompiledPlan* plan, int max_sequences, int max_context);

// One line on stderr about on-the-fly quantization (time, GB/s, sizes), if any happened.
void ReportQuantization(const Model& model, const CompiledPlan* plan);
nlohmann::json QuantizationJson(const Model& model, const CompiledPlan* plan);

// Prints "rtnq <command>: <message>" on stderr and sets the exit code to 1.
void Fail(const std::string& command, const Status& status);

// Collects the bytes of streamed tokens and returns the longest prefix that is complete UTF-8,
// so a multi-byte character split across tokens is printed whole.
class Utf8Stream {
 public:
  std::string Push(const std::string& bytes);
  std::string Flush();

 private:
  std::string pending_;
};

std::string ShapeString(const std::vector<int64_t>& shape);
std::string HumanBytes(double bytes);

}  // namespace rtnq::cli
