// The softmax's loops in 512-bit registers (AVX-512F), for the files compiled with AVX-512 flags:
// the exponentials and the row maximum (the division by sqrt(d) is the plain loop, which GCC
// vectorizes; a multiply-and-correct version with a fallback for tiny values was slower on Zen 4).
// On Zen 4 a 512-bit operation issues as two 256-bit halves, so the gain is not in arithmetic
// width but in half as many instructions in flight: the exp's dependent FMA chain is hidden over
// twice the elements (one head's 128 x 128 exponentials 7.5 -> 5.0 us in a scratch measurement;
// benchmarks/results/attention_kernels_zen4_softmax512.json for the softmax). In an anonymous
// namespace, like float_avx2.h: each instruction-set file that includes it compiles its own copy.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "float_approx.h"

namespace bitmaps {
namespace {

// exp(x) (float_approx.h): the operations of float_avx2.h's exp8 in the same order, so each
// value is the same float bit for bit on both paths.
inline __m512 exp16(__m512 x) {
  using namespace approx;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(kExpLow)), _mm512_set1_ps(kExpHigh));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2High), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Low), r);
  __m512 p = _mm512_set1_ps(kExpP[0]);
  for (int c = 1; c < 6; ++c) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpP[c]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

// the first `left` of 16 lanes (all 16 from 16 on): the masks of every AVX-512 file's partial vectors
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// x[i] = exp(x[i] - shift), returning the sum; the tail through the same exp16 (masked), so a
// value's exp does not depend on where it sits in the row.
inline float exp_shifted16(float* x, int64_t count, float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 total = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512 v = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), s));
    _mm512_storeu_ps(x + i, v);
    total = _mm512_add_ps(total, v);
  }
  if (i < count) {
    const __mmask16 m = tail_mask(count - i);
    const __m512 v = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), s));
    _mm512_mask_storeu_ps(x + i, m, v);
    total = _mm512_mask_add_ps(total, m, total, v);
  }
  return _mm512_reduce_add_ps(total);
}

inline float row_max16(const float* row, int64_t n) {
  __m512 part = _mm512_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) part = _mm512_max_ps(_mm512_loadu_ps(row + j), part);
  if (j < n) part = _mm512_mask_max_ps(part, tail_mask(n - j), _mm512_maskz_loadu_ps(tail_mask(n - j), row + j), part);
  return _mm512_reduce_max_ps(part);
}

}  // namespace
}  // namespace bitmaps
