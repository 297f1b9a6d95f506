#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <unordered_set>

namespace rtnq {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr int kMaxArrayDepth = 8;            // nested arrays deeper than this are rejected
constexpr uint32_t kMaxDims = 4;             // GGML_MAX_DIMS

bool IsValidType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

// Smallest encoding of one value of type `t` (strings and arrays: their length fields), used to
// bound counts by the bytes left before allocating anything.
uint64_t MinEncodedSize(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kBool: return 1;
    case GgufType::kUint16: case GgufType::kInt16: return 2;
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kFloat32: return 4;
    case GgufType::kUint64: case GgufType::kInt64: case GgufType::kFloat64: return 8;
    case GgufType::kString: return 8;
    case GgufType::kArray: return 12;
  }
  return 1;
}

bool IsIntegerType(GgufType t) {
  switch (t) {
    case GgufType::kUint8: case GgufType::kInt8: case GgufType::kUint16: case GgufType::kInt16:
    case GgufType::kUint32: case GgufType::kInt32: case GgufType::kUint64: case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsFloatType(GgufType t) { return t == GgufType::kFloat32 || t == GgufType::kFloat64; }

// ggml type ids (ggml.h enum ggml_type), for naming the ones rtnq cannot read.
const char* GgmlTypeName(uint32_t id) {
  static constexpr const char* kNames[] = {
      "F32", "F16", "Q4_0", "Q4_1", "Q4_2 (removed)", "Q4_3 (removed)", "Q5_0", "Q5_1", "Q8_0",
      "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
      "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
      "BF16", "Q4_0_4_4 (removed)", "Q4_0_4_8 (removed)", "Q4_0_8_8 (removed)", "TQ1_0", "TQ2_0"};
  return id < std::size(kNames) ? kNames[id] : "unknown";
}

std::optional<DType> DTypeFromGgml(uint32_t id) {
  switch (id) {
    case 0: return DType::kF32;
    case 1: return DType::kF16;
    case 2: return DType::kQ4_0;
    case 3: return DType::kQ4_1;
    case 8: return DType::kQ8_0;
    case 30: return DType::kBF16;
    default: return std::nullopt;
  }
}

std::optional<uint64_t> CheckedAdd(uint64_t a, uint64_t b) {
  if (a > UINT64_MAX - b) return std::nullopt;
  return a + b;
}

std::optional<uint64_t> AlignUp(uint64_t x, uint64_t alignment) {
  const auto sum = CheckedAdd(x, alignment - 1);
  if (!sum) return std::nullopt;
  return *sum / alignment * alignment;
}

// Reads little-endian fields from a byte range; every read is bounds-checked and errors name
// the file, the object being read (`context`) and the offset.
class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& path)
      : data_(data), size_(size), path_(path) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  void set_context(std::string c) { context_ = std::move(c); }

  template <typename... Args>
  Status Fail(fmt::format_string<Args...> f, Args&&... args) const {
    return Err("{}: {}: {}", path_, context_, fmt::format(f, std::forward<Args>(args)...));
  }

  Status Need(uint64_t n, const char* what) const {
    if (n > remaining()) {
      return Fail("{} needs {} bytes at offset {}, but the file ends at {}", what, n, pos_, size_);
    }
    return Status::Ok();
  }

  template <typename T>
  Status Read(T* out, const char* what) {
    RTNQ_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string* out, const char* what) {
    uint64_t len = 0;
    RTNQ_RETURN_IF_ERROR(Read(&len, what));
    if (len > remaining()) {
      return Fail("{} of length {} at offset {} runs past the end of the file ({} bytes left)", what,
                  len, pos_ - 8, remaining());
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status ReadValue(GgufType type, int depth, GgufValue* out) {
    out->type = type;
    switch (type) {
      case GgufType::kUint8: return ReadScalar<uint8_t, uint64_t>(out);
      case GgufType::kInt8: return ReadScalar<int8_t, int64_t>(out);
      case GgufType::kUint16: return ReadScalar<uint16_t, uint64_t>(out);
      case GgufType::kInt16: return ReadScalar<int16_t, int64_t>(out);
      case GgufType::kUint32: return ReadScalar<uint32_t, uint64_t>(out);
      case GgufType::kInt32: return ReadScalar<int32_t, int64_t>(out);
      case GgufType::kUint64: return ReadScalar<uint64_t, uint64_t>(out);
      case GgufType::kInt64: return ReadScalar<int64_t, int64_t>(out);
      case GgufType::kFloat32: return ReadScalar<float, double>(out);
      case GgufType::kFloat64: return ReadScalar<double, double>(out);
      case GgufType::kBool: {
        uint8_t b = 0;
        RTNQ_RETURN_IF_ERROR(Read(&b, "bool"));
        if (b > 1) return Fail("expected bool 0 or 1 at offset {}, found {}", pos_ - 1, b);
        out->value = b == 1;
        return Status::Ok();
      }
      case GgufType::kString: {
        std::string s;
        RTNQ_RETURN_IF_ERROR(ReadString(&s, "string"));
        out->value = std::move(s);
        return Status::Ok();
      }
      case GgufType::kArray: return ReadArray(depth, out);
    }
    return Fail("invalid value type {}", static_cast<uint32_t>(type));
  }

 private:
  template <typename Stored, typename Widened>
  Status ReadScalar(GgufValue* out) {
    Stored v;
    RTNQ_RETURN_IF_ERROR(Read(&v, GgufTypeName(out->type)));
    out->value = static_cast<Widened>(v);
    return Status::Ok();
  }

  Status ReadArray(int depth, GgufValue* out) {
    if (depth >= kMaxArrayDepth) {
      return Fail("arrays nested more than {} deep at offset {}", kMaxArrayDepth, pos_);
    }
    uint32_t element_type = 0;
    uint64_t count = 0;
    RTNQ_RETURN_IF_ERROR(Read(&element_type, "array element type"));
    if (!IsValidType(element_type)) {
      return Fail("expected an array element type 0..12 at offset {}, found {}", pos_ - 4,
                  element_type);
    }
    RTNQ_RETURN_IF_ERROR(Read(&count, "array length"));
    const GgufType et = static_cast<GgufType>(element_type);
    // Bound the count by the bytes left before reserving anything.
    if (count > remaining() / MinEncodedSize(et)) {
      return Fail("array of {} {} at offset {} needs at least {} bytes per element, only {} bytes left",
                  count, GgufTypeName(et), pos_ - 12, MinEncodedSize(et), remaining());
    }
    out->array_type = et;
    std::vector<GgufValue> items;
    items.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      items.emplace_back();
      RTNQ_RETURN_IF_ERROR(ReadValue(et, depth + 1, &items.back()));
    }
    out->value = std::move(items);
    return Status::Ok();
  }

  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
  std::string context_ = "header";
};

std::string EscapeForDisplay(const std::string& s, size_t max_bytes) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max_bytes; ++i) {
    const unsigned char c = s[i];
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"' || c == '\\') { out += '\\'; out += static_cast<char>(c); }
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  out += "\"";
  if (s.size() > max_bytes) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

Status CheckTensorData(const std::string& path, std::vector<GgufTensorInfo>& tensors,
                       const std::vector<uint64_t>& info_offsets, uint64_t data_offset,
                       uint64_t file_size) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    GgufTensorInfo& t = tensors[i];
    const auto begin = CheckedAdd(data_offset, t.offset);
    const auto end = begin ? CheckedAdd(*begin, t.nbytes) : std::nullopt;
    if (!end || *end > file_size) {
      return Err("{}: tensor {} at offset {}: data at relative offset {} ({} bytes) runs past the "
                 "end of the file ({} bytes, data section starts at {})",
                 path, t.name, info_offsets[i], t.offset, t.nbytes, file_size, data_offset);
    }
    t.offset = *begin;
  }
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensorInfo& a = tensors[order[k - 1]];
    const GgufTensorInfo& b = tensors[order[k]];
    if (a.offset + a.nbytes > b.offset) {
      return Err("{}: tensor {} at offset {}: data [{}, {}) overlaps tensor {} at [{}, {})", path,
                 b.name, info_offsets[order[k]], b.offset, b.offset + b.nbytes, a.name, a.offset,
                 a.offset + a.nbytes);
    }
  }
  return Status::Ok();
}

