#include "quant/quantize_model.h"

#include <atomic>
#include <mutex>
#include <vector>

#include "quant/tensor_rows.h"

namespace rtnq {

Result<CompiledPlan> CompilePlanForCheckpoint(const QuantPlan& plan, const Checkpoint& checkpoint,
                                              bool strict) {
  std::vector<TensorSource> sources;
  for (const TensorId& id : RequiredTensors(checkpoint.config)) {
    const TensorView* view = checkpoint.Find(CanonicalName(id));
    if (view == nullptr) return Err("{}: missing tensor {}", checkpoint.path, CanonicalName(id));
    // A quantized source is read as its dequantized f32 rows (exact: an 8-bit level times a
    // 16-bit scale fits f32), so keeping it costs F32 bytes.
    sources.push_back({id, view->IsQuantized() ? DType::kF32 : view->dtype});
  }
  return CompilePlan(plan, checkpoint.config, sources, strict);
}

Result<RtnMatrix> QuantizeTensor(const TensorView& view, const RtnFormat& format,
                                 const QuantizeOptions& options, ThreadPool* pool) {
  const TensorRows rows(view);
  auto allocated = AllocateRtnMatrix(format, rows.rows(), rows.cols());
  if (!allocated.ok()) return allocated.status().WithContext(view.name);
  RtnMatrix m = std::move(allocated).value();
  // RTN-quantized sources (container dtype U8) are not raw: they are decoded to f32 rows.
  const bool raw = !view.IsQuantized() &&
                   (view.dtype == DType::kF32 || view.dtype == DType::kF16 || view.dtype == DType::kBF16);
  std::mutex mu;
  Status error;
  auto work = [&](size_t begin, size_t end, int) {
    std::vector<float> row(raw ? 0 : rows.cols());
    for (size_t r = begin; r < end; ++r) {
      const void* src = rows.Raw(static_cast<int64_t>(r));
      DType src_dtype = view.dtype;
      if (!raw) {
        rows.ReadF32(static_cast<int64_t>(r), row.data());
        src = row.data();
        src_dtype = DType::kF32;
      }
      const bool finite = RtnQuantizeRow(src, src_dtype, rows.cols(), format, options.arithmetic,
                                         m.CodeRow(static_cast<int64_t>(r)), m.ScaleRow(static_cast<int64_t>(r)));
      if (!finite && !options.allow_nonfinite) {
        const auto bad = FindNonFinite(src, src_dtype, 1, rows.cols());
        std::lock_guard<std::mutex> lock(mu);
        if (error.ok()) {
          error = Err("{}: tensor {}: non-finite weight {} at row {}, column {} "
                      "(use --allow-nonfinite to quantize anyway)",
                      view.file, view.name, bad->value, r, bad->col);
        }
        return;
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(static_cast<size_t>(rows.rows()), 16, work);
  } else {
    work(0, static_cast<size_t>(rows.rows()), 0);
  }
  if (!error.ok()) return error;
  return m;
}

}  // namespace rtnq
