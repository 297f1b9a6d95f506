// Named model shapes (hyperparameters of well-known checkpoints) for `rtnq synth` and `rtnq fit`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/model_config.h"

namespace rtnq {

std::optional<ModelConfig> KnownShape(std::string_view name);
std::vector<std::string> KnownShapeNames();

}  // namespace rtnq
