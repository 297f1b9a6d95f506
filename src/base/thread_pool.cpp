#include "base/thread_pool.h"

#include <algorithm>
#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RTNQ_CPU_PAUSE() _mm_pause()
#else
#define RTNQ_CPU_PAUSE() ((void)0)
#endif

namespace rtnq {
namespace {

// Range of chunk `c` out of `chunks` over n items, aligned to `grain`.
void ChunkRange(size_t n, size_t grain, int chunks, int c, size_t* begin, size_t* end) {
  const size_t units = (n + grain - 1) / grain;
  const size_t per = units / chunks, extra = units % chunks;
  const size_t ub = c * per + std::min<size_t>(c, extra);
  const size_t ue = ub + per + (static_cast<size_t>(c) < extra ? 1 : 0);
  *begin = std::min(n, ub * grain);
  *end = std::min(n, ue * grain);
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  const unsigned cpus = std::thread::hardware_concurrency();
  if (cpus == 0 || static_cast<unsigned>(num_threads_) <= cpus) spin_ = DefaultSpinTime();
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

template <class Pred>
void ThreadPool::SpinUntil(Pred ready) const {
  if (spin_.count() == 0) return;
  const auto start = std::chrono::steady_clock::now();
  for (unsigned i = 1; !ready(); ++i) {
    RTNQ_CPU_PAUSE();
    if (i % 64 == 0 && std::chrono::steady_clock::now() - start > spin_) return;
  }
}

void ThreadPool::WorkerLoop(int index) {
  unsigned seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t, int)>* job;
    size_t n, grain;
    int chunks;
    SpinUntil([&] { return stop_.load(std::memory_order_relaxed) ||
                           generation_.load(std::memory_order_acquire) != seen; });
    {
      // The job's fields are read under mu_ (they were written under it), spin or no spin.
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      n = job_n_;
      grain = job_grain_;
      chunks = job_chunks_;
    }
    if (index < chunks) {
      size_t b, e;
      ChunkRange(n, grain, chunks, index, &b, &e);
      if (b < e) (*job)(b, e, index);
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Under mu_, so that a caller between its predicate check and its wait cannot miss it.
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
  }
}

void ThreadPool::ParallelFor(size_t n, size_t grain,
                             const std::function<void(size_t, size_t, int)>& fn) {
  if (n == 0) return;
  grain = std::max<size_t>(1, grain);
  const size_t units = (n + grain - 1) / grain;
  const int chunks = static_cast<int>(std::min<size_t>(num_threads_, units));
  if (chunks <= 1) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_grain_ = grain;
    job_chunks_ = chunks;
    pending_.store(num_threads_ - 1);
    generation_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  size_t b, e;
  ChunkRange(n, grain, chunks, 0, &b, &e);
  if (b < e) fn(b, e, 0);
  SpinUntil([&] { return pending_.load(std::memory_order_acquire) == 0; });
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_.load() == 0; });
  job_ = nullptr;
}

int DefaultThreadCount() {
  if (const char* env = std::getenv("RTNQ_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc == 0 ? 1 : static_cast<int>(hc);
}

std::chrono::nanoseconds DefaultSpinTime() {
  if (const char* env = std::getenv("RTNQ_SPIN_US")) {
    const long us = std::atol(env);
    if (us >= 0) return std::chrono::microseconds(us);
  }
  return std::chrono::microseconds(100);
}

}  // namespace rtnq
