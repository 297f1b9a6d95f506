// Plumbing shared by the safetensors-based exporters: the tensors of the output in order, each
// with a function that produces its bytes, streamed through SafetensorsWriter.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/safetensors_writer.h"
#include "quant/export.h"
#include "quant/rtn.h"

namespace rtnq {

struct OutputTensor {
  TensorSpec spec;
  // Appends exactly the tensor's bytes to `out`.
  std::function<Status(std::vector<uint8_t>& out)> produce;
};

// Bytes of a kept (unquantized) tensor in canonical row order: its own dtype if it is a float
// type, else decoded to F32.
DType KeptDType(DType source);
Status AppendKeptTensor(const TensorView& view, std::vector<uint8_t>& out);

// Writes the tensors into DIR/model.safetensors (sharded above 4 GiB) with `metadata`.
Status WriteSafetensorsModel(const std::string& dir, const std::vector<OutputTensor>& tensors,
                             const std::vector<std::pair<std::string, std::string>>& metadata,
                             const ExportOptions& options, ExportResult* result);

// config.json with a quantization_config, generation_config.json, and the tokenizer files of an
// HF source (tokenizer.json, tokenizer_config.json, special_tokens_map.json) copied verbatim.
Status WriteHfSideFiles(const std::string& dir, const Checkpoint& checkpoint,
                        const std::string& quantization_config_json, ExportResult* result);

// "bfloat16", "float16" or "float32": the dtype most kept tensors have.
std::string TorchDType(const Checkpoint& checkpoint);

// Quantizes the tensor named by `decision` to `format` (memoized per call site by the caller).
Result<RtnMatrix> QuantizeDecision(const Checkpoint& checkpoint, const TensorDecision& decision,
                                   const RtnFormat& format, const ExportOptions& options,
                                   ExportResult* result);

}  // namespace rtnq
