#include "base/aligned_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace rtnq {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// RTNQ_HUGE_PAGES=0 turns the huge-page request off (see the header for when that is faster).
bool HugePagesWanted() {
  static const bool wanted = [] {
    const char* env = std::getenv("RTNQ_HUGE_PAGES");
    return env == nullptr || std::strcmp(env, "0") != 0;
  }();
  return wanted;
}

// Maps `length` bytes (a multiple of the page size) starting on a 2 MiB boundary: maps 2 MiB
// more and unmaps the slack on both sides.
std::byte* MapHugeAligned(size_t length) {
  void* raw = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (begin + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > begin) ::munmap(raw, aligned - begin);
  const uintptr_t end = begin + length + kHugePage;
  if (end > aligned + length) ::munmap(reinterpret_cast<void*>(aligned + length), end - (aligned + length));
  if (HugePagesWanted()) ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);  // a hint
  return reinterpret_cast<std::byte*>(aligned);
}

}  // namespace

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  if (bytes == 0) return;
  if (bytes >= kHugeThreshold) {
    const size_t length = (bytes + PageSize() - 1) / PageSize() * PageSize();
    data_ = MapHugeAligned(length);
    if (data_ != nullptr) {
      mapped_ = length;
      return;
    }
  }
  const size_t rounded = (bytes + 63) / 64 * 64;
  data_ = static_cast<std::byte*>(std::aligned_alloc(64, rounded));
  if (data_ == nullptr) throw std::bad_alloc();
}

void AlignedBuffer::Release() {
  if (data_ == nullptr) return;
  if (mapped_ != 0) {
    ::munmap(data_, mapped_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  mapped_ = 0;
}

}  // namespace rtnq