Status ReadTensorInfo(Parser& p, uint64_t index, uint64_t alignment, GgufTensorInfo* t) {
  const uint64_t info_offset = p.pos();
  p.set_context(fmt::format("tensor info #{} at offset {}", index, info_offset));
  RTNQ_RETURN_IF_ERROR(p.ReadString(&t->name, "tensor name"));
  p.set_context(fmt::format("tensor {} at offset {}", t->name, info_offset));
  uint32_t n_dims = 0;
  RTNQ_RETURN_IF_ERROR(p.Read(&n_dims, "n_dims"));
  if (n_dims < 1 || n_dims > kMaxDims) return p.Fail("expected 1..{} dims, found {}", kMaxDims, n_dims);
  uint64_t elems = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t dim = 0;
    RTNQ_RETURN_IF_ERROR(p.Read(&dim, "dimension"));
    if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return p.Fail("dimension {} must be positive and fit in int64, found {}", d, dim);
    }
    if (elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
      return p.Fail("element count overflows at dimension {} ({})", d, dim);
    }
    elems *= dim;
    t->dims.push_back(static_cast<int64_t>(dim));
  }
  uint32_t type_id = 0;
  RTNQ_RETURN_IF_ERROR(p.Read(&type_id, "ggml type"));
  const auto dtype = DTypeFromGgml(type_id);
  if (!dtype) {
    return p.Fail("unsupported ggml type id {} ({}); rtnq reads F32, F16, BF16, Q8_0, Q4_0, Q4_1",
                  type_id, GgmlTypeName(type_id));
  }
  t->dtype = *dtype;
  const uint32_t block = Info(*dtype).block_elems;
  if (t->dims[0] % block != 0) {
    return p.Fail("row length {} is not a multiple of the {} block size {}", t->dims[0],
                  DTypeName(*dtype), block);
  }
  const auto nbytes = DTypeBytes(*dtype, elems);
  if (!nbytes) return p.Fail("byte size of {} {} elements overflows", elems, DTypeName(*dtype));
  t->nbytes = *nbytes;
  RTNQ_RETURN_IF_ERROR(p.Read(&t->offset, "data offset"));
  if (t->offset % alignment != 0) {
    return p.Fail("data offset {} is not a multiple of the alignment {}", t->offset, alignment);
  }
  return Status::Ok();
}

}  // namespace

