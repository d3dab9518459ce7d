// Attention weights of score rows as the training module computes them: scores / divisor (torch
// divides by the float32 sqrt(d)), then softmax over the keys, where padded keys (mask 0) count in
// neither the maximum nor the sum and weigh 0, normalised by multiplying with 1 / sum as torch's
// CPU softmax does. A template over the file's own exp: each
// instruction-set file compiles it with its flags, so the divisions and the maximum vectorize at
// that width (the encoder's base flags divided 4 floats at a time, which had made the two
// division passes most of the softmax time). In an anonymous namespace, like float_avx2.h.
#pragma once
#include <cmath>
#include <cstdint>

#include "score_division.h"

namespace bitmaps {
namespace {

inline float row_max(const float* row, int64_t n) {
  float part[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int t = 0; t < 8; ++t) part[t] = row[j + t] > part[t] ? row[j + t] : part[t];
  for (; j < n; ++j) part[0] = row[j] > part[0] ? row[j] : part[0];
  float top = part[0];
  for (int t = 1; t < 8; ++t) top = part[t] > top ? part[t] : top;
  return top;
}

// ExpDivided(x, count, shift, by): x[i] = exp(by(x[i]) - shift), returning the sum (the file's
// exp, the division inside its pass); RowMax: row_max above, or a file's vector version (GCC
// leaves row_max's compare-and-select scalar: an eighth of the AVX2 softmax's time).
template <float (*ExpDivided)(float*, int64_t, float, const ScoreDivision&), float (*RowMax)(const float*, int64_t) = row_max>
void softmax_rows_with(float* x, int64_t rows, int64_t n, float divisor, const int32_t* mask) {
  const ScoreDivision by(divisor);
  // a divisor <= 0 or NaN: the quotients first, then the softmax as for divisor 1
  const ScoreDivision scale = by.monotonic() ? by : ScoreDivision();
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * n;
    if (!by.monotonic())
      for (int64_t j = 0; j < n; ++j) row[j] = by(row[j]);
    float top = -INFINITY;
    if (mask) {
      for (int64_t j = 0; j < n; ++j)
        if (mask[j] != 0 && row[j] > top) top = row[j];
    } else {
      top = RowMax(row, n);
    }
    float total = ExpDivided(row, n, scale(top), scale);
    if (mask)
      for (int64_t j = 0; j < n; ++j)
        if (mask[j] == 0) total -= row[j], row[j] = 0.f;  // padded keys weigh nothing
    // times the reciprocal, as torch's softmax normalises (one division per row, not per element)
    const float inverse = 1.f / total;
    for (int64_t j = 0; j < n; ++j) row[j] *= inverse;
  }
}

}  // namespace
}  // namespace bitmaps
