// The LLaMA-family decoder behind Model: weights packed once at load (kernels/matmul.h), a
// float32 KV cache, and a Forward() that runs every projection of a batch as one M-row matmul.
// Numerics follow HF transformers' float32 path (see rope.h for RoPE); every per-row operation
// is row-local and the matmuls are batch-invariant, so a token's logits do not depend on what
// else is in its batch.
#include "model/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "arch/tensor_role.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "io/rope_permute.h"
#include "kernels/matmul.h"
#include "kernels/vec_ops.h"
#include "model/rope.h"

namespace rtnq {
namespace {

struct Layer {
  std::vector<float> attn_norm, mlp_norm;
  PackedWeight qkv, o, gate_up, down;  // q|k|v and gate|up fused along N
  std::vector<float> qkv_bias;         // empty without attention_bias
};

Result<const TensorView*> FindTensor(const Checkpoint& ck, const TensorId& id) {
  const std::string name = CanonicalName(id);
  const TensorView* v = ck.Find(name);
  if (v == nullptr) return Err("{}: tensor {} is missing", ck.path, name);
  const std::vector<int64_t> want = ExpectedShape(ck.config, id);
  if (v->shape != want) {
    return Err("{}: tensor {} has shape [{}], expected [{}]", ck.path, name,
               fmt::join(v->shape, ", "), fmt::join(want, ", "));
  }
  const auto bytes = DTypeBytes(v->dtype, static_cast<uint64_t>(v->NumElements()));
  if (!bytes || *bytes > v->nbytes || v->data == nullptr) {
    return Err("{}: tensor {} ({}) holds {} bytes at offset {}, expected {}", ck.path, name,
               DTypeName(v->dtype), v->nbytes, v->file_offset, bytes ? *bytes : 0);
  }
  if (v->shape.size() == 2 && v->shape[1] % Info(v->dtype).block_elems != 0) {
    return Err("{}: tensor {} rows of {} are not whole {} blocks", ck.path, name, v->shape[1],
               DTypeName(v->dtype));
  }
  return v;
}

Result<std::vector<float>> LoadVector(const Checkpoint& ck, const TensorId& id) {
  RTNQ_ASSIGN_OR_RETURN(const TensorView* v, FindTensor(ck, id));
  std::vector<float> out(static_cast<size_t>(v->NumElements()));
  DequantizeRow(v->dtype, v->data, out.data(), out.size());
  return out;
}

DType TargetDType(WeightPrecision p, const std::vector<const TensorView*>& parts) {
  if (p == WeightPrecision::kF32) return DType::kF32;
  if (p == WeightPrecision::kBF16) return DType::kBF16;
  for (const TensorView* v : parts) {
    if (v->dtype != DType::kBF16) return DType::kF32;
  }
  return DType::kBF16;
}

// Packs the row-concatenation of `ids` (all [*, K]) in the precision's dtype, un-permuting
// interleaved-RoPE rows into HF order and decoding GGML block types / F16 to f32 first.
Result<PackedWeight> LoadMatrix(const Checkpoint& ck, const std::vector<TensorId>& ids,
                                WeightPrecision precision, Isa isa) {
  std::vector<const TensorView*> parts;
  int64_t rows = 0;
  for (const TensorId& id : ids) {
    RTNQ_ASSIGN_OR_RETURN(const TensorView* v, FindTensor(ck, id));
    parts.push_back(v);
    rows += v->shape[0];
  }
  const int64_t k = parts[0]->shape[1];
  const DType target = TargetDType(precision, parts);
  const size_t esize = target == DType::kF32 ? 4 : 2;
  if (parts.size() == 1 && parts[0]->dtype == target && parts[0]->rope_permuted_heads == 0) {
    return PackedWeight::Pack(target, parts[0]->data, rows, k, ActType::kF32, isa);
  }
  std::vector<uint8_t> buf(static_cast<size_t>(rows * k) * esize);
  std::vector<float> row_f32(static_cast<size_t>(k));
  int64_t out_row = 0;
  for (const TensorView* v : parts) {
    const uint64_t src_row_bytes = *DTypeBytes(v->dtype, static_cast<uint64_t>(k));
    int64_t head_dim = 0;
    if (v->rope_permuted_heads != 0) {
      if (v->shape[0] % v->rope_permuted_heads != 0 || (v->shape[0] / v->rope_permuted_heads) % 2) {
        return Err("{}: tensor {} has {} rows, not a whole number of {} RoPE heads of even size",
                   ck.path, v->name, v->shape[0], v->rope_permuted_heads);
      }
      head_dim = v->shape[0] / v->rope_permuted_heads;
    }
    for (int64_t r = 0; r < v->shape[0]; ++r, ++out_row) {
      const int64_t src_r = head_dim ? InterleavedRowForHfRow(r, head_dim) : r;
      const uint8_t* src = v->data + src_r * src_row_bytes;
      uint8_t* dst = buf.data() + out_row * k * esize;
      if (v->dtype == target) {
        std::memcpy(dst, src, k * esize);
        continue;
      }
      DequantizeRow(v->dtype, src, row_f32.data(), static_cast<size_t>(k));
      if (target == DType::kF32) {
        std::memcpy(dst, row_f32.data(), k * 4);
      } else {
        uint16_t* d16 = reinterpret_cast<uint16_t*>(dst);
        for (int64_t c = 0; c < k; ++c) d16[c] = F32ToBf16(row_f32[c]);
      }
    }
  }
  return PackedWeight::Pack(target, buf.data(), rows, k, ActType::kF32, isa);
}

void RmsNorm(const float* x, const float* w, float eps, int64_t n, float* out) {
  double sum_sq = 0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float var = static_cast<float>(sum_sq / static_cast<double>(n));
  const float r = 1.0f / std::sqrt(var + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = w[i] * (x[i] * r);
}

class LlamaModel final : public Model {
 public:
  const ModelConfig& config() const override { return config_; }
  int max_sequences() const override { return max_seqs_; }
  int max_context() const override { return max_ctx_; }
  int threads() const override { return pool_->size(); }

  int SequenceLength(int seq) const override {
    return seq >= 0 && seq < max_seqs_ ? lengths_[seq] : 0;
  }
  void ClearSequence(int seq) override {
    if (seq >= 0 && seq < max_seqs_) lengths_[seq] = 0;
  }
  void TruncateSequence(int seq, int n) override {
    if (seq >= 0 && seq < max_seqs_) lengths_[seq] = std::clamp(n, 0, lengths_[seq]);
  }
  void CopySequence(int src, int dst, int n) override {
    if (src < 0 || src >= max_seqs_ || dst < 0 || dst >= max_seqs_) return;
    n = std::clamp(n, 0, lengths_[src]);
    if (src != dst) {
      const size_t bytes = static_cast<size_t>(n) * kv_dim_ * sizeof(float);
      for (int l = 0; l < config_.num_layers; ++l) {
        std::memmove(KRow(l, dst, 0), KRow(l, src, 0), bytes);
        std::memmove(VRow(l, dst, 0), VRow(l, src, 0), bytes);
      }
    }
    lengths_[dst] = n;
  }

  Status Forward(std::span<const BatchItem> batch, float* logits) override;

  uint64_t WeightBytesPerToken() const override {
    uint64_t b = lm_head().bytes() + final_norm_.size() * 4;
    for (const Layer& l : layers_) {
      b += l.qkv.bytes() + l.o.bytes() + l.gate_up.bytes() + l.down.bytes();
      b += (l.attn_norm.size() + l.mlp_norm.size() + l.qkv_bias.size()) * 4;
    }
    return b;
  }
  uint64_t KvBytesPerToken() const override {
    return static_cast<uint64_t>(config_.num_layers) * 2 * kv_dim_ * sizeof(float);
  }

  Status Init(const Checkpoint& ck, const ModelOptions& options);

 private:
  const PackedWeight& lm_head() const { return config_.tie_word_embeddings ? embed_ : lm_head_; }
  float* KRow(int layer, int seq, int pos) {
    return k_cache_.data() + ((static_cast<size_t>(layer) * max_seqs_ + seq) * max_ctx_ + pos) * kv_dim_;
  }
  float* VRow(int layer, int seq, int pos) {
    return v_cache_.data() + ((static_cast<size_t>(layer) * max_seqs_ + seq) * max_ctx_ + pos) * kv_dim_;
  }
  void Attention(int layer, std::span<const BatchItem> batch, const std::vector<int>& pos,
                 const float* qkv, int64_t ldqkv, float* out);

  ModelConfig config_;
  std::unique_ptr<ThreadPool> pool_;
  int max_seqs_ = 1, max_ctx_ = 0;
  int64_t q_dim_ = 0, kv_dim_ = 0;
  PackedWeight embed_, lm_head_;
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  RopeTable rope_;
  std::vector<float> k_cache_, v_cache_;
  std::vector<int> lengths_;
  // Scratch, grown on demand.
  std::vector<float> x_, h_, qkv_, att_, gu_, act_, scores_;
};

Status LlamaModel::Init(const Checkpoint& ck, const ModelOptions& options) {
  config_ = ck.config;
  RTNQ_RETURN_IF_ERROR(config_.Validate());
  if (options.max_sequences < 1) return Err("max_sequences must be >= 1, got {}", options.max_sequences);
  max_seqs_ = options.max_sequences;
  max_ctx_ = options.max_context > 0
                 ? options.max_context
                 : static_cast<int>(std::min<int64_t>(config_.max_position_embeddings, 4096));
  if (max_ctx_ < 1) return Err("max_context must be >= 1, got {}", max_ctx_);
  pool_ = std::make_unique<ThreadPool>(options.threads > 0 ? options.threads : DefaultThreadCount());
  q_dim_ = config_.num_heads * config_.head_dim;
  kv_dim_ = config_.num_kv_heads * config_.head_dim;
  const Isa isa = SelectedIsa();
  const WeightPrecision prec = options.precision;

  RTNQ_ASSIGN_OR_RETURN(embed_, LoadMatrix(ck, {{TensorRole::kEmbed, -1}}, prec, isa));
  if (!config_.tie_word_embeddings) {
    RTNQ_ASSIGN_OR_RETURN(lm_head_, LoadMatrix(ck, {{TensorRole::kLmHead, -1}}, prec, isa));
  }
  RTNQ_ASSIGN_OR_RETURN(final_norm_, LoadVector(ck, {TensorRole::kFinalNorm, -1}));
  layers_.resize(static_cast<size_t>(config_.num_layers));
  for (int l = 0; l < config_.num_layers; ++l) {
    Layer& L = layers_[l];
    RTNQ_ASSIGN_OR_RETURN(L.attn_norm, LoadVector(ck, {TensorRole::kAttnNorm, l}));
    RTNQ_ASSIGN_OR_RETURN(L.mlp_norm, LoadVector(ck, {TensorRole::kMlpNorm, l}));
    RTNQ_ASSIGN_OR_RETURN(
        L.qkv, LoadMatrix(ck, {{TensorRole::kAttnQ, l}, {TensorRole::kAttnK, l}, {TensorRole::kAttnV, l}},
                          prec, isa));
    RTNQ_ASSIGN_OR_RETURN(L.o, LoadMatrix(ck, {{TensorRole::kAttnO, l}}, prec, isa));
    RTNQ_ASSIGN_OR_RETURN(
        L.gate_up, LoadMatrix(ck, {{TensorRole::kMlpGate, l}, {TensorRole::kMlpUp, l}}, prec, isa));
    RTNQ_ASSIGN_OR_RETURN(L.down, LoadMatrix(ck, {{TensorRole::kMlpDown, l}}, prec, isa));
    if (config_.attention_bias) {
      for (TensorRole r : {TensorRole::kAttnQBias, TensorRole::kAttnKBias, TensorRole::kAttnVBias}) {
        RTNQ_ASSIGN_OR_RETURN(std::vector<float> b, LoadVector(ck, {r, l}));
        L.qkv_bias.insert(L.qkv_bias.end(), b.begin(), b.end());
      }
    }
  }
  rope_ = BuildRopeTable(config_, max_ctx_);
  const size_t cache = static_cast<size_t>(config_.num_layers) * max_seqs_ * max_ctx_ * kv_dim_;
  k_cache_.assign(cache, 0.0f);
  v_cache_.assign(cache, 0.0f);
  lengths_.assign(static_cast<size_t>(max_seqs_), 0);
  return Status::Ok();
}

void LlamaModel::Attention(int layer, std::span<const BatchItem> batch, const std::vector<int>& pos,
                           const float* qkv, int64_t ldqkv, float* out) {
  const int64_t hd = config_.head_dim, nh = config_.num_heads;
  const int64_t group = config_.num_heads / config_.num_kv_heads;
  // HF: scores = (q @ k^T) * head_dim**-0.5, softmax in float32, then @ v.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const VecOps& ops = DefaultVecOps();
  const size_t per_thread = static_cast<size_t>(max_ctx_);
  if (scores_.size() < per_thread * pool_->size()) scores_.resize(per_thread * pool_->size());
  const size_t jobs = batch.size() * static_cast<size_t>(nh);
  pool_->ParallelFor(jobs, 1, [&](size_t begin, size_t end, int thread) {
    float* s = scores_.data() + per_thread * thread;
    for (size_t job = begin; job < end; ++job) {
      const size_t i = job / nh;
      const int64_t head = static_cast<int64_t>(job % nh), kvh = head / group;
      const int seq = batch[i].seq, n = pos[i] + 1;
      const float* q = qkv + i * ldqkv + head * hd;
      float max_s = -INFINITY;
      for (int p = 0; p < n; ++p) {
        s[p] = ops.dot(q, KRow(layer, seq, p) + kvh * hd, hd) * scale;
        max_s = std::max(max_s, s[p]);
      }
      float sum = 0.0f;
      for (int p = 0; p < n; ++p) {
        s[p] = std::exp(s[p] - max_s);
        sum += s[p];
      }
      float* o = out + i * q_dim_ + head * hd;
      std::fill(o, o + hd, 0.0f);
      for (int p = 0; p < n; ++p) ops.axpy(s[p] / sum, VRow(layer, seq, p) + kvh * hd, o, hd);
    }
  });
}

Status LlamaModel::Forward(std::span<const BatchItem> batch, float* logits) {
  const int64_t m = static_cast<int64_t>(batch.size());
  if (m == 0) return Status::Ok();
  std::vector<int> pos(batch.size());
  std::vector<int> added(static_cast<size_t>(max_seqs_), 0);
  for (size_t i = 0; i < batch.size(); ++i) {
    const BatchItem& it = batch[i];
    if (it.seq < 0 || it.seq >= max_seqs_) {
      return Err("batch item {}: sequence {} out of range [0, {})", i, it.seq, max_seqs_);
    }
    if (it.token < 0 || it.token >= config_.vocab_size) {
      return Err("batch item {}: token id {} out of range [0, {})", i, it.token, config_.vocab_size);
    }
    pos[i] = lengths_[it.seq] + added[it.seq]++;
    if (pos[i] >= max_ctx_) {
      return Err("batch item {}: sequence {} would hold {} tokens, more than max_context {}", i,
                 it.seq, pos[i] + 1, max_ctx_);
    }
  }
  const int64_t hidden = config_.hidden_size, inter = config_.intermediate_size;
  const int64_t hd = config_.head_dim, ldqkv = q_dim_ + 2 * kv_dim_;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  auto grow = [](std::vector<float>& v, int64_t n) {
    if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  };
  grow(x_, m * hidden);
  grow(h_, m * hidden);
  grow(qkv_, m * ldqkv);
  grow(att_, m * q_dim_);
  grow(gu_, m * 2 * inter);
  grow(act_, m * inter);
  float *x = x_.data(), *h = h_.data(), *qkv = qkv_.data(), *att = att_.data();
  float *gu = gu_.data(), *act = act_.data();
  ThreadPool* pool = pool_.get();

  for (int64_t i = 0; i < m; ++i) embed_.ExtractRow(batch[i].token, x + i * hidden);
  for (int l = 0; l < config_.num_layers; ++l) {
    const Layer& L = layers_[l];
    for (int64_t i = 0; i < m; ++i) RmsNorm(x + i * hidden, L.attn_norm.data(), eps, hidden, h + i * hidden);
    Matmul(L.qkv, h, m, hidden, qkv, ldqkv, L.qkv_bias.empty() ? nullptr : L.qkv_bias.data(), pool);
    for (int64_t i = 0; i < m; ++i) {
      float* q = qkv + i * ldqkv;
      float* k = q + q_dim_;
      for (int64_t hh = 0; hh < config_.num_heads; ++hh) ApplyRope(rope_, pos[i], q + hh * hd, hd);
      for (int64_t hh = 0; hh < config_.num_kv_heads; ++hh) ApplyRope(rope_, pos[i], k + hh * hd, hd);
      std::memcpy(KRow(l, batch[i].seq, pos[i]), k, kv_dim_ * sizeof(float));
      std::memcpy(VRow(l, batch[i].seq, pos[i]), k + kv_dim_, kv_dim_ * sizeof(float));
    }
    Attention(l, batch, pos, qkv, ldqkv, att);
    Matmul(L.o, att, m, q_dim_, h, hidden, nullptr, pool);
    for (int64_t j = 0; j < m * hidden; ++j) x[j] += h[j];
    for (int64_t i = 0; i < m; ++i) RmsNorm(x + i * hidden, L.mlp_norm.data(), eps, hidden, h + i * hidden);
    Matmul(L.gate_up, h, m, hidden, gu, 2 * inter, nullptr, pool);
    for (int64_t i = 0; i < m; ++i) {
      const float* g = gu + i * 2 * inter;
      const float* u = g + inter;
      float* a = act + i * inter;
      for (int64_t j = 0; j < inter; ++j) a[j] = (g[j] / (1.0f + std::exp(-g[j]))) * u[j];
    }
    Matmul(L.down, act, m, inter, h, hidden, nullptr, pool);
    for (int64_t j = 0; j < m * hidden; ++j) x[j] += h[j];
  }
  for (size_t i = 0; i < batch.size(); ++i) lengths_[batch[i].seq] = std::max(lengths_[batch[i].seq], pos[i] + 1);

  int64_t rows = 0;
  for (int64_t i = 0; i < m; ++i) {
    if (batch[i].want_logits) RmsNorm(x + i * hidden, final_norm_.data(), eps, hidden, h + rows++ * hidden);
  }
  if (rows > 0) Matmul(lm_head(), h, rows, hidden, logits, config_.vocab_size, nullptr, pool);
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> Model::Load(const Checkpoint& checkpoint, const ModelOptions& options) {
  auto model = std::make_unique<LlamaModel>();
  RTNQ_RETURN_IF_ERROR(model->Init(checkpoint, options));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace rtnq
