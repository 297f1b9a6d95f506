#include "base/memory_bandwidth.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "base/aligned_buffer.h"
#include "base/cpu_features.h"
#include "base/timer.h"

namespace rtnq {
namespace {

constexpr int kStreams = 8;

// XOR of every 32-byte word of p[0, bytes) read as kStreams interleaved sequential streams; the
// result is kept so the loads cannot be elided.
__attribute__((target("avx2"))) uint64_t XorReadAvx2(const std::byte* p, size_t bytes) {
  const size_t part = bytes / kStreams / 64 * 64;
  __m256i acc[kStreams];
  for (int s = 0; s < kStreams; ++s) acc[s] = _mm256_setzero_si256();
  for (size_t i = 0; i < part; i += 64) {
    for (int s = 0; s < kStreams; ++s) {
      const std::byte* q = p + s * part + i;
      acc[s] = _mm256_xor_si256(acc[s], _mm256_load_si256(reinterpret_cast<const __m256i*>(q)));
      acc[s] = _mm256_xor_si256(acc[s], _mm256_load_si256(reinterpret_cast<const __m256i*>(q + 32)));
    }
  }
  for (int s = 1; s < kStreams; ++s) acc[0] = _mm256_xor_si256(acc[0], acc[s]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
}

uint64_t XorReadScalar(const std::byte* p, size_t bytes) {
  const size_t part = bytes / kStreams / 64 * 64;
  uint64_t acc[kStreams] = {};
  for (size_t i = 0; i < part; i += 64) {
    for (int s = 0; s < kStreams; ++s) {
      const uint64_t* q = reinterpret_cast<const uint64_t*>(p + s * part + i);
      for (int w = 0; w < 8; ++w) acc[s] ^= q[w];
    }
  }
  uint64_t r = 0;
  for (uint64_t a : acc) r ^= a;
  return r;
}

// Bytes XorRead actually touches for a part of `bytes`.
size_t BytesRead(size_t bytes) { return bytes / kStreams / 64 * 64 * kStreams; }

// Runs fn(i) on `threads` threads (i = 0 on the calling thread) and waits for all.
template <typename Fn>
void OnThreads(int threads, const Fn& fn) {
  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) workers.emplace_back([&fn, i] { fn(i); });
  fn(0);
  for (auto& w : workers) w.join();
}

std::string ReadSmallFile(const char* path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

}  // namespace

uint64_t StreamingXorRead(const std::byte* p, size_t bytes) {
  return HostCpu().avx2 ? XorReadAvx2(p, bytes) : XorReadScalar(p, bytes);
}

ReadBandwidth MeasureReadBandwidth(uint64_t bytes, int threads, int passes) {
  threads = std::max(1, threads);
  passes = std::max(1, passes);
  const size_t part = static_cast<size_t>(bytes) / threads / 4096 * 4096;
  AlignedBuffer buf(part * threads);
  // Each thread faults in (and writes) the part it will read.
  OnThreads(threads, [&](int i) { std::memset(buf.data() + i * part, i + 1, part); });
  std::vector<double> rates;
  std::vector<uint64_t> sums(threads);
  volatile uint64_t sink = 0;
  for (int r = 0; r < passes; ++r) {
    Timer timer;
    OnThreads(threads, [&](int i) {
      const std::byte* p = buf.data() + i * part;
      sums[i] = StreamingXorRead(p, part);
    });
    const double seconds = timer.Seconds();
    for (uint64_t s : sums) sink = sink ^ s;
    rates.push_back(static_cast<double>(BytesRead(part) * threads) / seconds);
  }
  std::sort(rates.begin(), rates.end());
  ReadBandwidth bw;
  bw.best = rates.back();
  bw.median = rates[rates.size() / 2];
  bw.bytes = BytesRead(part) * threads;
  bw.threads = threads;
  bw.passes = passes;
  return bw;
}

std::optional<uint64_t> ParseSysfsSize(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  uint64_t multiplier = 1;
  switch (text.back()) {
    case 'K': multiplier = uint64_t{1} << 10; break;
    case 'M': multiplier = uint64_t{1} << 20; break;
    case 'G': multiplier = uint64_t{1} << 30; break;
    default: break;
  }
  if (multiplier != 1) text.remove_suffix(1);
  if (text.empty() || text.size() > 15) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return value * multiplier;
}

uint64_t LastLevelCacheBytes(uint64_t fallback) {
  const auto size = ParseSysfsSize(ReadSmallFile("/sys/devices/system/cpu/cpu0/cache/index3/size"));
  return size && *size > 0 ? *size : fallback;
}

std::string CpuModelName() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t start = line.find_first_not_of(' ', colon + 1);
    if (start != std::string::npos) return line.substr(start);
  }
  return "unknown CPU";
}

std::optional<uint64_t> AvailableMemoryBytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return std::nullopt;
}

}  // namespace rtnq
