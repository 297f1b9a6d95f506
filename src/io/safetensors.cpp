#include "io/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

namespace rtnq {
namespace {

using Json = nlohmann::json;

// Every dtype the safetensors format defines; rtnq reads the float ones as weights and the integer
// ones it uses as containers of packed quantized formats (I8, U8, I32, I64).
constexpr std::string_view kKnownDTypes[] = {"F32",  "F16",  "BF16", "F64",     "I64",
                                             "I32",  "I16",  "I8",   "U64",     "U32",
                                             "U16",  "U8",   "BOOL", "F8_E4M3", "F8_E5M2",
                                             "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"};

std::optional<DType> ParseSafetensorsDType(std::string_view s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  if (s == "I8") return DType::kI8;
  if (s == "U8") return DType::kU8;
  if (s == "I32") return DType::kI32;
  if (s == "I64") return DType::kI64;
  return std::nullopt;
}

std::string Describe(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Parses JSON text and reports the first key repeated inside one object (nlohmann would keep
// only the last silently, which could hide a second definition of a tensor).
Result<Json> ParseJsonRejectingDuplicates(std::string_view text, const std::string& what) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get<std::string>()).second && duplicate.empty()) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default: break;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/true);
  } catch (const Json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: ..."
    std::string msg = e.what();
    if (auto pos = msg.find("] "); pos != std::string::npos) msg = msg.substr(pos + 2);
    return Err("{}: invalid JSON: {}", what, msg);
  }
  if (!duplicate.empty()) return Err("{}: duplicate key \"{}\"", what, duplicate);
  return j;
}

Status ParseTensorEntry(const std::string& path, const std::string& name, const Json& entry,
                        uint64_t data_offset, uint64_t data_bytes, SafetensorsTensor* out) {
  if (!entry.is_object()) {
    return Err("{}: tensor {}: header entry must be an object, found {}", path, name,
               Describe(entry));
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) return Err("{}: tensor {}: missing \"{}\"", path, name, key);
  }
  const Json& dtype = entry["dtype"];
  if (!dtype.is_string()) {
    return Err("{}: tensor {}: dtype must be a string, found {}", path, name, Describe(dtype));
  }
  const std::string dtype_name = dtype.get<std::string>();
  auto parsed = ParseSafetensorsDType(dtype_name);
  if (!parsed) {
    const bool known = std::find(std::begin(kKnownDTypes), std::end(kKnownDTypes), dtype_name) !=
                       std::end(kKnownDTypes);
    return Err("{}: {} dtype {} for tensor {}{}", path, known ? "unsupported" : "unknown",
               dtype_name, name, known ? " (rtnq reads F32, F16, BF16, I8, U8, I32 and I64)" : "");
  }
  out->name = name;
  out->dtype = *parsed;

  const Json& shape = entry["shape"];
  if (!shape.is_array()) {
    return Err("{}: tensor {}: shape must be an array, found {}", path, name, Describe(shape));
  }
  uint64_t elems = 1;
  bool overflow = false;
  for (const Json& d : shape) {
    if (!d.is_number_unsigned()) {
      return Err("{}: tensor {}: shape {} has a dimension that is not a non-negative integer", path,
                 name, Describe(shape));
    }
    const uint64_t dim = d.get<uint64_t>();
    if (dim > static_cast<uint64_t>(INT64_MAX)) overflow = true;
    overflow = overflow || __builtin_mul_overflow(elems, dim, &elems);
    out->shape.push_back(static_cast<int64_t>(dim));
  }
  std::optional<uint64_t> bytes;
  if (!overflow && elems <= static_cast<uint64_t>(INT64_MAX)) bytes = DTypeBytes(out->dtype, elems);
  if (!bytes) return Err("{}: tensor {}: shape {} overflows", path, name, Describe(shape));

  const Json& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return Err("{}: tensor {}: data_offsets must be [begin, end] non-negative integers, found {}",
               path, name, Describe(offsets));
  }
  const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  if (end < begin) {
    return Err("{}: tensor {}: data_offsets [{}, {}] end precedes begin", path, name, begin, end);
  }
  if (end > data_bytes) {
    return Err("{}: tensor {}: data_offsets [{}, {}] end is past the data section of {} bytes "
               "(file offset {})",
               path, name, begin, end, data_bytes, data_offset);
  }
  if (end - begin != *bytes) {
    return Err("{}: tensor {}: data_offsets [{}, {}] hold {} bytes, but {} {} needs {}", path,
               name, begin, end, end - begin, dtype_name, Describe(shape), *bytes);
  }
  out->offset = data_offset + begin;
  out->nbytes = *bytes;
  return Status::Ok();
}

}  // namespace

