// The level bookkeeping of the fused two-set attention kernels (two_set_attention_avx512.h,
// two_set_attention_avx2.h): which of a head's d + 1 dot levels the binarizer keeps, as bits, and
// whether they are the run from some level to the top, which makes a key's bit one compare.
#pragma once
#include <algorithm>
#include <cstdint>

#include "kernels.h"

namespace bitmaps {
namespace {

constexpr int64_t kLevelWords = (kMaxTwoSetHeadDim + 1 + 63) / 64;

// bits [from, to) of a word (none when from >= to)
inline uint64_t span_bits(int64_t from, int64_t to) {
  if (from >= to) return 0;
  const uint64_t below_to = to >= 64 ? ~uint64_t{0} : (uint64_t{1} << to) - 1;
  return below_to & ~((uint64_t{1} << from) - 1);
}

// Clears the bits of kept (kLevelWords words) at `levels` and above (a kernel's slots past the
// levels); returns the first kept level if the kept levels run from it to the top (levels when
// none is kept), else -1.
inline int64_t kept_run(uint64_t* kept, int64_t levels) {
  for (int64_t w = 0; w < kLevelWords; ++w) kept[w] &= span_bits(0, levels - 64 * w);
  int64_t first = levels;
  for (int64_t w = 0; w < kLevelWords && first == levels; ++w)
    if (kept[w]) first = 64 * w + __builtin_ctzll(kept[w]);
  for (int64_t w = 0; w < kLevelWords; ++w) {
    const int64_t from = std::max<int64_t>(first - 64 * w, 0), to = std::min<int64_t>(levels - 64 * w, 64);
    if (kept[w] != span_bits(from, to)) return -1;
  }
  return first;
}

}  // namespace
}  // namespace bitmaps
