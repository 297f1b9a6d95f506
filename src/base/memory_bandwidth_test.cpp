#include "base/memory_bandwidth.h"

#include <gtest/gtest.h>

namespace rtnq {
namespace {

TEST(MemoryBandwidth, ParsesSysfsSizes) {
  EXPECT_EQ(ParseSysfsSize("491520K\n"), uint64_t{491520} * 1024);
  EXPECT_EQ(ParseSysfsSize("32M"), uint64_t{32} << 20);
  EXPECT_EQ(ParseSysfsSize("1G"), uint64_t{1} << 30);
  EXPECT_EQ(ParseSysfsSize("4096"), 4096u);
  EXPECT_FALSE(ParseSysfsSize(""));
  EXPECT_FALSE(ParseSysfsSize("K"));
  EXPECT_FALSE(ParseSysfsSize("12x4K"));
  EXPECT_FALSE(ParseSysfsSize("-5M"));
}

TEST(MemoryBandwidth, LastLevelCacheHasASizeAndFallsBack) {
  EXPECT_GT(LastLevelCacheBytes(), 0u);
  // The fallback is used only when sysfs has no level-3 entry; either way it is positive.
  EXPECT_GT(LastLevelCacheBytes(123), 0u);
}

TEST(MemoryBandwidth, AvailableMemoryIsPlausible) {
  const auto avail = AvailableMemoryBytes();
  ASSERT_TRUE(avail.has_value());  // Linux always has MemAvailable (3.14+)
  EXPECT_GT(*avail, uint64_t{1} << 20);
}

TEST(MemoryBandwidth, CpuModelNameIsOneLine) {
  const std::string name = CpuModelName();
  EXPECT_FALSE(name.empty());
  EXPECT_EQ(name.find('\n'), std::string::npos);
}

TEST(MemoryBandwidth, ReportsWhatItRead) {
  for (int threads : {1, 2, 3}) {
    // 8 MiB: fast; this checks the bookkeeping, not the hardware.
    const ReadBandwidth bw = MeasureReadBandwidth(uint64_t{8} << 20, threads, 3);
    EXPECT_EQ(bw.threads, threads);
    EXPECT_EQ(bw.passes, 3);
    EXPECT_GT(bw.bytes, uint64_t{7} << 20);
    EXPECT_LE(bw.bytes, uint64_t{8} << 20);
    EXPECT_GT(bw.median, 0);
    EXPECT_GE(bw.best, bw.median);
  }
}

}  // namespace
}  // namespace rtnq
