// The scalar loops every path needs: whole rows in the portable path, the partial last word in the
// SIMD paths. In an anonymous namespace, like xnor_tile.h: each instruction-set file compiles its
// own copy with its own flags.
#pragma once
#include <cmath>
#include <cstdint>

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

}  // namespace
}  // namespace bitmaps
