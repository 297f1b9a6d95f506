// A heap buffer aligned to 64 bytes (one cache line, one zmm register) for weights and
// activations that SIMD kernels read. Buffers of 32 MiB and more are mapped on their own, starting
// on a 2 MiB boundary, and asked to use transparent huge pages: packing a 1 GB weight then takes
// ~500 page faults instead of ~260,000, and decode's weight streams need far fewer TLB entries.
// The mapping ends at the buffer's last 4 KiB page, so only whole 2 MiB pieces become huge pages
// and resident memory is not rounded up to 2 MiB per buffer.
// Why not smaller buffers too: on the dev VM (virtio-balloon free page reporting of 8 MiB blocks)
// a fresh huge page often has to be faulted in by the host first: first touch measured 0.3-5.7 s
// per GiB against 0.6-0.9 s with 4 KiB pages, and huge pages for every buffer >= 2 MiB made a
// 1B-model RTN-8 load 1.8x slower (1.9 vs 1.05 CPU-s), while >= 32 MiB was the fastest setting.
// RTNQ_HUGE_PAGES=0 drops the request altogether: there, on 8B shapes, RTN-8 quantize-while-load
// took 0.9-1.8 s instead of 3.3-3.6 s (6 layers, page cache warm, one thread) and the full 8B at
// two threads 6.3 s instead of 8.4 s; a 1B RTN-4 load was ~10% faster with huge pages.
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
  static constexpr size_t kHugeThreshold = size_t{32} << 20;

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
