// rtnq bench e2e MODEL: whole-model speed and output agreement of quantized variants against the
// 16-bit model, in one invocation. For each thread count it measures the DRAM read bandwidth
// (same thread count), then loads the model once per (quantization, activations) with on-the-fly
// RTN and measures prefill tokens/s, decode tokens/s at each batch size, the memory-bound decode
// limit (bandwidth x B / weight bytes per token) and the load/quantize rate.
//
// The 16-bit model ("none": weights as stored) always runs first at each thread count, even when
// --quant leaves it out: it is the speed baseline and (on f32 activations) the agreement
// reference; with AMX it runs a second time on bf16 activations, and speedups are over the faster. Agreement: a fixed
// stream (8 seeded prompt tokens, then the 16-bit model's greedy continuation) is teacher-forced
// through every model in one Forward; top-1 agreement is the share of positions whose argmax
// equals the 16-bit model's, KL is the mean over positions of KL(16-bit || quantized) in nats.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "base/cpu_features.h"
#include "base/memory_bandwidth.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cmd_bench.h"
#include "common.h"
#include "quant/quantize_model.h"

namespace rtnq::cli {
namespace {

constexpr const char* kCmd = "bench e2e";
constexpr int kPromptTokens = 8;  // per sequence before decode, and the agreement stream's prompt

struct E2eFlags {
  std::string model_path;
  std::string quant = "none,rtn8,rtn4";
  std::string plan_file;
  std::string acts = "int8";
  std::string threads;  // default: DefaultThreadCount()
  std::string batches = "1,4,16";
  int prefill = 512;
  int decode = 128;
  int agreement_tokens = 64;
  std::string precision = "as-stored";
  bool json = false;
  double probe_mib = 0;  // testing: bandwidth-probe buffer instead of max(2 x L3, 1 GiB)
  uint64_t seed = 1;
};

// One model configuration to load: a --quant item or the --plan file, with its activations.
struct RunSpec {
  std::string name;  // "none", "rtn8", "int4:g32", "plan:FILE"
  std::unique_ptr<CompiledPlan> plan;  // null: 16-bit
  ActType act = ActType::kF32;
};

struct DecodeResult {
  int batch = 0;
  int64_t tokens = 0;
  double seconds = 0;
  double tps = 0;
  double limit_tps = 0;
  double speedup = 0;
};

struct RunResult {
  std::string name;
  std::string act;
  int threads = 0;
  LoadStats load;
  double bits_per_param = 0;
  double plan_bits_per_weight = 0;  // the plan's quantized tensors; 0 for the 16-bit run
  uint64_t bytes_per_token = 0;
  double prefill_seconds = 0, prefill_tps = 0, prefill_speedup = 0;
  std::vector<DecodeResult> decode;
  double top1_pct = 0, kl_mean = 0;
  int agreement_positions = 0;
  ReadBandwidth dram;
};

uint64_t NextRandom(uint64_t& x) {
  x ^= x << 13, x ^= x >> 7, x ^= x << 17;
  return x;
}

// Seeded token ids, avoiding the first few ids (often special tokens).
std::vector<int32_t> SeededTokens(int count, int64_t vocab, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  std::vector<int32_t> out(count);
  const int64_t low = vocab > 16 ? 4 : 0;
  for (int32_t& t : out) t = static_cast<int32_t>(low + NextRandom(x) % (vocab - low));
  return out;
}

int32_t Argmax(const float* v, int64_t n) {
  return static_cast<int32_t>(std::max_element(v, v + n) - v);
}

// log-softmax of a row in double.
std::vector<double> LogSoftmax(const float* v, int64_t n) {
  const double mx = *std::max_element(v, v + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(v[i]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = v[i] - lse;
  return out;
}

// Logits of every position of `stream`, teacher-forced through sequence 0 in one Forward.
Result<std::vector<float>> TeacherForce(Model& model, const std::vector<int32_t>& stream) {
  const int64_t vocab = model.config().vocab_size;
  model.ClearSequence(0);
  std::vector<BatchItem> batch;
  for (int32_t t : stream) batch.push_back({0, t, true});
  std::vector<float> logits(stream.size() * vocab);
  RTNQ_RETURN_IF_ERROR(model.Forward(batch, logits.data()));
  model.ClearSequence(0);
  return logits;
}

// The agreement stream: a seeded prompt, then the model's greedy continuation.
Result<std::vector<int32_t>> GreedyStream(Model& model, int length, uint64_t seed) {
  const int64_t vocab = model.config().vocab_size;
  std::vector<int32_t> stream = SeededTokens(std::min(kPromptTokens, length), vocab, seed);
  model.ClearSequence(0);
  std::vector<BatchItem> batch;
  for (size_t i = 0; i < stream.size(); ++i) batch.push_back({0, stream[i], i + 1 == stream.size()});
  std::vector<float> logits(vocab);
  RTNQ_RETURN_IF_ERROR(model.Forward(batch, logits.data()));
  while (static_cast<int>(stream.size()) < length) {
    stream.push_back(Argmax(logits.data(), vocab));
    BatchItem item{0, stream.back(), true};
    RTNQ_RETURN_IF_ERROR(model.Forward({&item, 1}, logits.data()));
  }
  model.ClearSequence(0);
  return stream;
}

struct Reference {
  std::vector<int32_t> stream;
  std::vector<int32_t> argmax;              // per position
  std::vector<std::vector<double>> logp;    // per position
};

Status ScoreAgreement(const Reference& ref, const std::vector<float>& logits, int64_t vocab, RunResult* r) {
  const size_t positions = ref.stream.size();
  int agree = 0;
  double kl = 0;
  for (size_t p = 0; p < positions; ++p) {
    const float* row = logits.data() + p * vocab;
    if (Argmax(row, vocab) == ref.argmax[p]) ++agree;
    const std::vector<double> q = LogSoftmax(row, vocab);
    double d = 0;
    for (int64_t i = 0; i < vocab; ++i) d += std::exp(ref.logp[p][i]) * (ref.logp[p][i] - q[i]);
    kl += std::max(0.0, d);  // rounding can make an exact 0 slightly negative
  }
  if (!std::isfinite(kl)) return Err("KL against the 16-bit model is not finite (non-finite logits)");
  r->agreement_positions = static_cast<int>(positions);
  r->top1_pct = positions ? 100.0 * agree / positions : 0;
  r->kl_mean = positions ? kl / positions : 0;
  return Status();
}

Status MeasureSpeed(Model& model, const E2eFlags& flags, const std::vector<int>& batches, RunResult* r) {
  const int64_t vocab = model.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(std::max(1, *std::max_element(batches.begin(), batches.end()))) * vocab);
  // Warm-up: wakes the pool and faults the first activations in.
  BatchItem warm{0, 1, true};
  RTNQ_RETURN_IF_ERROR(model.Forward({&warm, 1}, logits.data()));
  model.ClearSequence(0);

  // Prefill: one sequence, the whole prompt in one Forward (as generate does).
  const std::vector<int32_t> prompt = SeededTokens(flags.prefill, vocab, flags.seed + 100);
  std::vector<BatchItem> batch;
  for (int i = 0; i < flags.prefill; ++i) batch.push_back({0, prompt[i], i + 1 == flags.prefill});
  Timer prefill_timer;
  RTNQ_RETURN_IF_ERROR(model.Forward(batch, logits.data()));
  r->prefill_seconds = prefill_timer.Seconds();
  r->prefill_tps = flags.prefill / r->prefill_seconds;
  model.ClearSequence(0);

  for (int b : batches) {
    batch.clear();
    for (int s = 0; s < b; ++s) {
      model.ClearSequence(s);
      const std::vector<int32_t> p = SeededTokens(kPromptTokens, vocab, flags.seed + 200 + s);
      for (int i = 0; i < kPromptTokens; ++i) batch.push_back({s, p[i], i + 1 == kPromptTokens});
    }
    RTNQ_RETURN_IF_ERROR(model.Forward(batch, logits.data()));
    double seconds = 0;
    for (int step = 0; step < flags.decode; ++step) {
      batch.clear();
      for (int s = 0; s < b; ++s) batch.push_back({s, Argmax(&logits[s * vocab], vocab), true});
      Timer t;
      RTNQ_RETURN_IF_ERROR(model.Forward(batch, logits.data()));
      seconds += t.Seconds();
    }
    for (int s = 0; s < b; ++s) model.ClearSequence(s);
    DecodeResult d;
    d.batch = b;
    d.tokens = static_cast<int64_t>(b) * flags.decode;
    d.seconds = seconds;
    d.tps = seconds > 0 ? d.tokens / seconds : 0;
    d.limit_tps = r->dram.best * b / static_cast<double>(r->bytes_per_token);
    r->decode.push_back(d);
  }
  return Status();
}

Result<std::vector<RunSpec>> BuildSpecs(const E2eFlags& flags, const Checkpoint& checkpoint) {
  std::vector<ActType> acts;
  for (const std::string& a : SplitCommaList(flags.acts)) {
    ActType act;
    if (a == "a16") act = ActType::kF32;
    else if (a == "a8") act = ActType::kInt8;
    else if (!ParseActType(a, &act)) return Err("--act: unknown activation type '{}' (f32, int8, bf16)", a);
    RTNQ_RETURN_IF_ERROR(CheckActivationsRunFast(act));
    acts.push_back(act);
  }
  if (acts.empty()) return Err("--act: empty list");
  std::vector<RunSpec> specs;
  specs.push_back({"none", nullptr, ActType::kF32});
  // With AMX the 16-bit model also runs on bf16 activations (AMX BF16 tiles), much faster in
  // prefill; speedups are then over the faster of the two 16-bit runs.
  if (IsaAtLeast(SelectedIsa(), Isa::kAmx)) specs.push_back({"none", nullptr, ActType::kBF16});
  std::vector<std::pair<std::string, PlanFlags>> plans;
  for (const std::string& q : SplitCommaList(flags.quant)) {
    if (q == "none") continue;
    PlanFlags pf;
    pf.quant = q;
    plans.emplace_back(q, pf);
  }
  if (!flags.plan_file.empty()) {
    PlanFlags pf;
    pf.plan_file = flags.plan_file;
    plans.emplace_back("plan:" + flags.plan_file, pf);
  }
  for (const auto& [name, pf] : plans) {
    RTNQ_ASSIGN_OR_RETURN(QuantPlan plan, pf.Build());
    for (ActType act : acts) {
      RTNQ_ASSIGN_OR_RETURN(CompiledPlan compiled, CompilePlanForCheckpoint(plan, checkpoint, false));
      specs.push_back({name, std::make_unique<CompiledPlan>(std::move(compiled)), act});
    }
  }
  return specs;
}

Result<std::unique_ptr<Model>> LoadModel(const Checkpoint& ck, const E2eFlags& flags, const RunSpec& spec,
                                         int threads, int max_sequences, int max_context) {
  ModelOptions options;
  options.plan = spec.plan.get();
  options.threads = threads;
  options.max_sequences = max_sequences;
  options.max_context = max_context;
  options.activations = spec.act;
  options.precision = flags.precision == "f32"    ? WeightPrecision::kF32
                      : flags.precision == "bf16" ? WeightPrecision::kBF16
                                                  : WeightPrecision::kAsStored;
  return Model::Load(ck, options);
}

std::string ActLabel(const RunSpec& s) { return ActTypeName(s.act); }

void PrintTable(const std::vector<RunResult>& runs, const ModelConfig& config, const E2eFlags& flags) {
  int last_threads = -1;
  for (const RunResult& r : runs) {
    if (r.threads != last_threads) {
      last_threads = r.threads;
      std::printf("\n%d thread%s, DRAM read %.1f GB/s (measured in this run); prefill %d tokens, decode %d "
                  "steps; agreement over %d teacher-forced tokens\n",
                  r.threads, r.threads == 1 ? "" : "s", r.dram.best / 1e9, flags.prefill, flags.decode,
                  r.agreement_positions);
      std::printf("%-12s %-4s %10s %6s %8s %14s %6s %4s %13s %6s %10s %6s %7s %9s\n", "quant", "act", "size",
                  "bits", "load s", "prefill tok/s", "vs16", "B", "decode tok/s", "vs16", "limit", "%limit",
                  "top-1", "KL");
    }
    for (size_t i = 0; i < r.decode.size(); ++i) {
      const DecodeResult& d = r.decode[i];
      if (i == 0) {
        std::printf("%-12s %-4s %10s %6.2f %8.2f %14.1f %5.2fx", r.name.c_str(), r.act.c_str(),
                    HumanBytes(static_cast<double>(r.load.weight_bytes)).c_str(), r.bits_per_param,
                    r.load.seconds, r.prefill_tps, r.prefill_speedup);
      } else {
        std::printf("%-12s %-4s %10s %6s %8s %14s %6s", "", "", "", "", "", "", "");
      }
      std::printf(" %4d %13.2f %5.2fx %10.2f %5.0f%%", d.batch, d.tps, d.speedup, d.limit_tps,
                  100.0 * d.tps / d.limit_tps);
      if (i == 0) std::printf(" %6.1f%% %9.2e", r.top1_pct, r.kl_mean);
      std::printf("\n");
    }
    if (r.load.quantized_tensors > 0) {
      std::printf("%-12s quantized %d tensors while loading: %.2f GB in %.2f s (%.2f GB/s)\n", "",
                  r.load.quantized_tensors, r.load.source_bytes / 1e9, r.load.quantize_seconds,
                  r.load.quantize_seconds > 0 ? r.load.source_bytes / 1e9 / r.load.quantize_seconds : 0.0);
    }
  }
  std::printf("\nsize: weights in memory; vs16: speed over the 16-bit model at the same threads/batch; limit: "
              "DRAM read bandwidth x B / weight bytes per token; top-1/KL: agreement with the 16-bit model\n");
  std::fflush(stdout);
}

nlohmann::json RunJson(const RunResult& r) {
  nlohmann::json decode = nlohmann::json::array();
  for (const DecodeResult& d : r.decode) {
    decode.push_back({{"batch", d.batch},
                      {"tokens", d.tokens},
                      {"seconds", d.seconds},
                      {"tokens_per_second", d.tps},
                      {"memory_bound_tokens_per_second", d.limit_tps},
                      {"pct_of_limit", 100.0 * d.tps / d.limit_tps},
                      {"speedup_vs_16bit", d.speedup}});
  }
  const LoadStats& s = r.load;
  return {{"quant", r.name},
          {"act", r.act},
          {"threads", r.threads},
          {"dram_read_gbps", r.dram.best / 1e9},
          {"model_bytes", s.weight_bytes},
          {"bits_per_param", r.bits_per_param},
          {"plan_bits_per_weight", r.plan_bits_per_weight},
          {"weight_bytes_per_token", r.bytes_per_token},
          {"load", {{"seconds", s.seconds},
                    {"quantize_seconds", s.quantize_seconds},
                    {"quantized_tensors", s.quantized_tensors},
                    {"source_bytes", s.source_bytes},
                    {"quantized_bytes", s.quantized_bytes},
                    {"quantize_gb_per_second",
                     s.quantize_seconds > 0 ? s.source_bytes / 1e9 / s.quantize_seconds : 0.0}}},
          {"prefill", {{"tokens", r.prefill_tps * r.prefill_seconds},
                       {"seconds", r.prefill_seconds},
                       {"tokens_per_second", r.prefill_tps},
                       {"speedup_vs_16bit", r.prefill_speedup}}},
          {"decode", decode},
          {"agreement", {{"positions", r.agreement_positions},
                         {"top1_pct", r.top1_pct},
                         {"kl_mean", r.kl_mean}}}};
}

void Run(const E2eFlags& flags) {
  if (flags.prefill < 1 || flags.decode < 1 || flags.agreement_tokens < 2) {
    return Fail(kCmd, Err("--prefill and --decode must be >= 1 and --agreement-tokens >= 2"));
  }
  auto threads = ParsePositiveInts(flags.threads.empty() ? std::to_string(DefaultThreadCount()) : flags.threads,
                                   "--threads");
  if (!threads.ok()) return Fail(kCmd, threads.status());
  auto batches = ParsePositiveInts(flags.batches, "--batch");
  if (!batches.ok()) return Fail(kCmd, batches.status());
  auto ck_or = OpenCheckpoint(flags.model_path, OpenOptions{});
  if (!ck_or.ok()) return Fail(kCmd, ck_or.status());
  const Checkpoint& ck = *ck_or;
  auto specs = BuildSpecs(flags, ck);
  if (!specs.ok()) return Fail(kCmd, specs.status());
  const int max_batch = *std::max_element(batches->begin(), batches->end());
  const int max_context = std::max({flags.prefill, flags.agreement_tokens, kPromptTokens + flags.decode}) + 1;
  const int64_t vocab = ck.config.vocab_size;

  const uint64_t l3 = LastLevelCacheBytes();
  const uint64_t cap = AvailableMemoryBytes().value_or(uint64_t{12} << 30) / 4;
  const uint64_t probe = flags.probe_mib > 0 ? static_cast<uint64_t>(flags.probe_mib * 1048576)
                                             : std::min(std::max(2 * l3, uint64_t{1} << 30), cap);
  std::optional<Reference> reference;
  std::vector<RunResult> runs;
  for (int t : *threads) {
    std::fprintf(stderr, "[bench e2e] DRAM read bandwidth, %d thread%s ...\n", t, t == 1 ? "" : "s");
    const ReadBandwidth dram = MeasureReadBandwidth(probe, t, 7);
    for (const RunSpec& spec : *specs) {
      std::fprintf(stderr, "[bench e2e] %s (act %s), %d thread%s: loading\n", spec.name.c_str(),
                   ActLabel(spec).c_str(), t, t == 1 ? "" : "s");
      auto model_or = LoadModel(ck, flags, spec, t, max_batch, max_context);
      if (!model_or.ok()) return Fail(kCmd, model_or.status().WithContext(spec.name));
      Model& model = **model_or;
      RunResult r;
      r.name = spec.name;
      r.act = ActLabel(spec);
      r.threads = t;
      r.dram = dram;
      r.load = model.load_stats();
      r.bytes_per_token = model.WeightBytesPerToken();
      r.plan_bits_per_weight = spec.plan ? spec.plan->BitsPerWeight() : 0;
      // Every matrix in memory (embeddings included) over the parameter count: comparable
      // across runs, 16-bit included.
      r.bits_per_param = 8.0 * static_cast<double>(r.load.weight_bytes) /
                         static_cast<double>(std::max<int64_t>(1, ck.config.NumParameters()));
      if (!reference) {
        auto stream = GreedyStream(model, flags.agreement_tokens, flags.seed);
        if (!stream.ok()) return Fail(kCmd, stream.status());
        auto logits = TeacherForce(model, *stream);
        if (!logits.ok()) return Fail(kCmd, logits.status());
        Reference ref;
        ref.stream = *stream;
        for (size_t p = 0; p < stream->size(); ++p) {
          ref.argmax.push_back(Argmax(logits->data() + p * vocab, vocab));
          ref.logp.push_back(LogSoftmax(logits->data() + p * vocab, vocab));
        }
        reference = std::move(ref);
      }
      std::fprintf(stderr, "[bench e2e] %s (act %s), %d thread%s: agreement, prefill, decode\n", spec.name.c_str(),
                   ActLabel(spec).c_str(), t, t == 1 ? "" : "s");
      auto logits = TeacherForce(model, reference->stream);
      if (!logits.ok()) return Fail(kCmd, logits.status());
      Status st = ScoreAgreement(*reference, *logits, vocab, &r);
      if (st.ok()) st = MeasureSpeed(model, flags, *batches, &r);
      if (!st.ok()) return Fail(kCmd, st.WithContext(spec.name));
      runs.push_back(std::move(r));
    }
    // Speedups against the faster of this thread count's 16-bit runs, per phase and batch.
    const size_t first = runs.size() - specs->size();
    double prefill_base = 0;
    std::vector<double> decode_base(runs[first].decode.size(), 0.0);
    for (size_t i = first; i < runs.size() && runs[i].name == "none"; ++i) {
      prefill_base = std::max(prefill_base, runs[i].prefill_tps);
      for (size_t b = 0; b < decode_base.size(); ++b) decode_base[b] = std::max(decode_base[b], runs[i].decode[b].tps);
    }
    for (size_t i = first; i < runs.size(); ++i) {
      RunResult& r = runs[i];
      r.prefill_speedup = r.prefill_tps / prefill_base;
      for (size_t b = 0; b < r.decode.size(); ++b) r.decode[b].speedup = r.decode[b].tps / decode_base[b];
    }
  }

  if (!flags.json) return PrintTable(runs, ck.config, flags);
  nlohmann::json out;
  out["command"] = "bench e2e";
  out["model"] = flags.model_path;
  out["cpu"] = CpuModelName();
  out["cpu_features"] = HostCpu().ToString();
  out["isa"] = IsaName(SelectedIsa());
  out["config"] = {{"num_layers", ck.config.num_layers},
                   {"hidden_size", ck.config.hidden_size},
                   {"vocab_size", ck.config.vocab_size},
                   {"parameters", ck.config.NumParameters()}};
  out["prefill_tokens"] = flags.prefill;
  out["decode_steps"] = flags.decode;
  out["batches"] = *batches;
  out["agreement_stream"] = {{"tokens", reference->stream},
                             {"how", "8 seeded prompt tokens + the 16-bit model's greedy continuation"}};
  auto& dram = out["dram"] = nlohmann::json::array();
  auto& results = out["runs"] = nlohmann::json::array();
  for (const RunResult& r : runs) {
    if (dram.empty() || dram.back()["threads"] != r.threads) {
      dram.push_back({{"threads", r.threads},
                      {"best_gbps", r.dram.best / 1e9},
                      {"median_gbps", r.dram.median / 1e9},
                      {"bytes", r.dram.bytes},
                      {"passes", r.dram.passes}});
    }
    results.push_back(RunJson(r));
  }
  std::printf("%s\n", out.dump(2).c_str());
}

}  // namespace

void AddBenchE2e(CLI::App* bench) {
  auto flags = std::make_shared<E2eFlags>();
  auto* cmd = bench->add_subcommand(
      "e2e", "Whole-model prefill/decode speed, memory-bound limit and agreement with the 16-bit model");
  cmd->add_option("MODEL", flags->model_path, "HF directory, .gguf file or llama2.c .bin")->required();
  cmd->add_option("--quant", flags->quant,
                  "precisions to compare: none (16-bit, always run as the reference), rtn8, rtn4, int4:g32, ...")
      ->capture_default_str();
  cmd->add_option("--plan", flags->plan_file, "also run this selective-precision plan file");
  cmd->add_option("--act", flags->acts, "activations of the matmuls: f32 (exact), int8 (RTN matmuls, per token), bf16 (AMX)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", flags->threads, "thread counts, e.g. 1,2 (default: all cores)");
  cmd->add_option("--batch", flags->batches, "decode batch sizes (sequences per step)")->capture_default_str();
  cmd->add_option("--prefill", flags->prefill, "prompt tokens of the prefill measurement")->capture_default_str();
  cmd->add_option("--decode", flags->decode, "decode steps per batch size")->capture_default_str();
  cmd->add_option("--agreement-tokens", flags->agreement_tokens, "tokens of the teacher-forced agreement stream")
      ->capture_default_str();
  cmd->add_option("--precision", flags->precision, "16-bit weights in memory: as-stored, f32 or bf16")
      ->check(CLI::IsMember({"as-stored", "f32", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--seed", flags->seed, "seed of the prompts")->capture_default_str();
  cmd->add_flag("--json", flags->json, "machine-readable output");
  cmd->add_option("--probe-mib", flags->probe_mib)->group("");  // tests: a small bandwidth probe
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
