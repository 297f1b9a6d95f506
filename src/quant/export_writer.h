// Plumbing shared by the safetensors-based exporters: the tensors of the output in order, each
// with a function that produces its bytes, streamed through SafetensorsWriter.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/file.h"
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

// The output of a tensor the plan keeps: its bytes as stored (counted as source read).
OutputTensor KeptOutput(const Checkpoint& checkpoint, const TensorDecision& decision, ExportResult* result);

// Writes an HF directory into `dir`: the tensors as model.safetensors (sharded above 4 GiB, with
// rtnq.plan / rtnq.arithmetic / rtnq.source metadata), config.json with `quantization_config_json`,
// generation_config.json, and an HF source's tokenizer files (tokenizer.json, tokenizer_config.json,
// special_tokens_map.json) copied verbatim.
Status WriteHfExport(const std::string& dir, const Checkpoint& checkpoint,
                     const std::vector<OutputTensor>& tensors, const std::string& quantization_config_json,
                     const ExportOptions& options, ExportResult* result);

// Moves the finished directory into place and reports the files under their final names.
Status CommitExport(AtomicDirectory& dir, ExportResult* result);

// "bfloat16", "float16" or "float32": the dtype most kept tensors have.
std::string TorchDType(const Checkpoint& checkpoint);

// Quantizes the tensor named by `decision` to `format` (memoized per call site by the caller).
Result<RtnMatrix> QuantizeDecision(const Checkpoint& checkpoint, const TensorDecision& decision,
                                   const RtnFormat& format, const ExportOptions& options,
                                   ExportResult* result);

}  // namespace rtnq
