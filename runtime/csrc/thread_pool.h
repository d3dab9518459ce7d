// A persistent pool of std::threads: spawning threads per call would cost more than a whole
// M=1 layer. parallel_for runs fn(task) for task in [0, tasks) on up to `threads` threads,
// the caller's included, and returns when all are done.
#pragma once
#include <cstdint>
#include <functional>

namespace bitmaps {

void parallel_for(int64_t tasks, int threads, const std::function<void(int64_t)>& fn);

// The same with a fixed split: of the n = min(threads, tasks) participants, participant i runs
// tasks [i * tasks / n, (i + 1) * tasks / n) in order, the caller being participant 0 and pool
// worker j participant j + 1, so consecutive jobs of one shape give a task to the same thread.
// For jobs whose tasks read what the same task of the job before wrote (the encoder's blocks of
// rows): the data stays in that core's cache. On this project's VMs a cache line written on one
// vCPU and read on the other was costly enough that a 2-thread linear fed by a 1-thread step ran
// barely faster than on 1 thread. A participant that finishes its share takes the tasks another
// has not started yet, one at a time from the end of that share: when all keep pace, each runs
// exactly its own share; a slow or stalled vCPU no longer holds the job with tasks it has not
// begun (XNOR BERT-base on 2 threads, Ice Lake: a fully dynamic split had run 1.135x faster than
// this split without taking; with taking, paired against it, 1.015x, MiniLM 1.024x, on a calmer
// host; docs/runtime-speed.md).
void parallel_for_fixed(int64_t tasks, int threads, const std::function<void(int64_t)>& fn);

}  // namespace bitmaps