std::optional<std::string_view> SafetensorsDTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kI8: return "I8";
    case DType::kU8: return "U8";
    case DType::kI32: return "I32";
    case DType::kI64: return "I64";
    default: return std::nullopt;
  }
}

Result<SafetensorsHeader> ParseSafetensors(const uint8_t* data, size_t size,
                                           const std::string& path) {
  if (size < 8) {
    return Err("{}: truncated: {} bytes, too short for the 8-byte header length", path, size);
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];  // little-endian regardless of host
  if (n > kMaxSafetensorsHeaderBytes) {
    return Err("{}: header length {} exceeds the {} byte limit", path, n,
               kMaxSafetensorsHeaderBytes);
  }
  if (n > size - 8) {
    return Err("{}: header length {} at offset 0 runs past the end of the {} byte file", path, n,
               size);
  }
  SafetensorsHeader header;
  header.header_bytes = n;
  header.data_offset = 8 + n;
  const uint64_t data_bytes = size - header.data_offset;

  const std::string_view text(reinterpret_cast<const char*>(data + 8), n);
  RTNQ_ASSIGN_OR_RETURN(Json j, ParseJsonRejectingDuplicates(text, path + ": header"));
  if (!j.is_object()) {
    return Err("{}: header must be a JSON object, found {}", path, Describe(j));
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (value.is_null()) continue;
      if (!value.is_object()) {
        return Err("{}: __metadata__ must be an object, found {}", path, Describe(value));
      }
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          return Err("{}: __metadata__ key {}: value must be a string, found {}", path, mk,
                     Describe(mv));
        }
        header.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    SafetensorsTensor t;
    RTNQ_RETURN_IF_ERROR(ParseTensorEntry(path, key, value, header.data_offset, data_bytes, &t));
    header.tensors.push_back(std::move(t));
  }
  std::stable_sort(header.tensors.begin(), header.tensors.end(),
                   [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
                     return a.offset < b.offset;
                   });
  // Sorted by offset, non-empty ranges are disjoint iff each starts after the previous non-empty
  // one ends; an empty tensor sorted in between must not hide an overlap (found by fuzzing).
  const SafetensorsTensor* previous = nullptr;  // the last non-empty tensor
  for (const auto& b : header.tensors) {
    if (b.nbytes == 0) continue;
    if (previous != nullptr && previous->offset + previous->nbytes > b.offset) {
      const auto& a = *previous;
      return Err("{}: tensors {} [{}, {}) and {} [{}, {}) overlap", path, a.name,
                 a.offset - header.data_offset, a.offset + a.nbytes - header.data_offset, b.name,
                 b.offset - header.data_offset, b.offset + b.nbytes - header.data_offset);
    }
    previous = &b;
  }
  return header;
}

Result<SafetensorsFile> OpenSafetensors(const std::string& path) {
  SafetensorsFile f;
  RTNQ_ASSIGN_OR_RETURN(f.file, MappedFile::Open(path));
  RTNQ_ASSIGN_OR_RETURN(f.header, ParseSafetensors(f.file->data(), f.file->size(), path));
  return f;
}

}  // namespace rtnq
