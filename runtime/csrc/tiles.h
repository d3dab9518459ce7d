// How the runtime splits a product over the thread pool: tiles of row_block rows (16 unless the
// caller says: KernelTable::w1a8_row_tile) x col_block columns (64 unless the caller says:
// column_block below for the 1-bit and int8 linears). `work` counts inner-loop operations (a
// float add, or one 64-bit XOR-popcount); below ~1M of them, waking the pool (tens of
// microseconds on a busy machine) costs more than it saves, so the caller's thread does it all.
// Never call from inside a parallel_for task (the pool runs one job at a time).
#pragma once
#include <algorithm>
#include <cstdint>

#include "thread_pool.h"

namespace bitmaps {

constexpr int64_t kSerialWork = int64_t{1} << 20;

// The column block for an m x n product's tiles: whole rows from 4 tiles of 16 rows on, else 64
// columns (so that few rows still split over the threads). With 16 x 64 tiles the threads wrote
// neighbouring column blocks of the same output rows, and a 128 x 384 x 1536 BiT linear ran 1.2x
// faster on 2 threads than on 1 (whole rows: 1.7-1.9x, and 1 thread 6% faster; Zen 4).
inline int64_t column_block(int64_t m, int64_t n) { return m >= 4 * 16 ? n : 64; }

template <typename Fn>
void run_tiles(int64_t m, int64_t n, int64_t work, int threads, Fn fn, int64_t col_block = 64,
               int64_t row_block = 16) {
  const int64_t row_tiles = (m + row_block - 1) / row_block;
  if (work < kSerialWork) threads = 1;
  // one thread and one row tile: all columns in one tile. At M = 1 the calls and loop set-up of
  // each 64-column tile were a measurable part of a W1A1 layer's time (Zen 4, both x86 paths); the
  // other schemes did not change
  if (threads == 1 && row_tiles == 1) col_block = n;
  const int64_t col_tiles = (n + col_block - 1) / col_block;
  parallel_for(row_tiles * col_tiles, threads, [&](int64_t task) {
    const int64_t r = task / col_tiles, c = task % col_tiles;
    fn(r * row_block, std::min(m, (r + 1) * row_block), c * col_block, std::min(n, (c + 1) * col_block));
  });
}

// fn(r0, r1) over blocks of `block` rows.
template <typename Fn>
void run_rows(int64_t m, int64_t block, int64_t work, int threads, Fn fn) {
  if (work < kSerialWork) threads = 1;
  parallel_for((m + block - 1) / block, threads, [&](int64_t task) {
    fn(task * block, std::min(m, (task + 1) * block));
  });
}

}  // namespace bitmaps
