// LLaMA-family decoder: RMSNorm, RoPE (llama3 / linear scaling), grouped-query attention with an
// optional qkv bias, SwiGLU MLP, tied or separate lm_head. Weights F32, BF16 or RTN int8/int4
// (quantized while loading, following a compiled plan) in memory, activations F32. A KV cache holds several sequences; one Forward() call processes any mix of
// prompt tokens and decode tokens from several sequences.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "arch/model_config.h"
#include "base/status.h"
#include "io/checkpoint.h"
#include "kernels/matmul.h"
#include "quant/plan.h"
#include "quant/rtn.h"

namespace rtnq {

enum class WeightPrecision {
  kAsStored,  // F32 stays F32, BF16 stays BF16; F16 and GGML block types are decoded to F32
  kF32,       // everything decoded to F32
  kBF16,      // everything rounded to BF16 (norms and biases stay F32)
};

struct ModelOptions {
  WeightPrecision precision = WeightPrecision::kAsStored;
  int threads = 0;          // 0: DefaultThreadCount()
  int max_sequences = 1;    // KV cache slots
  int max_context = 0;      // tokens per sequence; 0: min(config max_position_embeddings, 4096)
  // Per-tensor precisions (not owned; may be null). Tensors it quantizes are RTN-quantized while
  // loading; kBF16 / kF32 (and kF16, run as F32) override `precision`; kKeep follows it.
  const CompiledPlan* plan = nullptr;
  RtnArithmetic arithmetic = RtnArithmetic::kFp32;
  bool allow_nonfinite = false;  // quantize tensors holding NaN/Inf instead of failing
  // Activations the matmuls run with. kF32: exact kernels on f32 activations everywhere. kInt8:
  // RTN weights on per-token, per-group int8 activations (VNNI / AMX W8A8, W4A8), dense weights
  // on f32. kBF16: BF16 and RTN weights on bf16-rounded activations (AMX tiles; without AMX, RTN
  // runs the slow scalar kernel and BF16 VDPBF16PS); F32 weights stay on f32.
  ActType activations = ActType::kF32;
};

// What loading cost: the whole load, and the part spent quantizing (reading source rows from the
// mapping, quantizing, packing). source_bytes / quantize_seconds is the quantizer's read rate.
struct LoadStats {
  double seconds = 0;
  double quantize_seconds = 0;
  // Of quantize_seconds, the time spent faulting in the fresh pages the quantized tensors are
  // packed into (summed over the threads, divided by their number): the kernel's zeroing and, on
  // a VM, the host backing the memory (on the dev VM 0.5-2 s per GiB, against the quantizer's
  // 6 GB/s of bf16 per core).
  double first_touch_seconds = 0;
  int quantized_tensors = 0;
  uint64_t source_bytes = 0;     // checkpoint bytes of the quantized tensors
  uint64_t quantized_bytes = 0;  // their packed size in memory (codes + f32 scales)
  uint64_t weight_bytes = 0;     // every weight matrix, quantized or not (mapped ones included)
  uint64_t mapped_bytes = 0;     // of which read from the checkpoint's mapping, not copied
};

// One token to process: appended to sequence `seq` at position SequenceLength(seq) (items of the
// same sequence are taken in order). Logits are produced only where want_logits is set.
struct BatchItem {
  int seq = 0;
  int32_t token = 0;
  bool want_logits = false;
};

class Model {
 public:
  // The model may keep reading weights from the checkpoint (an untied embedding kept at its
  // stored precision, model/embedding.h): it holds the mapped file (Checkpoint::files) with
  // those rows alive; views into any other memory must outlive the model.
  static Result<std::unique_ptr<Model>> Load(const Checkpoint& checkpoint, const ModelOptions& options);
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual int max_sequences() const = 0;
  virtual int max_context() const = 0;

  virtual int SequenceLength(int seq) const = 0;
  virtual void ClearSequence(int seq) = 0;
  // Drops the cached tokens of `seq` from position n on (keeps the first n).
  virtual void TruncateSequence(int seq, int n) = 0;
  // Makes dst's cache a copy of src's first n tokens (shared-context scoring reuses the prefix).
  virtual void CopySequence(int src, int dst, int n) = 0;

  // Runs the batch; writes vocab_size logits per item with want_logits, in item order, to
  // `logits` (which must hold that many rows). Fails (no state change) if a sequence would
  // exceed max_context, a token id is out of range or a seq index is invalid.
  virtual Status Forward(std::span<const BatchItem> batch, float* logits) = 0;

  // Bytes of weights read per decode step (every matrix once, embeddings row excluded): the
  // numerator of the memory-bound decode limit.
  virtual uint64_t WeightBytesPerToken() const = 0;
  virtual uint64_t KvBytesPerToken() const = 0;
  virtual int threads() const = 0;
  virtual LoadStats load_stats() const = 0;
};

}  // namespace rtnq