const char* GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kUint8: return "uint8";
    case GgufType::kInt8: return "int8";
    case GgufType::kUint16: return "uint16";
    case GgufType::kInt16: return "int16";
    case GgufType::kUint32: return "uint32";
    case GgufType::kInt32: return "int32";
    case GgufType::kFloat32: return "float32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "uint64";
    case GgufType::kInt64: return "int64";
    case GgufType::kFloat64: return "float64";
  }
  return "invalid";
}

bool GgufValue::IsInteger() const { return IsIntegerType(type); }

std::optional<int64_t> GgufValue::AsInt() const {
  if (!IsInteger()) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&value)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&value)) return *i;
  return std::nullopt;
}

std::optional<double> GgufValue::AsFloat() const {
  if (IsFloatType(type)) return std::get<double>(value);
  if (const auto* u = std::get_if<uint64_t>(&value); u && IsInteger()) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&value); i && IsInteger()) return static_cast<double>(*i);
  return std::nullopt;
}

const std::string* GgufValue::AsString() const { return std::get_if<std::string>(&value); }

const std::vector<GgufValue>* GgufValue::AsArray() const {
  return std::get_if<std::vector<GgufValue>>(&value);
}

std::string GgufValue::ToDisplayString(size_t max_array_items) const {
  switch (type) {
    case GgufType::kString: return EscapeForDisplay(std::get<std::string>(value), 160);
    case GgufType::kBool: return std::get<bool>(value) ? "true" : "false";
    // f32 values are printed at f32 precision (1e-05, not 9.999999747378752e-06).
    case GgufType::kFloat32: return fmt::format("{}", static_cast<float>(std::get<double>(value)));
    case GgufType::kFloat64: return fmt::format("{}", std::get<double>(value));
    case GgufType::kArray: {
      const auto& items = std::get<std::vector<GgufValue>>(value);
      std::string out = "[";
      for (size_t i = 0; i < items.size() && i < max_array_items; ++i) {
        if (i > 0) out += ", ";
        out += items[i].ToDisplayString(max_array_items);
      }
      if (items.size() > max_array_items) {
        out += fmt::format(", ... {} more", items.size() - max_array_items);
      }
      return out + fmt::format("] ({}[{}])", GgufTypeName(array_type), items.size());
    }
    default:
      if (const auto* u = std::get_if<uint64_t>(&value)) return fmt::format("{}", *u);
      return fmt::format("{}", std::get<int64_t>(value));
  }
}

