// GGUF v3 writer: metadata of any GgufValue type, tensor infos, aligned data. Streams tensor data
// through a callback so a model never has to be held in memory whole; the file appears
// atomically (temporary file + rename) only when everything was written.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "format/dtype.h"
#include "io/gguf.h"

namespace rtnq {

class GgufWriter {
 public:
  explicit GgufWriter(uint64_t alignment = 32) : alignment_(alignment) {}

  void Set(const std::string& key, GgufValue value);
  void SetString(const std::string& key, std::string v);
  void SetUint32(const std::string& key, uint32_t v);
  void SetInt32(const std::string& key, int32_t v);
  void SetFloat32(const std::string& key, float v);
  void SetBool(const std::string& key, bool v);
  void SetStringArray(const std::string& key, const std::vector<std::string>& v);
  void SetFloat32Array(const std::string& key, const std::vector<float>& v);
  void SetInt32Array(const std::string& key, const std::vector<int32_t>& v);

  // `shape` is row-major ([rows, cols]); it is written in GGUF's innermost-first order.
  Status AddTensor(const std::string& name, const std::vector<int64_t>& shape, DType dtype);

  // Fills the bytes of tensor i (the buffer is already sized to its byte count).
  using TensorFiller = std::function<Status(size_t index, std::vector<uint8_t>& bytes)>;
  Status Write(const std::string& path, bool overwrite, const TensorFiller& fill) const;

  size_t tensor_count() const { return tensors_.size(); }

 private:
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    DType dtype;
    uint64_t nbytes;
  };
  uint64_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Tensor> tensors_;
};

// GGML type id of a DType (F32 0, F16 1, Q4_0 2, Q4_1 3, Q8_0 8, BF16 30).
uint32_t GgmlTypeId(DType dtype);

}  // namespace rtnq
