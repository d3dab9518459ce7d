// The float GEMM micro-kernel, W1A32's weight unpacking, GELU and the softmax's loops in 512-bit
// registers (AVX-512F), for the files compiled with AVX-512 flags. The softmax: the exponentials,
// with the division by sqrt(d) in their pass (score_division.h), and the row maximum (a
// multiply-and-correct division with a fallback for tiny values was slower on Zen 4).
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
#include "gemm_panels.h"
#include "score_division.h"

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
  // p * 2^n in one vscalefps, where exp8 builds 2^n's bits (convert, add, shift) and multiplies:
  // the clamp keeps n in [-126, 127], where 2^n is a normal float, so both are p times the same
  // power of two rounded once, the same float (the softmax 0.557 -> 0.497 ns a value, scratch)
  return _mm512_scalef_ps(p, n);
}

// the first `left` of 16 lanes (all 16 from 16 on): the masks of every AVX-512 file's partial vectors
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
}

// The GEMM micro-kernel (float_avx2.h's tile_6x16 in 512-bit registers): MR <= 12 rows x 32
// columns, two consecutive 16-column panels (the second at panel + k * 16; Panels = 1: one panel,
// 16 columns), in up to 24 zmm accumulators. Each step broadcasts one A value per row against one
// 16-wide vector of each panel. Every C value is the same fused multiply-add chain over t as
// tile_6x16's, so both give the same bits, whatever the tile's rows. Why 32 columns: a core with two
// 512-bit FMA pipes (Intel Ice Lake server) needs the FMAs a step to outnumber its loads (2 panel
// vectors + MR broadcasts; its two load ports); one panel a step (8 FMAs, 9 loads) was load-bound.
// On Zen 4 a 512-bit FMA issues as two 256-bit halves, so there it runs at the same rate.
template <int MR, int Panels>
inline void tile_rows_x32(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t k, int columns,
                          const float* bias) {
  static_assert(MR >= 1 && MR <= 12 && (Panels == 1 || Panels == 2), "tile_rows_x32: 1-12 rows, 1 or 2 panels");
  __m512 acc[MR][Panels];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int p = 0; p < Panels; ++p) acc[r][p] = _mm512_setzero_ps();
  const float* second = panel + k * 16;
  for (int64_t t = 0; t < k; ++t) {
    const __m512 b0 = _mm512_loadu_ps(panel + t * 16);
    const __m512 b1 = Panels == 2 ? _mm512_loadu_ps(second + t * 16) : b0;
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + t]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      if constexpr (Panels == 2) acc[r][Panels - 1] = _mm512_fmadd_ps(av, b1, acc[r][Panels - 1]);
    }
  }
  const __mmask16 low = tail_mask(columns), high = columns > 16 ? tail_mask(columns - 16) : 0;
  // KernelTable::sgemm_panel's bias: one add as each row is stored (zero lanes where there is none)
  const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(low, bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias && Panels == 2 ? _mm512_maskz_loadu_ps(high, bias + 16) : _mm512_setzero_ps();
  // a tile of all its columns (every tile of attention's scores and context at head dimension 32)
  // stores with plain stores: on Zen 4 a masked 512-bit store costs more than a plain one, and the
  // scores' tiles (k = 32) store 16 vectors for 512 FMAs (forward 1.010x, scratch A/B)
  if (columns == 16 * Panels) {
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      _mm512_storeu_ps(c + r * ldc, bias ? _mm512_add_ps(acc[r][0], bias0) : acc[r][0]);
      if constexpr (Panels == 2)
        _mm512_storeu_ps(c + r * ldc + 16, bias ? _mm512_add_ps(acc[r][Panels - 1], bias1) : acc[r][Panels - 1]);
    }
    return;
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc, low, bias ? _mm512_add_ps(acc[r][0], bias0) : acc[r][0]);
    if constexpr (Panels == 2)
      _mm512_mask_storeu_ps(c + r * ldc + 16, high, bias ? _mm512_add_ps(acc[r][Panels - 1], bias1) : acc[r][Panels - 1]);
  }
}

// Rows in tiles of Rows, then the 1 to Rows - 1 left in one tile of that many rows.
template <int Rows, int Panels>
inline void tiles_over_rows512(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0,
                            int64_t m1, int64_t k, int columns, const float* bias) {
  int64_t i = m0;
  for (; i + Rows <= m1; i += Rows) tile_rows_x32<Rows, Panels>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias);
  // fewer than Rows left: one size down, until a full tile of the rows left
  if constexpr (Rows > 1)
    if (i < m1) tiles_over_rows512<Rows - 1, Panels>(a, lda, panel, c, ldc, i, m1, k, columns, bias);
}

