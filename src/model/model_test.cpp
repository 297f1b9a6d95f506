#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "arch/shapes.h"
#include "arch/tensor_role.h"
#include "base/half.h"
#include "io/rope_permute.h"
#include "model/sampler.h"
#include "testing/paths.h"

namespace rtnq {
namespace {

// A checkpoint built in memory: seeded random weights, stored as `dtype`, optionally with q/k in
// GGUF's interleaved RoPE order. `values` keeps every tensor decoded to f32 in HF order: the
// naive reference forward reads those.
struct TinyCheckpoint {
  Checkpoint ck;
  std::map<std::string, std::vector<float>> values;
  std::vector<std::vector<uint8_t>> storage;
};

std::unique_ptr<TinyCheckpoint> MakeTiny(const ModelConfig& c, DType dtype, uint64_t seed,
                                         bool permute_rope = false) {
  auto t = std::make_unique<TinyCheckpoint>();
  t->ck.path = "<in-memory>";
  t->ck.config = c;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const TensorId& id : RequiredTensors(c)) {
    const std::vector<int64_t> shape = ExpectedShape(c, id);
    const TensorRoleInfo& info = RoleInfo(id.role);
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    const float scale = info.is_matrix ? 1.0f / std::sqrt(static_cast<float>(shape.back())) : 0.1f;
    for (float& x : v) x = (info.is_norm ? 1.0f : 0.0f) + scale * dist(rng);
    if (id.role == TensorRole::kEmbed) for (float& x : v) x *= 4.0f;
    // Round to the stored type so the reference sees exactly the stored weights.
    const DType stored = info.is_matrix || id.role == TensorRole::kEmbed ? dtype : DType::kF32;
    const size_t esize = stored == DType::kF32 ? 4 : 2;
    std::vector<uint8_t> bytes(v.size() * esize);
    for (size_t i = 0; i < v.size(); ++i) {
      if (stored == DType::kF32) {
        std::memcpy(&bytes[i * 4], &v[i], 4);
      } else {
        const uint16_t h = stored == DType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
        v[i] = stored == DType::kBF16 ? Bf16ToF32(h) : F16ToF32(h);
        std::memcpy(&bytes[i * 2], &h, 2);
      }
    }
    TensorView view;
    view.name = CanonicalName(id);
    view.dtype = stored;
    view.shape = shape;
    if (permute_rope && (id.role == TensorRole::kAttnQ || id.role == TensorRole::kAttnK)) {
      const int64_t rows = shape[0], row_bytes = shape[1] * static_cast<int64_t>(esize);
      std::vector<uint8_t> perm(bytes.size());
      for (int64_t r = 0; r < rows; ++r)  // interleaved row InterleavedRowForHfRow(r) = HF row r
        std::memcpy(&perm[InterleavedRowForHfRow(r, c.head_dim) * row_bytes], &bytes[r * row_bytes],
                    row_bytes);
      bytes = std::move(perm);
      view.rope_permuted_heads = rows / c.head_dim;
    }
    t->storage.push_back(std::move(bytes));
    view.data = t->storage.back().data();
    view.nbytes = t->storage.back().size();
    t->ck.tensors.push_back(view);
    t->values[view.name] = std::move(v);
  }
  // storage grew while filling
  for (size_t i = 0; i < t->ck.tensors.size(); ++i) t->ck.tensors[i].data = t->storage[i].data();
  return t;
}

// Naive forward in double over a whole token sequence; logits of every position.
std::vector<std::vector<double>> ReferenceForward(const TinyCheckpoint& t,
                                                  const std::vector<int32_t>& tokens) {
  const ModelConfig& c = t.ck.config;
  auto W = [&](const TensorId& id) -> const std::vector<float>& { return t.values.at(CanonicalName(id)); };
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t nh = c.num_heads, nkv = c.num_kv_heads, T = static_cast<int64_t>(tokens.size());
  // inv_freq in double (HF's formulas).
  std::vector<double> inv(hd / 2);
  for (int64_t i = 0; i < hd / 2; ++i) {
    double f = 1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / hd);
    const RopeScaling& rs = c.rope_scaling;
    if (rs.type == RopeScalingType::kLinear) f /= rs.factor;
    if (rs.type == RopeScalingType::kLlama3) {
      const double wl = 2 * M_PI / f, lo = rs.original_max_position / rs.low_freq_factor,
                   hi = rs.original_max_position / rs.high_freq_factor;
      if (wl > lo) {
        f /= rs.factor;
      } else if (wl >= hi) {
        const double s = (rs.original_max_position / wl - rs.low_freq_factor) /
                         (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - s) * f / rs.factor + s * f;
      }
    }
    inv[i] = f;
  }
  auto matvec = [](const std::vector<float>& w, const std::vector<double>& x, int64_t n, int64_t k) {
    std::vector<double> y(n, 0.0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < k; ++j) y[r] += static_cast<double>(w[r * k + j]) * x[j];
    return y;
  };
  auto rmsnorm = [&](const std::vector<double>& x, const std::vector<float>& w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / x.size() + c.rms_norm_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w[i];
    return y;
  };
  auto rope = [&](std::vector<double>& v, int64_t heads, int64_t pos) {
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = v[h * hd + i], b = v[h * hd + i + hd / 2], ang = pos * inv[i];
        v[h * hd + i] = a * std::cos(ang) - b * std::sin(ang);
        v[h * hd + i + hd / 2] = b * std::cos(ang) + a * std::sin(ang);
      }
  };
  std::vector<std::vector<double>> x(T);
  const auto& emb = W({TensorRole::kEmbed, -1});
  for (int64_t p = 0; p < T; ++p) x[p].assign(emb.begin() + tokens[p] * H, emb.begin() + (tokens[p] + 1) * H);
  for (int l = 0; l < c.num_layers; ++l) {
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (int64_t p = 0; p < T; ++p) {
      const auto h = rmsnorm(x[p], W({TensorRole::kAttnNorm, l}));
      q[p] = matvec(W({TensorRole::kAttnQ, l}), h, nh * hd, H);
      k[p] = matvec(W({TensorRole::kAttnK, l}), h, nkv * hd, H);
      v[p] = matvec(W({TensorRole::kAttnV, l}), h, nkv * hd, H);
      if (c.attention_bias) {
        for (int64_t i = 0; i < nh * hd; ++i) q[p][i] += W({TensorRole::kAttnQBias, l})[i];
        for (int64_t i = 0; i < nkv * hd; ++i) k[p][i] += W({TensorRole::kAttnKBias, l})[i];
        for (int64_t i = 0; i < nkv * hd; ++i) v[p][i] += W({TensorRole::kAttnVBias, l})[i];
      }
      rope(q[p], nh, p);
      rope(k[p], nkv, p);
    }
    for (int64_t p = 0; p < T; ++p) {
      std::vector<double> att(nh * hd, 0.0);
      for (int64_t h = 0; h < nh; ++h) {
        const int64_t kvh = h / (nh / nkv);
        std::vector<double> s(p + 1);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j <= p; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[p][h * hd + i] * k[j][kvh * hd + i];
          s[j] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[j]);
        }
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= p; ++j)
          for (int64_t i = 0; i < hd; ++i) att[h * hd + i] += s[j] / sum * v[j][kvh * hd + i];
      }
      const auto o = matvec(W({TensorRole::kAttnO, l}), att, H, nh * hd);
      for (int64_t i = 0; i < H; ++i) x[p][i] += o[i];
      const auto h2 = rmsnorm(x[p], W({TensorRole::kMlpNorm, l}));
      const auto g = matvec(W({TensorRole::kMlpGate, l}), h2, I, H);
      const auto u = matvec(W({TensorRole::kMlpUp, l}), h2, I, H);
      std::vector<double> a(I);
      for (int64_t i = 0; i < I; ++i) a[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      const auto d = matvec(W({TensorRole::kMlpDown, l}), a, H, I);
      for (int64_t i = 0; i < H; ++i) x[p][i] += d[i];
    }
  }
  const auto& head = c.tie_word_embeddings ? emb : W({TensorRole::kLmHead, -1});
  std::vector<std::vector<double>> logits(T);
  for (int64_t p = 0; p < T; ++p)
    logits[p] = matvec(head, rmsnorm(x[p], W({TensorRole::kFinalNorm, -1})), c.vocab_size, H);
  return logits;
}

