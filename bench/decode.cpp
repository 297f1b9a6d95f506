// End-to-end speed: prefill tokens/s (one 512-token prompt) and decode tokens/s (128 tokens),
// for 1 and 2 threads, and decode as a fraction of the memory-bound limit
// (DRAM read bandwidth / WeightBytesPerToken), with the bandwidth measured here (best of 7
// passes over 1 GiB; the median is reported too).
//   bench_decode [MODEL] [--prompt N] [--gen N] [--threads 1,2] [--precision as-stored|f32|bf16]
//                [--shape llama-3.2-1b] [--quant none,rtn8,rtn4] [--json]
// --quant runs each listed precision side by side: "none" loads the weights as --precision says,
// anything else ("rtn8", "rtn4", "int4:g32", ...) is a plan default that RTN-quantizes every block
// linear layer while loading (embeddings / lm_head stay as stored). Each run also reports the
// quantization rate and the model's anonymous memory (RssAnon growth over the load).
// Without MODEL it builds an in-memory BF16 model of --shape with seeded random weights
// (llama-3.2-1b: 2.5 GB, far larger than the last-level cache, so decode streams from DRAM).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <nlohmann/json.hpp>

#include "arch/shapes.h"
#include "arch/tensor_role.h"
#include "base/cpu_features.h"
#include "base/half.h"
#include "base/memory_bandwidth.h"
#include "base/timer.h"
#include "bench_common.h"
#include "io/checkpoint.h"
#include "model/model.h"
#include "quant/quantize_model.h"

using namespace rtnq;

