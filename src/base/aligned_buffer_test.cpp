#include "base/aligned_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace rtnq {
namespace {

// Resident bytes of the mapping that contains `p`, from /proc/self/smaps (0 if unavailable).
size_t ResidentBytesOfMappingAt(const void* p) {
  FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return 0;
  char line[512];
  bool in = false;
  size_t rss = 0;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  while (std::fgets(line, sizeof(line), f)) {
    unsigned long lo, hi;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {  // a mapping's header line
      in = a >= lo && a < hi;
      continue;
    }
    unsigned long kb;
    if (in && std::sscanf(line, "Rss: %lu kB", &kb) == 1) rss = kb * 1024;
  }
  std::fclose(f);
  return rss;
}

TEST(AlignedBuffer, SmallBuffersAreCacheLineAlignedHeapMemory) {
  AlignedBuffer b(1000);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 64, 0u);
  EXPECT_EQ(b.size(), 1000u);
  EXPECT_FALSE(b.is_mapped());
  std::memset(b.data(), 7, b.size());
  EXPECT_EQ(b.as<uint8_t>()[999], 7);
  AlignedBuffer empty(0);
  EXPECT_EQ(empty.data(), nullptr);
}

TEST(AlignedBuffer, LargeBuffersStartOnAHugePageAndAreZero) {
  const size_t bytes = AlignedBuffer::kHugeThreshold + (size_t{5} << 20) + 12345;
  AlignedBuffer b(bytes);
  ASSERT_NE(b.data(), nullptr);
  EXPECT_TRUE(b.is_mapped());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t{2} << 20), 0u);
  for (size_t i = 0; i < bytes; i += 4096) ASSERT_EQ(b.as<uint8_t>()[i], 0) << i;
  EXPECT_EQ(b.as<uint8_t>()[bytes - 1], 0);
  std::memset(b.data(), 1, bytes);
  // The mapping ends at the last 4 KiB page of the buffer: touching all of it makes at most
  // that much resident, not a whole 2 MiB more for the tail.
  const size_t rss = ResidentBytesOfMappingAt(b.data());
  if (rss != 0) {
    EXPECT_GE(rss, bytes);
    EXPECT_LE(rss, bytes + 4096);
  }
}

TEST(AlignedBuffer, MovesTransferOwnership) {
  AlignedBuffer a(AlignedBuffer::kHugeThreshold);
  std::byte* p = a.data();
  a.as<uint8_t>()[42] = 9;
  AlignedBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data(), p);
  EXPECT_TRUE(b.is_mapped());
  AlignedBuffer c(100);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.as<uint8_t>()[42], 9);
  EXPECT_EQ(c.size(), AlignedBuffer::kHugeThreshold);
}

}  // namespace
}  // namespace rtnq
