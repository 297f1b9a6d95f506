#include "io/synthetic_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <regex>
#include <set>

#include "arch/shapes.h"
#include "arch/tensor_role.h"
#include "base/file.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "io/hf_config.h"
#include "io/synthetic_tokenizer.h"

namespace rtnq {
namespace {

namespace fs = std::filesystem;

// Logits of a random model with lm_head std kLogitScale/sqrt(hidden) have std ~kLogitScale
// (the final RMSNorm output has unit RMS): peaked enough that sampling is not uniform noise.
constexpr double kLogitScale = 4.0;
// Residual branches (o_proj, down_proj) scaled so that the 2 * layers branch outputs add up to a
// residual stream of RMS ~2-3 whatever the depth: well above the embedding rows' RMS
// (kLogitScale / sqrt(hidden)), so a tied model's logits are not dominated by echoing the input
// token, yet no single layer dominates the stream.
constexpr double kResidualGain = 4.0;
constexpr float kOutlierScale = 10.0f;
constexpr float kFillerRowScale = 1e-3f;  // Llama-3's unused reserved rows are near zero too
constexpr float kNormNoise = 0.02f, kBiasStd = 0.02f;
constexpr uint64_t kChunkElems = 8u << 20;
constexpr uint64_t kBlockElems = 4096;  // per-thread f32 scratch between generation and rounding

uint64_t SplitMix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Irwin-Hall(4) on the four 16-bit lanes of a counter-based hash: mean 0, variance 1, support
// +-3.46. Cheap (one 64-bit hash per element) and exactly reproducible.
inline float Gaussianish(uint64_t key, uint64_t index) {
  const uint64_t z = SplitMix64(key + (index + 1) * 0x9e3779b97f4a7c15ull);
  const int32_t s = static_cast<int32_t>((z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) +
                                         (z >> 48));
  constexpr float kInvStd = 1.0f / 37837.23f;  // sqrt(4 * (65536^2 - 1) / 12)
  return static_cast<float>(s - 131070) * kInvStd;
}

struct Recipe {
  float offset = 0, scale = 0;
  bool outlier_columns = false;   // scale the layout's outlier channels (input dim = hidden)
  bool filler_rows = false;       // shrink rows of unused vocabulary entries
};

Recipe RecipeFor(const ModelConfig& c, const std::string& name, const std::vector<int64_t>& shape) {
  Recipe r;
  const auto id = ParseCanonicalName(name);
  const double in = shape.empty() ? 1.0 : static_cast<double>(shape.back());
  const double residual_branches = 2.0 * static_cast<double>(std::max<int64_t>(c.num_layers, 1));
  if (!id) {
    r.scale = kBiasStd;
    return r;
  }
  switch (id->role) {
    case TensorRole::kEmbed:
    case TensorRole::kLmHead:
      r.scale = static_cast<float>(kLogitScale / std::sqrt(static_cast<double>(c.hidden_size)));
      r.filler_rows = true;
      break;
    case TensorRole::kAttnQ:
    case TensorRole::kAttnK:
    case TensorRole::kAttnV:
    case TensorRole::kMlpGate:
    case TensorRole::kMlpUp:
      // Unit-RMS inputs (after RMSNorm) give unit-RMS outputs.
      r.scale = static_cast<float>(1.0 / std::sqrt(in));
      r.outlier_columns = true;
      break;
    case TensorRole::kAttnO:
    case TensorRole::kMlpDown:
      // Shrunk by sqrt(2 * layers) as in GPT-2's init, so the stream's RMS is depth-independent.
      r.scale = static_cast<float>(kResidualGain / std::sqrt(in * residual_branches));
      break;
    case TensorRole::kAttnNorm:
    case TensorRole::kMlpNorm:
    case TensorRole::kFinalNorm:
      r.offset = 1.0f;
      r.scale = kNormNoise;
      break;
    default:  // q/k/v biases
      r.scale = kBiasStd;
      break;
  }
  return r;
}

std::string TorchDtype(DType t) {
  switch (t) {
    case DType::kF32: return "float32";
    case DType::kF16: return "float16";
    default: return "bfloat16";
  }
}

void StoreAs(DType t, const float* src, size_t n, uint8_t* dst) {
  switch (t) {
    case DType::kF32: std::memcpy(dst, src, n * sizeof(float)); break;
    case DType::kF16:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = F32ToF16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    default:
      for (size_t i = 0; i < n; ++i) {
        const uint16_t h = F32ToBf16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
  }
}

// Weight files of an HF directory that a new write may leave stale.
bool IsWeightFile(const std::string& name) {
  static const std::regex kShard(R"(model-\d{5}-of-\d{5}\.safetensors)");
  return name == "model.safetensors" || name == "model.safetensors.index.json" ||
         std::regex_match(name, kShard);
}

}  // namespace

Result<ModelConfig> SyntheticConfig(const std::string& shape, int64_t layers) {
  auto config = KnownShape(shape);
  if (!config) {
    return Err("unknown shape \"{}\" (known: {})", shape, fmt::join(KnownShapeNames(), ", "));
  }
  if (layers < 0) return Err("--layers must be positive, found {}", layers);
  if (layers > 0) config->num_layers = layers;
  RTNQ_RETURN_IF_ERROR(config->Validate().WithContext("shape " + shape));
  return *config;
}

std::vector<TensorSpec> SyntheticTensorSpecs(const ModelConfig& config, DType dtype) {
  std::vector<TensorSpec> specs;
  for (const TensorId& id : RequiredTensors(config)) {
    specs.push_back({CanonicalName(id), dtype, ExpectedShape(config, id)});
  }
  return specs;
}

SyntheticLayout MakeSyntheticLayout(const ModelConfig& config, uint64_t seed) {
  SyntheticLayout layout;
  // A few fixed hidden channels, the same in every layer, like the massive-activation channels
  // of real LLaMA models: hidden/512 of them, at least 1 and at most 8.
  const int64_t count = std::clamp<int64_t>(config.hidden_size / 512, 1, 8);
  std::set<int64_t> channels;
  for (uint64_t k = 0; static_cast<int64_t>(channels.size()) < std::min(count, config.hidden_size); ++k) {
    channels.insert(static_cast<int64_t>(SplitMix64(seed ^ (0x6f75746c6965720aull + k)) %
                                         static_cast<uint64_t>(config.hidden_size)));
  }
  layout.outlier_channels.assign(channels.begin(), channels.end());
  auto vocab = BuildSyntheticVocab(config);
  if (vocab.ok()) layout.filler_rows = vocab->is_filler;
  layout.filler_rows.resize(static_cast<size_t>(config.vocab_size), false);
  return layout;
}

void SyntheticValues(const ModelConfig& config, const SyntheticLayout& layout, uint64_t seed,
                     const TensorSpec& tensor, uint64_t begin, uint64_t end, float* out) {
  const Recipe r = RecipeFor(config, tensor.name, tensor.shape);
  const uint64_t key = SplitMix64(seed * 0x9e3779b97f4a7c15ull ^ Fnv1a(tensor.name));
  const uint64_t cols = tensor.shape.size() >= 2 ? static_cast<uint64_t>(tensor.shape.back()) : 0;
  const bool outliers = r.outlier_columns && cols == static_cast<uint64_t>(config.hidden_size);
  uint64_t i = begin;
  while (i < end) {
    // One row segment at a time: row and column scales are constant or tabulated.
    const uint64_t row = cols ? i / cols : 0, col = cols ? i % cols : 0;
    const uint64_t n = cols ? std::min(end - i, cols - col) : end - i;
    float scale = r.scale;
    if (r.filler_rows && row < layout.filler_rows.size() && layout.filler_rows[row]) {
      scale *= kFillerRowScale;
    }
    float* o = out + (i - begin);
    for (uint64_t k = 0; k < n; ++k) o[k] = r.offset + Gaussianish(key, i + k) * scale;
    if (outliers) {
      for (int64_t c : layout.outlier_channels) {
        const uint64_t cu = static_cast<uint64_t>(c);
        if (cu >= col && cu < col + n) o[cu - col] = r.offset + (o[cu - col] - r.offset) * kOutlierScale;
      }
    }
    i += n;
  }
}

Result<SynthSummary> WriteSyntheticModel(const std::string& dir, const SynthOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  RTNQ_ASSIGN_OR_RETURN(ModelConfig config, SyntheticConfig(options.shape, options.layers));
  if (Info(options.dtype).quantized) {
    return Err("dtype {} is not supported (use bf16, f16 or f32)", DTypeName(options.dtype));
  }
  std::error_code ec;
  if (PathExists(dir)) {
    if (!IsDirectory(dir)) return Err("{}: exists and is not a directory", dir);
    if (!options.force && fs::directory_iterator(dir, ec) != fs::directory_iterator()) {
      return Err("{}: directory is not empty (use --force to overwrite)", dir);
    }
  } else if (!fs::create_directories(dir, ec)) {
    return Err("{}: cannot create directory: {}", dir, ec.message());
  }
  auto vocab_or = BuildSyntheticVocab(config);
  if (!vocab_or.ok()) return vocab_or.status().WithContext("shape " + options.shape);
  const SyntheticVocab& vocab = *vocab_or;
  const std::string torch_dtype = TorchDtype(options.dtype);
  const auto path = [&](const char* name) { return (fs::path(dir) / name).string(); };
  const bool overwrite = options.force;
  SynthSummary summary;
  summary.path = dir;
  summary.shape = options.shape;
  summary.config = config;
  summary.parameters = config.NumParameters();
  auto write_text = [&](const char* name, const std::string& text) -> Status {
    RTNQ_RETURN_IF_ERROR(WriteFileAtomic(path(name), text, overwrite));
    summary.files.push_back(path(name));
    summary.bytes += text.size();
    return Status::Ok();
  };
  RTNQ_RETURN_IF_ERROR(write_text("tokenizer.json", SyntheticTokenizerJson(config, vocab)));
  RTNQ_RETURN_IF_ERROR(write_text("tokenizer_config.json", SyntheticTokenizerConfigJson(config, vocab)));
  RTNQ_RETURN_IF_ERROR(write_text("generation_config.json", HfGenerationConfigJson(config).dump(2) + "\n"));

  // Weights: generate a chunk with all threads while the previous chunk is being written.
  const std::vector<TensorSpec> specs = SyntheticTensorSpecs(config, options.dtype);
  SafetensorsWriteOptions write_options;
  write_options.overwrite = overwrite;
  write_options.max_shard_bytes = options.max_shard_bytes;
  write_options.metadata = {{"rtnq_synth_shape", options.shape},
                            {"rtnq_synth_seed", std::to_string(options.seed)}};
  RTNQ_ASSIGN_OR_RETURN(auto writer,
                        SafetensorsWriter::Begin(path("model.safetensors"), specs, write_options));
  const SyntheticLayout layout = MakeSyntheticLayout(config, options.seed);
  ThreadPool pool(options.threads > 0 ? options.threads : DefaultThreadCount());
  const size_t elem_bytes = Info(options.dtype).block_bytes;
  std::vector<uint8_t> buffers[2];
  for (auto& b : buffers) b.resize(kChunkElems * elem_bytes);
  std::future<Status> pending;
  uint64_t done = 0, submitted = 0;
  int which = 0;
  for (const TensorSpec& t : specs) {
    uint64_t elems = 1;
    for (int64_t d : t.shape) elems *= static_cast<uint64_t>(d);
    for (uint64_t begin = 0; begin < elems; begin += kChunkElems) {
      const uint64_t n = std::min(kChunkElems, elems - begin);
      uint8_t* out = buffers[which].data();
      pool.ParallelFor(n, kBlockElems, [&](size_t lo, size_t hi, int) {
        float scratch[kBlockElems];
        for (size_t b = lo; b < hi; b += kBlockElems) {
          const size_t m = std::min<size_t>(kBlockElems, hi - b);
          SyntheticValues(config, layout, options.seed, t, begin + b, begin + b + m, scratch);
          StoreAs(options.dtype, scratch, m, out + b * elem_bytes);
        }
      });
      if (pending.valid()) {
        RTNQ_RETURN_IF_ERROR(pending.get());
        done = submitted;
        if (options.progress) options.progress(done, writer->tensor_bytes());
      }
      const size_t bytes = n * elem_bytes;
      submitted += bytes;
      pending = std::async(std::launch::async,
                           [&writer, out, bytes] { return writer->WriteTensorData(out, bytes); });
      which ^= 1;
    }
  }
  if (pending.valid()) RTNQ_RETURN_IF_ERROR(pending.get());
  RTNQ_RETURN_IF_ERROR(writer->Commit());
  if (options.progress) options.progress(writer->tensor_bytes(), writer->tensor_bytes());
  summary.files.insert(summary.files.end(), writer->files().begin(), writer->files().end());
  summary.bytes += writer->file_bytes();

  // config.json last: until it exists the directory is not a loadable model.
  RTNQ_RETURN_IF_ERROR(write_text("config.json", HfConfigJson(config, torch_dtype).dump(2) + "\n"));

  if (options.force) {
    std::set<std::string> ours;
    for (const auto& f : summary.files) ours.insert(fs::path(f).filename().string());
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (IsWeightFile(name) && !ours.count(name)) fs::remove(entry.path(), ec);
    }
  }
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace rtnq