const GgufValue* GgufFile::Find(const std::string& key) const {
  for (const auto& [k, v] : metadata) {
    if (k == key) return &v;
  }
  return nullptr;
}

uint64_t GgufFile::KeyOffset(const std::string& key) const {
  for (size_t i = 0; i < metadata.size() && i < metadata_offsets.size(); ++i) {
    if (metadata[i].first == key) return metadata_offsets[i];
  }
  return 0;
}

const GgufTensorInfo* GgufFile::FindTensor(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

Status GgufFile::KeyError(const std::string& key, const std::string& what) const {
  return Err("{}: metadata key {} at offset {}: {}", path, key, KeyOffset(key), what);
}

Result<std::optional<int64_t>> GgufFile::GetInt(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<int64_t>();
  const auto i = v->AsInt();
  if (!i) {
    return KeyError(key, fmt::format("expected an integer, found {} {}", GgufTypeName(v->type),
                                     v->ToDisplayString()));
  }
  return std::optional<int64_t>(*i);
}

Result<std::optional<double>> GgufFile::GetFloat(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<double>();
  const auto f = v->AsFloat();
  if (!f) {
    return KeyError(key, fmt::format("expected a number, found {} {}", GgufTypeName(v->type),
                                     v->ToDisplayString()));
  }
  return std::optional<double>(*f);
}

Result<std::optional<bool>> GgufFile::GetBool(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<bool>();
  if (v->type != GgufType::kBool) {
    return KeyError(key, fmt::format("expected bool, found {} {}", GgufTypeName(v->type),
                                     v->ToDisplayString()));
  }
  return std::optional<bool>(std::get<bool>(v->value));
}

Result<std::optional<std::string>> GgufFile::GetString(const std::string& key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return std::optional<std::string>();
  if (v->type != GgufType::kString) {
    return KeyError(key, fmt::format("expected string, found {} {}", GgufTypeName(v->type),
                                     v->ToDisplayString()));
  }
  return std::optional<std::string>(*v->AsString());
}

Result<const std::vector<GgufValue>*> GgufFile::GetArray(const std::string& key,
                                                         GgufType element_type) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return static_cast<const std::vector<GgufValue>*>(nullptr);
  const bool type_ok =
      v->type == GgufType::kArray &&
      (v->array_type == element_type ||
       (IsIntegerType(element_type) && IsIntegerType(v->array_type)) ||
       (IsFloatType(element_type) && IsFloatType(v->array_type)));
  if (!type_ok) {
    const std::string found = v->type == GgufType::kArray
                                  ? fmt::format("array of {}", GgufTypeName(v->array_type))
                                  : GgufTypeName(v->type);
    return KeyError(key, fmt::format("expected array of {}, found {}", GgufTypeName(element_type),
                                     found));
  }
  return v->AsArray();
}

