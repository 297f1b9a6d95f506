// rtnq generate MODEL -p TEXT [-p TEXT ...] -n N: sampling with a KV cache. One prompt streams its
// text as it is generated; several prompts are decoded together as one batch.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "base/timer.h"
#include "command.h"
#include "common.h"
#include "model/sampler.h"

namespace rtnq::cli {
namespace {

struct GenerateFlags {
  ModelFlags model;
  std::vector<std::string> prompts;
  int n_predict = 64;
  SamplingParams sampling;
  bool no_bos = false;
  bool ignore_eos = false;
  bool show_prompt = true;
};

struct Sequence {
  std::vector<int32_t> prompt;
  std::vector<int32_t> generated;
  bool done = false;
};

bool IsEos(const ModelConfig& config, const Tokenizer& tok, int32_t id) {
  if (id == tok.eos_id()) return true;
  return std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), id) !=
         config.eos_token_ids.end();
}

void Run(const GenerateFlags& flags) {
  if (flags.n_predict < 0) return Fail("generate", Err("-n must be >= 0, found {}", flags.n_predict));
  auto loaded = LoadForRun(flags.model, 1, 0, /*need_model=*/false);
  if (!loaded.ok()) return Fail("generate", loaded.status());
  if (!loaded->tokenizer) {
    return Fail("generate", Err("{}: the model has no tokenizer (pass --tokenizer FILE)",
                                flags.model.model_path));
  }
  const Tokenizer& tok = *loaded->tokenizer;
  std::vector<std::string> prompts = flags.prompts.empty() ? std::vector<std::string>{""} : flags.prompts;
  std::vector<Sequence> seqs(prompts.size());
  size_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    seqs[i].prompt = tok.Encode(prompts[i], {.add_special = !flags.no_bos});
    if (seqs[i].prompt.empty()) {
      if (tok.bos_id() < 0) {
        return Fail("generate", Err("prompt {} is empty and the tokenizer has no BOS to start from", i));
      }
      seqs[i].prompt.push_back(tok.bos_id());
    }
    longest = std::max(longest, seqs[i].prompt.size());
  }
  const int context = static_cast<int>(longest) + flags.n_predict;
  auto model_or = BuildModel(loaded->checkpoint, flags.model, loaded->plan.get(),
                            static_cast<int>(seqs.size()), context);
  if (!model_or.ok()) return Fail("generate", model_or.status());
  Model& model = **model_or;
  const ModelConfig& config = model.config();
  const int32_t vocab = static_cast<int32_t>(config.vocab_size);
  const bool stream = seqs.size() == 1 && !flags.model.json;
  if (!flags.model.json) ReportQuantization(model, loaded->plan.get());

  std::vector<Sampler> samplers;
  for (size_t i = 0; i < seqs.size(); ++i) {
    SamplingParams p = flags.sampling;
    p.seed = flags.sampling.seed + i;
    samplers.emplace_back(p);
  }
  std::vector<float> logits(seqs.size() * static_cast<size_t>(vocab));
  std::vector<BatchItem> batch;
  Utf8Stream out;
  if (stream && flags.show_prompt) {
    std::fputs(out.Push(prompts[0]).c_str(), stdout);
    std::fflush(stdout);
  }

  // Prompt processing: all prompts in one batch, logits only for each prompt's last token.
  Timer prompt_timer;
  size_t prompt_tokens = 0;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t j = 0; j < seqs[s].prompt.size(); ++j) {
      batch.push_back({static_cast<int>(s), seqs[s].prompt[j], j + 1 == seqs[s].prompt.size()});
    }
    prompt_tokens += seqs[s].prompt.size();
  }
  Status st = model.Forward(batch, logits.data());
  if (!st.ok()) return Fail("generate", st);
  const double prompt_seconds = prompt_timer.Seconds();

  Timer gen_timer;
  size_t generated_tokens = 0;
  for (int step = 0; step < flags.n_predict; ++step) {
    batch.clear();
    for (size_t s = 0, row = 0; s < seqs.size(); ++s) {
      if (seqs[s].done) continue;
      const int32_t next = samplers[s].Sample(&logits[row++ * static_cast<size_t>(vocab)], vocab);
      if (!flags.ignore_eos && IsEos(config, tok, next)) {
        seqs[s].done = true;
        continue;
      }
      seqs[s].generated.push_back(next);
      ++generated_tokens;
      if (stream) {
        std::fputs(out.Push(tok.TokenToPiece(next)).c_str(), stdout);
        std::fflush(stdout);
      }
      if (step + 1 < flags.n_predict) batch.push_back({static_cast<int>(s), next, true});
    }
    if (batch.empty()) break;
    st = model.Forward(batch, logits.data());
    if (!st.ok()) return Fail("generate", st);
  }
  const double gen_seconds = gen_timer.Seconds();
  const double prompt_tps = prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0;
  const double gen_tps = gen_seconds > 0 ? generated_tokens / gen_seconds : 0;

  if (flags.model.json) {
    nlohmann::json res;
    res["model"] = flags.model.model_path;
    res["threads"] = model.threads();
    res["load"] = QuantizationJson(model, loaded->plan.get());
    auto& items = res["sequences"] = nlohmann::json::array();
    for (size_t s = 0; s < seqs.size(); ++s) {
      items.push_back({{"prompt", prompts[s]},
                       {"prompt_tokens", seqs[s].prompt},
                       {"tokens", seqs[s].generated},
                       {"text", tok.Decode(seqs[s].generated)},
                       {"stopped_at_eos", seqs[s].done}});
    }
    res["timing"] = {{"load_seconds", loaded->load_seconds},
                     {"prompt_tokens", prompt_tokens},
                     {"prompt_seconds", prompt_seconds},
                     {"prompt_tokens_per_second", prompt_tps},
                     {"generated_tokens", generated_tokens},
                     {"generation_seconds", gen_seconds},
                     {"generation_tokens_per_second", gen_tps}};
    std::printf("%s\n", res.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }
  if (stream) {
    std::fputs(out.Flush().c_str(), stdout);
    std::fputs("\n", stdout);
  } else {
    for (size_t s = 0; s < seqs.size(); ++s) {
      std::printf("[%zu] %s%s\n", s, prompts[s].c_str(), tok.Decode(seqs[s].generated).c_str());
    }
  }
  std::fflush(stdout);
  std::fprintf(stderr,
               "\nprompt: %zu tokens in %.3f s (%.1f tok/s); generation: %zu tokens in %.3f s "
               "(%.1f tok/s, %zu sequence%s); %d threads\n",
               prompt_tokens, prompt_seconds, prompt_tps, generated_tokens, gen_seconds, gen_tps,
               seqs.size(), seqs.size() == 1 ? "" : "s", model.threads());
}

}  // namespace

void RegisterGenerate(CLI::App& app) {
  auto flags = std::make_shared<GenerateFlags>();
  auto* cmd = app.add_subcommand("generate", "Generate text from a prompt (several -p: batched)");
  flags->model.Add(cmd);
  flags->model.AddQuantization(cmd);
  cmd->add_option("-p,--prompt", flags->prompts, "prompt text; repeat for a batch of sequences");
  cmd->add_option("-n,--n-predict", flags->n_predict, "tokens to generate per sequence")
      ->capture_default_str();
  cmd->add_option("--temp", flags->sampling.temperature, "temperature; 0 = greedy")->capture_default_str();
  cmd->add_option("--top-k", flags->sampling.top_k, "keep the k most likely tokens; 0 = all");
  cmd->add_option("--top-p", flags->sampling.top_p, "nucleus sampling threshold; 1 = off");
  cmd->add_option("--seed", flags->sampling.seed, "random seed (sequence i uses seed + i)");
  cmd->add_flag("--no-bos", flags->no_bos, "do not prepend BOS to the prompt");
  cmd->add_flag("--ignore-eos", flags->ignore_eos, "keep generating past end-of-sequence tokens");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace rtnq::cli
