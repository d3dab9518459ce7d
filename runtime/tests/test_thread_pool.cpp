// The thread pool (runtime/csrc/thread_pool.cpp) under a random schedule of jobs: every task runs
// exactly once and parallel_for returns after the last, also when the helpers were asleep (pauses
// between jobs) and the caller ran out of tasks before they woke, which cancels them; when the
// thread count grows (new workers, which must not join the job before theirs) or shrinks; with
// tasks long enough for helpers to join late; and jobs with parallel_for_fixed's split, mixed in,
// whose shares run each on one thread, the caller's first. The counters are plain ints, so that a build with
// -fsanitize=thread (build_native_tests.sh, where the compiler has it) reports any two threads on
// one task, or a helper reading a job's fields while the next job is published. Exit status 0
// when all pass.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "thread_pool.h"

int main() {
  std::mt19937 rng(13);
  int wrong = 0;
  for (int job = 0; job < 2000; ++job) {
    // 1-4 threads, and from job 1000 on one more worker every 100 jobs, up to 13: each new worker
    // starts while the last job's fields are still published
    const int threads = 1 + static_cast<int>(rng() % 4) + (job >= 1000 ? (job - 1000) / 100 : 0);
    const int64_t tasks = 1 + static_cast<int64_t>(rng() % 40);
    std::vector<int> runs(static_cast<size_t>(tasks), 0);
    std::vector<std::thread::id> ran_on(static_cast<size_t>(tasks));
    const bool slow = rng() % 4 == 0, fixed = rng() % 3 == 0;
    auto task_body = [&](int64_t task) {
      if (slow) std::this_thread::sleep_for(std::chrono::microseconds(30));
      runs[static_cast<size_t>(task)] += 1;
      ran_on[static_cast<size_t>(task)] = std::this_thread::get_id();
    };
    if (fixed) bitmaps::parallel_for_fixed(tasks, threads, task_body);
    else bitmaps::parallel_for(tasks, threads, task_body);
    for (int r : runs) wrong += r != 1;
    if (fixed) {
      // participant i's share [i * tasks / n, (i + 1) * tasks / n) on one thread, share 0 the caller's
      const int64_t n = std::min<int64_t>(threads, tasks);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t t = tasks * i / n; t < tasks * (i + 1) / n; ++t)
          wrong += ran_on[static_cast<size_t>(t)] != ran_on[static_cast<size_t>(tasks * i / n)] ||
                   (i == 0) != (ran_on[static_cast<size_t>(t)] == std::this_thread::get_id());
    }
    if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300 + rng() % 1000));
  }
  if (wrong) std::fprintf(stderr, "FAIL parallel_for: %d tasks ran other than once\n", wrong);
  else std::printf("thread pool test passed\n");
  return wrong ? 1 : 0;
}
