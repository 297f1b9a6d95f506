// Loading a checkpoint's matrices into packed kernel weights, applying a compiled quantization
// plan on the fly: quantized tensors are read from the memory-mapped file in row blocks of about
// 1 MiB that all threads take from one queue spanning every tensor of the request (so small
// tensors do not each end in a barrier), RTN-quantized straight into their panels (no 16-bit or
// canonical copy is held), and each tensor's file pages are dropped from the process as soon as
// its last block is packed. Kept tensors load as
// before (F32/BF16 panels). Tensors already RTN-quantized in the checkpoint (TensorView::rtn) are
// packed as stored when the plan keeps them or asks for their own format, and re-quantized from
// their dequantized rows when the plan asks for another precision.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "base/thread_pool.h"
#include "io/checkpoint.h"
#include "kernels/matmul.h"
#include "model/embedding.h"
#include "model/model.h"

namespace rtnq {

// A linear layer whose output columns come from one or more packed matrices: q|k|v and gate|up
// are fused where the parts share a precision, else split into runs of equal precision.
struct LinearWeights {
  std::vector<PackedWeight> parts;
  std::vector<int64_t> col_offset;  // first output column of each part
  uint64_t bytes() const;
  // y[:, col_offset[i] ...] = x · parts[i]^T (+ bias[col_offset[i] ...]).
  void Run(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy, const float* bias,
           ThreadPool* pool) const;
};

class WeightLoader {
 public:
  WeightLoader(const Checkpoint& ck, const ModelOptions& options, ThreadPool* pool);

  Result<const TensorView*> Find(const TensorId& id) const;
  Result<std::vector<float>> LoadVector(const TensorId& id);
  Result<LinearWeights> LoadLinear(const std::vector<TensorId>& ids);
  // Several linear layers at once (e.g. all of a decoder layer's): their RTN tensors share one
  // work queue. Same result as calling LoadLinear on each in turn.
  Result<std::vector<LinearWeights>> LoadLinears(const std::vector<std::vector<TensorId>>& linears);
  Result<PackedWeight> LoadMatrix(const TensorId& id);
  // The token embedding: read from the checkpoint's mapping where that gives the rows loading
  // would (model/embedding.h), else packed like any matrix. A `tied` embedding is also the
  // lm_head, so it is always packed.
  Result<Embedding> LoadEmbedding(bool tied);

  const LoadStats& stats() const { return stats_; }

 private:
  // The plan's precision for `id` (kKeep when there is no plan or it does not list the tensor).
  Precision PrecisionOf(const TensorId& id) const;
  // What `id` is loaded as: the plan's precision, or the stored RTN format of a quantized view
  // the plan keeps (with WeightPrecision::kAsStored; kF32 / kBF16 decode it).
  Precision EffectivePrecision(const TensorId& id) const;
  Result<PackedWeight> LoadDense(const std::vector<const TensorView*>& parts, const Precision& p);
  // A fused RTN matrix whose panels are filled from `parts` by QuantizeInto.
  struct RtnTarget {
    PackedWeight* weight;
    RtnFormat format;
    std::vector<const TensorView*> parts;
  };
  Result<PackedWeight> AllocateRtn(const std::vector<const TensorView*>& parts, const RtnFormat& f) const;
  // Quantizes (or copies, when stored in the target format) every part of every target.
  Status QuantizeInto(const std::vector<RtnTarget>& targets);
  // Drops the file pages under `view` from this process (madvise DONTNEED): they were copied into
  // panels, so the mapping need not stay resident. No-op for tensors not in a mapped file.
  void ReleaseSource(const TensorView& view) const;

  const Checkpoint& ck_;
  const ModelOptions& options_;
  ThreadPool* pool_;
  Isa isa_;
  std::unordered_map<std::string, Precision> plan_;
  LoadStats stats_;
};

}  // namespace rtnq
