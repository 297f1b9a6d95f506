// GGUF v3 reader (v2 accepted): all metadata value types including nested arrays, tensor infos,
// alignment. Every count, length and offset is checked against the file size before use.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "arch/tensor_role.h"
#include "base/file.h"
#include "base/status.h"
#include "format/dtype.h"
#include "io/tokenizer_spec.h"

namespace rtnq {

// GGUF metadata value types, numbered as in the GGUF spec.
enum class GgufType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};

const char* GgufTypeName(GgufType t);  // "uint32", "string", ...

struct GgufValue {
  GgufType type = GgufType::kUint8;
  // Scalars are widened: unsigned -> uint64_t, signed -> int64_t, floats -> double, bool -> bool.
  std::variant<uint64_t, int64_t, double, bool, std::string, std::vector<GgufValue>> value;
  GgufType array_type = GgufType::kUint8;  // element type when type == kArray

  bool IsInteger() const;
  // Integer value of an integer-typed scalar (signed or unsigned); nullopt otherwise.
  std::optional<int64_t> AsInt() const;
  std::optional<double> AsFloat() const;  // integer or float scalar
  const std::string* AsString() const;
  const std::vector<GgufValue>* AsArray() const;
  std::string ToDisplayString(size_t max_array_items = 8) const;  // for `rtnq inspect`
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGUF order: dims[0] is the innermost (contiguous) dimension
  DType dtype;
  uint64_t offset;            // absolute offset in the file
  uint64_t nbytes;
};

struct GgufFile {
  std::string path;
  uint32_t version = 0;
  uint64_t alignment = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // file order
  std::vector<uint64_t> metadata_offsets;  // file offset of each metadata entry (parallel)
  std::vector<GgufTensorInfo> tensors;                      // file order
  uint64_t data_offset = 0;
  std::shared_ptr<MappedFile> file;

  const GgufValue* Find(const std::string& key) const;
  const GgufTensorInfo* FindTensor(const std::string& name) const;
  uint64_t KeyOffset(const std::string& key) const;  // 0 if absent

  // Typed getters: nullopt when the key is absent; a "<file>: metadata key K at offset N:
  // expected T, found U" error when it has the wrong type.
  Result<std::optional<int64_t>> GetInt(const std::string& key) const;
  Result<std::optional<double>> GetFloat(const std::string& key) const;
  Result<std::optional<bool>> GetBool(const std::string& key) const;
  Result<std::optional<std::string>> GetString(const std::string& key) const;
  // An array whose elements have type `element_type` (integer element types all accepted when
  // `element_type` is an integer type); nullptr when absent.
  Result<const std::vector<GgufValue>*> GetArray(const std::string& key, GgufType element_type) const;
  Status KeyError(const std::string& key, const std::string& what) const;
};

// Parses a GGUF image held in memory (for fuzzing); `path` is only used in messages.
Result<GgufFile> ParseGguf(const uint8_t* data, size_t size, const std::string& path);
// Maps and parses a .gguf file; tensors point into the mapping.
Result<GgufFile> ReadGguf(const std::string& path);

// GGUF name of a tensor ("blk.3.attn_q.weight"), the inverse of the reader's name mapping.
std::string GgufTensorName(const TensorId& id);

// tokenizer.ggml.* -> TokenizerSpec ("llama" -> SentencePiece BPE, "gpt2" -> byte-level BPE).
Result<TokenizerSpec> TokenizerFromGguf(const GgufFile& gguf);

}  // namespace rtnq
