// Kernel registry, packing into the panel layout, and the blocked, N-split matmul driver.
#include "kernels/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/half.h"
#include "kernels/matmul_tiles.h"
#include "kernels/quad_layout.h"

namespace rtnq {
namespace {

// k block for M > mr_max: a bf16 block of 2 panels x 256 k is 16 KiB, so it stays in L1 while
// every m-tile of the batch streams over it (f32: 32 KiB, L1/L2).
constexpr int64_t kKBlock = 256;

bool HostRuns(const MatmulKernel& k) {
  const CpuFeatures& cpu = HostCpu();
  if (static_cast<int>(k.isa) > static_cast<int>(cpu.BestIsa())) return false;
  return (!k.needs_avx512bf16 || cpu.avx512bf16) && (!k.needs_avx512vnni || cpu.avx512vnni);
}

// A8 k block for M > mr_max: whole groups (the int32 dot of a group is never split), 512 k for
// g32..g128 (int8 weights: 2 panels x 512 k = 16 KiB in L1); a row-wide group is not blocked.
int64_t A8KBlock(int64_t group, int64_t k) {
  return group >= 512 ? std::min(group, k) : 512 / group * group;
}

// Row stride in bytes for the converted activations: rows `bytes` long, plus one cache line
// when that is a multiple of 1 KiB. An AMX A tile loads 16 rows at this stride; 4 KiB apart
// (K = 4096 int8) they all fall into one L1 set and evict each other.
int64_t PaddedRowStride(int64_t bytes) {
  const int64_t line = (bytes + 63) / 64 * 64;
  return line % 1024 == 0 ? line + 64 : line;
}

}  // namespace

MatmulOverrides g_matmul_overrides;

const char* ActTypeName(ActType a) {
  switch (a) {
    case ActType::kF32: return "f32";
    case ActType::kBF16: return "bf16";
    case ActType::kInt8: return "int8";
  }
  return "?";
}

bool ParseActType(const std::string& name, ActType* out) {
  for (ActType a : {ActType::kF32, ActType::kBF16, ActType::kInt8}) {
    if (name == ActTypeName(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

const char* WeightTypeName(WeightType w) {
  switch (w) {
    case WeightType::kF32: return "f32";
    case WeightType::kBF16: return "bf16";
    case WeightType::kRtnInt8: return "rtn-int8";
    case WeightType::kRtnInt4: return "rtn-int4";
  }
  return "?";
}

WeightType RtnWeightType(RtnScheme scheme) {
  return scheme == RtnScheme::kInt8 ? WeightType::kRtnInt8 : WeightType::kRtnInt4;
}

std::vector<const MatmulKernel*> AllMatmulKernels() {
  std::vector<const MatmulKernel*> all;
  for (const auto& k : kScalarKernels) all.push_back(&k);
  for (const auto& k : kAvx2Kernels) all.push_back(&k);
  for (const auto& k : kAvx512Kernels) all.push_back(&k);
  for (const auto& k : kScalarA8Kernels) all.push_back(&k);
  for (const auto& k : kAvx2A8Kernels) all.push_back(&k);
  for (const auto& k : kAvx512A8Kernels) all.push_back(&k);
  for (const auto& k : kScalarBf16ActKernels) all.push_back(&k);
  for (const auto& k : kAmxKernels) all.push_back(&k);
  return all;
}

const MatmulKernel* FindMatmulKernel(DType weight, ActType act, Isa isa) {
  if (weight == DType::kF32) return FindMatmulKernel(WeightType::kF32, act, isa);
  if (weight == DType::kBF16) return FindMatmulKernel(WeightType::kBF16, act, isa);
  return nullptr;
}

const MatmulKernel* FindMatmulKernel(WeightType weight, ActType act, Isa isa) {
  return FindMatmulKernel(weight, act, isa, 0);
}

const MatmulKernel* FindMatmulKernel(WeightType weight, ActType act, Isa isa, int64_t k_len) {
  const MatmulKernel* best = nullptr;
  for (const MatmulKernel* k : AllMatmulKernels()) {
    if (k->weight != weight || k->act != act || !HostRuns(*k)) continue;
    if (k->k_unit > 0 && k_len > 0 && k_len % k->k_unit != 0) continue;
    if (static_cast<int>(k->isa) > static_cast<int>(isa)) continue;
    if (best == nullptr || static_cast<int>(k->isa) > static_cast<int>(best->isa)) best = k;
  }
  return best;
}

bool PackedWeight::ResolveKernels(Isa isa, int64_t k_len) {
  kernel_ = FindMatmulKernel(weight_type_, act_, isa, k_len);
  if (kernel_ == nullptr) return false;
  small_m_kernel_ = kernel_;
  if (kernel_->min_m > 0) {
    const Isa below = static_cast<Isa>(static_cast<int>(kernel_->isa) - 1);
    const MatmulKernel* small = FindMatmulKernel(weight_type_, act_, below, k_len);
    if (small != nullptr) small_m_kernel_ = small;
  }
  return true;
}

Result<PackedWeight> PackedWeight::Pack(DType dtype, const void* rows, int64_t n, int64_t k,
                                        ActType act, Isa isa, ThreadPool* pool) {
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    return Err("matmul weights must be F32 or BF16, found {}", DTypeName(dtype));
  }
  if (n <= 0 || k <= 0) return Err("matmul weight shape [{}, {}] is empty", n, k);
  PackedWeight w;
  w.weight_type_ = dtype == DType::kF32 ? WeightType::kF32 : WeightType::kBF16;
  w.act_ = act;
  if (!w.ResolveKernels(isa, k)) {
    return Err("no matmul kernel for {} weights x {} activations at ISA {} on this CPU",
               DTypeName(dtype), ActTypeName(act), IsaName(isa));
  }
  w.n_ = n;
  w.k_ = k;
  w.dtype_ = dtype;
  const int64_t panels = w.panels();
  // Both layouts are quad layouts (kernels/quad_layout.h): an F32 weight or a (k, k+1) BF16 pair
  // per dword. A fresh mapping reads as zeros, so only heap buffers need clearing for the rows of
  // a last partial panel and the pad of an odd K.
  const int64_t esize = dtype == DType::kF32 ? 4 : 2;
  w.k_padded_ = dtype == DType::kF32 ? k : k + (k & 1);
  w.panel_bytes_ = w.k_padded_ * kPanelRows * esize;
  w.data_ = AlignedBuffer(static_cast<size_t>(panels * w.panel_bytes_));
  if (!w.data_.is_mapped()) std::memset(w.data_.data(), 0, w.data_.size());
  const uint64_t row_bytes = static_cast<uint64_t>(k * esize);
  const uint8_t* src = static_cast<const uint8_t*>(rows);
  auto pack_panels = [&](size_t p0, size_t p1, int) {
    for (int64_t p = static_cast<int64_t>(p0); p < static_cast<int64_t>(p1); ++p) {
      const int64_t r_end = std::min<int64_t>(kPanelRows, n - p * kPanelRows);
      CopyRowsToQuads(src + p * kPanelRows * row_bytes, row_bytes, static_cast<int64_t>(row_bytes), 0, r_end,
                      w.data_.as<uint8_t>() + p * w.panel_bytes_);
    }
  };
  if (pool != nullptr && pool->size() > 1) {
    pool->ParallelFor(static_cast<size_t>(panels), 1, pack_panels);
  } else {
    pack_panels(0, static_cast<size_t>(panels), 0);
  }
  return w;
}

void PackedWeight::ExtractRow(int64_t r, float* out) const {
  if (is_rtn()) {
    ExtractRtnRow(r, out);
    return;
  }
  const uint8_t* p = panel(r / kPanelRows);
  const int64_t rr = r % kPanelRows;
  if (dtype_ == DType::kF32) {
    const float* f = reinterpret_cast<const float*>(p);
    for (int64_t c = 0; c < k_; ++c) out[c] = f[c * kPanelRows + rr];
  } else {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
    for (int64_t c = 0; c < k_; ++c) out[c] = Bf16ToF32(h[(c / 2) * (2 * kPanelRows) + rr * 2 + (c & 1)]);
  }
}

void Matmul(const PackedWeight& w, const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
            const float* bias, ThreadPool* pool) {
  if (m <= 0) return;
  const MatmulKernel& kern = *w.KernelFor(m);
  const int64_t n = w.n(), k = w.k();
  const int mr = kern.mr_max;
  const MatmulOverrides& ov = g_matmul_overrides;
  const int nv = m > 1 ? kern.nv_max : ov.nv_decode > 0 ? std::min(ov.nv_decode, kern.nv_decode) : kern.nv_decode;
  const bool a8 = kern.act == ActType::kInt8;
  // Tiles that finish each RTN group with its scale (int8 or bf16 activations) take whole groups.
  const bool whole_groups = w.is_rtn() && kern.act != ActType::kF32;
  // Blocking over k only pays when several m-tiles reuse the weight block. The f32 block is a
  // multiple of 8 and of every RTN group but "row".
  const int64_t kc = m <= mr ? k : whole_groups ? A8KBlock(w.group(), k) : ov.k_block > 0 ? ov.k_block : kKBlock;
  // A8: activations quantized once per matmul on this thread (row- and group-local, so the
  // result does not depend on how the work is split), shared read-only by the workers.
  thread_local std::vector<int8_t> xq;
  thread_local std::vector<float> xs;
  thread_local std::vector<int32_t> xbsum;
  int64_t ldxq = 0, xq_group = 0, groups = 0;
  if (a8) {
    const RtnScheme scheme = w.rtn_format().scheme;
    groups = k / w.group();
    xq_group = A8GroupStride(scheme, w.group());
    ldxq = PaddedRowStride(groups * xq_group);
    if (xq.size() < static_cast<size_t>(m * ldxq)) xq.resize(static_cast<size_t>(m * ldxq));
    if (xs.size() < static_cast<size_t>(m * groups)) {
      xs.resize(static_cast<size_t>(m * groups));
      xbsum.resize(static_cast<size_t>(m * groups));
    }
    const int bias_code = Info(scheme).bias;
    for (int64_t i = 0; i < m; ++i) {
      A8Row row{xq.data() + i * ldxq, xs.data() + i * groups, xbsum.data() + i * groups};
      QuantizeActivationsA8(x + i * ldx, k, w.group(), xq_group, scheme == RtnScheme::kInt4, row,
                            kern.isa);
      for (int64_t g = 0; g < groups; ++g) row.sum[g] *= bias_code;
    }
  }
  // The workers see their own thread_locals: hand them this thread's buffers.
  const int8_t* xq_data = xq.data();
  const float* xs_data = xs.data();
  const int32_t* xbsum_data = xbsum.data();

  std::vector<uint16_t> xbf;
  const int64_t ldxbf = PaddedRowStride(w.k_padded() * 2) / 2;
  if (kern.act == ActType::kBF16) {  // rounded once per matmul, shared by all threads
    xbf.assign(static_cast<size_t>(m * ldxbf), 0);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t c = 0; c < k; ++c) xbf[i * ldxbf + c] = F32ToBf16(x[i * ldx + c]);
  }

  // Several m-tiles: dequantize each (n-block, k-block) of RTN weights to f32 once and let every
  // m-tile reuse it. (Expanding bf16 the same way measured 0.85-0.9x of the in-register
  // shift/mask: the 2 ALU ops per k-pair cost less than the f32 store and reload.)
  const bool expand = ov.expand != 0 && m > mr && kern.act == ActType::kF32 &&
                      (kern.weight == WeightType::kRtnInt4 || kern.weight == WeightType::kRtnInt8);
  auto work = [&](size_t p_begin, size_t p_end, int /*thread*/) {
    const int64_t ldacc = static_cast<int64_t>(nv) * kPanelRows;
    thread_local std::vector<float> acc;
    if (acc.size() < static_cast<size_t>(m * ldacc)) acc.resize(static_cast<size_t>(m * ldacc));
    thread_local AlignedBuffer wexp;
    if (expand && wexp.size() < static_cast<size_t>(nv * kc * kPanelRows * 4))
      wexp = AlignedBuffer(static_cast<size_t>(nv * kc * kPanelRows * 4));
    for (int64_t p0 = static_cast<int64_t>(p_begin); p0 < static_cast<int64_t>(p_end); p0 += nv) {
      const int nvb = static_cast<int>(std::min<int64_t>(nv, static_cast<int64_t>(p_end) - p0));
      for (int64_t k0 = 0; k0 < k; k0 += kc) {
        const int64_t k1 = std::min(k, k0 + kc);
        for (int64_t m0 = 0; m0 < m; m0 += mr) {
          TileArgs t;
          t.x = x + m0 * ldx;
          t.ldx = ldx;
          t.xbf = xbf.empty() ? nullptr : xbf.data() + m0 * ldxbf;
          t.ldxbf = ldxbf;
          t.mr = static_cast<int>(std::min<int64_t>(mr, m - m0));
          t.w = w.panel(p0);
          t.panel_bytes = w.panel_bytes();
          t.nv = nvb;
          t.k0 = k0;
          t.k1 = k1;
          t.k_total = k;
          t.group = w.group();
          t.group_bytes = w.group_bytes();
          t.group_shift = w.group_shift();
          t.group_code_bytes = w.group_code_bytes();
          t.scale_dtype = w.panel_scale_dtype();
          t.xq = a8 ? xq_data + m0 * ldxq : nullptr;
          t.ldxq = ldxq;
          t.xq_group = xq_group;
          t.xs = a8 ? xs_data + m0 * groups : nullptr;
          t.xbsum = a8 ? xbsum_data + m0 * groups : nullptr;
          t.ldxs = groups;
          t.acc = acc.data() + m0 * ldacc;
          t.ldacc = ldacc;
          t.load_acc = k0 > 0;
          t.wexp = expand ? reinterpret_cast<float*>(wexp.data()) : nullptr;
          t.first_m_tile = m0 == 0;
          t.more_m_tiles = m > mr;
          kern.tile(t);
        }
      }
      const int64_t n0 = p0 * kPanelRows;
      const int64_t cols = std::min<int64_t>(n - n0, static_cast<int64_t>(nvb) * kPanelRows);
      for (int64_t i = 0; i < m; ++i) {
        const float* a = acc.data() + i * ldacc;
        float* out = y + i * ldy + n0;
        if (bias) {
          for (int64_t c = 0; c < cols; ++c) out[c] = a[c] + bias[n0 + c];
        } else {
          std::memcpy(out, a, static_cast<size_t>(cols) * 4);
        }
      }
    }
    if (kern.isa == Isa::kAmx) ReleaseAmxTiles();
  };
  const size_t panels = static_cast<size_t>(w.panels());
  // Waking the pool costs ~10-20 us; below ~256K multiply-adds (a few us of work) run inline.
  const bool tiny = m * n * k < (int64_t{1} << 18);
  if (pool == nullptr || pool->size() == 1 || tiny || panels == 1) {
    work(0, panels, 0);
    return;
  }
  // Whole register tiles per thread when there are many; single panels for small N.
  const size_t grain = panels >= static_cast<size_t>(8 * nv * pool->size()) ? nv : 1;
  pool->ParallelFor(panels, grain, work);
}

}  // namespace rtnq
