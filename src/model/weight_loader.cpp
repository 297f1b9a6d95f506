#include "model/weight_loader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <deque>
#include <mutex>

#include "arch/tensor_role.h"
#include "base/half.h"
#include "base/timer.h"
#include "io/rope_permute.h"
#include "quant/quantize_model.h"
#include "quant/tensor_rows.h"

namespace rtnq {

uint64_t LinearWeights::bytes() const {
  uint64_t b = 0;
  for (const PackedWeight& p : parts) b += p.bytes();
  return b;
}

void LinearWeights::Run(const float* x, int64_t m, int64_t ldx, float* y, int64_t ldy,
                        const float* bias, ThreadPool* pool) const {
  for (size_t i = 0; i < parts.size(); ++i) {
    Matmul(parts[i], x, m, ldx, y + col_offset[i], ldy, bias ? bias + col_offset[i] : nullptr, pool);
  }
}

WeightLoader::WeightLoader(const Checkpoint& ck, const ModelOptions& options, ThreadPool* pool)
    : ck_(ck), options_(options), pool_(pool), isa_(SelectedIsa()) {
  if (options.plan != nullptr) {
    for (const TensorDecision& d : options.plan->tensors) plan_[d.name] = d.precision;
  }
}

Precision WeightLoader::PrecisionOf(const TensorId& id) const {
  auto it = plan_.find(CanonicalName(id));
  return it == plan_.end() ? Precision{} : it->second;
}

Precision WeightLoader::EffectivePrecision(const TensorId& id) const {
  const Precision p = PrecisionOf(id);
  // --precision f32/bf16 asks for every weight decoded; as-stored keeps RTN weights RTN.
  if (p.kind != Precision::Kind::kKeep || options_.precision != WeightPrecision::kAsStored) return p;
  const TensorView* v = ck_.Find(CanonicalName(id));
  if (v != nullptr && v->rtn) return Precision{Precision::Kind::kRtn, *v->rtn};
  return p;
}

Result<const TensorView*> WeightLoader::Find(const TensorId& id) const {
  const std::string name = CanonicalName(id);
  const TensorView* v = ck_.Find(name);
  if (v == nullptr) return Err("{}: tensor {} is missing", ck_.path, name);
  const std::vector<int64_t> want = ExpectedShape(ck_.config, id);
  if (v->shape != want) {
    return Err("{}: tensor {} has shape [{}], expected [{}]", ck_.path, name,
               fmt::join(v->shape, ", "), fmt::join(want, ", "));
  }
  if (v->rtn) {
    if (v->rope_permuted_heads != 0) {
      return Err("{}: tensor {} is RTN-quantized in interleaved-RoPE row order", ck_.path, name);
    }
    RTNQ_RETURN_IF_ERROR(ValidateQuantizedView(*v));
    return v;
  }
  const auto bytes = DTypeBytes(v->dtype, static_cast<uint64_t>(v->NumElements()));
  if (!bytes || *bytes > v->nbytes || v->data == nullptr) {
    return Err("{}: tensor {} ({}) holds {} bytes at offset {}, expected {}", ck_.path, name,
               DTypeName(v->dtype), v->nbytes, v->file_offset, bytes ? *bytes : 0);
  }
  if (v->shape.size() == 2 && v->shape[1] % Info(v->dtype).block_elems != 0) {
    return Err("{}: tensor {} rows of {} are not whole {} blocks", ck_.path, name, v->shape[1],
               DTypeName(v->dtype));
  }
  if (v->rope_permuted_heads != 0 &&
      (v->shape[0] % v->rope_permuted_heads != 0 || (v->shape[0] / v->rope_permuted_heads) % 2)) {
    return Err("{}: tensor {} has {} rows, not a whole number of {} RoPE heads of even size",
               ck_.path, name, v->shape[0], v->rope_permuted_heads);
  }
  return v;
}

Result<std::vector<float>> WeightLoader::LoadVector(const TensorId& id) {
  RTNQ_ASSIGN_OR_RETURN(const TensorView* v, Find(id));
  if (v->rtn) return Err("{}: tensor {} is quantized ({}); expected a float vector", ck_.path, v->name, v->PrecisionName());
  std::vector<float> out(static_cast<size_t>(v->NumElements()));
  DequantizeRow(v->dtype, v->data, out.data(), out.size());
  return out;
}

void WeightLoader::ReleaseSource(const TensorView& view) const {
  const std::shared_ptr<MappedFile> file = ck_.FileHolding(view);
  if (file == nullptr) return;
  const uint8_t* end = file->data() + file->size();
  // Whole pages only: a page shared with a neighbouring tensor just faults in again if read.
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t lo = reinterpret_cast<uintptr_t>(view.data) & ~(page - 1);
  const uintptr_t hi = std::min(reinterpret_cast<uintptr_t>(view.data + view.nbytes + page - 1) & ~(page - 1),
                                reinterpret_cast<uintptr_t>(end + page - 1) & ~(page - 1));
  ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

Result<LinearWeights> WeightLoader::LoadLinear(const std::vector<TensorId>& ids) {
  RTNQ_ASSIGN_OR_RETURN(std::vector<LinearWeights> out, LoadLinears({ids}));
  return std::move(out[0]);
}

Result<std::vector<LinearWeights>> WeightLoader::LoadLinears(
    const std::vector<std::vector<TensorId>>& linears) {
  // A run of parts with the same precision becomes one fused matrix.
  struct Run {
    size_t linear;
    Precision precision;
    std::vector<const TensorView*> parts;
  };
  std::vector<Run> runs;
  for (size_t l = 0; l < linears.size(); ++l) {
    const std::vector<TensorId>& ids = linears[l];
    for (size_t i = 0; i < ids.size();) {
      const Precision p = EffectivePrecision(ids[i]);
      size_t j = i + 1;
      while (j < ids.size() && EffectivePrecision(ids[j]) == p) ++j;
      Run run{l, p, {}};
      for (size_t t = i; t < j; ++t) {
        RTNQ_ASSIGN_OR_RETURN(const TensorView* v, Find(ids[t]));
        run.parts.push_back(v);
      }
      runs.push_back(std::move(run));
      i = j;
    }
  }
  std::vector<PackedWeight> packed(runs.size());
  std::vector<RtnTarget> targets;
  for (size_t r = 0; r < runs.size(); ++r) {
    Result<PackedWeight> w = runs[r].precision.IsQuantized() ? AllocateRtn(runs[r].parts, runs[r].precision.rtn)
                                                              : LoadDense(runs[r].parts, runs[r].precision);
    if (!w.ok()) return w.status();
    packed[r] = std::move(w).value();
    if (runs[r].precision.IsQuantized()) targets.push_back({&packed[r], runs[r].precision.rtn, runs[r].parts});
  }
  if (!targets.empty()) {
    Timer timer;
    RTNQ_RETURN_IF_ERROR(QuantizeInto(targets));
    stats_.quantize_seconds += timer.Seconds();
    for (const RtnTarget& t : targets) stats_.quantized_bytes += t.weight->bytes();
  }
  std::vector<LinearWeights> out(linears.size());
  std::vector<int64_t> col(linears.size(), 0);
  for (size_t r = 0; r < runs.size(); ++r) {
    LinearWeights& lw = out[runs[r].linear];
    lw.col_offset.push_back(col[runs[r].linear]);
    col[runs[r].linear] += packed[r].n();
    stats_.weight_bytes += packed[r].bytes();
    lw.parts.push_back(std::move(packed[r]));
  }
  return out;
}

Result<PackedWeight> WeightLoader::LoadMatrix(const TensorId& id) {
  RTNQ_ASSIGN_OR_RETURN(LinearWeights lw, LoadLinear({id}));
  return std::move(lw.parts[0]);
}

namespace {

DType TargetDType(WeightPrecision p, const Precision& plan,
                  const std::vector<const TensorView*>& parts) {
  if (plan.kind == Precision::Kind::kBF16) return DType::kBF16;
  if (plan.kind == Precision::Kind::kF32 || plan.kind == Precision::Kind::kF16) return DType::kF32;
  if (p == WeightPrecision::kF32) return DType::kF32;
  if (p == WeightPrecision::kBF16) return DType::kBF16;
  for (const TensorView* v : parts) {
    if (v->dtype != DType::kBF16) return DType::kF32;
  }
  return DType::kBF16;
}

}  // namespace

Result<Embedding> WeightLoader::LoadEmbedding(bool tied) {
  const TensorId id{TensorRole::kEmbed, -1};
  if (!tied) {
    RTNQ_ASSIGN_OR_RETURN(const TensorView* v, Find(id));
    const Precision p = EffectivePrecision(id);
    // Loading decodes the stored rows exactly unless it rounds them to BF16 or quantizes them.
    const DType target = TargetDType(options_.precision, p, {v});
    if (!v->rtn && !p.IsQuantized() && v->rope_permuted_heads == 0 &&
        (target == DType::kF32 || v->dtype == DType::kBF16)) {
      stats_.weight_bytes += v->StoredBytes();
      stats_.mapped_bytes += v->StoredBytes();
      return Embedding(*v, ck_);
    }
  }
  RTNQ_ASSIGN_OR_RETURN(PackedWeight w, LoadMatrix(id));
  return Embedding(std::move(w));
}

Result<PackedWeight> WeightLoader::AllocateRtn(const std::vector<const TensorView*>& parts,
                                               const RtnFormat& f) const {
  const int64_t k = parts[0]->shape[1];
  int64_t rows = 0;
  for (const TensorView* v : parts) rows += v->shape[0];
  auto allocated = PackedWeight::AllocateRtn(f, rows, k, options_.activations, isa_);
  if (!allocated.ok()) return allocated.status().WithContext(fmt::format("{}: {}", ck_.path, parts[0]->name));
  return allocated;
}

namespace {

// Faults in the pages that rows [r0, r1) of `w` are packed into with one madvise instead of a
// page fault per 4 KiB: on the dev VM first touch is the largest cost of a load after the
// quantizer itself (kernel entry, zeroing and accounting per page; exc_page_fault alone was 10%
// of an 8B-shaped RTN-8 load, and huge-page demand faults there cost 6 s of system time per
// 1.3 GB where populating the same buffers cost 1.2 s). A hint: kernels before 5.14 reject it
// and the pages fault as usual.
void PrefaultPanels(const PackedWeight& w, int64_t r0, int64_t r1) {
#ifdef MADV_POPULATE_WRITE
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const int64_t p0 = r0 / kPanelRows, p1 = (r1 + kPanelRows - 1) / kPanelRows;
  const uintptr_t lo = reinterpret_cast<uintptr_t>(w.panel(p0)) & ~(page - 1);
  const uintptr_t hi = (reinterpret_cast<uintptr_t>(w.panel(p0)) + (p1 - p0) * w.panel_bytes() + page - 1) & ~(page - 1);
  ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_POPULATE_WRITE);
#endif
}

}  // namespace

Status WeightLoader::QuantizeInto(const std::vector<RtnTarget>& targets) {
  // One block of rows of one part: the unit of work. Blocks are whole panels (multiples of 16
  // rows from the part's start) of about 1 MiB of source, listed part after part, so at any
  // time only the parts being worked on by some thread have file pages mapped in.
  struct Part {
    const RtnTarget* target;
    const TensorView* view;
    int64_t row0;       // first row of the part in the fused matrix
    bool copy;          // stored in the target format: packed as is, no requantization
    bool raw;           // F32/F16/BF16 rows quantized directly; else decoded to f32 first
    std::atomic<int64_t> rows_left;
  };
  struct Block {
    Part* part;
    int64_t begin, end;
  };
  std::deque<Part> parts;
  std::vector<Block> blocks;
  for (const RtnTarget& t : targets) {
    int64_t row0 = 0;
    for (const TensorView* v : t.parts) {
      const int64_t rows = v->shape[0];
      const bool copy = v->rtn == t.format;
      const bool raw = !v->rtn && (v->dtype == DType::kF32 || v->dtype == DType::kF16 || v->dtype == DType::kBF16);
      Part& part = parts.emplace_back();
      part.target = &t;
      part.view = v;
      part.row0 = row0;
      part.copy = copy;
      part.raw = raw;
      part.rows_left.store(rows);
      const uint64_t row_bytes = std::max<uint64_t>(1, v->StoredBytes() / static_cast<uint64_t>(rows));
      const int64_t block_rows = std::max<int64_t>(kPanelRows, static_cast<int64_t>((uint64_t{1} << 20) / row_bytes) /
                                                                   kPanelRows * kPanelRows);
      for (int64_t b = 0; b < rows; b += block_rows) blocks.push_back({&part, b, std::min(rows, b + block_rows)});
      row0 += rows;
    }
  }

  const QuantizeOptions qopt{options_.arithmetic, options_.allow_nonfinite};
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status error;
  double prefault_thread_seconds = 0;
  // Each thread takes the next block until none are left: no thread idles while another still
  // has several tensors' worth of rows in a static share.
  pool_->ParallelFor(static_cast<size_t>(pool_->size()), 1, [&](size_t, size_t, int) {
    std::vector<float> row;
    std::vector<uint8_t> codes, scales;
    double prefault_seconds = 0;
    for (size_t i = next.fetch_add(1); i < blocks.size() && !failed.load(); i = next.fetch_add(1)) {
      const Block& blk = blocks[i];
      Part& part = *blk.part;
      const TensorView& v = *part.view;
      PackedWeight& w = *part.target->weight;
      const RtnFormat& f = part.target->format;
      const int64_t k = v.shape[1];
      const TensorRows src(v);
      const Timer prefault_timer;
      PrefaultPanels(w, part.row0 + blk.begin, part.row0 + blk.end);
      prefault_seconds += prefault_timer.Seconds();
      if (part.copy) {
        for (int64_t r = blk.begin; r < blk.end; ++r) w.SetRtnRows(part.row0 + r, 1, src.Raw(r), src.ScaleRow(r));
      } else {
        // Rows are quantized a panel (16 rows) at a time, then packed together.
        const uint64_t code_row = f.CodeBytes(1, k), scale_row = f.ScaleBytes(1, k);
        codes.resize(code_row * kPanelRows);
        scales.resize(scale_row * kPanelRows);
        if (!part.raw) row.resize(static_cast<size_t>(k));
        for (int64_t b = blk.begin; b < blk.end; b += kPanelRows) {
          const int64_t n = std::min<int64_t>(kPanelRows, blk.end - b);
          for (int64_t j = 0; j < n; ++j) {
            const int64_t r = b + j;
            const void* data = src.Raw(r);
            DType dtype = v.dtype;
            if (!part.raw) {  // GGML blocks and other RTN formats: decoded to f32 first
              src.ReadF32(r, row.data());
              data = row.data();
              dtype = DType::kF32;
            }
            const bool finite = RtnQuantizeRow(data, dtype, k, f, qopt.arithmetic, codes.data() + j * code_row,
                                               scales.data() + j * scale_row);
            if (!finite && !qopt.allow_nonfinite) {
              const auto bad = FindNonFinite(data, dtype, 1, k);
              std::lock_guard<std::mutex> lock(mu);
              if (error.ok()) {
                error = Err("{}: tensor {}: non-finite weight {} at row {}, column {} "
                            "(use --allow-nonfinite to quantize anyway)",
                            v.file.empty() ? ck_.path : v.file, v.name, bad->value, r, bad->col);
              }
              failed.store(true);
              return;
            }
          }
          w.SetRtnRows(part.row0 + b, n, codes.data(), scales.data());
        }
      }
      // The thread that packs a part's last rows drops its file pages.
      if (part.rows_left.fetch_sub(blk.end - blk.begin) == blk.end - blk.begin) ReleaseSource(v);
    }
    std::lock_guard<std::mutex> lock(mu);
    prefault_thread_seconds += prefault_seconds;
  });
  if (!error.ok()) return error;
  stats_.first_touch_seconds += prefault_thread_seconds / pool_->size();
  for (const Part& part : parts) {
    stats_.source_bytes += part.view->StoredBytes();
    if (!part.copy) ++stats_.quantized_tensors;
  }
  return Status();
}

// Packs the row-concatenation of `parts` (all [*, K]) in the target dtype, un-permuting
// interleaved-RoPE rows into HF order and decoding GGML block types / F16 to f32 first.
Result<PackedWeight> WeightLoader::LoadDense(const std::vector<const TensorView*>& parts,
                                             const Precision& p) {
  int64_t rows = 0;
  for (const TensorView* v : parts) rows += v->shape[0];
  const int64_t k = parts[0]->shape[1];
  const DType target = TargetDType(options_.precision, p, parts);
  const size_t esize = target == DType::kF32 ? 4 : 2;
  // BF16 weights follow bf16 activations where a kernel takes them (none for F32 weights).
  const ActType act = options_.activations == ActType::kBF16 && target == DType::kBF16 &&
                              FindMatmulKernel(target, ActType::kBF16, isa_) != nullptr
                          ? ActType::kBF16
                          : ActType::kF32;
  Result<PackedWeight> packed = Err("unreachable");
  if (parts.size() == 1 && parts[0]->dtype == target && parts[0]->rope_permuted_heads == 0) {
    packed = PackedWeight::Pack(target, parts[0]->data, rows, k, act, isa_, pool_);
  } else {
    std::vector<uint8_t> buf(static_cast<size_t>(rows * k) * esize);
    std::vector<float> row_f32(static_cast<size_t>(k));
    int64_t out_row = 0;
    for (const TensorView* v : parts) {
      const TensorRows src(*v);
      for (int64_t r = 0; r < v->shape[0]; ++r, ++out_row) {
        uint8_t* dst = buf.data() + out_row * k * esize;
        if (v->dtype == target) {
          std::memcpy(dst, src.Raw(r), k * esize);
          continue;
        }
        src.ReadF32(r, row_f32.data());
        if (target == DType::kF32) {
          std::memcpy(dst, row_f32.data(), k * 4);
        } else {
          uint16_t* d16 = reinterpret_cast<uint16_t*>(dst);
          for (int64_t c = 0; c < k; ++c) d16[c] = F32ToBf16(row_f32[c]);
        }
      }
    }
    packed = PackedWeight::Pack(target, buf.data(), rows, k, act, isa_, pool_);
  }
  if (packed.ok()) {
    for (const TensorView* v : parts) ReleaseSource(*v);
  }
  return packed;
}

}  // namespace rtnq
