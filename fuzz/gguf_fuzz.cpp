// libFuzzer target: GGUF bytes -> ParseGguf -> TokenizerFromGguf and every display string.
// Must never crash, hang or allocate beyond the input's size times a small constant.
#include <cstddef>
#include <cstdint>

#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto g = rtnq::ParseGguf(data, size, "fuzz.gguf");
  if (!g.ok()) return 0;
  for (const auto& [key, value] : g->metadata) (void)value.ToDisplayString();
  (void)g->GetInt("llama.embedding_length");
  (void)g->GetArray("tokenizer.ggml.tokens", rtnq::GgufType::kString);
  auto spec = rtnq::TokenizerFromGguf(*g);
  (void)spec;
  return 0;
}
