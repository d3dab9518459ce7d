// Float kernels for the encoder's non-binary work (attention products, floating-point linears,
// the MLM decoder, GELU, softmax's exponentials) in AVX2 + FMA. In an anonymous namespace, like
// xnor_tile.h: each instruction-set file that includes it compiles its own copy with its flags.
#pragma once
#include <immintrin.h>
#include <algorithm>

#include <cmath>
#include <cstdint>
#include <vector>

#include "avx2_reduce.h"
#include "float_approx.h"
#include "layer_norm_rows.h"
#include "gemm_panels.h"
#include "score_division.h"

namespace bitmaps {
namespace {

// The GEMM micro-kernel (BLIS style): a tile of MR <= 6 rows x 16 columns of C held in 12 ymm
// accumulators; each step broadcasts one A value per row against two 8-wide slices of a packed
// B panel (k x 16, zero-padded), so every loaded B value feeds MR FMAs.
// (+ bias, nullable: KernelTable::sgemm_panel)
inline void store_row16(float* c, __m256 lo, __m256 hi, int columns, const float* bias) {
  if (columns == 16) {
    if (bias) lo = _mm256_add_ps(lo, _mm256_loadu_ps(bias)), hi = _mm256_add_ps(hi, _mm256_loadu_ps(bias + 8));
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
    return;
  }
  alignas(32) float row[16];
  _mm256_store_ps(row, lo);
  _mm256_store_ps(row + 8, hi);
  for (int j = 0; j < columns; ++j) c[j] = bias ? row[j] + bias[j] : row[j];
}

// Named accumulators, not an array: GCC keeps an array of __m256 on the stack, which made this
// loop a chain of loads and stores at a fifth of the FMA rate.
template <int MR>
inline void tile_6x16(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t k, int columns,
                      const float* bias) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#define BITMAPS_ROW(r)                                               \
  if constexpr (MR > r) {                                            \
    const __m256 av = _mm256_broadcast_ss(a + r * lda + t);          \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                      \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1);                      \
  }
  for (int64_t t = 0; t < k; ++t) {
    const __m256 b0 = _mm256_loadu_ps(panel + t * 16), b1 = _mm256_loadu_ps(panel + t * 16 + 8);
    BITMAPS_ROW(0) BITMAPS_ROW(1) BITMAPS_ROW(2) BITMAPS_ROW(3) BITMAPS_ROW(4) BITMAPS_ROW(5)
  }
#undef BITMAPS_ROW
  store_row16(c, c00, c01, columns, bias);
  if constexpr (MR > 1) store_row16(c + ldc, c10, c11, columns, bias);
  if constexpr (MR > 2) store_row16(c + 2 * ldc, c20, c21, columns, bias);
  if constexpr (MR > 3) store_row16(c + 3 * ldc, c30, c31, columns, bias);
  if constexpr (MR > 4) store_row16(c + 4 * ldc, c40, c41, columns, bias);
  if constexpr (MR > 5) store_row16(c + 5 * ldc, c50, c51, columns, bias);
}

inline void tiles_over_rows(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0, int64_t m1,
                            int64_t k, int columns, const float* bias) {
  int64_t i = m0;
  for (; i + 6 <= m1; i += 6) tile_6x16<6>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias);
  switch (m1 - i) {
    case 5: tile_6x16<5>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    case 4: tile_6x16<4>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    case 3: tile_6x16<3>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    case 2: tile_6x16<2>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    case 1: tile_6x16<1>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    default: break;
  }
}

inline void sgemm_panel(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0,
                        int64_t m1, int64_t k, int columns, const float* bias) {
  tiles_over_rows(a, lda, panel, c, ldc, m0, m1, k, columns, bias);
}

inline void unpack_panel(const uint16_t* masks, int64_t k, const float* alpha, int columns, float* panel) {
  alignas(32) float a[16] = {0.f};
  for (int j = 0; j < columns; ++j) a[j] = alpha[j];
  const __m256 lo = _mm256_load_ps(a), hi = _mm256_load_ps(a + 8);
  const __m256 sign = _mm256_set1_ps(-0.f);
  const __m256 lo_neg = _mm256_xor_ps(lo, sign), hi_neg = _mm256_xor_ps(hi, sign);
  const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  for (int64_t t = 0; t < k; ++t) {
    const __m256i m = _mm256_set1_epi32(masks[t]);
    const __m256 low = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(m, bit), bit));
    const __m256 high = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_srli_epi32(m, 8), bit), bit));
    _mm256_storeu_ps(panel + t * 16, _mm256_blendv_ps(lo, lo_neg, low));
    _mm256_storeu_ps(panel + t * 16 + 8, _mm256_blendv_ps(hi, hi_neg, high));
  }
}

