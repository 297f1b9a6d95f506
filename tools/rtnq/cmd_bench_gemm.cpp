// rtnq bench gemm: every matmul kernel on the Llama-3.1-8B linear-layer shapes, for a range of M
// (tokens per call), against the DRAM read bandwidth measured in the same run with the same
// thread count. Weights are seeded random values with outlier input channels, RTN-quantized by
// the real quantizer and packed by the real packer; calls rotate through enough packed copies
// that one rotation is larger than the last-level cache, so every call streams its weights from
// DRAM as a forward pass does. The 16-bit baseline at each (shape, M) is the faster of the two
// BF16 kernels (f32 activations, or bf16 activations with VDPBF16PS).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "base/cpu_features.h"
#include "base/half.h"
#include "base/memory_bandwidth.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "cmd_bench.h"
#include "common.h"
#include "kernels/matmul.h"
#include "plot.h"
#include "quant/rtn.h"

namespace rtnq::cli {
namespace {

constexpr const char* kCmd = "bench gemm";

struct GemmFlags {
  std::string shapes = "4096x4096,4096x1024,4096x14336,14336x4096,4096x128256";
  std::string ms = "1,2,4,8,16,32,64,128";
  std::string types = "f32,bf16,w8g128,w4g128,w4g32";
  std::string acts = "a16,bf16,a8";
  int threads = 1;
  int repeats = 5;
  double min_time = 0.05;
  bool json = false;
  std::string plot;
  double rotate_mib = 0;  // testing: rotation size instead of 1.5 x L3
  double probe_mib = 0;   // testing: bandwidth-probe buffer instead of max(2 x L3, 1 GiB)
  uint64_t seed = 1;
};

struct Shape {
  std::string name;  // "KxN"
  std::string role;  // which Llama-3.1-8B layer has it; empty for other shapes
  int64_t k = 0, n = 0;
};

// Llama-3.1-8B linear layers, K (inputs) x N (outputs).
const Shape kNamedShapes[] = {{"4096x4096", "q_proj/o_proj", 4096, 4096},
                              {"4096x1024", "k_proj/v_proj", 4096, 1024},
                              {"4096x14336", "gate/up_proj", 4096, 14336},
                              {"14336x4096", "down_proj", 14336, 4096},
                              {"4096x128256", "lm_head", 4096, 128256}};

Result<Shape> ParseShape(const std::string& text) {
  for (const Shape& s : kNamedShapes) {
    if (s.name == text) return s;
  }
  const size_t x = text.find('x');
  auto dims = x == std::string::npos ? Result<std::vector<int>>(Err("no 'x'"))
                                     : ParsePositiveInts(text.substr(0, x) + "," + text.substr(x + 1), "--shapes");
  if (!dims.ok() || dims->size() != 2 || (*dims)[0] % 32 != 0 || (*dims)[1] % 16 != 0) {
    return Err("--shapes: '{}' is not KxN with K a multiple of 32 and N a multiple of 16 (e.g. 4096x14336)", text);
  }
  return Shape{text, "", (*dims)[0], (*dims)[1]};
}

// A weight type of --types: f32, bf16, or w<bits>g<group> (w8g128, w4g32, ...; w8 alone: one
// group per row).
struct WeightSpec {
  std::string name;
  bool rtn = false;
  DType dense = DType::kBF16;
  RtnFormat format;
};

Result<WeightSpec> ParseWeightSpec(const std::string& text) {
  if (text == "f32") return WeightSpec{text, false, DType::kF32, {}};
  if (text == "bf16") return WeightSpec{text, false, DType::kBF16, {}};
  if (text.size() >= 2 && text[0] == 'w' && (text[1] == '8' || text[1] == '4')) {
    RtnFormat f;
    f.scheme = text[1] == '8' ? RtnScheme::kInt8 : RtnScheme::kInt4;
    f.scale_dtype = DType::kBF16;
    f.group = 0;
    const std::string rest = text.substr(2);
    if (!rest.empty()) {
      auto g = rest[0] == 'g' ? ParsePositiveInts(rest.substr(1), "--types") : Result<std::vector<int>>(Err("x"));
      if (!g.ok() || g->size() != 1 || (*g)[0] % 32 != 0) {
        return Err("--types: bad group in '{}' (w8g128, w4g32, ...: a multiple of 32)", text);
      }
      f.group = (*g)[0];
    }
    return WeightSpec{text, true, DType::kBF16, f};
  }
  return Err("--types: unknown weight type '{}' (f32, bf16, w8g128, w4g128, w4g32, ...)", text);
}

struct Variant {
  WeightSpec weights;
  std::string act_name;  // "a16" (f32 activations), "a8" (int8), "bf16"
  ActType act;
  std::string Label() const { return weights.name + "-" + act_name; }
  bool IsBaseline() const { return !weights.rtn && weights.dense == DType::kBF16; }
};

struct Cell {
  size_t shape = 0;
  int m = 0;
  std::string label, type, act_name, act_type, kernel;
  uint64_t weight_bytes = 0;
  int copies = 0;
  int calls = 0;
  double seconds = 0, seconds_min = 0;
  double speedup = 0;
  std::string baseline;
};

// Seeded weights: a bell-shaped value per element (sum of four uniforms) times a per-row scale,
// and 1 in 64 input channels 8x larger (the outlier channels RTN's per-group scales must absorb).
void FillWeights(const Shape& s, uint64_t seed, ThreadPool* pool, std::vector<uint16_t>* out) {
  out->resize(static_cast<size_t>(s.n * s.k));
  std::vector<float> column_scale(s.k, 1.0f);
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  auto next = [](uint64_t& x) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  for (int64_t c = 0; c < s.k; ++c) {
    if (next(state) % 64 == 0) column_scale[c] = 8.0f;
  }
  const float base = 1.0f / std::sqrt(static_cast<float>(s.k));
  pool->ParallelFor(s.n, 1, [&](size_t r0, size_t r1, int) {
    for (size_t r = r0; r < r1; ++r) {
      uint64_t x = (seed + 1) * 0xbf58476d1ce4e5b9ull ^ (r + 1) * 0x94d049bb133111ebull;
      const float row_scale = base * (0.5f + static_cast<float>(next(x) % 1024) / 1024.0f);
      uint16_t* row = out->data() + r * s.k;
      for (int64_t c = 0; c < s.k; ++c) {
        const uint64_t v = next(x);
        const float u = static_cast<float>((v & 0xffff) + ((v >> 16) & 0xffff) + ((v >> 32) & 0xffff) +
                                           (v >> 48)) / 65536.0f - 2.0f;  // in (-2, 2), sd 0.58
        row[c] = F32ToBf16(u * row_scale * column_scale[c]);
      }
    }
  });
}

struct Machine {
  ReadBandwidth dram;
  uint64_t l3_bytes = 0;
  uint64_t rotation_target = 0;
  uint64_t memory_cap = 0;
};

// Times Matmul of one variant for every M, rotating through the packed copies.
class VariantRunner {
 public:
  VariantRunner(const GemmFlags& flags, const Machine& machine, ThreadPool* pool)
      : flags_(flags), machine_(machine), pool_(pool) {}