Result<GgufFile> ParseGguf(const uint8_t* data, size_t size, const std::string& path) {
  GgufFile f;
  f.path = path;
  Parser p(data, size, path);
  if (size < 4) return Err("{}: file is {} bytes, too short for a GGUF header", path, size);
  uint32_t magic = 0, version = 0;
  RTNQ_RETURN_IF_ERROR(p.Read(&magic, "magic"));
  if (magic != kGgufMagic) {
    return Err("{}: header at offset 0: bad magic: expected \"GGUF\" (47 47 55 46), found "
               "{:02x} {:02x} {:02x} {:02x}", path, data[0], data[1], data[2], data[3]);
  }
  RTNQ_RETURN_IF_ERROR(p.Read(&version, "version"));
  if (version != 2 && version != 3) {
    return Err("{}: header at offset 4: unsupported GGUF version {} (rtnq reads 2 and 3{})", path,
               version, version > 0xffff ? "; a big-endian file?" : "");
  }
  f.version = version;
  uint64_t tensor_count = 0, kv_count = 0;
  RTNQ_RETURN_IF_ERROR(p.Read(&tensor_count, "tensor count"));
  RTNQ_RETURN_IF_ERROR(p.Read(&kv_count, "metadata count"));
  // A metadata entry takes at least 13 bytes (key length 8, type 4, a 1-byte value).
  if (kv_count > p.remaining() / 13) {
    return Err("{}: header at offset 16: metadata count {} cannot fit in the {} bytes left", path,
               kv_count, p.remaining());
  }

  std::unordered_set<std::string> keys;
  f.metadata.reserve(kv_count);
  f.metadata_offsets.reserve(kv_count);
  for (uint64_t i = 0; i < kv_count; ++i) {
    const uint64_t entry_offset = p.pos();
    p.set_context(fmt::format("metadata entry #{} at offset {}", i, entry_offset));
    std::string key;
    RTNQ_RETURN_IF_ERROR(p.ReadString(&key, "key"));
    p.set_context(fmt::format("metadata key {} at offset {}", key, entry_offset));
    if (!keys.insert(key).second) return p.Fail("duplicate key");
    uint32_t type = 0;
    RTNQ_RETURN_IF_ERROR(p.Read(&type, "value type"));
    if (!IsValidType(type)) return p.Fail("expected a value type 0..12, found {}", type);
    GgufValue value;
    RTNQ_RETURN_IF_ERROR(p.ReadValue(static_cast<GgufType>(type), 0, &value));
    f.metadata.emplace_back(std::move(key), std::move(value));
    f.metadata_offsets.push_back(entry_offset);
  }

  if (const GgufValue* a = f.Find("general.alignment")) {
    const auto alignment = a->AsInt();
    if (!alignment || *alignment <= 0 || (*alignment & (*alignment - 1)) != 0) {
      return f.KeyError("general.alignment",
                        fmt::format("expected a non-zero power of two, found {} {}",
                                    GgufTypeName(a->type), a->ToDisplayString()));
    }
    f.alignment = static_cast<uint64_t>(*alignment);
  }

  // A tensor info takes at least 24 bytes (name length 8, n_dims 4, type 4, offset 8).
  p.set_context(fmt::format("header at offset 8"));
  if (tensor_count > p.remaining() / 24) {
    return p.Fail("tensor count {} cannot fit in the {} bytes left after the metadata",
                  tensor_count, p.remaining());
  }
  std::unordered_set<std::string> names;
  std::vector<uint64_t> info_offsets;
  f.tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    info_offsets.push_back(p.pos());
    GgufTensorInfo t;
    RTNQ_RETURN_IF_ERROR(ReadTensorInfo(p, i, f.alignment, &t));
    if (!names.insert(t.name).second) return p.Fail("duplicate tensor name");
    f.tensors.push_back(std::move(t));
  }
  const auto data_offset = AlignUp(p.pos(), f.alignment);
  if (!data_offset) return Err("{}: data section offset overflows", path);
  // A file without tensors (vocab-only) may end right after its header, before the padding.
  f.data_offset = f.tensors.empty() ? std::min<uint64_t>(*data_offset, size) : *data_offset;
  RTNQ_RETURN_IF_ERROR(CheckTensorData(path, f.tensors, info_offsets, f.data_offset, size));
  return f;
}

Result<GgufFile> ReadGguf(const std::string& path) {
  RTNQ_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::Open(path));
  RTNQ_ASSIGN_OR_RETURN(GgufFile f, ParseGguf(file->data(), file->size(), path));
  f.file = std::move(file);
  return f;
}

}  // namespace rtnq
