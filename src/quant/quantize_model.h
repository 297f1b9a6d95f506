// Applying a compiled plan to a checkpoint's tensors: RTN quantization of the tensors the plan
// quantizes, row-parallel, straight from the mapped file.
#pragma once

#include "base/thread_pool.h"
#include "io/checkpoint.h"
#include "quant/plan.h"
#include "quant/rtn.h"

namespace rtnq {

// Compiles `plan` against the checkpoint's configuration and stored dtypes.
Result<CompiledPlan> CompilePlanForCheckpoint(const QuantPlan& plan, const Checkpoint& checkpoint,
                                              bool strict);

struct QuantizeOptions {
  RtnArithmetic arithmetic = RtnArithmetic::kFp32;
  bool allow_nonfinite = false;
};

// Quantizes one tensor to `format`. F32/F16/BF16 sources are read as stored (so vLLM arithmetic
// sees the checkpoint's own bf16 values); GGML block sources are decoded to f32 first. Fails on
// NaN/Inf weights (naming the tensor, row and column) unless options.allow_nonfinite.
Result<RtnMatrix> QuantizeTensor(const TensorView& view, const RtnFormat& format,
                                 const QuantizeOptions& options, ThreadPool* pool);

}  // namespace rtnq
