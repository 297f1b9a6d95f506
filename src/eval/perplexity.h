// Perplexity with llama.cpp's definition (llama-perplexity), so numbers compare directly:
// the text is tokenized once with BOS, cut into non-overlapping chunks of n_ctx tokens, the first
// token of each chunk is replaced by BOS, and only the second half of each chunk is scored
// (positions n_ctx/2 .. n_ctx-2 predicting the next token), so every scored token has at least
// n_ctx/2 tokens of context.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "base/status.h"
#include "model/model.h"

namespace rtnq {

struct PerplexityOptions {
  int n_ctx = 512;
  int n_batch = 512;        // tokens per Forward() call within a chunk
  int max_chunks = 0;       // 0: all
  int32_t bos_id = -1;      // replaces the first token of every chunk when >= 0
};

struct PerplexityResult {
  double ppl = 0;
  double ppl_stderr = 0;    // first-order error estimate from the per-token NLL spread
  double mean_nll = 0;
  int chunks = 0;
  int64_t tokens_scored = 0;
  int64_t tokens_total = 0;
  std::vector<double> chunk_ppl;  // running perplexity after each chunk (llama.cpp prints these)
  double seconds = 0;
};

// Progress callback: (chunks done, chunks total, running ppl).
using PerplexityProgress = std::function<void(int, int, double)>;

Result<PerplexityResult> ComputePerplexity(Model& model, std::span<const int32_t> tokens,
                                           const PerplexityOptions& options,
                                           const PerplexityProgress& progress = nullptr);

// log p(target | logits) with a max-shifted log-sum-exp in double.
double TokenLogProb(const float* logits, int32_t vocab_size, int32_t target);

}  // namespace rtnq
