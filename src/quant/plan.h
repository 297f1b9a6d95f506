// Selective precision as a declarative plan: ordered rules over tensor roles and layer sets, each
// naming a precision, compiled against a model into one decision per tensor.
//
// Text form (one rule per line; '#' starts a comment; docs/selective-precision.md):
//   default int4:g128                      precision of every linear layer in the blocks
//   layers=first:2,last:2 -> int8          horizontal: whole layers upcast
//   modules=mlp_down -> int8               vertical: one module type in every layer
//   layers=middle:4 modules=qkv -> int8    hybrid
//   modules=lm_head -> int8:g128           embeddings / lm_head are kept unless a rule names them
//   fallback row                           group does not divide a tensor: keep (default) | row
// Later rules override earlier ones. Norms and biases always stay 16/32-bit.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/model_config.h"
#include "arch/tensor_role.h"
#include "base/status.h"
#include "format/dtype.h"
#include "format/rtn_format.h"

namespace rtnq {

struct Precision {
  enum class Kind { kKeep, kBF16, kF16, kF32, kRtn };
  Kind kind = Kind::kKeep;
  RtnFormat rtn;  // when kind == kRtn

  std::string Name() const;
  bool IsQuantized() const { return kind == Kind::kRtn; }
  bool operator==(const Precision&) const = default;
};

// keep | bf16 | f16 | f32 | int8[:gN|:row][:bf16|:f16|:f32] | int4[...] | rtn8 | rtn4
Result<Precision> ParsePrecision(std::string_view text);

// A set of layer indices: "all", "3", "-1" (last), "2-5" (inclusive), "first:N", "last:N",
// "middle:N", or a comma-separated union of these.
class LayerSet {
 public:
  static Result<LayerSet> Parse(std::string_view text);
  bool Contains(int layer, int num_layers) const;
  // Checks indices against the model (e.g. "40" in a 32-layer model is an error).
  Status Check(int num_layers) const;
  const std::string& text() const { return text_; }

 private:
  struct Item {
    enum class Kind { kAll, kIndex, kRange, kFirst, kLast, kMiddle } kind;
    int a = 0, b = 0;
  };
  std::vector<Item> items_;
  std::string text_;
};

enum class GroupFallback { kKeep, kPerRow };

struct PlanRule {
  std::optional<LayerSet> layers;      // unset: every layer (and global tensors)
  std::vector<TensorRole> roles;       // empty: every linear layer inside the blocks
  Precision precision;
  std::string source;                  // "plan.txt:3" or "--upcast-layers"
  std::string text;                    // the rule as written
};

struct QuantPlan {
  Precision base;                      // the "default" rule; keep = unquantized
  std::vector<PlanRule> rules;
  GroupFallback fallback = GroupFallback::kKeep;

  // Parses the text form; `source` names the file in errors ("plan.txt:4: ...").
  static Result<QuantPlan> ParseText(std::string_view text, const std::string& source);
  // JSON form: {"default": "int4:g128", "fallback": "keep", "rules": [{"layers": "first:2",
  // "modules": ["mlp_down"], "precision": "int8"}]}
  static Result<QuantPlan> ParseJson(std::string_view json, const std::string& source);
  static Result<QuantPlan> ReadFile(const std::string& path);  // .json or text
  Status AddRule(std::string_view line, const std::string& source);

  std::string ToText() const;  // canonical text form, stored in every output's metadata
};

// Module names accepted in rules: role short names (attn_q, mlp_down, embed, lm_head, ...) and the
// groups attn, mlp, qkv, gate_up, linear (all block linear layers).
Result<std::vector<TensorRole>> ParseModuleList(std::string_view text);

struct TensorDecision {
  TensorId id;
  std::string name;
  std::vector<int64_t> shape;
  DType source_dtype = DType::kBF16;
  Precision precision;         // final
  int rule = -1;               // index into plan.rules that decided it; -1 = default / fixed
  std::string note;            // why a fallback happened, etc.
  uint64_t bytes = 0;          // bytes in the chosen precision
};

struct CompiledPlan {
  std::vector<TensorDecision> tensors;
  uint64_t total_bytes = 0;
  int64_t total_weights = 0;
  double BitsPerWeight() const { return total_weights ? 8.0 * total_bytes / total_weights : 0.0; }
};

struct TensorSource {
  TensorId id;
  DType dtype;  // as stored
};

// Decides every tensor's precision. Errors: a rule that matches no tensor, a rule every match of
// which a later rule overrides, a rule that tries to quantize a norm, and (strict) a group size
// that does not divide a tensor's input dimension.
Result<CompiledPlan> CompilePlan(const QuantPlan& plan, const ModelConfig& config,
                                 const std::vector<TensorSource>& tensors, bool strict);

}  // namespace rtnq
