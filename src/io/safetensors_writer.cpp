#include "io/safetensors_writer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "io/safetensors.h"

namespace rtnq {
namespace {

namespace fs = std::filesystem;

Result<uint64_t> TensorBytes(const TensorSpec& t) {
  if (!SafetensorsDTypeName(t.dtype)) {
    return Err("tensor {}: dtype {} cannot be stored in safetensors", t.name, DTypeName(t.dtype));
  }
  uint64_t elems = 1;
  for (int64_t d : t.shape) {
    if (d < 0 || __builtin_mul_overflow(elems, static_cast<uint64_t>(d), &elems)) {
      return Err("tensor {}: invalid shape [{}]", t.name, fmt::join(t.shape, ", "));
    }
  }
  auto bytes = DTypeBytes(t.dtype, elems);
  if (!bytes) return Err("tensor {}: shape [{}] overflows", t.name, fmt::join(t.shape, ", "));
  return *bytes;
}

// The 8-byte length and the JSON header, padded with spaces so the data section starts at a
// multiple of 8 bytes (as HF's writer does, so mapped f32 data is aligned).
std::string Header(const std::vector<TensorSpec>& tensors, const std::vector<uint64_t>& nbytes,
                   size_t first, size_t end,
                   const std::vector<std::pair<std::string, std::string>>& metadata) {
  nlohmann::ordered_json j;
  nlohmann::ordered_json meta;
  meta["format"] = "pt";
  for (const auto& [k, v] : metadata) meta[k] = v;
  j["__metadata__"] = meta;
  uint64_t offset = 0;
  for (size_t i = first; i < end; ++i) {
    j[tensors[i].name] = {{"dtype", *SafetensorsDTypeName(tensors[i].dtype)},
                          {"shape", tensors[i].shape},
                          {"data_offsets", {offset, offset + nbytes[i]}}};
    offset += nbytes[i];
  }
  std::string text = j.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  return out + text;
}

}  // namespace

Result<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Begin(
    const std::string& path, std::vector<TensorSpec> tensors,
    const SafetensorsWriteOptions& options) {
  std::unique_ptr<SafetensorsWriter> w(new SafetensorsWriter());
  w->overwrite_ = options.overwrite;
  std::set<std::string> names;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__") return Err("{}: invalid tensor name \"{}\"", path, t.name);
    if (!names.insert(t.name).second) return Err("{}: tensor {} given twice", path, t.name);
    auto bytes = TensorBytes(t);
    if (!bytes.ok()) return bytes.status().WithContext(path);
    w->tensor_nbytes_.push_back(*bytes);
    w->tensor_bytes_ += *bytes;
  }
  w->tensors_ = std::move(tensors);

  // Greedy split in the given order, like transformers' shard_checkpoint.
  std::vector<std::pair<size_t, size_t>> ranges;
  uint64_t shard_bytes = 0;
  for (size_t i = 0; i < w->tensors_.size(); ++i) {
    const uint64_t b = w->tensor_nbytes_[i];
    if (ranges.empty() || (options.max_shard_bytes > 0 && shard_bytes > 0 &&
                           shard_bytes + b > options.max_shard_bytes)) {
      ranges.emplace_back(i, i);
      shard_bytes = 0;
    }
    ranges.back().second = i + 1;
    shard_bytes += b;
  }
  if (ranges.empty()) ranges.emplace_back(0, 0);

  const fs::path p(path);
  if (ranges.size() == 1) {
    w->shards_.push_back({path, ranges[0].first, ranges[0].second, nullptr});
  } else {
    const std::string stem = p.stem().string();  // "model" for model.safetensors
    nlohmann::ordered_json weight_map;
    for (size_t s = 0; s < ranges.size(); ++s) {
      const std::string name = fmt::format("{}-{:05d}-of-{:05d}.safetensors", stem, s + 1, ranges.size());
      w->shards_.push_back({(p.parent_path() / name).string(), ranges[s].first, ranges[s].second, nullptr});
    }
    // transformers writes the weight_map sorted by tensor name.
    std::map<std::string, std::string> sorted;
    for (const auto& shard : w->shards_) {
      for (size_t i = shard.first_tensor; i < shard.end_tensor; ++i) {
        sorted[w->tensors_[i].name] = fs::path(shard.path).filename().string();
      }
    }
    for (const auto& [k, v] : sorted) weight_map[k] = v;
    nlohmann::ordered_json index;
    index["metadata"] = {{"total_size", w->tensor_bytes_}};
    index["weight_map"] = weight_map;
    w->index_path_ = path + ".index.json";
    w->index_json_ = index.dump(2) + "\n";
  }

  for (auto& shard : w->shards_) {
    const std::string header = Header(w->tensors_, w->tensor_nbytes_, shard.first_tensor,
                                      shard.end_tensor, options.metadata);
    RTNQ_ASSIGN_OR_RETURN(shard.out, AtomicFileWriter::Create(shard.path, options.overwrite));
    RTNQ_RETURN_IF_ERROR(shard.out->Write(header));
    w->files_.push_back(shard.path);
    w->file_bytes_ += header.size();
  }
  w->file_bytes_ += w->tensor_bytes_;
  if (!w->index_path_.empty()) {
    if (!options.overwrite && PathExists(w->index_path_)) {
      return Err("{}: already exists (use --force to overwrite)", w->index_path_);
    }
    w->files_.push_back(w->index_path_);
    w->file_bytes_ += w->index_json_.size();
  }
  w->current_left_ = w->tensors_.empty() ? 0 : w->tensor_nbytes_[0];
  return w;
}

