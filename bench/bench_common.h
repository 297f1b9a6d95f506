// Helpers shared by the benchmarks: DRAM read bandwidth, medians.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/timer.h"

namespace rtnq::bench {

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Reads `bytes` as kStreams interleaved sequential streams (like a matmul reading several
// weight panels at once): one stream alone leaves a server core's memory parallelism unused.
__attribute__((target("avx2"))) inline uint64_t SumRead(const std::byte* p, size_t bytes) {
  constexpr int kStreams = 8;
  const size_t part = bytes / kStreams / 64 * 64;
  __m256i acc[kStreams];
  for (int s = 0; s < kStreams; ++s) acc[s] = _mm256_setzero_si256();
  for (size_t i = 0; i < part; i += 64)
    for (int s = 0; s < kStreams; ++s) {
      const std::byte* q = p + s * part + i;
      acc[s] = _mm256_xor_si256(acc[s], _mm256_load_si256(reinterpret_cast<const __m256i*>(q)));
      acc[s] = _mm256_xor_si256(acc[s], _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32)));
    }
  for (int s = 1; s < kStreams; ++s) acc[0] = _mm256_xor_si256(acc[0], acc[s]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
}

struct Bandwidth {
  double median = 0;  // bytes/s
  double best = 0;    // the attainable peak: the conservative denominator on a shared, noisy box
};

// Read bandwidth of `bytes` (far above the last-level cache) with `threads` threads each
// streaming its own contiguous part, over `repeats` passes.
inline Bandwidth MeasureReadBandwidthStats(size_t bytes, int threads, int repeats = 7) {
  AlignedBuffer buf(bytes);
  std::memset(buf.data(), 1, bytes);  // fault the pages in
  std::vector<double> rates;
  volatile uint64_t sink = 0;
  for (int r = 0; r < repeats; ++r) {
    Timer t;
    std::vector<std::thread> ts;
    std::vector<uint64_t> out(threads);
    const size_t part = bytes / threads / 128 * 128;
    for (int i = 0; i < threads; ++i)
      ts.emplace_back([&, i] { out[i] = SumRead(buf.data() + i * part, part); });
    for (auto& th : ts) th.join();
    const double s = t.Seconds();
    for (uint64_t v : out) sink = sink ^ v;
    rates.push_back(static_cast<double>(part * threads) / s);
  }
  return {Median(rates), *std::max_element(rates.begin(), rates.end())};
}

inline double MeasureReadBandwidth(size_t bytes, int threads, int repeats = 7) {
  return MeasureReadBandwidthStats(bytes, threads, repeats).best;
}

}  // namespace rtnq::bench
