// A fixed-size pool of worker threads for data-parallel loops. The calling thread takes part,
// so a pool of size 1 runs everything inline. Work is split statically into contiguous ranges:
// which thread computes which index depends only on (n, num_threads), never on timing.
//
// Idle workers spin for a short while (RTNQ_SPIN_US, default 100 us; 0 = sleep at once) before
// they sleep on a condition variable, and the caller spins the same way for the workers to
// finish: a decode step issues 65-113 matmuls per token on Llama-3.2-1B (65 when q/k/v and
// gate/up share a precision and are fused), most of them 10-500 us long, and waking a sleeping
// vCPU through a futex costs tens of microseconds on a VM. Spinning is off when the pool has more
// threads than the machine has CPUs.
#pragma once

#include <atomic>
#include <chrono>
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
  // Polls `ready` until it holds or spin_ has passed (with a CPU pause between polls).
  template <class Pred>
  void SpinUntil(Pred ready) const;

  int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  const std::function<void(size_t, size_t, int)>* job_ = nullptr;
  size_t job_n_ = 0, job_grain_ = 1;
  int job_chunks_ = 0;
  std::atomic<int> pending_{0};        // workers yet to finish the current job
  std::atomic<unsigned> generation_{0};  // bumped (under mu_) when a job is published
  std::atomic<bool> stop_{false};
  std::chrono::nanoseconds spin_{0};
};

// Default thread count: RTNQ_THREADS if set, else hardware concurrency.
int DefaultThreadCount();

// How long idle pool threads spin before sleeping: RTNQ_SPIN_US if set, else 100 us.
std::chrono::nanoseconds DefaultSpinTime();

}  // namespace rtnq
