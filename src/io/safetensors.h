// The safetensors container (Hugging Face): an 8-byte little-endian header length N, N bytes of
// JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
// then the data section; offsets are relative to the start of the data section.
// See docs/formats/safetensors.md for the checks applied here.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "base/status.h"
#include "format/dtype.h"

namespace rtnq {

// Headers larger than this are rejected before parsing (real headers are well under 10 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute byte offset in the file (8 + header length + data begin)
  uint64_t nbytes = 0;
};

struct SafetensorsHeader {
  uint64_t header_bytes = 0;  // N, the JSON length (including padding)
  uint64_t data_offset = 0;   // 8 + N
  std::vector<SafetensorsTensor> tensors;  // in data (file) order
  std::map<std::string, std::string> metadata;  // "__metadata__"
};

// Parses and validates the header of a safetensors file held in `data[0, size)`; `path` names it
// in error messages. Every tensor's byte range is checked to lie inside `size`.
Result<SafetensorsHeader> ParseSafetensors(const uint8_t* data, size_t size, const std::string& path);

// A memory-mapped safetensors file; tensor bytes stay in the mapping.
struct SafetensorsFile {
  std::shared_ptr<MappedFile> file;
  SafetensorsHeader header;

  const std::string& path() const { return file->path(); }
  const uint8_t* TensorData(const SafetensorsTensor& t) const { return file->data() + t.offset; }
};

Result<SafetensorsFile> OpenSafetensors(const std::string& path);

// The safetensors dtype string of a DType ("F32", "F16", "BF16"), or nullopt for types the
// format cannot hold (block-quantized ones).
std::optional<std::string_view> SafetensorsDTypeName(DType dtype);

}  // namespace rtnq