// C = A B^T on rows [m0, m1) x columns [n0, n1). Few rows: dot products along k (packing B would
// cost as much as the product); else 16 rows of B at a time transposed into a panel.
inline void sgemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0,
                     int64_t m1, int64_t n0, int64_t n1, int64_t k) {
  if (m1 - m0 < 4) {
    const int64_t k8 = k & ~int64_t{7};
    for (int64_t i = m0; i < m1; ++i)
      for (int64_t j = n0; j < n1; ++j) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t t = 0; t < k8; t += 8)
          acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i * lda + t), _mm256_loadu_ps(b + j * ldb + t), acc);
        float sum = hsum_ps(acc);
        for (int64_t t = k8; t < k; ++t) sum += a[i * lda + t] * b[j * ldb + t];
        c[i * ldc + j] = sum;
      }
    return;
  }
  gemm_nt_panels(tiles_over_rows, a, lda, b, ldb, c, ldc, m0, m1, n0, n1, k);
}

// C = A B on rows [m0, m1), all n columns (B row-major k x n), B copied 16 columns at a time
// into a zero-padded panel.
inline void sgemm_nn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0,
                     int64_t m1, int64_t n, int64_t k) {
  gemm_nn_panels(tiles_over_rows, a, lda, b, ldb, c, ldc, m0, m1, n, k);
}

// softmax_rows.h's row_max in vector registers: lane t keeps the maximum of elements t, t + 8, ...
// as row_max's part[t] does (max_ps(x, p) is its x > p ? x : p, NaN and zero signs included),
// then the same scalar tail and reduction: the same value, bit for bit.
inline float row_max8(const float* row, int64_t n) {
  __m256 part = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) part = _mm256_max_ps(_mm256_loadu_ps(row + j), part);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, part);
  for (; j < n; ++j) lanes[0] = row[j] > lanes[0] ? row[j] : lanes[0];
  float top = lanes[0];
  for (int t = 1; t < 8; ++t) top = lanes[t] > top ? lanes[t] : top;
  return top;
}

// layer_norm_rows.h's loops: the kNormParts = 32 partial sums and sums of squares, each in 8
// vectors of 4 doubles (the same lanes and order as the portable loops: 8 independent chains
// each), and the normalised write in float. The squares are a multiply and an add, not an FMA:
// the portable loop's rounding (every file compiles with -ffp-contract=off). values(k) gives the
// 8 floats from k (and stores them, where it makes them).
template <typename Values>
inline void moment_parts8(int64_t blocks, double* part, double* square, const Values& values) {
  static_assert(kNormParts == 32, "one vector of 4 doubles per 4 parts");
  __m256d acc[8], sq[8];
  for (int a = 0; a < 8; ++a) acc[a] = _mm256_loadu_pd(part + 4 * a), sq[a] = _mm256_loadu_pd(square + 4 * a);
  for (int64_t k = 0; k < blocks * 32; k += 32)
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const __m256 v = values(k + 8 * q);
      const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), b = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      acc[2 * q] = _mm256_add_pd(acc[2 * q], a), acc[2 * q + 1] = _mm256_add_pd(acc[2 * q + 1], b);
      sq[2 * q] = _mm256_add_pd(sq[2 * q], _mm256_mul_pd(a, a)), sq[2 * q + 1] = _mm256_add_pd(sq[2 * q + 1], _mm256_mul_pd(b, b));
    }
  for (int a = 0; a < 8; ++a) _mm256_storeu_pd(part + 4 * a, acc[a]), _mm256_storeu_pd(square + 4 * a, sq[a]);
}

inline void sum_parts8(const float* row, int64_t blocks, double* part, double* square) {
  moment_parts8(blocks, part, square, [row](int64_t k) { return _mm256_loadu_ps(row + k); });
}

