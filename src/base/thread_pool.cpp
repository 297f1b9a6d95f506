#include "base/thread_pool.h"

#include <algorithm>
#include <cstdlib>

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
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  unsigned seen = 0;
  for (;;) {
    const std::function<void(size_t, size_t, int)>* job;
    size_t n, grain;
    int chunks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
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
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
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
    pending_ = num_threads_ - 1;
    ++generation_;
  }
  work_cv_.notify_all();
  size_t b, e;
  ChunkRange(n, grain, chunks, 0, &b, &e);
  if (b < e) fn(b, e, 0);
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [&] { return pending_ == 0; });
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

}  // namespace rtnq
