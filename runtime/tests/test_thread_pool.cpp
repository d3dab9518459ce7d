// The thread pool (runtime/csrc/thread_pool.cpp) under a random schedule of jobs: every task runs
// exactly once and parallel_for returns after the last, also when the helpers were asleep (pauses
// between jobs) and the caller ran out of tasks before they woke, which cancels them; when the
// thread count grows (new workers, which must not join the job before theirs) or shrinks; with
// tasks long enough for helpers to join late; and jobs with parallel_for_fixed's split, mixed in,
// where the caller runs a prefix of its share in order and others only take its rest, and where
// a share whose owner is slow is finished by the others. The
// counters are plain ints, so that a build with
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
      // share 0, [0, tasks / n), is the caller's: the tasks it ran there are a prefix, in order,
      // and the others took only from the end (a helper's share may be taken by several threads
      // when its owner is late, so only the caller's is known)
      const int64_t end = tasks / std::min<int64_t>(threads, tasks);
      int64_t t = 0;
      while (t < end && ran_on[static_cast<size_t>(t)] == std::this_thread::get_id()) ++t;
      for (; t < end; ++t) wrong += ran_on[static_cast<size_t>(t)] == std::this_thread::get_id();
    }
    if (rng() % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300 + rng() % 1000));
  }
  // a fixed job whose caller is slow: the helper finishes its own share, then takes tasks from the
  // end of the caller's (2 threads, 20 tasks; the caller's 10 take 300 us each)
  int taken = 0;
  for (int attempt = 0; attempt < 3 && taken == 0; ++attempt) {
    std::vector<std::thread::id> ran_on(20);
    std::vector<int> runs(20, 0);
    const std::thread::id caller = std::this_thread::get_id();
    bitmaps::parallel_for_fixed(20, 2, [&](int64_t task) {
      if (std::this_thread::get_id() == caller) std::this_thread::sleep_for(std::chrono::microseconds(300));
      runs[static_cast<size_t>(task)] += 1;
      ran_on[static_cast<size_t>(task)] = std::this_thread::get_id();
    });
    for (int r : runs) wrong += r != 1;
    for (int64_t t = 0; t < 10; ++t) taken += ran_on[static_cast<size_t>(t)] != caller;
  }
  if (taken == 0) std::fprintf(stderr, "FAIL parallel_for_fixed: no task of a slow caller's share was taken\n");
  wrong += taken == 0;
  if (wrong) std::fprintf(stderr, "FAIL parallel_for: %d tasks ran other than once\n", wrong);
  else std::printf("thread pool test passed\n");
  return wrong ? 1 : 0;
}
