// DRAM read-bandwidth probe and the host facts benchmarks size their buffers by: the last-level
// cache size and the memory available. Benchmarks report weight streaming as a fraction of the
// bandwidth measured here, in the same run and with the same thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rtnq {

struct ReadBandwidth {
  double best = 0;    // bytes/s of the fastest pass: the attainable peak (the conservative
                      // denominator on a shared, noisy machine)
  double median = 0;  // bytes/s, median pass
  uint64_t bytes = 0; // bytes read per pass
  int threads = 0;
  int passes = 0;
};

// Streams a `bytes` buffer (it should be far above the last-level cache) `passes` times with
// `threads` threads, each reading its own contiguous part as 8 interleaved sequential streams
// (like a matmul reading several weight panels at once: one stream alone leaves a server core's
// memory-level parallelism unused). The buffer is written once before the first pass.
ReadBandwidth MeasureReadBandwidth(uint64_t bytes, int threads, int passes = 7);

// One pass of the probe's read over a buffer the caller keeps (to measure the bandwidth again
// at other moments of a run): p[0, bytes) as 8 interleaved sequential streams, AVX2 where the CPU
// has it. Returns the XOR of the words read (so the loads cannot be elided); it reads the first
// bytes / 512 * 512 bytes.
uint64_t StreamingXorRead(const std::byte* p, size_t bytes);

// Size of cpu0's level-3 cache from sysfs (/sys/devices/system/cpu/cpu0/cache/index3/size),
// or `fallback` when it cannot be read.
uint64_t LastLevelCacheBytes(uint64_t fallback = uint64_t{512} << 20);

// MemAvailable of /proc/meminfo in bytes, or nullopt when it cannot be read.
std::optional<uint64_t> AvailableMemoryBytes();

// The "model name" of /proc/cpuinfo (e.g. "Intel(R) Xeon(R) Platinum 8480+"), or "unknown CPU".
std::string CpuModelName();

// Parses a sysfs cache size ("491520K", "32M", "1024"): bytes, or nullopt if malformed.
std::optional<uint64_t> ParseSysfsSize(std::string_view text);

}  // namespace rtnq
