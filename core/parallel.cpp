// core/parallel.cpp: a fixed pool of worker threads that spin briefly, then sleep on a futex
// (std::atomic::wait), between jobs. One job runs at a time: a parallel_for from a second
// application thread waits for the pool, and one from inside a job runs inline.
#include "core/parallel.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace aft {
namespace {

thread_local bool t_in_region = false;

int default_threads() {
  if (const char* env = std::getenv("AFT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return n_threads_; }

  void resize(int n) {
    AFT_CHECK(n >= 1 && n <= 1024, "set_num_threads: need 1..1024 threads, got {}", n);
    std::lock_guard lock(job_mu_);
    stop();
    n_threads_ = n;
    quit_.store(false);
    // Each worker starts from the generation current now, so a job posted before the thread
    // gets scheduled is still seen as new.
    uint64_t g0 = generation_.load();
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, g0] { worker(i, g0); });
  }

  void run(int64_t begin, int64_t end, const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard lock(job_mu_);
    int n = n_threads_;
    fn_ = &fn;
    begin_ = begin;
    end_ = end;
    chunks_ = n;
    pending_.store(n - 1, std::memory_order_relaxed);
    first_error_ = nullptr;
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
    run_chunk(0);
    // Wait for the workers: spin first (jobs are usually short), then yield.
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
      if (spin > 2000) std::this_thread::yield();
    }
    fn_ = nullptr;
    if (first_error_) std::rethrow_exception(first_error_);
  }

 private:
  void chunk_range(int c, int64_t* b, int64_t* e) const {
    int64_t len = end_ - begin_;
    *b = begin_ + len * c / chunks_;
    *e = begin_ + len * (c + 1) / chunks_;
  }

  void run_chunk(int c) {
    int64_t b, e;
    chunk_range(c, &b, &e);
    if (b >= e) return;
    t_in_region = true;
    try {
      (*fn_)(b, e);
    } catch (...) {
      std::lock_guard lock(err_mu_);
      if (!first_error_) first_error_ = std::current_exception();
    }
    t_in_region = false;
  }

  void worker(int index, uint64_t seen) {
    for (;;) {
      // Spin a little before sleeping: back-to-back small ops then avoid a futex wake-up.
      uint64_t g = seen;
      for (int spin = 0; spin < 20000; ++spin) {
        g = generation_.load(std::memory_order_acquire);
        if (g != seen || quit_.load(std::memory_order_relaxed)) break;
      }
      if (g == seen && !quit_.load(std::memory_order_relaxed)) {
        generation_.wait(seen, std::memory_order_acquire);
        g = generation_.load(std::memory_order_acquire);
      }
      if (quit_.load(std::memory_order_relaxed)) return;
      if (g == seen) continue;
      seen = g;
      run_chunk(index);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void stop() {
    quit_.store(true);
    generation_.fetch_add(1);
    generation_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::mutex job_mu_, err_mu_;
  std::vector<std::thread> workers_;
  int n_threads_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> quit_{false};
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0;
  int chunks_ = 1;
  std::exception_ptr first_error_;
};

Pool& pool() {
  static Pool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  AFT_CHECK(!t_in_region, "set_num_threads: cannot be called from inside parallel_for");
  if (n != pool().size()) pool().resize(n);
}

bool in_parallel_region() { return t_in_region; }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (end <= begin) return;
  Pool& p = pool();
  if (t_in_region || p.size() == 1 || end - begin <= std::max<int64_t>(grain, 1)) {
    fn(begin, end);
    return;
  }
  p.run(begin, end, fn);
}

}  // namespace aft
