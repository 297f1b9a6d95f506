// The selective-precision flags shared by quantize, generate, perplexity and fit:
//   --quant rtn4[:g128]           default precision of the block linear layers
//   --plan FILE                   a plan file (text or .json; docs/selective-precision.md)
//   --upcast-layers SET           horizontal: these layers at --upcast-to (default int8)
//   --upcast-modules LIST         vertical: these modules in every layer at --upcast-to
//   --rule "RULE"                 any rule, e.g. hybrid "layers=first:2 modules=qkv -> int8"
//   --group-fallback keep|row     when a group does not divide a tensor's inputs
//   --strict                      make that an error instead
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "base/status.h"
#include "quant/plan.h"

namespace rtnq::cli {

struct PlanFlags {
  std::string quant;
  std::string plan_file;
  std::string upcast_layers;
  std::string upcast_modules;
  std::string upcast_to = "int8";
  std::vector<std::string> rules;
  std::string fallback;
  bool strict = false;

  void Add(CLI::App* cmd);
  // True when any flag asks for quantization or a plan.
  bool Any() const;
  Result<QuantPlan> Build() const;
};

}  // namespace rtnq::cli
