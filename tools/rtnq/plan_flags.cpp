#include "plan_flags.h"

namespace rtnq::cli {

void PlanFlags::Add(CLI::App* cmd) {
  cmd->add_option("--quant", quant, "default precision of the linear layers: rtn8, rtn4, int4:g32, ... or keep");
  cmd->add_option("--plan", plan_file, "selective-precision plan file (text rules or .json)");
  cmd->add_option("--upcast-layers", upcast_layers,
                  "horizontal strategy: keep these layers at --upcast-to (e.g. first:2,last:2)");
  cmd->add_option("--upcast-modules", upcast_modules,
                  "vertical strategy: keep these modules at --upcast-to in every layer (e.g. mlp_down)");
  cmd->add_option("--upcast-to", upcast_to, "precision for --upcast-layers/--upcast-modules")->capture_default_str();
  cmd->add_option("--rule", rules, "a plan rule, e.g. 'layers=middle:4 modules=qkv -> int8' (repeatable)");
  cmd->add_option("--group-fallback", fallback,
                  "when the group does not divide a tensor's input dimension: keep (16-bit) or row")
      ->check(CLI::IsMember({"keep", "row"}));
  cmd->add_flag("--strict", strict, "fail instead of falling back when a group does not fit");
}

bool PlanFlags::Any() const {
  return !quant.empty() || !plan_file.empty() || !upcast_layers.empty() || !upcast_modules.empty() ||
         !rules.empty();
}

Result<QuantPlan> PlanFlags::Build() const {
  QuantPlan plan;
  if (!plan_file.empty()) {
    RTNQ_ASSIGN_OR_RETURN(plan, QuantPlan::ReadFile(plan_file));
  }
  if (!quant.empty()) RTNQ_RETURN_IF_ERROR(plan.AddRule("default " + quant, "--quant"));
  if (!fallback.empty()) RTNQ_RETURN_IF_ERROR(plan.AddRule("fallback " + fallback, "--group-fallback"));
  // Upcasts inherit the default's group and scale dtype unless --upcast-to names them.
  std::string target = upcast_to;
  if (plan.base.IsQuantized() && target.find(':') == std::string::npos &&
      (target == "int8" || target == "int4" || target == "rtn8" || target == "rtn4")) {
    RTNQ_ASSIGN_OR_RETURN(Precision p, ParsePrecision(target));
    p.rtn.group = plan.base.rtn.group;
    p.rtn.scale_dtype = plan.base.rtn.scale_dtype;
    target = p.Name();
  }
  if (!upcast_layers.empty()) {
    RTNQ_RETURN_IF_ERROR(plan.AddRule("layers=" + upcast_layers + " -> " + target, "--upcast-layers"));
  }
  if (!upcast_modules.empty()) {
    RTNQ_RETURN_IF_ERROR(plan.AddRule("modules=" + upcast_modules + " -> " + target, "--upcast-modules"));
  }
  for (const auto& r : rules) RTNQ_RETURN_IF_ERROR(plan.AddRule(r, "--rule"));
  return plan;
}

}  // namespace rtnq::cli
