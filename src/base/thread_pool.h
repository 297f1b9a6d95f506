// A fixed-size pool of worker threads for data-parallel loops. The calling thread takes part,
// so a pool of size 1 runs everything inline. Work is split statically into contiguous ranges:
// which thread computes which index depends only on (n, num_threads), never on timing.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rtnq {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Calls fn(begin, end, thread_index) on disjoint contiguous ranges covering [0, n), split into
  // at most size() chunks whose boundaries are multiples of `grain`. Blocks until all are done.
  void ParallelFor(size_t n, size_t grain,
                   const std::function<void(size_t, size_t, int)>& fn);

 private:
  void WorkerLoop(int index);

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0, job_grain_ = 1;
  int job_chunks_ = 0;
  int pending_ = 0;
  unsigned generation_ = 0;
  bool stop_ = false;
};

// Default thread count: RTNQ_THREADS if set, else hardware concurrency.
int DefaultThreadCount();

}  // namespace rtnq