std::unique_ptr<Model> LoadOrDie(const Checkpoint& ck, ModelOptions o) {
  auto m = Model::Load(ck, o);
  EXPECT_TRUE(m.ok()) << m.status().message();
  return m.ok() ? std::move(m.value()) : nullptr;
}

std::vector<int32_t> RandomTokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Runs `tokens` on seq as one batch; returns all logits.
std::vector<float> RunPrompt(Model& m, int seq, const std::vector<int32_t>& tokens) {
  std::vector<BatchItem> b;
  for (int32_t t : tokens) b.push_back({seq, t, true});
  std::vector<float> logits(tokens.size() * m.config().vocab_size);
  const Status s = m.Forward(b, logits.data());
  EXPECT_TRUE(s.ok()) << s.message();
  return logits;
}

double MaxRelDiff(const float* a, const float* b, int64_t n) {
  double scale = 0, diff = 0;
  for (int64_t i = 0; i < n; ++i) {
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return diff / std::max(scale, 1e-30);
}

class ModelShapes : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelShapes, MatchesNaiveDoubleReference) {
  const ModelConfig c = *KnownShape(GetParam());
  auto t = MakeTiny(c, DType::kF32, 11);
  const auto tokens = RandomTokens(24, static_cast<int>(c.vocab_size), 3);
  auto ref = ReferenceForward(*t, tokens);
  for (int threads : {1, 3}) {
    auto m = LoadOrDie(t->ck, {WeightPrecision::kAsStored, threads, 1, 64});
    ASSERT_TRUE(m);
    const auto got = RunPrompt(*m, 0, tokens);
    for (size_t p = 0; p < tokens.size(); ++p) {
      std::vector<float> want(ref[p].begin(), ref[p].end());
      EXPECT_LT(MaxRelDiff(&got[p * c.vocab_size], want.data(), c.vocab_size), 1e-4) << "pos " << p;
    }
  }
}

