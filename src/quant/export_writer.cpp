#include "quant/export_writer.h"

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/timer.h"
#include "io/hf_config.h"
#include "quant/tensor_rows.h"

namespace rtnq {

DType KeptDType(DType source) {
  return source == DType::kF32 || source == DType::kF16 || source == DType::kBF16 ? source : DType::kF32;
}

Status AppendKeptTensor(const TensorView& view, std::vector<uint8_t>& out) {
  const TensorRows rows(view);
  const DType dtype = KeptDType(view.dtype);
  const size_t row_bytes = static_cast<size_t>(rows.cols()) * Info(dtype).block_bytes;
  std::vector<float> decoded(dtype == view.dtype ? 0 : rows.cols());
  for (int64_t r = 0; r < rows.rows(); ++r) {
    const uint8_t* src = rows.Raw(r);
    if (dtype != view.dtype) {
      rows.ReadF32(r, decoded.data());
      src = reinterpret_cast<const uint8_t*>(decoded.data());
    }
    out.insert(out.end(), src, src + row_bytes);
  }
  return Status::Ok();
}

OutputTensor KeptOutput(const Checkpoint& checkpoint, const TensorDecision& decision, ExportResult* result) {
  const TensorView* view = checkpoint.Find(decision.name);
  return {{decision.name, KeptDType(view->dtype), decision.shape}, [view, result](std::vector<uint8_t>& out) {
            result->source_bytes += view->nbytes;
            return AppendKeptTensor(*view, out);
          }};
}

namespace {

Status WriteSafetensorsModel(const std::string& dir, const std::vector<OutputTensor>& tensors,
                             const std::vector<std::pair<std::string, std::string>>& metadata,
                             const ExportOptions& options, ExportResult* result) {
  std::vector<TensorSpec> specs;
  for (const auto& t : tensors) specs.push_back(t.spec);
  SafetensorsWriteOptions write_options;
  write_options.overwrite = false;
  write_options.max_shard_bytes = 4ull << 30;
  write_options.metadata = metadata;
  RTNQ_ASSIGN_OR_RETURN(auto writer, SafetensorsWriter::Begin(dir + "/model.safetensors", specs, write_options));
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    bytes.clear();
    RTNQ_RETURN_IF_ERROR(tensors[i].produce(bytes));
    RTNQ_RETURN_IF_ERROR(writer->WriteTensorData(bytes.data(), bytes.size()));
    if (options.progress) options.progress(i + 1, tensors.size(), result->source_bytes);
  }
  RTNQ_RETURN_IF_ERROR(writer->Commit());
  result->bytes_written += writer->file_bytes();
  for (const auto& f : writer->files()) result->files.push_back(f);
  return Status::Ok();
}

}  // namespace

std::string TorchDType(const Checkpoint& checkpoint) {
  uint64_t counts[3] = {0, 0, 0};  // f32, f16, bf16
  for (const auto& t : checkpoint.tensors) {
    if (t.IsQuantized()) continue;  // RTN views: their kept form is decided per tensor
    const DType d = KeptDType(t.dtype);
    counts[d == DType::kF32 ? 0 : d == DType::kF16 ? 1 : 2] += t.nbytes;
  }
  if (counts[2] >= counts[0] && counts[2] >= counts[1]) return "bfloat16";
  return counts[1] > counts[0] ? "float16" : "float32";
}

namespace {

Status WriteHfSideFiles(const std::string& dir, const Checkpoint& checkpoint,
                        const std::string& quantization_config_json, ExportResult* result) {
  nlohmann::ordered_json config = HfConfigJson(checkpoint.config, TorchDType(checkpoint));
  config["quantization_config"] = nlohmann::ordered_json::parse(quantization_config_json);
  auto write = [&](const std::string& name, const std::string& text) -> Status {
    RTNQ_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + name, text, false));
    result->files.push_back(dir + "/" + name);
    result->bytes_written += text.size();
    return Status::Ok();
  };
  RTNQ_RETURN_IF_ERROR(write("config.json", config.dump(2) + "\n"));
  RTNQ_RETURN_IF_ERROR(write("generation_config.json", HfGenerationConfigJson(checkpoint.config).dump(2) + "\n"));
  if (checkpoint.format == CheckpointFormat::kHfSafetensors) {
    const std::string src_dir = IsDirectory(checkpoint.path) ? checkpoint.path
                                : checkpoint.path.find('/') == std::string::npos
                                    ? "."
                                    : checkpoint.path.substr(0, checkpoint.path.rfind('/'));
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}) {
      const std::string src = src_dir + "/" + name;
      if (!PathExists(src)) continue;
      RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(src));
      RTNQ_RETURN_IF_ERROR(write(name, text));
    }
  }
  return Status::Ok();
}

}  // namespace

Status WriteHfExport(const std::string& dir, const Checkpoint& checkpoint,
                     const std::vector<OutputTensor>& tensors, const std::string& quantization_config_json,
                     const ExportOptions& options, ExportResult* result) {
  const std::vector<std::pair<std::string, std::string>> metadata = {
      {"rtnq.plan", options.plan_text},
      {"rtnq.arithmetic", RtnArithmeticName(options.quantize.arithmetic)},
      {"rtnq.source", checkpoint.path}};
  RTNQ_RETURN_IF_ERROR(WriteSafetensorsModel(dir, tensors, metadata, options, result));
  return WriteHfSideFiles(dir, checkpoint, quantization_config_json, result);
}

Status CommitExport(AtomicDirectory& dir, ExportResult* result) {
  RTNQ_RETURN_IF_ERROR(dir.Commit());
  for (auto& f : result->files) f.replace(0, dir.temp_path().size(), dir.path());
  return Status::Ok();
}

Result<RtnMatrix> QuantizeDecision(const Checkpoint& checkpoint, const TensorDecision& decision,
                                   const RtnFormat& format, const ExportOptions& options,
                                   ExportResult* result) {
  const TensorView* view = checkpoint.Find(decision.name);
  if (view == nullptr) return Err("{}: missing tensor {}", checkpoint.path, decision.name);
  Timer timer;
  auto m = QuantizeTensor(*view, format, options.quantize, options.pool);
  result->quantize_seconds += timer.Seconds();
  result->source_bytes += view->nbytes;
  return m;
}

}  // namespace rtnq
