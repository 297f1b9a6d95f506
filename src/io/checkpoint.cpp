#include "io/checkpoint.h"

#include <algorithm>

#include "arch/tensor_role.h"
#include "io/checkpoint_readers.h"

namespace rtnq {

int64_t TensorView::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::PrecisionName() const {
  return rtn ? rtn->Name() : std::string(DTypeName(dtype));
}

const char* CheckpointFormatName(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::kHfSafetensors: return "hf-safetensors";
    case CheckpointFormat::kGguf: return "gguf";
    case CheckpointFormat::kLlama2c: return "llama2c";
  }
  return "?";
}

const TensorView* Checkpoint::Find(std::string_view canonical_name) const {
  for (const auto& t : tensors) {
    if (t.name == canonical_name) return &t;
  }
  return nullptr;
}

std::shared_ptr<MappedFile> Checkpoint::FileHolding(const TensorView& view) const {
  for (const auto& file : files) {
    if (view.data >= file->data() && view.data + view.nbytes <= file->data() + file->size()) return file;
  }
  return nullptr;
}

namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Status ValidateQuantizedView(const TensorView& t) {
  const RtnFormat& f = *t.rtn;
  if (t.shape.size() != 2) {
    return Err("{}: quantized tensor {} must be 2-D, found shape {}", t.file, t.file_name,
               ShapeString(t.shape));
  }
  const int64_t n = t.shape[0], k = t.shape[1];
  const Status fits = f.CheckShape(n, k);
  if (!fits.ok()) return Err("{}: tensor {} ({}): {}", t.file, t.file_name, f.Name(), fits.message());
  const uint64_t row = f.CodeBytes(1, k);
  if (t.code_row_bytes < row || t.data == nullptr ||
      t.nbytes != t.code_row_bytes * static_cast<uint64_t>(n)) {
    return Err("{}: tensor {} at offset {}: {} code bytes in rows of {} for {} [{}, {}] (rows of {}) "
               "is inconsistent",
               t.file, t.file_name, t.file_offset, t.nbytes, t.code_row_bytes, f.Name(), n, k, row);
  }
  if (t.scales == nullptr || t.scales_nbytes != f.ScaleBytes(n, k)) {
    return Err("{}: tensor {}: {} scale bytes for {} [{}, {}], expected {}", t.file, t.file_name,
               t.scales_nbytes, f.Name(), n, k, f.ScaleBytes(n, k));
  }
  return Status::Ok();
}

Status ValidateCheckpoint(const Checkpoint& ck) {
  RTNQ_RETURN_IF_ERROR(ck.config.Validate().WithContext(ck.path));
  for (const TensorId& id : RequiredTensors(ck.config)) {
    const std::string name = CanonicalName(id);
    const TensorView* t = ck.Find(name);
    if (t == nullptr) return Err("{}: missing tensor {}", ck.path, name);
    const auto expected = ExpectedShape(ck.config, id);
    if (t->shape != expected) {
      return Err("{}: tensor {} ({}) has shape {}, config implies {}", t->file, name, t->file_name,
                 ShapeString(t->shape), ShapeString(expected));
    }
    if (t->rtn) {
      RTNQ_RETURN_IF_ERROR(ValidateQuantizedView(*t));
      continue;
    }
    if (!IsWeightDType(t->dtype)) {
      return Err("{}: tensor {} has dtype {}, expected a float or GGML block type", t->file,
                 t->file_name, DTypeName(t->dtype));
    }
    const auto bytes = DTypeBytes(t->dtype, static_cast<uint64_t>(t->NumElements()));
    // Block types need whole blocks per row, since rows are decoded independently.
    const int64_t row = t->shape.back();
    if (!bytes || *bytes != t->nbytes || row % Info(t->dtype).block_elems != 0) {
      return Err("{}: tensor {} at offset {}: {} bytes for {} {} elements (row of {}) is inconsistent",
                 t->file, t->file_name, t->file_offset, t->nbytes, t->NumElements(),
                 DTypeName(t->dtype), row);
    }
  }
  // Tensors sharing a file must not overlap (a corrupt header could alias them).
  std::vector<const TensorView*> sorted;
  for (const auto& t : ck.tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](const TensorView* a, const TensorView* b) {
    return a->file != b->file ? a->file < b->file : a->file_offset < b->file_offset;
  });
  // Compare each tensor with the furthest-reaching earlier one in its file: an empty tensor (or a
  // short one) sorted between two overlapping tensors must not hide their overlap.
  const TensorView* reach = nullptr;
  for (const TensorView* t : sorted) {
    if (reach != nullptr && reach->file != t->file) reach = nullptr;
    if (t->nbytes == 0) continue;
    if (reach != nullptr && reach->file_offset + reach->nbytes > t->file_offset) {
      return Err("{}: tensors {} and {} overlap at offset {}", t->file, reach->file_name, t->file_name,
                 t->file_offset);
    }
    if (reach == nullptr || t->file_offset + t->nbytes > reach->file_offset + reach->nbytes) reach = t;
  }
  return Status::Ok();
}

Result<Checkpoint> OpenCheckpoint(const std::string& path, const OpenOptions& options) {
  Result<Checkpoint> ck = Err("{}: unrecognised model path", path);
  if (IsDirectory(path) || EndsWith(path, "config.json") || EndsWith(path, ".safetensors")) {
    ck = OpenHfCheckpoint(path, options);
  } else if (EndsWith(path, ".gguf")) {
    ck = OpenGgufCheckpoint(path, options);
  } else if (EndsWith(path, ".bin")) {
    ck = OpenLlama2cCheckpoint(path, options);
  } else if (!PathExists(path)) {
    return Err("{}: no such file or directory", path);
  } else {
    return Err("{}: unknown model format (expected an HF directory, a .gguf or a llama2.c .bin)",
               path);
  }
  if (!ck.ok()) return ck;
  RTNQ_RETURN_IF_ERROR(ValidateCheckpoint(*ck));
  return ck;
}

}  // namespace rtnq
