// OpenHfCheckpoint: an HF model directory. config.json gives the ModelConfig; the weights come
// from model.safetensors or from the shards listed in model.safetensors.index.json; tokenizer.json
// (if present) gives the tokenizer. Tensor names in HF files are already canonical.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>

#include "io/checkpoint_readers.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer_json.h"

namespace rtnq {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

void AddFile(Checkpoint* ck, const SafetensorsFile& f) {
  for (const auto& t : f.header.tensors) {
    TensorView v;
    v.name = t.name;
    v.file_name = t.name;
    v.dtype = t.dtype;
    v.shape = t.shape;
    v.data = f.TensorData(t);
    v.nbytes = t.nbytes;
    v.file = f.path();
    v.file_offset = t.offset;
    ck->tensors.push_back(std::move(v));
  }
  for (const auto& [key, value] : f.header.metadata) {
    const std::string item = "safetensors." + key;
    bool seen = false;
    for (const auto& [k, v] : ck->metadata) seen = seen || k == item;
    if (!seen) ck->metadata.emplace_back(item, value);
  }
  ck->files.push_back(f.file);
}

// Reads model.safetensors.index.json and maps every shard it names exactly once.
Status AddShards(const std::string& dir, const std::string& index_path, Checkpoint* ck) {
  RTNQ_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index_path));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Err("{}: invalid JSON", index_path);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
    return Err("{}: expected an object with a \"weight_map\" object", index_path);
  }
  std::map<std::string, std::vector<std::string>> shard_tensors;  // shard -> tensors mapped to it
  for (const auto& [tensor, shard] : j["weight_map"].items()) {
    if (!shard.is_string()) {
      return Err("{}: weight_map entry {} must be a file name string", index_path, tensor);
    }
    const std::string name = shard.get<std::string>();
    const fs::path p(name);
    if (name.empty() || p.is_absolute() || p.has_parent_path()) {
      return Err("{}: weight_map entry {}: shard \"{}\" must be a file name in the same directory",
                 index_path, tensor, name);
    }
    shard_tensors[name].push_back(tensor);
  }
  if (shard_tensors.empty()) return Err("{}: weight_map is empty", index_path);

  std::map<std::string, std::string> owner;  // tensor -> shard holding it
  for (const auto& [shard, mapped] : shard_tensors) {
    const std::string shard_path = Join(dir, shard);
    if (!PathExists(shard_path)) {
      return Err("{}: shard {} (holding {}) is missing", index_path, shard, mapped.front());
    }
    RTNQ_ASSIGN_OR_RETURN(SafetensorsFile f, OpenSafetensors(shard_path));
    std::set<std::string> present;
    for (const auto& t : f.header.tensors) {
      present.insert(t.name);
      auto [it, inserted] = owner.emplace(t.name, shard);
      if (!inserted) {
        return Err("{}: tensor {} is stored in both {} and {}", index_path, t.name, it->second,
                   shard);
      }
    }
    for (const auto& name : mapped) {
      if (!present.count(name)) {
        return Err("{}: tensor {} is missing from shard {} named by {}", shard_path, name, shard,
                   index_path);
      }
    }
    AddFile(ck, f);
  }
  ck->metadata.emplace_back("shards", std::to_string(shard_tensors.size()));
  return Status::Ok();
}

}  // namespace

Result<Checkpoint> OpenHfCheckpoint(const std::string& path, const OpenOptions& options) {
  // The directory, and a specific weights file when `path` names one.
  std::string dir = path, weights_file;
  if (!IsDirectory(path)) {
    if (!PathExists(path)) return Err("{}: no such file or directory", path);
    const fs::path parent = fs::path(path).parent_path();
    dir = parent.empty() ? std::string(".") : parent.string();
    if (EndsWith(path, ".safetensors")) weights_file = path;
  }
  Checkpoint ck;
  ck.path = path;
  ck.format = CheckpointFormat::kHfSafetensors;

  const std::string config_path = Join(dir, "config.json");
  if (!PathExists(config_path)) return Err("{}: no config.json in the model directory", config_path);
  RTNQ_ASSIGN_OR_RETURN(HfConfig config, ReadHfConfig(config_path));
  ck.config = config.config;
  const std::string gen_path = Join(dir, "generation_config.json");
  if (PathExists(gen_path)) {
    RTNQ_ASSIGN_OR_RETURN(std::string gen_text, ReadFileToString(gen_path));
    RTNQ_RETURN_IF_ERROR(ApplyGenerationConfig(gen_text, gen_path, &ck.config));
  }
  ck.metadata.emplace_back("architecture", config.architecture);
  if (!config.model_type.empty()) ck.metadata.emplace_back("model_type", config.model_type);
  if (!config.torch_dtype.empty()) ck.metadata.emplace_back("torch_dtype", config.torch_dtype);

  const std::string single = Join(dir, "model.safetensors");
  const std::string index = Join(dir, "model.safetensors.index.json");
  // A named shard of an indexed model opens the whole model; any other named file opens alone.
  const bool named_single = !weights_file.empty() &&
                            (fs::path(weights_file).filename() == "model.safetensors" ||
                             !PathExists(index));
  if (named_single) {
    RTNQ_ASSIGN_OR_RETURN(SafetensorsFile f, OpenSafetensors(weights_file));
    AddFile(&ck, f);
  } else if (weights_file.empty() && PathExists(single)) {
    RTNQ_ASSIGN_OR_RETURN(SafetensorsFile f, OpenSafetensors(single));
    AddFile(&ck, f);
  } else if (PathExists(index)) {
    RTNQ_RETURN_IF_ERROR(AddShards(dir, index, &ck));
  } else {
    return Err("{}: no model.safetensors or model.safetensors.index.json", dir);
  }

  std::string tokenizer_path = options.tokenizer_path;
  if (tokenizer_path.empty() && PathExists(Join(dir, "tokenizer.json"))) {
    tokenizer_path = Join(dir, "tokenizer.json");
  }
  if (!tokenizer_path.empty()) {
    RTNQ_ASSIGN_OR_RETURN(TokenizerSpec spec, ReadTokenizerJson(tokenizer_path));
    // tokenizer.json does not say which token is BOS/EOS; the model config does.
    if (spec.bos_id < 0 && !ck.config.bos_token_ids.empty()) spec.bos_id = ck.config.bos_token_ids[0];
    if (spec.eos_id < 0 && !ck.config.eos_token_ids.empty()) spec.eos_id = ck.config.eos_token_ids[0];
    ck.tokenizer = std::move(spec);
  }
  return ck;
}

}  // namespace rtnq