// layer_norm_rows.h's add_sum_parts: the residual added in float and stored, then summed as
// sum_parts8 sums
inline void add_sum_parts8(float* row, const float* residual, int64_t blocks, double* part, double* square) {
  moment_parts8(blocks, part, square, [row, residual](int64_t k) {
    const __m256 v = _mm256_add_ps(_mm256_loadu_ps(row + k), _mm256_loadu_ps(residual + k));
    _mm256_storeu_ps(row + k, v);
    return v;
  });
}

inline void normalize8(float* row, int64_t blocks, float mean, float inv, const float* weight, const float* bias) {
  const __m256 m = _mm256_set1_ps(mean), s = _mm256_set1_ps(inv);
  for (int64_t k = 0; k < blocks * 8; k += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(row + k), m), s), _mm256_loadu_ps(weight + k));
    _mm256_storeu_ps(row + k, _mm256_add_ps(v, _mm256_loadu_ps(bias + k)));
  }
}

// exp(x) for x in float range (float_approx.h).
inline __m256 exp8(__m256 x) {
  using namespace approx;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLow)), _mm256_set1_ps(kExpHigh));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2High), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Low), r);
  __m256 p = _mm256_set1_ps(kExpP[0]);
  for (int c = 1; c < 6; ++c) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpP[c]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// x[i] = exp(by(x[i]) - shift), returning the sum; whole vectors through exp8 (map: by's
// operation in 8 lanes), the last count % 8 through std::exp
template <typename Map>
inline float exp_mapped(float* x, int64_t count, float shift, const ScoreDivision& by, Map map) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 total = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m256 v = exp8(_mm256_sub_ps(map(_mm256_loadu_ps(x + i)), s));
    _mm256_storeu_ps(x + i, v);
    total = _mm256_add_ps(total, v);
  }
  float sum = hsum_ps(total);
  for (; i < count; ++i) sum += (x[i] = std::exp(by(x[i]) - shift));
  return sum;
}

inline float exp_shifted(float* x, int64_t count, float shift) {
  return exp_mapped(x, count, shift, ScoreDivision(), [](__m256 v) { return v; });
}

// softmax_rows.h's ExpDivided: the division in the exponentials' pass, where the divider overlaps
// their multiply-adds
inline float exp_divided(float* x, int64_t count, float shift, const ScoreDivision& by) {
  const __m256 divisor = _mm256_set1_ps(by.divisor), reciprocal = _mm256_set1_ps(by.reciprocal);
  if (by.mode == ScoreDivision::kDivide)
    return exp_mapped(x, count, shift, by, [divisor](__m256 v) { return _mm256_div_ps(v, divisor); });
  if (by.mode == ScoreDivision::kMultiply)
    return exp_mapped(x, count, shift, by, [reciprocal](__m256 v) { return _mm256_mul_ps(v, reciprocal); });
  return exp_shifted(x, count, shift);
}

// erf (float_approx.h), saturating outside [-4, 4].
inline __m256 erf8(__m256 x) {
  using namespace approx;
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-kErfClamp)), _mm256_set1_ps(kErfClamp));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(kErfP[0]);
  for (int c = 1; c < 7; ++c) p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(kErfP[c]));
  p = _mm256_mul_ps(x, p);
  __m256 q = _mm256_set1_ps(kErfQ[0]);
  for (int c = 1; c < 5; ++c) q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(kErfQ[c]));
  return _mm256_div_ps(p, q);
}

inline __m256 gelu8(__m256 v) {
  // x * 0.5 * (1 + erf(x / sqrt(2))), torch's order
  const __m256 e = erf8(_mm256_mul_ps(v, _mm256_set1_ps(approx::kSqrtHalf)));
  return _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.5f)), _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

// The tail goes through the same polynomial in a padded vector: a value's GELU does not depend on
// where it sits in the call (the FFN-down's fused preparation activates row by row, the plain pass
// in blocks of 4,096, and both must give the same bits).
inline void gelu(float* x, int64_t count) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, gelu8(_mm256_loadu_ps(x + i)));
  if (i == count) return;
  alignas(32) float tail[8] = {0.f};
  std::copy(x + i, x + count, tail);
  _mm256_store_ps(tail, gelu8(_mm256_load_ps(tail)));
  std::copy(tail, tail + (count - i), x + i);
}

}  // namespace
}  // namespace bitmaps
