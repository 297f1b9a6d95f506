#include "eval/perplexity.h"

#include <algorithm>
#include <cmath>

#include "base/timer.h"

namespace rtnq {

double TokenLogProb(const float* logits, int32_t vocab_size, int32_t target) {
  float max_logit = logits[0];
  for (int32_t i = 1; i < vocab_size; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum = 0;
  for (int32_t i = 0; i < vocab_size; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
  return static_cast<double>(logits[target]) - max_logit - std::log(sum);
}

Result<PerplexityResult> ComputePerplexity(Model& model, std::span<const int32_t> tokens,
                                           const PerplexityOptions& options,
                                           const PerplexityProgress& progress) {
  const int n_ctx = options.n_ctx;
  if (n_ctx < 4) return Err("context size {} is too small (need at least 4)", n_ctx);
  if (n_ctx > model.max_context()) {
    return Err("context size {} exceeds the model's KV cache of {} tokens", n_ctx, model.max_context());
  }
  int n_chunks = static_cast<int>(tokens.size() / n_ctx);
  if (options.max_chunks > 0) n_chunks = std::min(n_chunks, options.max_chunks);
  if (n_chunks == 0) {
    return Err("text has {} tokens, fewer than one chunk of {}", tokens.size(), n_ctx);
  }
  const int32_t vocab = static_cast<int32_t>(model.config().vocab_size);
  const int n_batch = std::max(1, std::min(options.n_batch, n_ctx));
  const int first = n_ctx / 2;

  PerplexityResult result;
  result.tokens_total = static_cast<int64_t>(tokens.size());
  Timer timer;
  std::vector<float> logits(static_cast<size_t>(n_batch) * vocab);
  std::vector<BatchItem> batch;
  double nll_sum = 0, nll_sq_sum = 0;

  for (int chunk = 0; chunk < n_chunks; ++chunk) {
    const size_t start = static_cast<size_t>(chunk) * n_ctx;
    model.ClearSequence(0);
    for (int b0 = 0; b0 < n_ctx; b0 += n_batch) {
      const int b1 = std::min(n_ctx, b0 + n_batch);
      batch.clear();
      for (int j = b0; j < b1; ++j) {
        int32_t tok = tokens[start + j];
        if (j == 0 && options.bos_id >= 0) tok = options.bos_id;
        // Logits are needed at positions first .. n_ctx-2 (each predicts the next token).
        batch.push_back({0, tok, j >= first && j < n_ctx - 1});
      }
      RTNQ_RETURN_IF_ERROR(model.Forward(batch, logits.data()));
      int row = 0;
      for (int j = b0; j < b1; ++j) {
        if (!batch[j - b0].want_logits) continue;
        const double nll = -TokenLogProb(&logits[static_cast<size_t>(row++) * vocab], vocab,
                                         tokens[start + j + 1]);
        nll_sum += nll;
        nll_sq_sum += nll * nll;
        ++result.tokens_scored;
      }
    }
    result.chunk_ppl.push_back(std::exp(nll_sum / result.tokens_scored));
    if (progress) progress(chunk + 1, n_chunks, result.chunk_ppl.back());
  }
  model.ClearSequence(0);

  const double n = static_cast<double>(result.tokens_scored);
  result.chunks = n_chunks;
  result.mean_nll = nll_sum / n;
  result.ppl = std::exp(result.mean_nll);
  const double var = std::max(0.0, nll_sq_sum / n - result.mean_nll * result.mean_nll);
  result.ppl_stderr = n > 1 ? result.ppl * std::sqrt(var / (n - 1)) : 0.0;
  result.seconds = timer.Seconds();
  return result;
}

}  // namespace rtnq