TEST_P(ModelShapes, PromptAtOnceEqualsTokenByToken) {
  const ModelConfig c = *KnownShape(GetParam());
  auto t = MakeTiny(c, DType::kBF16, 12);
  const auto tokens = RandomTokens(19, static_cast<int>(c.vocab_size), 4);
  auto a = LoadOrDie(t->ck, {WeightPrecision::kAsStored, 2, 1, 32});
  auto b = LoadOrDie(t->ck, {WeightPrecision::kAsStored, 1, 1, 32});
  const auto all = RunPrompt(*a, 0, tokens);
  for (size_t p = 0; p < tokens.size(); ++p) {
    const auto one = RunPrompt(*b, 0, {tokens[p]});
    // Matmuls and per-row ops are batch-invariant: bitwise equal, well within 1e-5.
    EXPECT_LE(MaxRelDiff(one.data(), &all[p * c.vocab_size], c.vocab_size), 1e-5);
    EXPECT_EQ(std::memcmp(one.data(), &all[p * c.vocab_size], c.vocab_size * 4), 0) << p;
  }
  EXPECT_EQ(a->SequenceLength(0), 19);
}

TEST_P(ModelShapes, BatchedDecodeOfThreeSequencesEqualsEachAlone) {
  const ModelConfig c = *KnownShape(GetParam());
  auto t = MakeTiny(c, DType::kF32, 13);
  const int V = static_cast<int>(c.vocab_size);
  auto batched = LoadOrDie(t->ck, {WeightPrecision::kAsStored, 2, 3, 40});
  std::vector<std::vector<int32_t>> prompts = {RandomTokens(5, V, 20), RandomTokens(9, V, 21),
                                               RandomTokens(2, V, 22)};
  // Prompts of all three in one batch, interleaved.
  std::vector<BatchItem> b;
  for (size_t i = 0; i < 9; ++i)
    for (int s = 0; s < 3; ++s)
      if (i < prompts[s].size()) b.push_back({s, prompts[s][i], i + 1 == prompts[s].size()});
  std::vector<float> logits(3 * V);
  ASSERT_TRUE(batched->Forward(b, logits.data()).ok());
  std::vector<std::vector<float>> batched_logits(3);
  // want_logits rows come in item order: seq 2 ends first (i=1), then seq 0 (i=4), then seq 1.
  const int order[3] = {2, 0, 1};
  for (int r = 0; r < 3; ++r) batched_logits[order[r]].assign(&logits[r * V], &logits[(r + 1) * V]);
  std::vector<std::vector<int32_t>> steps(3);
  for (int step = 0; step < 4; ++step) {
    std::vector<BatchItem> d;
    for (int s = 0; s < 3; ++s) {
      const int32_t next = static_cast<int32_t>(
          std::max_element(batched_logits[s].begin(), batched_logits[s].end()) - batched_logits[s].begin());
      steps[s].push_back(next);
      d.push_back({s, next, true});
    }
    ASSERT_TRUE(batched->Forward(d, logits.data()).ok());
    for (int s = 0; s < 3; ++s) batched_logits[s].assign(&logits[s * V], &logits[(s + 1) * V]);
  }
  for (int s = 0; s < 3; ++s) {
    auto alone = LoadOrDie(t->ck, {WeightPrecision::kAsStored, 1, 1, 40});
    std::vector<int32_t> seq = prompts[s];
    seq.insert(seq.end(), steps[s].begin(), steps[s].end());
    const auto all = RunPrompt(*alone, 0, seq);
    EXPECT_EQ(std::memcmp(&all[(seq.size() - 1) * V], batched_logits[s].data(), V * 4), 0) << s;
    EXPECT_EQ(batched->SequenceLength(s), static_cast<int>(seq.size()));
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, ModelShapes, ::testing::Values("tiny-llama3", "tiny-qwen2"));

// Prefixes inside the first key block and past it (kernels/attention.h: 64 positions a block).
TEST(Model, CopyAndTruncateSequenceReuseThePrefix) {
  const ModelConfig c = *KnownShape("tiny-llama3");
  auto t = MakeTiny(c, DType::kBF16, 14);
  const int V = static_cast<int>(c.vocab_size);
  auto m = LoadOrDie(t->ck, {WeightPrecision::kAsStored, 2, 2, 96});
  const auto tokens = RandomTokens(80, V, 5);
  for (int prefix : {7, 70}) {
    SCOPED_TRACE(prefix);
    m->ClearSequence(0);
    const auto full = RunPrompt(*m, 0, tokens);
    m->CopySequence(0, 1, prefix);
    EXPECT_EQ(m->SequenceLength(1), prefix);
    const auto tail = RunPrompt(*m, 1, std::vector<int32_t>(tokens.begin() + prefix, tokens.end()));
    EXPECT_EQ(std::memcmp(tail.data(), &full[static_cast<size_t>(prefix) * V], tail.size() * 4), 0);
    m->TruncateSequence(0, prefix - 3);
    EXPECT_EQ(m->SequenceLength(0), prefix - 3);
    const auto redo = RunPrompt(*m, 0, std::vector<int32_t>(tokens.begin() + prefix - 3, tokens.end()));
    EXPECT_EQ(std::memcmp(redo.data(), &full[static_cast<size_t>(prefix - 3) * V], redo.size() * 4), 0);
    m->ClearSequence(0);
    EXPECT_EQ(m->SequenceLength(0), 0);
    EXPECT_EQ(std::memcmp(RunPrompt(*m, 0, tokens).data(), full.data(), full.size() * 4), 0);
  }
}

TEST(Model, Bf16PrecisionIsCloseToF32) {
  const ModelConfig c = *KnownShape("tiny-llama3");
  auto t = MakeTiny(c, DType::kF32, 15);
  const auto tokens = RandomTokens(10, static_cast<int>(c.vocab_size), 6);
  auto f32 = LoadOrDie(t->ck, {WeightPrecision::kF32, 1, 1, 16});
  auto bf16 = LoadOrDie(t->ck, {WeightPrecision::kBF16, 1, 1, 16});
  EXPECT_EQ(bf16->WeightBytesPerToken() * 2, f32->WeightBytesPerToken() +
                                                 /* norms stay f32 */ (c.num_layers * 2 + 1) * c.hidden_size * 4);
  const auto a = RunPrompt(*f32, 0, tokens), b = RunPrompt(*bf16, 0, tokens);
  const double d = MaxRelDiff(b.data(), a.data(), static_cast<int64_t>(a.size()));
  EXPECT_LT(d, 3e-2);
  EXPECT_GT(d, 0.0);  // bf16 really rounded something
}

TEST(Model, InterleavedRopeRowsAreUnpermutedAndF16IsDecoded) {
  const ModelConfig c = *KnownShape("tiny-llama3");
  auto hf = MakeTiny(c, DType::kF16, 16, false);
  auto gg = MakeTiny(c, DType::kF16, 16, true);
  const auto tokens = RandomTokens(8, static_cast<int>(c.vocab_size), 7);
  auto a = LoadOrDie(hf->ck, {WeightPrecision::kAsStored, 1, 1, 16});
  auto b = LoadOrDie(gg->ck, {WeightPrecision::kAsStored, 1, 1, 16});
  const auto la = RunPrompt(*a, 0, tokens), lb = RunPrompt(*b, 0, tokens);
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * 4), 0);
  auto ref = ReferenceForward(*hf, tokens);
  std::vector<float> last(ref.back().begin(), ref.back().end());
  EXPECT_LT(MaxRelDiff(&la[7 * c.vocab_size], last.data(), c.vocab_size), 1e-4);
}