// KernelTable::sgemm_panel for the AVX-512 paths: up to kPanelColumns512 columns, from one panel
// (columns <= 16) or two consecutive ones. Tiles of 12 rows where k is long (24 accumulators, the
// two panel vectors and a broadcast: 27 of the 32 registers; 24 FMAs a step against 14 loads):
// W1A32 forwards at paired 1.014-1.016x the 8-row tile's, bit-identical (Ice Lake-SP, 1 thread,
// batch 1, runtime_ab_icx_tile12_w1a32_1t.json); whole layers at 128 rows 1.01-1.03x (scratch).
// 14 rows, and k in blocks of 256-768 with C kept between them, were no faster (scratch). Tiles
// of 8 where k is short: attention's scores at head dimension 32 (24 query rows, 128 keys) ran at
// 0.965x in 12-row tiles (scratch), the accumulators' setup and stores counting for more there.
constexpr int kPanelColumns512 = 32;
constexpr int64_t kLongK512 = 64;
inline void sgemm_panel512(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0,
                           int64_t m1, int64_t k, int columns, const float* bias) {
  const bool two = columns > 16;
  if (k >= kLongK512)
    two ? tiles_over_rows512<12, 2>(a, lda, panel, c, ldc, m0, m1, k, columns, bias)
        : tiles_over_rows512<12, 1>(a, lda, panel, c, ldc, m0, m1, k, columns, bias);
  else
    two ? tiles_over_rows512<8, 2>(a, lda, panel, c, ldc, m0, m1, k, columns, bias)
        : tiles_over_rows512<8, 1>(a, lda, panel, c, ldc, m0, m1, k, columns, bias);
}

// KernelTable::unpack_panel in one 512-bit blend a step, the mask register loaded straight from the
// panel bits (float_avx2.h's: a broadcast, two compares and two blends): the same floats, +-alpha
// and 0 in the columns past `columns` (whose bits are 0). It had been 6% of a W1A32 forward, for
// 1/128 of its multiply-adds: a store-bound loop at two 256-bit stores a step.
inline void unpack_panel512(const uint16_t* masks, int64_t k, const float* alpha, int columns, float* panel) {
  const __mmask16 live = tail_mask(columns);
  const __m512 positive = _mm512_maskz_loadu_ps(live, alpha);
  const __m512 negative = _mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(positive), _mm512_maskz_set1_epi32(live, static_cast<int>(0x80000000u))));
  for (int64_t t = 0; t < k; ++t)
    _mm512_storeu_ps(panel + t * 16, _mm512_mask_blend_ps(static_cast<__mmask16>(masks[t]), positive, negative));
}

// r[i] lane j becomes r[j] lane i: a 16 x 16 float transpose in four rounds of shuffles
// (within 64-bit pairs, within 128-bit lanes, then across 128-bit lanes twice).
inline void transpose16x16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  for (int i = 0; i < 16; i += 4)
    for (int h = 0; h < 2; ++h) {
      r[i + 2 * h] = _mm512_shuffle_ps(t[i + h], t[i + h + 2], _MM_SHUFFLE(1, 0, 1, 0));
      r[i + 2 * h + 1] = _mm512_shuffle_ps(t[i + h], t[i + h + 2], _MM_SHUFFLE(3, 2, 3, 2));
    }
  for (int i = 0; i < 16; i += 8)
    for (int q = 0; q < 4; ++q) {
      t[i + q] = _mm512_shuffle_f32x4(r[i + q], r[i + q + 4], 0x88);
      t[i + q + 4] = _mm512_shuffle_f32x4(r[i + q], r[i + q + 4], 0xdd);
    }
  for (int q = 0; q < 8; ++q) {
    r[q] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
    r[q + 8] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xdd);
  }
}

// KernelTable::panel_from_rows: 16 values of each of the 16 rows loaded, turned in registers and
// stored as 16 panel rows (gemm_panels.h's loop reads one float of a row a step, 16 rows apart).
inline void panel_from_rows16(const float* b, int64_t ldb, int64_t j, int columns, int64_t k, float* panel) {
  for (int64_t t0 = 0; t0 < k; t0 += 16) {
    const __mmask16 live = tail_mask(k - t0);
    __m512 r[16];
    for (int jj = 0; jj < 16; ++jj)
      r[jj] = jj < columns ? _mm512_maskz_loadu_ps(live, b + (j + jj) * ldb + t0) : _mm512_setzero_ps();
    transpose16x16(r);
    for (int64_t tt = 0; tt < 16 && t0 + tt < k; ++tt) _mm512_storeu_ps(panel + (t0 + tt) * 16, r[tt]);
  }
}

// KernelTable::panel_from_columns: one masked 16-float load and store a panel row
inline void panel_from_columns16(const float* b, int64_t ldb, int64_t j, int columns, int64_t k, float* panel) {
  const __mmask16 live = tail_mask(columns);
  for (int64_t t = 0; t < k; ++t) _mm512_storeu_ps(panel + t * 16, _mm512_maskz_loadu_ps(live, b + t * ldb + j));
}

