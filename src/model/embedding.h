// The token embedding table: row lookups for the model's input. Where the loaded rows would be the
// stored rows decoded exactly (the embedding kept at its stored precision: BF16, F32, F16 or a GGML
// block type such as Q8_0), the rows are read straight from the checkpoint's mapping instead of a
// packed copy: only the rows of tokens actually seen become resident, and loading skips writing
// the table into fresh memory (Llama-3.1-8B: 1.05 GB of BF16, 2.1 GB as F32 panels for a Q8_0 GGUF;
// on the dev VM each fresh GiB costs 0.55-2 s of page faults). A tied embedding doubles as the
// lm_head, so it is packed for the matmul kernels as before.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "io/checkpoint.h"
#include "kernels/matmul.h"

namespace rtnq {

class Embedding {
 public:
  Embedding() = default;
  explicit Embedding(PackedWeight packed) : packed_(std::move(packed)) {}
  // Rows served from `view` (a non-quantized [vocab, hidden] tensor of `ck`); keeps the mapped
  // file that holds it alive for as long as this object lives (only that one: a GPTQ
  // checkpoint's repacked buffers in Checkpoint::owned would otherwise stay resident). A view into
  // memory that is not one of `ck`'s files must outlive this object.
  Embedding(const TensorView& view, const Checkpoint& ck);

  // Writes row `token` (hidden floats) to `out`.
  void Row(int64_t token, float* out) const;
  // True when rows come from the checkpoint's mapping.
  bool mapped() const { return view_.has_value(); }
  // The packed table (the tied lm_head); empty when mapped().
  const PackedWeight& packed() const { return packed_; }
  // Bytes of the table: the stored tensor when mapped, else the packed matrix.
  uint64_t bytes() const;

 private:
  PackedWeight packed_;
  std::optional<TensorView> view_;
  std::shared_ptr<MappedFile> file_;
};

}  // namespace rtnq
