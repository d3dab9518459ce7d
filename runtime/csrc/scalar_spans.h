// The scalar loops every path needs: whole rows in the portable path, the partial last word in the
// SIMD paths. In an anonymous namespace, like xnor_tile.h: each instruction-set file compiles its
// own copy with its own flags.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels.h"

namespace bitmaps {
namespace {

// Sign bits of row[from, to) (at most 64), bit (k - from) set where row[k] < 0; adds |row[k]| to *total.
inline uint64_t pack_span(const float* row, int64_t from, int64_t to, float* total) {
  uint64_t bits = 0;
  for (int64_t k = from; k < to; ++k) {
    bits |= static_cast<uint64_t>(row[k] < 0.f) << (k - from);
    *total += std::fabs(row[k]);
  }
  return bits;
}

// Sum of row[k] over [from, to), negated where bit k of the packed weight row is 1.
inline float signed_span_sum(const float* row, const uint64_t* bits, int64_t from, int64_t to) {
  float sum = 0.f;
  for (int64_t k = from; k < to; ++k) sum += ((bits[k >> 6] >> (k & 63)) & 1) ? -row[k] : row[k];
  return sum;
}

// Bits of row[from, to) (at most 64) below the cut (kernels.h below_cut).
inline uint64_t elastic_span(const float* row, int64_t from, int64_t to, float cut, bool two_set) {
  uint64_t bits = 0;
  for (int64_t k = from; k < to; ++k) bits |= static_cast<uint64_t>(below_cut(row[k], cut, two_set)) << (k - from);
  return bits;
}

// KernelTable::pack_elastic on whole rows, one value at a time (the portable path's and the paths
// without a vector version).
inline void pack_elastic_rows(const float* x, int64_t rows, int64_t k, int64_t ldx, float cut, bool two_set,
                              uint64_t* out) {
  const int64_t words = words_per_row(k);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t w = 0; w < words; ++w)
      out[r * words + w] = elastic_span(x + r * ldx, w * 64, w * 64 + 64 < k ? w * 64 + 64 : k, cut, two_set);
}

}  // namespace
}  // namespace bitmaps