// KernelTable::sgemm_nt and sgemm_nn on it (gemm_panels.h, two panels a step). Below 4 rows
// sgemm_nt takes dot products along k instead, as float_avx2.h's does: packing B would cost as
// much as the product (the MLM decoder's few masked rows against the whole vocabulary).
inline void sgemm_nt512(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0,
                        int64_t m1, int64_t n0, int64_t n1, int64_t k) {
  if (m1 - m0 >= 4) return gemm_nt_panels<2>(sgemm_panel512, a, lda, b, ldb, c, ldc, m0, m1, n0, n1, k, panel_from_rows16);
  for (int64_t i = m0; i < m1; ++i)
    for (int64_t j = n0; j < n1; ++j) {
      __m512 acc = _mm512_setzero_ps();
      for (int64_t t = 0; t < k; t += 16) {
        const __mmask16 live = tail_mask(k - t);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(live, a + i * lda + t), _mm512_maskz_loadu_ps(live, b + j * ldb + t), acc);
      }
      c[i * ldc + j] = _mm512_reduce_add_ps(acc);
    }
}

inline void sgemm_nn512(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0,
                        int64_t m1, int64_t n, int64_t k) {
  gemm_nn_panels<2>(sgemm_panel512, a, lda, b, ldb, c, ldc, m0, m1, n, k);
}

// erf and GELU (float_avx2.h's erf8 and gelu8, the same operations in the same order, so each value
// is the same float on both paths). Ice Lake divides 16 floats in one 512-bit vdivps at about the
// per-element rate of two 256-bit ones, and the 12 FMAs issue on its two 512-bit ports.
inline __m512 erf16(__m512 x) {
  using namespace approx;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-kErfClamp)), _mm512_set1_ps(kErfClamp));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(kErfP[0]);
  for (int c = 1; c < 7; ++c) p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(kErfP[c]));
  p = _mm512_mul_ps(x, p);
  __m512 q = _mm512_set1_ps(kErfQ[0]);
  for (int c = 1; c < 5; ++c) q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(kErfQ[c]));
  return _mm512_div_ps(p, q);
}

inline __m512 gelu16(__m512 v) {
  const __m512 e = erf16(_mm512_mul_ps(v, _mm512_set1_ps(approx::kSqrtHalf)));
  return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_set1_ps(0.5f)), _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

// KernelTable::gelu: the tail through the same polynomial in masked lanes, so that a value's GELU
// does not depend on where it sits in the call (float_avx2.h's gelu says why)
inline void gelu512(float* x, int64_t count) {
  int64_t i = 0;
  // four vectors at a time, each the same operations: one a step, GCC keeps the loop rolled and
  // the erf chains (a division each) overlap too little; written out, they overlap in the
  // instruction stream (0.321 -> 0.291 ns a value over 128 x 1536, scratch)
  for (; i + 64 <= count; i += 64) {
    __m512 v[4];
    for (int t = 0; t < 4; ++t) v[t] = gelu16(_mm512_loadu_ps(x + i + 16 * t));
    for (int t = 0; t < 4; ++t) _mm512_storeu_ps(x + i + 16 * t, v[t]);
  }
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(x + i, gelu16(_mm512_loadu_ps(x + i)));
  if (i < count) {
    const __mmask16 m = tail_mask(count - i);
    _mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// x[i] = exp(map(x[i]) - shift), returning the sum; the tail through the same exp16 (masked), so
// a value's exp does not depend on where it sits in the row.
template <typename Map>
inline float exp_mapped16(float* x, int64_t count, float shift, Map map) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512 total = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512 v = exp16(_mm512_sub_ps(map(_mm512_loadu_ps(x + i)), s));
    _mm512_storeu_ps(x + i, v);
    total = _mm512_add_ps(total, v);
  }
  if (i < count) {
    const __mmask16 m = tail_mask(count - i);
    const __m512 v = exp16(_mm512_sub_ps(map(_mm512_maskz_loadu_ps(m, x + i)), s));
    _mm512_mask_storeu_ps(x + i, m, v);
    total = _mm512_mask_add_ps(total, m, total, v);
  }
  return _mm512_reduce_add_ps(total);
}

inline float exp_shifted16(float* x, int64_t count, float shift) {
  return exp_mapped16(x, count, shift, [](__m512 v) { return v; });
}

// x[i] = exp(by(x[i]) - shift) (softmax_rows.h's ExpDivided): the vdivps in the exponentials'
// pass, where its own pass had left the FMA ports idle (0.615 -> 0.557 ns a softmax value, scratch)
inline float exp_divided16(float* x, int64_t count, float shift, const ScoreDivision& by) {
  const __m512 divisor = _mm512_set1_ps(by.divisor), reciprocal = _mm512_set1_ps(by.reciprocal);
  if (by.mode == ScoreDivision::kDivide)
    return exp_mapped16(x, count, shift, [divisor](__m512 v) { return _mm512_div_ps(v, divisor); });
  if (by.mode == ScoreDivision::kMultiply)
    return exp_mapped16(x, count, shift, [reciprocal](__m512 v) { return _mm512_mul_ps(v, reciprocal); });
  return exp_shifted16(x, count, shift);
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
