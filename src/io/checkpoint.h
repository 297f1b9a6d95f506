// A checkpoint opened for reading: its configuration, a table of tensors that point into
// memory-mapped files (nothing is copied when opening), an optional tokenizer, and metadata.
// Every reader validates sizes, offsets, dtypes and shapes against the file and the config and
// returns a one-line error instead of aborting.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arch/model_config.h"
#include "base/file.h"
#include "base/status.h"
#include "format/dtype.h"
#include "format/rtn_format.h"
#include "io/tokenizer_spec.h"

namespace rtnq {

struct TensorView {
  std::string name;             // canonical (HF) name, e.g. model.layers.0.self_attn.q_proj.weight
  std::string file_name;        // name inside the file (GGUF: blk.0.attn_q.weight)
  DType dtype = DType::kF32;    // as stored in the file
  std::vector<int64_t> shape;   // row-major, HF order: [out_features, in_features]
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  std::string file;             // path of the file holding it (for error messages)
  uint64_t file_offset = 0;     // absolute byte offset in that file
  // Non-zero when the rows are in GGUF/llama2.c interleaved-RoPE order: the number of heads to
  // un-permute into HF's rotate-half order (see UnpermuteRopeRows in io/rope_permute.h).
  int64_t rope_permuted_heads = 0;

  // Set for a linear weight stored RTN-quantized (compressed-tensors pack-quantized, GPTQ): `data`
  // then holds the codes in rtnq's canonical layout (format/rtn_format.h), row r at
  // data + r * code_row_bytes (>= rtn->CodeBytes(1, K); compressed-tensors pads rows to 32-bit
  // words), `nbytes` = N * code_row_bytes, and `scales` the [N][K/G] scales in rtn->scale_dtype.
  // `shape` is the logical [N, K]; `dtype` is the container (kU8), never a weight dtype.
  std::optional<RtnFormat> rtn;
  uint64_t code_row_bytes = 0;
  const uint8_t* scales = nullptr;
  uint64_t scales_nbytes = 0;

  int64_t NumElements() const;
  bool IsQuantized() const { return rtn.has_value(); }
  // "int4:g32:bf16" for a quantized view, else the dtype name ("BF16").
  std::string PrecisionName() const;
  // Bytes the tensor occupies: codes + scales for a quantized view, else nbytes.
  uint64_t StoredBytes() const { return nbytes + scales_nbytes; }
};

enum class CheckpointFormat { kHfSafetensors, kGguf, kLlama2c };
const char* CheckpointFormatName(CheckpointFormat f);

struct Checkpoint {
  std::string path;
  CheckpointFormat format = CheckpointFormat::kHfSafetensors;
  ModelConfig config;
  std::vector<TensorView> tensors;  // file order
  std::optional<TokenizerSpec> tokenizer;
  std::vector<std::pair<std::string, std::string>> metadata;  // key -> printable value
  std::vector<std::shared_ptr<MappedFile>> files;  // keep the mappings alive
  // Buffers views point into that are not file mappings (GPTQ weights repacked to the canonical
  // layout); shared so a copied Checkpoint stays valid.
  std::vector<std::shared_ptr<const void>> owned;

  const TensorView* Find(std::string_view canonical_name) const;
  // The mapped file whose bytes hold all of `view`'s data; null when it lies elsewhere (a buffer in
  // `owned`, or memory of the caller's).
  std::shared_ptr<MappedFile> FileHolding(const TensorView& view) const;
};

struct OpenOptions {
  std::string tokenizer_path;  // llama2.c tok*.bin or a tokenizer.json overriding the model's
};

// A quantized view's codes and scales are consistent with its format and logical shape (a one-line
// error naming the tensor otherwise). ValidateCheckpoint runs it on every quantized view.
Status ValidateQuantizedView(const TensorView& view);

// Opens an HF directory (config.json + safetensors), a .gguf file or a llama2.c .bin, and checks
// that every tensor the config requires is present with the expected shape.
Result<Checkpoint> OpenCheckpoint(const std::string& path, const OpenOptions& options = {});

}  // namespace rtnq
