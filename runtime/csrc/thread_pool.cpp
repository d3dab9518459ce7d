#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace bitmaps {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long a worker (and the caller waiting for one) spins before sleeping. An encoder forward
// runs dozens of parallel jobs a few hundred microseconds apart; waking a sleeping worker through
// the condition variable took 50-100 us on this project's VMs, which was most of what a second
// thread saved on a MiniLM layer. After a short spin the workers sleep, so an idle process, or the
// next program on the cores, loses at most this much. BITMAPS_SPIN_US overrides it (0: never spin).
std::chrono::nanoseconds spin_budget() {
  const char* value = std::getenv("BITMAPS_SPIN_US");
  const long micros = value && *value ? std::strtol(value, nullptr, 10) : 100;
  return std::chrono::microseconds(micros > 0 ? micros : 0);
}

// Spins until done() or the budget is spent; returns done().
template <typename Done>
bool spin_until(Done done, std::chrono::nanoseconds budget) {
  if (done()) return true;
  if (budget.count() == 0) return false;
  const auto stop = std::chrono::steady_clock::now() + budget;
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() >= stop) return done();
  }
}

// A job is published by bumping `generation_` (under `mutex_`, so a sleeping worker cannot miss
// it); its low byte says how many workers join the caller in pulling task indices from an atomic
// counter. Everything a job reads is written before its generation is released. The count rides
// in the generation so that a worker reads both at once: a worker taking no part in one job can
// be slow enough that the next job is published while it looks, and reading a separate count
// then could pair the next job's count with this job's generation (ThreadSanitizer saw the
// separate count's race, runtime/tests/test_thread_pool.cpp).
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true);
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  void run(int64_t tasks, int threads, const std::function<void(int64_t)>& fn, bool fixed) {
    std::lock_guard<std::mutex> one_job_at_a_time(job_mutex_);
    const int helpers = std::min(threads - 1, kMaxHelpers);
    while (static_cast<int>(workers_.size()) < helpers) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { loop(index); });
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      tasks_ = tasks;
      fixed_ = fixed && tasks < (int64_t{1} << 32);  // shares hold 32-bit task numbers
      participants_ = helpers + 1;
      if (fixed_)
        for (int i = 0; i < participants_; ++i)
          shares_[i].span.store(static_cast<uint64_t>(tasks * (i + 1) / participants_) << 32 |
                                    static_cast<uint64_t>(tasks * i / participants_),
                                std::memory_order_relaxed);  // published by the generation's release below
      next_.store(0);
      pending_.store(helpers);
      generation_.store(((generation_.load() >> 8) + 1) << 8 | static_cast<uint64_t>(helpers), std::memory_order_release);
    }
    wake_.notify_all();
    work(0);
    if (spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; }, spin_)) return;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }

 private:
  // parallel_for_fixed's share of one participant: its tasks not yet taken, [front, back), in one
  // word (front in the low 32 bits), so that the owner taking from the front and another
  // participant taking from the back claim each task exactly once, by one compare-and-swap
  struct alignas(64) Share {
    std::atomic<uint64_t> span{0};
  };

  static bool claim(Share& share, bool from_back, int64_t* task) {
    uint64_t span = share.span.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t front = span & 0xffffffffu, back = span >> 32;
      if (front >= back) return false;
      const uint64_t next = from_back ? (back - 1) << 32 | front : back << 32 | (front + 1);
      if (share.span.compare_exchange_weak(span, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        *task = static_cast<int64_t>(from_back ? back - 1 : front);
        return true;
      }
    }
  }

  void work(int participant) {
    if (fixed_) {
      // its own share in order, then whatever the others have left, from the ends of their shares
      int64_t task;
      while (claim(shares_[participant], false, &task)) (*fn_)(task);
      for (int other = 1; other < participants_; ++other)
        while (claim(shares_[(participant + other) % participants_], true, &task)) (*fn_)(task);
      return;
    }
    for (int64_t task = next_.fetch_add(1); task < tasks_; task = next_.fetch_add(1)) (*fn_)(task);
  }

  void loop(int index) {
    uint64_t seen = 0;
    for (;;) {
      const auto published = [&] { return stopping_.load() || generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(published, spin_)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, published);
      }
      if (stopping_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      if (index >= static_cast<int>(seen & 0xff)) continue;  // not one of this job's helpers
      work(index + 1);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);  // the caller may be about to sleep on done_
        done_.notify_one();
      }
    }
  }

  const std::chrono::nanoseconds spin_ = spin_budget();
  std::vector<std::thread> workers_;
  std::mutex mutex_, job_mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  std::atomic<int64_t> next_{0};
  int64_t tasks_ = 0;
  bool fixed_ = false;  // parallel_for_fixed's split, over participants_ (the caller and the helpers)
  int participants_ = 1;
  std::vector<Share> shares_ = std::vector<Share>(kMaxHelpers + 1);
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};  // job number << 8 | its helpers
  static constexpr int kMaxHelpers = 255;
  std::atomic<bool> stopping_{false};
};

Pool& pool() {
  static Pool* instance = new Pool();  // never destroyed: workers may outlive static teardown
  return *instance;
}

}  // namespace

namespace {

void run_job(int64_t tasks, int threads, const std::function<void(int64_t)>& fn, bool fixed) {
  if (threads > tasks) threads = static_cast<int>(tasks);
  if (threads <= 1) {
    for (int64_t task = 0; task < tasks; ++task) fn(task);
    return;
  }
  pool().run(tasks, threads, fn, fixed);
}

}  // namespace

void parallel_for(int64_t tasks, int threads, const std::function<void(int64_t)>& fn) {
  run_job(tasks, threads, fn, false);
}

void parallel_for_fixed(int64_t tasks, int threads, const std::function<void(int64_t)>& fn) {
  run_job(tasks, threads, fn, true);
}

}  // namespace bitmaps
