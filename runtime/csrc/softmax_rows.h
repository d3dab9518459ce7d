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

// ExpShifted(x, count, shift): x[i] = exp(x[i] - shift), returning the sum (the file's exp);
// RowMax: row_max above, or a file's vector version (GCC leaves row_max's compare-and-select
// scalar: an eighth of the AVX2 softmax's time).
template <float (*ExpShifted)(float*, int64_t, float), float (*RowMax)(const float*, int64_t) = row_max>
void softmax_rows_with(float* x, int64_t rows, int64_t n, float divisor, const int32_t* mask) {
  // x / 2^e and x * 2^-e are the same float (each is the exact quotient rounded once), so a
  // power-of-two divisor (sqrt(d) for d = 16, 64, 256: BERT-base's heads) multiplies, where a
  // division costs several times a multiply's throughput; any other divides, as torch does
  int exponent = 0;
  const bool power_of_two = std::frexp(divisor, &exponent) == 0.5f && exponent > -100 && exponent < 100;
  const float reciprocal = 1.f / divisor;
  for (int64_t i = 0; i < rows; ++i) {
    float* row = x + i * n;
    if (divisor != 1.f && power_of_two)
      for (int64_t j = 0; j < n; ++j) row[j] *= reciprocal;
    else if (divisor != 1.f)
      for (int64_t j = 0; j < n; ++j) row[j] /= divisor;
    float top = -INFINITY;
    if (mask) {
      for (int64_t j = 0; j < n; ++j)
        if (mask[j] != 0 && row[j] > top) top = row[j];
    } else {
      top = RowMax(row, n);
    }
    float total = ExpShifted(row, n, top);
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