TEST(Model, RejectsBadBatchesWithoutStateChange) {
  const ModelConfig c = *KnownShape("tiny-llama3");
  auto t = MakeTiny(c, DType::kF32, 17);
  auto m = LoadOrDie(t->ck, {WeightPrecision::kAsStored, 1, 2, 4});
  std::vector<float> logits(4 * c.vocab_size);
  std::vector<BatchItem> bad_tok = {{0, static_cast<int32_t>(c.vocab_size), true}};
  EXPECT_FALSE(m->Forward(bad_tok, logits.data()).ok());
  std::vector<BatchItem> bad_seq = {{2, 1, true}};
  EXPECT_FALSE(m->Forward(bad_seq, logits.data()).ok());
  std::vector<BatchItem> too_long(5, BatchItem{0, 1, false});
  EXPECT_FALSE(m->Forward(too_long, logits.data()).ok());
  EXPECT_EQ(m->SequenceLength(0), 0);
  EXPECT_EQ(m->KvBytesPerToken(), static_cast<uint64_t>(c.num_layers * 2 * c.num_kv_heads * c.head_dim * 4));

  // A wrong shape is reported by name.
  auto broken = MakeTiny(c, DType::kF32, 18);
  broken->ck.tensors[1].shape = {1, 2};
  auto r = Model::Load(broken->ck, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(broken->ck.tensors[1].name), std::string::npos);
}

