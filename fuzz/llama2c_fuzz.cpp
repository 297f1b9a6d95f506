// libFuzzer target: llama2.c checkpoint and tok*.bin parsing from memory. The first byte picks
// the parser; for tokenizers the next two bytes give the vocab size.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "io/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  if (data[0] & 1) {
    auto ck = rtnq::ParseLlama2c(data + 1, size - 1, "fuzz.bin");
    if (ck.ok()) {
      // Every view must lie inside the input.
      for (const auto& t : ck->tensors) {
        if (t.data < data + 1 || t.data + t.nbytes > data + size) __builtin_trap();
      }
    }
  } else {
    const int64_t vocab = data[1] | (data[2] << 8);
    auto tok = rtnq::ParseLlama2cTokenizer(data + 3, size - 3, "fuzz_tok.bin", vocab);
    (void)tok;
  }
  return 0;
}