namespace {

struct SyntheticCheckpoint {
  Checkpoint ck;
  std::vector<std::vector<uint16_t>> storage;
};

// Seeded random BF16 weights (xorshift: the 1B shape has 1.2 G values), f32 norms of 1.
std::unique_ptr<SyntheticCheckpoint> MakeSynthetic(const ModelConfig& c) {
  auto s = std::make_unique<SyntheticCheckpoint>();
  s->ck.path = "<synthetic>";
  s->ck.config = c;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (const TensorId& id : RequiredTensors(c)) {
    const std::vector<int64_t> shape = ExpectedShape(c, id);
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const bool norm = RoleInfo(id.role).is_norm;
    std::vector<uint16_t> v(static_cast<size_t>(n));
    const float scale = shape.size() == 2 ? 1.7f / std::sqrt(static_cast<float>(shape[1])) : 0.02f;
    for (auto& x : v) {
      state ^= state << 13, state ^= state >> 7, state ^= state << 17;
      const float u = static_cast<float>(state >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f;
      x = F32ToBf16(norm ? 1.0f : u * scale);
    }
    TensorView view;
    view.name = CanonicalName(id);
    view.dtype = DType::kBF16;
    view.shape = shape;
    view.nbytes = v.size() * 2;
    s->storage.push_back(std::move(v));
    s->ck.tensors.push_back(view);
  }
  for (size_t i = 0; i < s->ck.tensors.size(); ++i)
    s->ck.tensors[i].data = reinterpret_cast<const uint8_t*>(s->storage[i].data());
  return s;
}

// CPU seconds this process has used, all threads: on a shared machine the wall-clock rate of a
// one-thread load drops with every other busy process, its CPU time much less.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// RssAnon of this process in bytes (0 if /proc is unavailable).
uint64_t AnonRssBytes() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  uint64_t kb = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::strncmp(line, "RssAnon:", 8) == 0) kb = std::strtoull(line + 8, nullptr, 10);
  }
  std::fclose(f);
  return kb * 1024;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, shape = "llama-3.2-1b", precision = "as-stored", thread_list = "1,2";
  std::string quant_list = "none";
  int prompt = 512, gen = 128;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--prompt" && i + 1 < argc) prompt = std::atoi(argv[++i]);
    else if (a == "--gen" && i + 1 < argc) gen = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) thread_list = argv[++i];
    else if (a == "--precision" && i + 1 < argc) precision = argv[++i];
    else if (a == "--shape" && i + 1 < argc) shape = argv[++i];
    else if (a == "--quant" && i + 1 < argc) quant_list = argv[++i];
    else if (a == "--json") json = true;
    else if (!a.empty() && a[0] != '-' && path.empty()) path = a;
    else {
      std::fprintf(stderr, "usage: bench_decode [MODEL] [--prompt N] [--gen N] [--threads 1,2] "
                           "[--precision as-stored|f32|bf16] [--shape NAME] [--quant none,rtn8,rtn4] [--json]\n");
      return 2;
    }
  }
  std::vector<int> threads;
  for (int64_t t : bench::ParseIntList(thread_list)) threads.push_back(static_cast<int>(t));

  nlohmann::json out;
  out["cpu"] = HostCpu().ToString();
  out["isa"] = IsaName(SelectedIsa());
  std::unique_ptr<SyntheticCheckpoint> synthetic;
  Checkpoint opened;
  const Checkpoint* ck = nullptr;
  if (path.empty()) {
    auto config = KnownShape(shape);
    if (!config) {
      std::fprintf(stderr, "bench_decode: unknown shape %s\n", shape.c_str());
      return 2;
    }
    synthetic = MakeSynthetic(*config);
    ck = &synthetic->ck;
    out["model"] = "synthetic " + shape + " BF16";
  } else {
    auto r = OpenCheckpoint(path);
    if (!r.ok()) {
      std::fprintf(stderr, "bench_decode: %s\n", r.status().message().c_str());
      return 1;
    }
    opened = std::move(r.value());
    ck = &opened;
    out["model"] = path;
  }
  const int32_t vocab = static_cast<int32_t>(ck->config.vocab_size);

  std::vector<std::pair<std::string, CompiledPlan>> quants;
  for (const std::string& q : SplitCommaList(quant_list)) {
    CompiledPlan compiled;
    if (q != "none") {
      auto plan = QuantPlan::ParseText("default " + q + "\n", "--quant");
      auto c = plan.ok() ? CompilePlanForCheckpoint(*plan, *ck, false) : Result<CompiledPlan>(plan.status());
      if (!c.ok()) {
        std::fprintf(stderr, "bench_decode: --quant %s: %s\n", q.c_str(), c.status().message().c_str());
        return 2;
      }
      compiled = std::move(c).value();
    }
    quants.emplace_back(q, std::move(compiled));
  }

  for (int t : threads) {
    const ReadBandwidth bws = MeasureReadBandwidth(size_t{1} << 30, t);
    const double bw = bws.best;
    for (const auto& [quant, plan] : quants) {
      ModelOptions options;
      if (quant != "none") options.plan = &plan;
      options.threads = t;
      options.max_context = prompt + gen + 1;
      options.precision = precision == "f32"    ? WeightPrecision::kF32
                          : precision == "bf16" ? WeightPrecision::kBF16
                                                : WeightPrecision::kAsStored;
      const uint64_t anon_before = AnonRssBytes();
      Timer load_timer;
      const double cpu_before = ProcessCpuSeconds();
      auto loaded = Model::Load(*ck, options);
      const double load_cpu_s = ProcessCpuSeconds() - cpu_before;
      if (!loaded.ok()) {
        std::fprintf(stderr, "bench_decode: %s\n", loaded.status().message().c_str());
        return 1;
      }
      Model& model = **loaded;
      const double load_s = load_timer.Seconds();
      const uint64_t anon_model = AnonRssBytes() - anon_before;
      const LoadStats ls = model.load_stats();
      std::vector<float> logits(vocab);
      std::vector<BatchItem> batch;
      for (int i = 0; i < prompt; ++i) batch.push_back({0, (i * 7919 + 1) % vocab, i + 1 == prompt});
      Timer pt;
      if (!model.Forward(batch, logits.data()).ok()) return 1;
      const double prefill_s = pt.Seconds();
      std::vector<double> step_s;
      int32_t token = 1;
      for (int i = 0; i < gen; ++i) {
        BatchItem item{0, token, true};
        Timer st;
        if (!model.Forward({&item, 1}, logits.data()).ok()) return 1;
        step_s.push_back(st.Seconds());
        token = (token * 31 + 7) % vocab;
      }
      double decode_total = 0;
      for (double s : step_s) decode_total += s;
      const double decode_tps = gen / decode_total;
      const double bytes = static_cast<double>(model.WeightBytesPerToken());
      const double limit_tps = bw / bytes;
      nlohmann::json row = {{"threads", t},
                            {"quant", quant},
                            {"anon_rss_model_bytes", anon_model},
                            {"kv_cache_bytes", model.KvBytesPerToken() * static_cast<uint64_t>(model.max_context())},
                            {"quantize_s", ls.quantize_seconds},
                            {"quantize_source_bytes", ls.source_bytes},
                            {"quantized_bytes", ls.quantized_bytes},
                            {"dram_read_gbps", bw / 1e9},
                            {"dram_read_gbps_median", bws.median / 1e9},
                            {"load_s", load_s},
                            {"load_cpu_s", load_cpu_s},
                            {"weight_bytes_per_token", model.WeightBytesPerToken()},
                            {"prefill_tokens", prompt},
                            {"prefill_tps", prompt / prefill_s},
                            {"decode_tokens", gen},
                            {"decode_tps", decode_tps},
                            {"decode_median_step_ms", bench::Median(step_s) * 1e3},
                            {"memory_bound_tps", limit_tps},
                            {"decode_fraction_of_bound", decode_tps / limit_tps}};
      out["runs"].push_back(row);
      if (!json) {
        std::printf("threads %d, %s: DRAM %.1f GB/s, weights %.3f GB/token, load %.1f s, anon RSS "
                    "+%.3f GB (KV cache %.3f GB)\n",
                    t, quant.c_str(), bw / 1e9, bytes / 1e9, load_s, anon_model / 1e9,
                    model.KvBytesPerToken() * static_cast<double>(model.max_context()) / 1e9);
        if (ls.quantized_tensors > 0)
          std::printf("  quantized %d tensors: %.3f GB read in %.2f s (%.2f GB/s) -> %.3f GB packed; "
                      "whole load %.2f CPU-s (%.2f GB/s per CPU-second)\n",
                      ls.quantized_tensors, ls.source_bytes / 1e9, ls.quantize_seconds,
                      ls.source_bytes / 1e9 / ls.quantize_seconds, ls.quantized_bytes / 1e9, load_cpu_s,
                      ls.source_bytes / 1e9 / load_cpu_s);
        std::printf("  prefill %d tokens: %.2f tokens/s\n", prompt, prompt / prefill_s);
        std::printf("  decode %d tokens: %.2f tokens/s (median step %.1f ms), memory-bound limit "
                    "%.2f tokens/s -> %.0f%%\n",
                    gen, decode_tps, bench::Median(step_s) * 1e3, limit_tps, 100 * decode_tps / limit_tps);
      }
    }
  }
  if (json) std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
