// Streaming safetensors writer: the header is fixed up front from the tensor specs, then tensor
// bytes are streamed in order, so a model of any size is written without holding it in memory.
// Every file goes through AtomicFileWriter and becomes visible only at Commit(); with sharding,
// the index is committed last. Layout as Hugging Face's writer: compact JSON header padded with
// spaces to a multiple of 8 bytes, "__metadata__" first with {"format": "pt"}.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/file.h"
#include "base/status.h"
#include "format/dtype.h"

namespace rtnq {

struct TensorSpec {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
};

struct SafetensorsWriteOptions {
  bool overwrite = false;
  // Split into shards of at most this many tensor bytes (a bigger tensor gets a shard of its
  // own); 0 writes one file. Shards are named like HF's: model-00001-of-00004.safetensors.
  uint64_t max_shard_bytes = 0;
  std::vector<std::pair<std::string, std::string>> metadata;  // added after "format": "pt"
};

class SafetensorsWriter {
 public:
  // `path` is the single-file name, e.g. DIR/model.safetensors. When the tensors need more than
  // one shard, DIR/model-0000i-of-0000n.safetensors and DIR/model.safetensors.index.json are
  // written instead.
  static Result<std::unique_ptr<SafetensorsWriter>> Begin(const std::string& path,
                                                          std::vector<TensorSpec> tensors,
                                                          const SafetensorsWriteOptions& options);

  // Appends the next `n` bytes of tensor data (tensors in the order given to Begin, each its
  // row-major little-endian bytes). A call may cover part of a tensor or span several.
  Status WriteTensorData(const void* data, size_t n);
  // Checks that every byte arrived, then commits the shards and the index.
  Status Commit();

  // The files this writer produces (the index last, if any).
  const std::vector<std::string>& files() const { return files_; }
  uint64_t tensor_bytes() const { return tensor_bytes_; }  // sum of tensor sizes
  uint64_t file_bytes() const { return file_bytes_; }      // all files, headers included
  uint64_t bytes_written() const { return written_; }      // tensor bytes received so far

 private:
  struct Shard {
    std::string path;
    size_t first_tensor = 0, end_tensor = 0;
    std::unique_ptr<AtomicFileWriter> out;
  };
  SafetensorsWriter() = default;

  std::vector<TensorSpec> tensors_;
  std::vector<uint64_t> tensor_nbytes_;
  std::vector<Shard> shards_;
  std::vector<std::string> files_;
  std::string index_path_, index_json_;
  bool overwrite_ = false;
  uint64_t tensor_bytes_ = 0, file_bytes_ = 0, written_ = 0;
  size_t current_tensor_ = 0, current_shard_ = 0;
  uint64_t current_left_ = 0;  // bytes still due for tensors_[current_tensor_]
  bool committed_ = false;
};

// The bytes of a whole safetensors file holding `tensors` with `data[i]` (for tests and small
// outputs).
Result<std::string> SerializeSafetensors(const std::vector<TensorSpec>& tensors,
                                         const std::vector<std::string>& data,
                                         const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace rtnq
