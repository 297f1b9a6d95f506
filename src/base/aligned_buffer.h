// A heap buffer aligned to 64 bytes (one cache line, one zmm register) for weights and
// activations that SIMD kernels read. Buffers of 2 MiB and more are mapped on their own, starting
// on a 2 MiB boundary, and asked to use transparent huge pages: packing a 1 GB weight then takes
// ~500 page faults instead of ~260,000, and decode's weight streams need far fewer TLB entries.
// The mapping ends at the buffer's last 4 KiB page, so only whole 2 MiB pieces become huge pages
// and resident memory is not rounded up to 2 MiB per buffer.
// Why 2 MiB and not 32 MiB (the threshold until 2026-12): Llama-3.2-1B's RTN-4 layer weights are
// 2-16.5 MiB each; in 4 KiB pages (malloc's mmap) the two-thread decode ran at 85-88% of the
// memory-bound limit, in huge pages at 95-101% (three runs each, side by side). The cost is at
// load, where a fresh huge page on the dev VM sometimes has to be faulted in by the host first
// (earlier sessions measured first touch at 0.3-5.7 s/GiB with huge pages against 0.6-0.9 s with
// 4 KiB pages); on the day of the change both were 0.41-0.46 s/GiB and the 1B and 8B-shaped
// quantize-while-load rates did not move beyond their noise. RTNQ_HUGE_PAGES=0 drops the request
// altogether (on such a host day it made an 8B-shaped RTN-8 load 1.3-2x faster).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

namespace rtnq {

class AlignedBuffer {
 public:
  // Buffers at least this large get their own huge-page mapping.
  static constexpr size_t kHugeThreshold = size_t{2} << 20;

  AlignedBuffer() = default;
  // Contents are unspecified (zero for mapped buffers, whatever malloc returns otherwise).
  explicit AlignedBuffer(size_t bytes);
  ~AlignedBuffer() { Release(); }
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        mapped_(std::exchange(o.mapped_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    if (this != &o) {
      Release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }
  template <typename T> T* as() { return reinterpret_cast<T*>(data_); }
  template <typename T> const T* as() const { return reinterpret_cast<const T*>(data_); }
  size_t size() const { return size_; }
  // True when the buffer is its own mapping (and reads as zeros until written).
  bool is_mapped() const { return mapped_ != 0; }

 private:
  void Release();

  std::byte* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // length of the mapping, 0 for heap buffers
};

}  // namespace rtnq
