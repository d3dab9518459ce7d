// A persistent pool of std::threads: spawning threads per call would cost more than a whole
// M=1 layer. parallel_for runs fn(task) for task in [0, tasks) on up to `threads` threads,
// the caller's included, and returns when all are done.
#pragma once
#include <cstdint>
#include <functional>

namespace bitmaps {

void parallel_for(int64_t tasks, int threads, const std::function<void(int64_t)>& fn);

}  // namespace bitmaps