  // Packs copies with `pack` until one rotation exceeds the target (memory permitting), then
  // times each M. Returns the cells (without speedups).
  Result<std::vector<Cell>> Run(size_t shape_index, const Shape& shape, const Variant& v,
                                const std::vector<int>& ms,
                                const std::function<Result<PackedWeight>()>& pack) {
    std::vector<PackedWeight> copies;
    RTNQ_ASSIGN_OR_RETURN(PackedWeight first, pack());
    const uint64_t bytes = first.bytes();
    copies.push_back(std::move(first));
    const uint64_t want = (machine_.rotation_target + bytes - 1) / bytes;
    const uint64_t fit = std::max<uint64_t>(1, machine_.memory_cap / bytes);
    const uint64_t n_copies = std::max<uint64_t>(1, std::min(want, fit));
    Progress("%s %s: packing %llu cop%s of %s (%s rotation)%s", shape.name.c_str(), v.Label().c_str(),
             static_cast<unsigned long long>(n_copies), n_copies == 1 ? "y" : "ies",
             HumanBytes(static_cast<double>(bytes)).c_str(),
             HumanBytes(static_cast<double>(bytes * n_copies)).c_str(),
             bytes * n_copies < machine_.l3_bytes ? " [below the L3 size: may measure the cache]" : "");
    while (copies.size() < n_copies) {
      RTNQ_ASSIGN_OR_RETURN(PackedWeight w, pack());
      copies.push_back(std::move(w));
    }
    std::vector<Cell> cells;
    size_t next = 0;
    for (int m : ms) {
      std::vector<float> x(static_cast<size_t>(m) * shape.k), y(static_cast<size_t>(m) * shape.n);
      uint64_t state = 0x2545f4914f6cdd1dull + static_cast<uint64_t>(m);
      for (float& e : x) {
        state ^= state << 13, state ^= state >> 7, state ^= state << 17;
        e = static_cast<float>(state >> 40) / 8388608.0f - 1.0f;  // uniform in [-1, 1)
      }
      auto call = [&] {
        const PackedWeight& w = copies[next];
        next = (next + 1) % copies.size();
        Timer t;
        Matmul(w, x.data(), m, shape.k, y.data(), shape.n, nullptr, pool_);
        return t.Seconds();
      };
      call();  // warm-up: wakes the pool, faults the activations in
      std::vector<double> times;
      double total = 0;
      while (static_cast<int>(times.size()) < flags_.repeats || total < flags_.min_time) {
        times.push_back(call());
        total += times.back();
      }
      Cell c;
      c.shape = shape_index;
      c.m = m;
      c.label = v.Label();
      c.type = v.weights.name;
      c.act_name = v.act_name;
      c.act_type = ActTypeName(v.act);
      c.kernel = copies[0].KernelFor(m)->name;
      c.weight_bytes = bytes;
      c.copies = static_cast<int>(copies.size());
      c.calls = static_cast<int>(times.size());
      c.seconds = MedianOf(times);
      c.seconds_min = *std::min_element(times.begin(), times.end());
      cells.push_back(std::move(c));
    }
    return cells;
  }

