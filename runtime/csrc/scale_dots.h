// The W1A1 linears' epilogue (linear.cpp): the integer dots of a tile to floats, y[i * n + j] =
// float(dots[i * n + j] + add[j]) * factor * scale[j] (+ bias[j]); add null: no addend (XNOR and
// BiT's elastic inputs, factor 1), else BiT's two-set inputs (add = the weights' sums, factor 0.5).
// KernelTable::scale_dots is this loop compiled by an instruction-set file with its flags, so it
// runs at that width rather than the portable core's 4 floats (measured alone on Zen 4 that did
// not change a 128 x 384 x 1536 BiT linear's time: its epilogue's cost was the m x n dot buffer,
// which linear.cpp now keeps per task). Every width computes the same floats (the same
// operations in the same order). In an anonymous namespace, like float_avx2.h: each file that
// includes it compiles its own copy.
#pragma once
#include <cstdint>

namespace bitmaps {
namespace {

inline void scale_dots_rows(const int32_t* dots, const int32_t* add, float factor, const float* scale,
                            const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n) {
  for (int64_t i = m0; i < m1; ++i) {
    const int32_t* d = dots + i * n;
    float* out = y + i * n;
    if (add)
      for (int64_t j = n0; j < n1; ++j) out[j] = static_cast<float>(d[j] + add[j]) * factor * scale[j];
    else
      for (int64_t j = n0; j < n1; ++j) out[j] = static_cast<float>(d[j]) * factor * scale[j];
    if (bias)
      for (int64_t j = n0; j < n1; ++j) out[j] += bias[j];
  }
}

}  // namespace
}  // namespace bitmaps
