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
#include "base/aligned_buffer.h"
#include "base/half.h"
#include "base/thread_pool.h"
#include "base/timer.h"
#include "kernels/matmul.h"
#include "kernels/attention.h"
#include "kernels/vec_ops.h"
#include "model/rope.h"
#include "model/weight_loader.h"

namespace rtnq {
namespace {

struct Layer {
  std::vector<float> attn_norm, mlp_norm;
  LinearWeights qkv, gate_up;  // q|k|v and gate|up, fused where they share a precision
  PackedWeight o, down;
  std::vector<float> qkv_bias;  // empty without attention_bias
};

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
  LoadStats load_stats() const override { return load_stats_; }

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
    if (src != dst && n > 0) {
      const int64_t hd = config_.head_dim;
      const size_t key_bytes = static_cast<size_t>((n + kKeyBlock - 1) / kKeyBlock * kKeyBlock * hd) * sizeof(float);
      for (int l = 0; l < config_.num_layers; ++l) {
        for (int64_t h = 0; h < config_.num_kv_heads; ++h) {
          std::memmove(Keys(l, dst, h), Keys(l, src, h), key_bytes);  // whole blocks
          std::memmove(Values(l, dst, h), Values(l, src, h), static_cast<size_t>(n * hd) * sizeof(float));
        }
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
  const PackedWeight& lm_head() const { return config_.tie_word_embeddings ? embed_.packed() : lm_head_; }
  // The cache holds, per (layer, sequence, kv head), that head's keys transposed in blocks of
  // kKeyBlock positions (kernels/attention.h: KeyOffset) and its values as rows of head_dim:
  // attention reads one contiguous run of each.
  size_t HeadSlot(int layer, int seq, int64_t kv_head) const {
    return ((static_cast<size_t>(layer) * max_seqs_ + seq) * config_.num_kv_heads + kv_head);
  }
  float* Keys(int layer, int seq, int64_t kv_head) {
    return k_cache_.as<float>() + HeadSlot(layer, seq, kv_head) * key_ctx_ * config_.head_dim;
  }
  float* Values(int layer, int seq, int64_t kv_head) {
    return v_cache_.as<float>() + HeadSlot(layer, seq, kv_head) * max_ctx_ * config_.head_dim;
  }
  void Attention(int layer, std::span<const BatchItem> batch, const std::vector<int>& pos,
                 const float* qkv, int64_t ldqkv, float* out);

  ModelConfig config_;
  std::unique_ptr<ThreadPool> pool_;
  int max_seqs_ = 1, max_ctx_ = 0;
  int64_t key_ctx_ = 0;  // max_ctx_ rounded up to whole key blocks
  int64_t q_dim_ = 0, kv_dim_ = 0;
  Embedding embed_;
  PackedWeight lm_head_;
  std::vector<float> final_norm_;
  std::vector<Layer> layers_;
  RopeTable rope_;
  AlignedBuffer k_cache_, v_cache_;  // huge pages when large (base/aligned_buffer.h)
  std::vector<int> lengths_;
  LoadStats load_stats_;
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
  Timer timer;
  WeightLoader loader(ck, options, pool_.get());
  RTNQ_ASSIGN_OR_RETURN(embed_, loader.LoadEmbedding(config_.tie_word_embeddings));
  if (!config_.tie_word_embeddings) {
    RTNQ_ASSIGN_OR_RETURN(lm_head_, loader.LoadMatrix({TensorRole::kLmHead, -1}));
  }
  RTNQ_ASSIGN_OR_RETURN(final_norm_, loader.LoadVector({TensorRole::kFinalNorm, -1}));
  layers_.resize(static_cast<size_t>(config_.num_layers));
  for (int l = 0; l < config_.num_layers; ++l) {
    Layer& L = layers_[l];
    RTNQ_ASSIGN_OR_RETURN(L.attn_norm, loader.LoadVector({TensorRole::kAttnNorm, l}));
    RTNQ_ASSIGN_OR_RETURN(L.mlp_norm, loader.LoadVector({TensorRole::kMlpNorm, l}));
    // One call per layer: its seven matrices share the loader's work queue, so small tensors
    // (k/v projections) do not leave threads idle between tensors.
    RTNQ_ASSIGN_OR_RETURN(
        std::vector<LinearWeights> linears,
        loader.LoadLinears({{{TensorRole::kAttnQ, l}, {TensorRole::kAttnK, l}, {TensorRole::kAttnV, l}},
                            {{TensorRole::kAttnO, l}},
                            {{TensorRole::kMlpGate, l}, {TensorRole::kMlpUp, l}},
                            {{TensorRole::kMlpDown, l}}}));
    L.qkv = std::move(linears[0]);
    L.o = std::move(linears[1].parts[0]);
    L.gate_up = std::move(linears[2]);
    L.down = std::move(linears[3].parts[0]);
    if (config_.attention_bias) {
      for (TensorRole r : {TensorRole::kAttnQBias, TensorRole::kAttnKBias, TensorRole::kAttnVBias}) {
        RTNQ_ASSIGN_OR_RETURN(std::vector<float> b, loader.LoadVector({r, l}));
        L.qkv_bias.insert(L.qkv_bias.end(), b.begin(), b.end());
      }
    }
  }
  load_stats_ = loader.stats();
  load_stats_.seconds = timer.Seconds();
  rope_ = BuildRopeTable(config_, max_ctx_);
  key_ctx_ = (max_ctx_ + kKeyBlock - 1) / kKeyBlock * kKeyBlock;
  const size_t slots = static_cast<size_t>(config_.num_layers) * max_seqs_ * config_.num_kv_heads;
  k_cache_ = AlignedBuffer(slots * key_ctx_ * config_.head_dim * sizeof(float));
  v_cache_ = AlignedBuffer(slots * max_ctx_ * config_.head_dim * sizeof(float));
  // Mapped buffers are zero and become resident only as the sequences grow into them.
  if (!k_cache_.is_mapped()) std::memset(k_cache_.data(), 0, k_cache_.size());
  if (!v_cache_.is_mapped()) std::memset(v_cache_.data(), 0, v_cache_.size());
  lengths_.assign(static_cast<size_t>(max_seqs_), 0);
  return Status::Ok();
}

void LlamaModel::Attention(int layer, std::span<const BatchItem> batch, const std::vector<int>& pos,
                           const float* qkv, int64_t ldqkv, float* out) {
  const int64_t hd = config_.head_dim, nh = config_.num_heads;
  const int64_t group = config_.num_heads / config_.num_kv_heads;
  // HF: scores = (q @ k^T) * head_dim**-0.5, softmax in float32, then @ v.
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  static const AttentionKernel& kernel = GetAttentionKernel(SelectedIsa());
  const size_t per_thread = static_cast<size_t>(max_ctx_ + 16);
  if (scores_.size() < per_thread * pool_->size()) scores_.resize(per_thread * pool_->size());
  const size_t jobs = batch.size() * static_cast<size_t>(nh);
  auto work = [&](size_t begin, size_t end, int thread) {
    float* s = scores_.data() + per_thread * thread;
    for (size_t job = begin; job < end; ++job) {
      const size_t i = job / nh;
      const int64_t head = static_cast<int64_t>(job % nh), kvh = head / group;
      const int seq = batch[i].seq;
      kernel.row(qkv + i * ldqkv + head * hd, Keys(layer, seq, kvh), Values(layer, seq, kvh), hd, hd,
                 pos[i] + 1, scale, s, out + i * q_dim_ + head * hd);
    }
  };
  // ~2 multiply-adds per (position, dim): below ~64K of them the pool costs more than it saves.
  int64_t positions = 0;
  for (int p : pos) positions += p + 1;
  if (positions * nh * hd < (int64_t{1} << 16)) {
    work(0, jobs, 0);
  } else {
    pool_->ParallelFor(jobs, 1, work);
  }
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

  for (int64_t i = 0; i < m; ++i) embed_.Row(batch[i].token, x + i * hidden);
  for (int l = 0; l < config_.num_layers; ++l) {
    const Layer& L = layers_[l];
    for (int64_t i = 0; i < m; ++i) RmsNorm(x + i * hidden, L.attn_norm.data(), eps, hidden, h + i * hidden);
    L.qkv.Run(h, m, hidden, qkv, ldqkv, L.qkv_bias.empty() ? nullptr : L.qkv_bias.data(), pool);
    for (int64_t i = 0; i < m; ++i) {
      float* q = qkv + i * ldqkv;
      float* k = q + q_dim_;
      for (int64_t hh = 0; hh < config_.num_heads; ++hh) ApplyRope(rope_, pos[i], q + hh * hd, hd);
      for (int64_t hh = 0; hh < config_.num_kv_heads; ++hh) ApplyRope(rope_, pos[i], k + hh * hd, hd);
      for (int64_t kvh = 0; kvh < config_.num_kv_heads; ++kvh) {
        float* keys = Keys(l, batch[i].seq, kvh) + KeyOffset(pos[i], 0, hd);
        for (int64_t d = 0; d < hd; ++d) keys[d * kKeyBlock] = k[kvh * hd + d];
        std::memcpy(Values(l, batch[i].seq, kvh) + pos[i] * hd, k + kv_dim_ + kvh * hd, hd * sizeof(float));
      }
    }
    Attention(l, batch, pos, qkv, ldqkv, att);
    Matmul(L.o, att, m, q_dim_, h, hidden, nullptr, pool);
    for (int64_t j = 0; j < m * hidden; ++j) x[j] += h[j];
    for (int64_t i = 0; i < m; ++i) RmsNorm(x + i * hidden, L.mlp_norm.data(), eps, hidden, h + i * hidden);
    L.gate_up.Run(h, m, hidden, gu, 2 * inter, nullptr, pool);
    for (int64_t i = 0; i < m; ++i) {
      const float* g = gu + i * 2 * inter;
      DefaultVecOps().silu_mul(g, g + inter, act + i * inter, inter);
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