// stories260K (llama2.c model converted to GGUF): greedy continuation of "Once upon a time".
TEST(Model, Stories260KGreedyStoryIsSensible) {
  const std::string path = testing::DataDir() + "/models/stories260K/stories260K-F32.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path;
  auto ck = OpenCheckpoint(path);
  if (!ck.ok()) GTEST_SKIP() << "GGUF reader not ready: " << ck.status().message();
  ASSERT_TRUE(ck->tokenizer.has_value());
  const TokenizerSpec& spec = *ck->tokenizer;
  // The prompt's ids by SentencePiece BPE merges (highest-scoring adjacent pair first); the
  // tokenizer library is not a dependency of rtnq_model.
  auto id_of = [&](const std::string& piece) {
    for (size_t i = 0; i < spec.tokens.size(); ++i)
      if (spec.tokens[i] == piece) return static_cast<int32_t>(i);
    return int32_t{-1};
  };
  std::vector<std::string> pieces;
  const std::string space = "\xE2\x96\x81";  // "▁"
  const std::string text = space + "Once" + space + "upon" + space + "a" + space + "time";
  for (size_t i = 0; i < text.size();) {
    const size_t len = (text[i] & 0x80) ? 3 : 1;  // "▁" is the only multi-byte character here
    pieces.push_back(text.substr(i, len));
    i += len;
  }
  for (;;) {
    int best = -1;
    float best_score = -1e30f;
    for (size_t i = 0; i + 1 < pieces.size(); ++i) {
      const int32_t id = id_of(pieces[i] + pieces[i + 1]);
      if (id >= 0 && spec.scores[id] > best_score) best_score = spec.scores[id], best = static_cast<int>(i);
    }
    if (best < 0) break;
    pieces[best] += pieces[best + 1];
    pieces.erase(pieces.begin() + best + 1);
  }
  std::vector<int32_t> prompt = {spec.bos_id};
  for (const std::string& p : pieces) {
    prompt.push_back(id_of(p));
    ASSERT_GE(prompt.back(), 0) << p;
  }
  auto m = LoadOrDie(*ck, {WeightPrecision::kAsStored, 2, 1, 256});
  ASSERT_TRUE(m);
  const int V = static_cast<int>(m->config().vocab_size);
  std::vector<float> logits = RunPrompt(*m, 0, prompt);
  std::vector<float> last(logits.end() - V, logits.end());
  Sampler greedy({});
  std::string story;
  for (int i = 0; i < 60; ++i) {
    const int32_t next = greedy.Sample(last.data(), V);
    std::string piece = spec.tokens[next];
    for (size_t p; (p = piece.find("\xE2\x96\x81")) != std::string::npos;) piece.replace(p, 3, " ");
    story += piece;
    std::vector<BatchItem> b = {{0, next, true}};
    ASSERT_TRUE(m->Forward(b, last.data()).ok());
  }
  std::printf("stories260K: Once upon a time%s\n", story.c_str());
  // A children's story: sentences and common words, not a repeated token.
  EXPECT_NE(story.find('.'), std::string::npos);
  EXPECT_NE(story.find(" was "), std::string::npos);
  EXPECT_NE(story.find(" the "), std::string::npos);
}

}  // namespace
}  // namespace rtnq
