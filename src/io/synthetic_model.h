// Deterministic synthetic LLaMA-family models in HF format (`rtnq synth`): config.json,
// generation_config.json, tokenizer.json, tokenizer_config.json and safetensors weights (sharded
// above 4 GiB), streamed to disk so any size can be written. Each weight is a pure function of
// (seed, tensor name, element index), so the output does not depend on the thread count.
// The recipe is documented in docs/formats/safetensors.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "arch/model_config.h"
#include "base/status.h"
#include "format/dtype.h"
#include "io/safetensors_writer.h"

namespace rtnq {

struct SynthOptions {
  std::string shape;          // a name from KnownShapeNames()
  uint64_t seed = 0;
  DType dtype = DType::kBF16;  // F32, F16 or BF16
  int64_t layers = 0;          // > 0 overrides the shape's layer count
  bool force = false;          // allow writing into a non-empty directory
  uint64_t max_shard_bytes = 4ull << 30;
  int threads = 0;  // 0: DefaultThreadCount()
  // Called after each chunk is written with (tensor bytes done, tensor bytes total).
  std::function<void(uint64_t, uint64_t)> progress;
};

struct SynthSummary {
  std::string path;
  std::string shape;
  ModelConfig config;
  int64_t parameters = 0;
  uint64_t bytes = 0;  // all files written
  double seconds = 0;
  std::vector<std::string> files;
};

// The shape's config with the layer override applied (errors name the unknown shape).
Result<ModelConfig> SyntheticConfig(const std::string& shape, int64_t layers);

// The weight tensors of `config` in file order (RequiredTensors order).
std::vector<TensorSpec> SyntheticTensorSpecs(const ModelConfig& config, DType dtype);

// Generates elements [begin, end) of tensor `name` (before rounding to the stored dtype).
// `outlier_channels` and `filler_rows` come from SyntheticLayout().
struct SyntheticLayout {
  std::vector<int64_t> outlier_channels;  // hidden channels whose input weights are scaled x10
  std::vector<bool> filler_rows;          // vocabulary rows of unused reserved tokens
};
SyntheticLayout MakeSyntheticLayout(const ModelConfig& config, uint64_t seed);
void SyntheticValues(const ModelConfig& config, const SyntheticLayout& layout, uint64_t seed,
                     const TensorSpec& tensor, uint64_t begin, uint64_t end, float* out);

Result<SynthSummary> WriteSyntheticModel(const std::string& dir, const SynthOptions& options);

}  // namespace rtnq