  template <typename... Args>
  void Progress(const char* fmt_text, Args... args) const {
    std::fprintf(stderr, "[bench gemm] ");
    std::fprintf(stderr, fmt_text, args...);
    std::fprintf(stderr, "\n");
  }

 private:
  const GemmFlags& flags_;
  const Machine& machine_;
  ThreadPool* pool_;
};

double Gbps(const Cell& c) { return static_cast<double>(c.weight_bytes) / c.seconds / 1e9; }
double Gflops(const Cell& c, const Shape& s) {
  return 2.0 * c.m * static_cast<double>(s.n) * static_cast<double>(s.k) / c.seconds / 1e9;
}

void PrintShapeTable(const Shape& s, const std::vector<Cell>& cells, size_t shape_index,
                     const std::vector<int>& ms, const Machine& machine) {
  std::printf("\n%s  (K=%lld in, N=%lld out%s%s)   DRAM read %.1f GB/s, %d thread%s\n", s.name.c_str(),
              static_cast<long long>(s.k), static_cast<long long>(s.n), s.role.empty() ? "" : ", Llama-3.1-8B ",
              s.role.c_str(), machine.dram.best / 1e9, machine.dram.threads, machine.dram.threads == 1 ? "" : "s");
  std::printf("%5s  %-14s %-26s %11s %9s %8s %6s %9s %8s\n", "M", "variant", "kernel", "weights", "ms",
              "GB/s", "%DRAM", "GFLOP/s", "vs BF16");
  for (int m : ms) {
    for (const Cell& c : cells) {
      if (c.shape != shape_index || c.m != m) continue;
      const double gbps = Gbps(c);
      std::printf("%5d  %-14s %-26s %11s %9.3f %8.2f %6.1f %9.1f %7.2fx\n", c.m, c.label.c_str(),
                  c.kernel.c_str(), HumanBytes(static_cast<double>(c.weight_bytes)).c_str(), c.seconds * 1e3,
                  gbps, 100.0 * gbps * 1e9 / machine.dram.best, Gflops(c, s), c.speedup);
    }
  }
  std::fflush(stdout);
}

PlotSpec MakePlot(const std::vector<Shape>& shapes, const std::vector<Cell>& cells, const Machine& machine,
                  const GemmFlags& flags) {
  PlotSpec spec;
  spec.title = "rtnq bench gemm: matmul speed over the 16-bit (BF16) baseline";
  spec.subtitle = fmt::format(
      "{}, {}, {} thread{}, DRAM read {:.1f} GB/s measured in this run, L3 {}\n"
      "baseline at each M: the faster of BF16 weights x f32 and x bf16 activations; dashed: int8 activations",
      CpuModelName(), IsaName(SelectedIsa()), flags.threads, flags.threads == 1 ? "" : "s",
      machine.dram.best / 1e9, HumanBytes(static_cast<double>(machine.l3_bytes)));
  spec.x_label = "M (tokens per call)";
  spec.y_label = "speedup over BF16";
  spec.log2_x = true;
  spec.reference_y = 1.0;
  for (size_t si = 0; si < shapes.size(); ++si) {
    PlotPanel panel;
    panel.title = shapes[si].name + (shapes[si].role.empty() ? "" : "  (" + shapes[si].role + ")");
    for (const Cell& c : cells) {
      if (c.shape != si) continue;
      auto it = std::find_if(panel.series.begin(), panel.series.end(),
                             [&](const PlotSeries& s) { return s.label == c.label; });
      if (it == panel.series.end()) {
        panel.series.push_back({c.label, c.act_name == "a8", {}});
        it = panel.series.end() - 1;
      }
      it->points.emplace_back(c.m, c.speedup);
    }
    spec.panels.push_back(std::move(panel));
  }
  return spec;
}

void Run(const GemmFlags& flags) {
  if (flags.threads < 1) return Fail(kCmd, Err("--threads must be >= 1, found {}", flags.threads));
  if (flags.repeats < 1) return Fail(kCmd, Err("--repeats must be >= 1, found {}", flags.repeats));
  std::vector<Shape> shapes;
  for (const std::string& s : SplitCommaList(flags.shapes)) {
    auto shape = ParseShape(s);
    if (!shape.ok()) return Fail(kCmd, shape.status());
    shapes.push_back(*shape);
  }
  if (shapes.empty()) return Fail(kCmd, Err("--shapes: empty list"));
  auto ms = ParsePositiveInts(flags.ms, "--m");
  if (!ms.ok()) return Fail(kCmd, ms.status());
  std::vector<WeightSpec> types;
  bool has_bf16 = false;
  for (const std::string& t : SplitCommaList(flags.types)) {
    auto w = ParseWeightSpec(t);
    if (!w.ok()) return Fail(kCmd, w.status());
    has_bf16 = has_bf16 || (!w->rtn && w->dense == DType::kBF16);
    types.push_back(*w);
  }
  if (!has_bf16) types.insert(types.begin(), *ParseWeightSpec("bf16"));  // the baseline
  std::vector<std::pair<std::string, ActType>> rtn_acts;
  for (const std::string& a : SplitCommaList(flags.acts)) {
    if (a == "a16") rtn_acts.emplace_back(a, ActType::kF32);
    else if (a == "bf16") rtn_acts.emplace_back(a, ActType::kBF16);
    else if (a == "a8") rtn_acts.emplace_back(a, ActType::kInt8);
    else return Fail(kCmd, Err("--act: unknown activation type '{}' (a16, bf16, a8)", a));
  }
  const Isa isa = SelectedIsa();
  // Every variant in table order: dense first, then RTN with f32 activations, then int8.
  std::vector<Variant> variants;
  for (const WeightSpec& w : types) {
    if (w.rtn) continue;
    variants.push_back({w, "a16", ActType::kF32});
    if (w.dense == DType::kBF16 && FindMatmulKernel(w.dense, ActType::kBF16, isa) != nullptr) {
      variants.push_back({w, "bf16", ActType::kBF16});
    }
  }
  for (const auto& [name, act] : rtn_acts) {
    for (const WeightSpec& w : types) {
      if (w.rtn) variants.push_back({w, name, act});
    }
  }

  Machine machine;
  machine.l3_bytes = LastLevelCacheBytes();
  const uint64_t available = AvailableMemoryBytes().value_or(uint64_t{12} << 30);
  machine.memory_cap = available / 3;
  // 1.5 x L3: with the cache's LRU-like replacement and the L2s on top, a cyclic walk over more
  // than the L3 misses on every line; the margin covers a non-inclusive L3 plus L2 capacity.
  machine.rotation_target = flags.rotate_mib > 0 ? static_cast<uint64_t>(flags.rotate_mib * 1048576)
                                                 : machine.l3_bytes * 3 / 2;
  const uint64_t probe = flags.probe_mib > 0
                             ? static_cast<uint64_t>(flags.probe_mib * 1048576)
                             : std::min(std::max(2 * machine.l3_bytes, uint64_t{1} << 30), machine.memory_cap);
  std::fprintf(stderr, "[bench gemm] DRAM read bandwidth: %s buffer, %d thread%s, 7 passes ...\n",
               HumanBytes(static_cast<double>(probe)).c_str(), flags.threads, flags.threads == 1 ? "" : "s");
  machine.dram = MeasureReadBandwidth(probe, flags.threads, 7);
  std::fprintf(stderr, "[bench gemm] DRAM read: %.2f GB/s best, %.2f GB/s median\n", machine.dram.best / 1e9,
               machine.dram.median / 1e9);

  ThreadPool pool(flags.threads);
  VariantRunner runner(flags, machine, &pool);
  std::vector<Cell> cells;
  std::vector<std::string> skipped;
  for (size_t si = 0; si < shapes.size(); ++si) {
    const Shape& s = shapes[si];
    std::vector<uint16_t> bf16;
    runner.Progress("%s: generating %lld x %lld weights", s.name.c_str(), static_cast<long long>(s.n),
                    static_cast<long long>(s.k));
    FillWeights(s, flags.seed + si, &pool, &bf16);
    std::vector<float> f32;
    std::optional<RtnMatrix> quantized;
    std::string quantized_for;
    const size_t first_cell = cells.size();
    for (const Variant& v : variants) {
      const WeightType wt = v.weights.rtn ? RtnWeightType(v.weights.format.scheme)
                                          : (v.weights.dense == DType::kF32 ? WeightType::kF32 : WeightType::kBF16);
      const MatmulKernel* kernel = FindMatmulKernel(wt, v.act, isa);
      if (kernel == nullptr) {
        skipped.push_back(fmt::format("{} {}: no kernel on this CPU ({})", s.name, v.Label(), IsaName(isa)));
        continue;
      }
      if (v.act == ActType::kBF16 && kernel->isa == Isa::kScalar && isa != Isa::kScalar) {
        // RTN x bf16 activations runs fast only on AMX; elsewhere only its scalar twin exists.
        skipped.push_back(fmt::format("{} {}: only the scalar kernel on this CPU ({})", s.name, v.Label(), IsaName(isa)));
        continue;
      }
      std::function<Result<PackedWeight>()> pack;
      if (v.weights.rtn) {
        if (v.weights.format.group != 0 && s.k % v.weights.format.group != 0) {
          skipped.push_back(fmt::format("{} {}: group {} does not divide K", s.name, v.Label(), v.weights.format.group));
          continue;
        }
        if (quantized_for != v.weights.name) {
          auto m = AllocateRtnMatrix(v.weights.format, s.n, s.k);
          if (!m.ok()) return Fail(kCmd, m.status());
          quantized = std::move(*m);
          pool.ParallelFor(s.n, 16, [&](size_t r0, size_t r1, int) {
            RtnQuantizeRows(bf16.data(), DType::kBF16, r0, r1, RtnArithmetic::kFp32, &*quantized);
          });
          quantized_for = v.weights.name;
        }
        pack = [&] {
          return PackedWeight::Pack(v.weights.format, quantized->codes.data(), quantized->scales.data(), s.n,
                                    s.k, v.act, isa);
        };
      } else if (v.weights.dense == DType::kF32) {
        if (f32.empty()) {
          f32.resize(bf16.size());
          for (size_t i = 0; i < bf16.size(); ++i) f32[i] = Bf16ToF32(bf16[i]);
        }
        pack = [&] { return PackedWeight::Pack(DType::kF32, f32.data(), s.n, s.k, v.act, isa); };
      } else {
        pack = [&] { return PackedWeight::Pack(DType::kBF16, bf16.data(), s.n, s.k, v.act, isa); };
      }
      auto run = runner.Run(si, s, v, *ms, pack);
      if (!run.ok()) return Fail(kCmd, run.status().WithContext(s.name + " " + v.Label()));
      for (Cell& c : *run) cells.push_back(std::move(c));
      if (v.weights.dense == DType::kF32 && !v.weights.rtn) std::vector<float>().swap(f32);
    }
    // Speedups against the faster BF16 kernel at each M of this shape.
    for (int m : *ms) {
      const Cell* best = nullptr;
      for (size_t i = first_cell; i < cells.size(); ++i) {
        const Cell& c = cells[i];
        if (c.m == m && c.type == "bf16" && (best == nullptr || c.seconds < best->seconds)) best = &c;
      }
      const double base = best ? best->seconds : 0;
      const std::string base_label = best ? best->label : "";
      for (size_t i = first_cell; i < cells.size(); ++i) {
        if (cells[i].m != m) continue;
        cells[i].speedup = base / cells[i].seconds;
        cells[i].baseline = base_label;
      }
    }
    if (!flags.json) PrintShapeTable(s, cells, si, *ms, machine);
  }
  for (const std::string& line : skipped) std::fprintf(stderr, "[bench gemm] skipped %s\n", line.c_str());

  std::pair<int, int> plot_size{0, 0};
  if (!flags.plot.empty()) {
    const PlotSpec spec = MakePlot(shapes, cells, machine, flags);
    plot_size = PlotImageSize(spec);
    Status st = WritePlotPng(spec, flags.plot);
    if (!st.ok()) return Fail(kCmd, st);
    std::fprintf(stderr, "[bench gemm] wrote %s\n", flags.plot.c_str());
  }
  if (flags.json) {
    nlohmann::json out;
    out["command"] = "bench gemm";
    out["cpu"] = CpuModelName();
    out["cpu_features"] = HostCpu().ToString();
    out["isa"] = IsaName(isa);
    out["threads"] = flags.threads;
    out["l3_bytes"] = machine.l3_bytes;
    out["rotation_target_bytes"] = machine.rotation_target;
    out["repeats"] = flags.repeats;
    out["min_time_seconds"] = flags.min_time;
    out["dram"] = {{"best_gbps", machine.dram.best / 1e9},
                   {"median_gbps", machine.dram.median / 1e9},
                   {"bytes", machine.dram.bytes},
                   {"passes", machine.dram.passes},
                   {"threads", machine.dram.threads}};
    out["shapes"] = nlohmann::json::array();
    for (const Shape& s : shapes) out["shapes"].push_back({{"name", s.name}, {"k", s.k}, {"n", s.n}, {"role", s.role}});
    out["skipped"] = skipped;
    if (!flags.plot.empty()) {
      out["plot"] = {{"path", flags.plot}, {"width", plot_size.first}, {"height", plot_size.second}};
    }
    auto& results = out["results"] = nlohmann::json::array();
    for (const Cell& c : cells) {
      const Shape& s = shapes[c.shape];
      const double gbps = Gbps(c);
      results.push_back({{"shape", s.name},
                         {"k", s.k},
                         {"n", s.n},
                         {"m", c.m},
                         {"label", c.label},
                         {"type", c.type},
                         {"act", c.act_name},
                         {"act_type", c.act_type},
                         {"kernel", c.kernel},
                         {"weight_bytes", c.weight_bytes},
                         {"bits_per_weight", 8.0 * static_cast<double>(c.weight_bytes) / (s.k * static_cast<double>(s.n))},
                         {"copies", c.copies},
                         {"rotation_bytes", c.weight_bytes * static_cast<uint64_t>(c.copies)},
                         {"calls", c.calls},
                         {"seconds", c.seconds},
                         {"seconds_min", c.seconds_min},
                         {"gbps", gbps},
                         {"pct_dram", 100.0 * gbps * 1e9 / machine.dram.best},
                         {"gflops", Gflops(c, s)},
                         {"baseline", c.baseline},
                         {"speedup_vs_bf16", c.speedup}});
    }
    std::printf("%s\n", out.dump(2).c_str());
  }
}

}  // namespace

void AddBenchGemm(CLI::App* bench) {
  auto flags = std::make_shared<GemmFlags>();
  auto* cmd = bench->add_subcommand(
      "gemm", "Matmul kernels on Llama-3.1-8B shapes: time, GB/s, % of DRAM bandwidth, speedup over BF16");
  cmd->add_option("--shapes", flags->shapes, "KxN list (inputs x outputs)")->capture_default_str();
  cmd->add_option("--m", flags->ms, "tokens per call (rows of X)")->capture_default_str();
  cmd->add_option("--types", flags->types, "weight types: f32, bf16, w8g128, w4g128, w4g32, ... (bf16 is always run: it is the baseline)")
      ->capture_default_str();
  cmd->add_option("--act", flags->acts, "activations of the RTN types: a16 (exact f32), bf16 (rounded to bf16; AMX), a8 (int8 per token)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", flags->threads, "threads (the bandwidth probe uses as many)")->capture_default_str();
  cmd->add_option("--repeats", flags->repeats, "timed calls per cell, at least")->capture_default_str();
  cmd->add_option("--min-time", flags->min_time, "seconds of timed calls per cell, at least")->capture_default_str();
  cmd->add_option("--seed", flags->seed, "weight seed")->capture_default_str();
  cmd->add_flag("--json", flags->json, "machine-readable output");
  cmd->add_option("--plot", flags->plot, "write a PNG chart of the speedups to this file");
  // For tests: small rotations and probes (the numbers then measure caches, not DRAM).
  cmd->add_option("--rotate-mib", flags->rotate_mib)->group("");
  cmd->add_option("--probe-mib", flags->probe_mib)->group("");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
