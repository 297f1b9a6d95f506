#include "base/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <vector>

namespace rtnq {
namespace {

TEST(ThreadPool, CoversRangeExactlyOnceWithGrain) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (size_t n : {0u, 1u, 7u, 64u, 1000u}) {
      std::vector<std::atomic<int>> hits(n);
      pool.ParallelFor(n, 16, [&](size_t b, size_t e, int) {
        EXPECT_EQ(b % 16, 0u);
        for (size_t i = b; i < e; ++i) hits[i]++;
      });
      for (size_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << i;
    }
  }
}

TEST(ThreadPool, SplitDependsOnlyOnSizes) {
  ThreadPool pool(2);
  std::vector<int> owner1(100), owner2(100);
  pool.ParallelFor(100, 4, [&](size_t b, size_t e, int t) { for (size_t i = b; i < e; ++i) owner1[i] = t; });
  pool.ParallelFor(100, 4, [&](size_t b, size_t e, int t) { for (size_t i = b; i < e; ++i) owner2[i] = t; });
  EXPECT_EQ(owner1, owner2);
}

// Thousands of short jobs back to back, with workers that spin before sleeping (the default)
// and with workers that sleep at once: every job sees all of its range, none is lost or hangs.
TEST(ThreadPool, BackToBackJobsSpinningOrSleeping) {
  for (const char* spin_us : {"100", "0"}) {
    setenv("RTNQ_SPIN_US", spin_us, 1);
    ThreadPool pool(2);
    unsetenv("RTNQ_SPIN_US");
    for (int job = 0; job < 3000; ++job) {
      std::atomic<size_t> sum{0};
      pool.ParallelFor(64, 1, [&](size_t b, size_t e, int) {
        for (size_t i = b; i < e; ++i) sum += i;
      });
      ASSERT_EQ(sum.load(), 64u * 63u / 2) << "spin " << spin_us << " job " << job;
    }
  }
}

}  // namespace
}  // namespace rtnq