Status SafetensorsWriter::WriteTensorData(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    // Skip to the next tensor that still expects bytes (zero-size tensors expect none).
    while (current_left_ == 0 && current_tensor_ < tensors_.size()) {
      if (++current_tensor_ < tensors_.size()) current_left_ = tensor_nbytes_[current_tensor_];
    }
    if (current_tensor_ >= tensors_.size()) {
      return Err("{}: {} bytes written past the last tensor", shards_.back().path, n);
    }
    while (current_tensor_ >= shards_[current_shard_].end_tensor) ++current_shard_;
    const size_t take = static_cast<size_t>(std::min<uint64_t>(n, current_left_));
    RTNQ_RETURN_IF_ERROR(shards_[current_shard_].out->Write(p, take));
    p += take;
    n -= take;
    current_left_ -= take;
    written_ += take;
  }
  return Status::Ok();
}

Status SafetensorsWriter::Commit() {
  if (committed_) return Err("{}: already committed", shards_.front().path);
  if (written_ != tensor_bytes_) {
    const size_t t = std::min(current_tensor_, tensors_.size() - 1);
    return Err("{}: only {} of {} tensor bytes were written (tensor {} incomplete)",
               shards_.front().path, written_, tensor_bytes_, tensors_[t].name);
  }
  for (auto& shard : shards_) RTNQ_RETURN_IF_ERROR(shard.out->Commit());
  if (!index_path_.empty()) {
    RTNQ_RETURN_IF_ERROR(WriteFileAtomic(index_path_, index_json_, overwrite_));
  }
  committed_ = true;
  return Status::Ok();
}

Result<std::string> SerializeSafetensors(
    const std::vector<TensorSpec>& tensors, const std::vector<std::string>& data,
    const std::vector<std::pair<std::string, std::string>>& metadata) {
  if (tensors.size() != data.size()) return Err("{} tensors but {} data blocks", tensors.size(), data.size());
  std::vector<uint64_t> nbytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    RTNQ_ASSIGN_OR_RETURN(uint64_t b, TensorBytes(tensors[i]));
    if (b != data[i].size()) {
      return Err("tensor {}: {} data bytes, shape needs {}", tensors[i].name, data[i].size(), b);
    }
    nbytes.push_back(b);
  }
  std::string out = Header(tensors, nbytes, 0, tensors.size(), metadata);
  for (const auto& d : data) out += d;
  return out;
}

}  // namespace rtnq
