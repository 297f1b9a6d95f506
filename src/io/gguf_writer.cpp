#include "io/gguf_writer.h"

#include <algorithm>
#include <cstring>

#include "base/file.h"

namespace rtnq {
namespace {

class ByteSink {
 public:
  template <typename T>
  void Pod(T v) {
    const size_t n = bytes_.size();
    bytes_.resize(n + sizeof(T));
    std::memcpy(bytes_.data() + n, &v, sizeof(T));
  }
  void String(const std::string& s) {
    Pod<uint64_t>(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void Pad(uint64_t alignment) {
    while (bytes_.size() % alignment != 0) bytes_.push_back(0);
  }
  std::vector<uint8_t>& bytes() { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

void WriteValue(ByteSink& out, const GgufValue& v, bool with_type) {
  if (with_type) out.Pod<uint32_t>(static_cast<uint32_t>(v.type));
  switch (v.type) {
    case GgufType::kUint8: out.Pod<uint8_t>(static_cast<uint8_t>(std::get<uint64_t>(v.value))); break;
    case GgufType::kInt8: out.Pod<int8_t>(static_cast<int8_t>(std::get<int64_t>(v.value))); break;
    case GgufType::kUint16: out.Pod<uint16_t>(static_cast<uint16_t>(std::get<uint64_t>(v.value))); break;
    case GgufType::kInt16: out.Pod<int16_t>(static_cast<int16_t>(std::get<int64_t>(v.value))); break;
    case GgufType::kUint32: out.Pod<uint32_t>(static_cast<uint32_t>(std::get<uint64_t>(v.value))); break;
    case GgufType::kInt32: out.Pod<int32_t>(static_cast<int32_t>(std::get<int64_t>(v.value))); break;
    case GgufType::kUint64: out.Pod<uint64_t>(std::get<uint64_t>(v.value)); break;
    case GgufType::kInt64: out.Pod<int64_t>(std::get<int64_t>(v.value)); break;
    case GgufType::kFloat32: out.Pod<float>(static_cast<float>(std::get<double>(v.value))); break;
    case GgufType::kFloat64: out.Pod<double>(std::get<double>(v.value)); break;
    case GgufType::kBool: out.Pod<uint8_t>(std::get<bool>(v.value) ? 1 : 0); break;
    case GgufType::kString: out.String(std::get<std::string>(v.value)); break;
    case GgufType::kArray: {
      const auto& items = std::get<std::vector<GgufValue>>(v.value);
      out.Pod<uint32_t>(static_cast<uint32_t>(v.array_type));
      out.Pod<uint64_t>(items.size());
      for (const auto& item : items) WriteValue(out, item, /*with_type=*/false);
      break;
    }
  }
}

GgufValue Scalar(GgufType t, std::variant<uint64_t, int64_t, double, bool, std::string> v) {
  GgufValue g;
  g.type = t;
  std::visit([&](auto&& x) { g.value = x; }, v);
  return g;
}

template <typename T, typename F>
GgufValue Array(GgufType element_type, const std::vector<T>& items, F make) {
  GgufValue g;
  g.type = GgufType::kArray;
  g.array_type = element_type;
  std::vector<GgufValue> values;
  values.reserve(items.size());
  for (const T& item : items) values.push_back(make(item));
  g.value = std::move(values);
  return g;
}

}  // namespace

uint32_t GgmlTypeId(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ4_1: return 3;
    case DType::kQ8_0: return 8;
    case DType::kBF16: return 30;
    case DType::kI8: return 24;
    case DType::kI32: return 26;
    case DType::kI64: return 27;
    default: break;
  }
  return 0;
}

void GgufWriter::Set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(key, std::move(value));
}

void GgufWriter::SetString(const std::string& key, std::string v) { Set(key, Scalar(GgufType::kString, std::move(v))); }
void GgufWriter::SetUint32(const std::string& key, uint32_t v) { Set(key, Scalar(GgufType::kUint32, uint64_t{v})); }
void GgufWriter::SetInt32(const std::string& key, int32_t v) { Set(key, Scalar(GgufType::kInt32, int64_t{v})); }
void GgufWriter::SetFloat32(const std::string& key, float v) { Set(key, Scalar(GgufType::kFloat32, double{v})); }
void GgufWriter::SetBool(const std::string& key, bool v) { Set(key, Scalar(GgufType::kBool, v)); }

void GgufWriter::SetStringArray(const std::string& key, const std::vector<std::string>& v) {
  Set(key, Array(GgufType::kString, v, [](const std::string& s) { return Scalar(GgufType::kString, s); }));
}
void GgufWriter::SetFloat32Array(const std::string& key, const std::vector<float>& v) {
  Set(key, Array(GgufType::kFloat32, v, [](float f) { return Scalar(GgufType::kFloat32, double{f}); }));
}
void GgufWriter::SetInt32Array(const std::string& key, const std::vector<int32_t>& v) {
  Set(key, Array(GgufType::kInt32, v, [](int32_t i) { return Scalar(GgufType::kInt32, int64_t{i}); }));
}

Status GgufWriter::AddTensor(const std::string& name, const std::vector<int64_t>& shape, DType dtype) {
  uint64_t elems = 1;
  for (int64_t d : shape) elems *= static_cast<uint64_t>(d);
  if (shape.empty() || shape.back() % Info(dtype).block_elems != 0) {
    return Err("tensor {}: row of {} elements is not a whole number of {} blocks", name,
               shape.empty() ? 0 : shape.back(), DTypeName(dtype));
  }
  tensors_.push_back({name, shape, dtype, *DTypeBytes(dtype, elems)});
  return Status::Ok();
}

Status GgufWriter::Write(const std::string& path, bool overwrite, const TensorFiller& fill) const {
  ByteSink header;
  header.Pod<uint32_t>(0x46554747);  // "GGUF"
  header.Pod<uint32_t>(3);
  header.Pod<uint64_t>(tensors_.size());
  header.Pod<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    header.String(key);
    WriteValue(header, value, /*with_type=*/true);
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    header.String(t.name);
    header.Pod<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) header.Pod<uint64_t>(static_cast<uint64_t>(*it));
    header.Pod<uint32_t>(GgmlTypeId(t.dtype));
    header.Pod<uint64_t>(offset);
    offset += (t.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }
  header.Pad(alignment_);

  RTNQ_ASSIGN_OR_RETURN(auto out, AtomicFileWriter::Create(path, overwrite));
  RTNQ_RETURN_IF_ERROR(out->Write(header.bytes().data(), header.bytes().size()));
  std::vector<uint8_t> bytes;
  static const uint8_t kZeros[64] = {};
  for (size_t i = 0; i < tensors_.size(); ++i) {
    bytes.assign(tensors_[i].nbytes, 0);
    RTNQ_RETURN_IF_ERROR(fill(i, bytes).WithContext(path));
    RTNQ_RETURN_IF_ERROR(out->Write(bytes.data(), bytes.size()));
    for (uint64_t pad = (alignment_ - bytes.size() % alignment_) % alignment_; pad > 0;) {
      const uint64_t n = std::min<uint64_t>(pad, sizeof(kZeros));
      RTNQ_RETURN_IF_ERROR(out->Write(kZeros, n));
      pad -= n;
    }
  }
  return out->Commit();
}

}  // namespace rtnq
