// Shared checks of the matmul kernel tests (matmul_test.cpp, matmul_rtn_test.cpp,
// matmul_a8_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/matmul.h"

namespace rtnq::testing {

inline bool BitEqual(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
}

// The driver's invariance contract on `w` and x [m][k] (m > 16): bitwise the same result on 1, 2
// and 3 threads, for each row computed alone, and for a 5-row sub-batch starting at row 11 (a
// different tile phase).
inline void ExpectThreadCountAndBatchInvariance(const PackedWeight& w, const std::vector<float>& x, int64_t m,
                                                const float* bias) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  const int64_t n = w.n(), k = w.k();
  std::vector<float> y1(m * n), y2(m * n), y3(m * n), alone(m * n);
  Matmul(w, x.data(), m, k, y1.data(), n, bias, &pool1);
  Matmul(w, x.data(), m, k, y2.data(), n, bias, &pool2);
  Matmul(w, x.data(), m, k, y3.data(), n, bias, &pool3);
  EXPECT_TRUE(BitEqual(y1, y2));
  EXPECT_TRUE(BitEqual(y1, y3));
  for (int64_t i = 0; i < m; ++i) Matmul(w, x.data() + i * k, 1, k, alone.data() + i * n, n, bias, &pool2);
  EXPECT_TRUE(BitEqual(y1, alone));
  std::vector<float> sub(5 * n);
  Matmul(w, x.data() + 11 * k, 5, k, sub.data(), n, bias, &pool3);
  EXPECT_EQ(std::memcmp(sub.data(), y1.data() + 11 * n, sub.size() * 4), 0);
}

}  // namespace rtnq::testing
