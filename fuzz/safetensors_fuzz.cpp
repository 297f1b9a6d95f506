// libFuzzer target: arbitrary bytes -> ParseSafetensors. Must never crash or hang; every tensor it
// accepts must lie inside the input and not overlap another.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto h = rtnq::ParseSafetensors(data, size, "fuzz.safetensors");
  if (!h.ok()) return 0;
  uint64_t end = h->data_offset;
  uint32_t sum = 0;
  for (const auto& t : h->tensors) {
    if (t.offset < h->data_offset || t.offset + t.nbytes > size) std::abort();
    if (t.nbytes > 0 && t.offset < end) std::abort();  // sorted and disjoint
    if (t.nbytes > 0) end = t.offset + t.nbytes;
    // Touch the first and last byte so ASan sees any out-of-range view.
    if (t.nbytes > 0) sum += data[t.offset] + data[t.offset + t.nbytes - 1];
  }
  for (const auto& [k, v] : h->metadata) sum += static_cast<uint32_t>(k.size() + v.size());
  return static_cast<int>(sum & 0);
}
