// NEON kernels for aarch64 (Advanced SIMD is part of every ARMv8-A core: no flags, no CPU check).
//
// W1A1: eor + cnt (vcntq_u8) per 128 bits, byte counts widened by pairwise adds (vpadalq_u8) into
//   16-bit accumulators, as Larq Compute Engine and daBNN do; the horizontal reductions happen
//   once per output, outside the inner loop. Tiles of 1 activation row x 4 weight rows.
// W1A32: sign flips by XOR with lane masks looked up per weight nibble, 4 weights per vector.
// Float work (attention, dense linears, W1A32 at many rows, the decoder): a 4 x 16 FMA tile
//   (vfmaq_f32) on the same 16-column panels as the AVX2 path; panel unpacking by vtstq_u32.
// Activation packing: compare, narrow and shift to bits, 16 floats at a time.
// W1A8: the table-lookup layout of int8_lut.h with vqtbl1q_u8 (the 16-entry tables are one NEON
//   register, as in T-MAC and bitnet.cpp's TL1): per group, two lookups per byte plane give 32
//   columns' int16 entries, summed in int16 and widened every 64 groups. Exact.
// int8 quantization: the one definition (int8_lut.h), with vcvtnq (round half to even).
// GELU and exp: the AVX2 path's approximations (float_avx2.h: Eigen's rational erf, Cephes' exp
//   polynomial), 4 lanes at a time with vfmaq; within the same tolerance of std::erf / std::exp.
#include <arm_neon.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "float_approx.h"
#include "layer_norm_rows.h"
#include "int8_lut.h"
#include "kernels.h"
#include "softmax_rows.h"
#include "gemm_panels.h"
#include "scalar_spans.h"
#include "xnor_tile.h"

namespace bitmaps {
namespace {

void pack_signs(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs) {
  const int64_t words = words_per_row(k);
  // lane l of a 4-lane compare contributes bit l
  const uint32x4_t weights = {1u, 2u, 4u, 8u};
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    float32x4_t total = vdupq_n_f32(0.f);
    float tail_total = 0.f;
    for (int64_t w = 0; w < words; ++w) {
      // whole 4-value vectors of the word, then the scalar rest (attention heads' 32-value rows)
      const int64_t base = w * 64, span = std::min<int64_t>(k - base, 64), vectors = span / 4;
      uint64_t bits = 0;
      for (int64_t q = 0; q < vectors; ++q) {
        const float32x4_t v = vld1q_f32(row + base + 4 * q);
        // v < 0 rather than the sign bit: -0.0 is +1, as in training
        const uint32x4_t negative = vandq_u32(vcltq_f32(v, vdupq_n_f32(0.f)), weights);
        bits |= static_cast<uint64_t>(vaddvq_u32(negative)) << (4 * q);
        total = vaddq_f32(total, vabsq_f32(v));
      }
      if (4 * vectors < span) bits |= pack_span(row, base + 4 * vectors, base + span, &tail_total) << (4 * vectors);
      out[r * words + w] = bits;
    }
    if (mean_abs != nullptr) mean_abs[r] = (vaddvq_f32(total) + tail_total) / static_cast<float>(k);
  }
}

// below_cut (kernels.h) on 4 values at a time: x < cut (two-set; false for NaN) or !(x >= cut)
// (elastic; true for NaN)
void pack_elastic(const float* x, int64_t rows, int64_t k, int64_t ldx, float cut, bool two_set, uint64_t* out) {
  const int64_t words = words_per_row(k);
  const uint32x4_t weights = {1u, 2u, 4u, 8u};
  const float32x4_t c = vdupq_n_f32(cut);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    for (int64_t w = 0; w < words; ++w) {
      const int64_t base = w * 64, end = k < base + 64 ? k : base + 64, quads = (end - base) / 4;
      uint64_t bits = 0;
      for (int64_t q = 0; q < quads; ++q) {
        const float32x4_t value = vld1q_f32(row + base + 4 * q);
        const uint32x4_t below = two_set ? vcltq_f32(value, c) : vmvnq_u32(vcgeq_f32(value, c));
        bits |= static_cast<uint64_t>(vaddvq_u32(vandq_u32(below, weights))) << (4 * q);
      }
      if (base + 4 * quads < end) bits |= elastic_span(row, base + 4 * quads, end, cut, two_set) << (4 * quads);
      out[r * words + w] = bits;
    }
  }
}

// popcount(a ^ b_j) for one row of a against 4 rows of b, in 16-bit lanes: a 16-bit lane gains at
// most 16 per 128-bit step, so 4096 steps (2^16 / 16) fit before it must be widened.
inline void xnor_counts4(const uint64_t* a, const uint64_t* const* b, int64_t words, int64_t* counts) {
  const int64_t pairs = words / 2;
  uint64x2_t wide0 = vdupq_n_u64(0), wide1 = wide0, wide2 = wide0, wide3 = wide0;
  for (int64_t p = 0; p < pairs;) {
    const int64_t stop = p + 4095 < pairs ? p + 4095 : pairs;
    uint16x8_t c0 = vdupq_n_u16(0), c1 = c0, c2 = c0, c3 = c0;
    for (; p < stop; ++p) {
      const uint8x16_t av = vreinterpretq_u8_u64(vld1q_u64(a + 2 * p));
      c0 = vpadalq_u8(c0, vcntq_u8(veorq_u8(av, vreinterpretq_u8_u64(vld1q_u64(b[0] + 2 * p)))));
      c1 = vpadalq_u8(c1, vcntq_u8(veorq_u8(av, vreinterpretq_u8_u64(vld1q_u64(b[1] + 2 * p)))));
      c2 = vpadalq_u8(c2, vcntq_u8(veorq_u8(av, vreinterpretq_u8_u64(vld1q_u64(b[2] + 2 * p)))));
      c3 = vpadalq_u8(c3, vcntq_u8(veorq_u8(av, vreinterpretq_u8_u64(vld1q_u64(b[3] + 2 * p)))));
    }
    wide0 = vaddq_u64(wide0, vpaddlq_u32(vpaddlq_u16(c0)));
    wide1 = vaddq_u64(wide1, vpaddlq_u32(vpaddlq_u16(c1)));
    wide2 = vaddq_u64(wide2, vpaddlq_u32(vpaddlq_u16(c2)));
    wide3 = vaddq_u64(wide3, vpaddlq_u32(vpaddlq_u16(c3)));
  }
  counts[0] = static_cast<int64_t>(vaddvq_u64(wide0));
  counts[1] = static_cast<int64_t>(vaddvq_u64(wide1));
  counts[2] = static_cast<int64_t>(vaddvq_u64(wide2));
  counts[3] = static_cast<int64_t>(vaddvq_u64(wide3));
  if (words & 1)
    for (int j = 0; j < 4; ++j) counts[j] += __builtin_popcountll(a[words - 1] ^ b[j][words - 1]);
}

struct Counter {
  template <int J>
  static void run(const uint64_t* a, const uint64_t* const* b, int64_t words, int64_t* counts) {
    if constexpr (J == 4) {
      xnor_counts4(a, b, words, counts);
    } else {
      for (int j = 0; j < J; ++j) {
        counts[j] = 0;
        for (int64_t w = 0; w < words; ++w) counts[j] += __builtin_popcountll(a[w] ^ b[j][w]);
      }
    }
  }
};

// The 4 float sign masks of each weight nibble: XOR flips x where the bit is 1.
struct NibbleMasks {
  uint32_t lanes[16][4];
  NibbleMasks() {
    for (int nibble = 0; nibble < 16; ++nibble)
      for (int b = 0; b < 4; ++b) lanes[nibble][b] = ((nibble >> b) & 1) ? 0x80000000u : 0u;
  }
};
const NibbleMasks kNibbleMasks;

void binary_weight_linear(const float* x, int64_t ldx, const uint64_t* w, const float* alpha, const float* bias, float* y,
                          int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k) {
  const int64_t k4 = k / 4 * 4;
  for (int64_t i = m0; i < m1; ++i) {
    const float* row = x + i * ldx;
    for (int64_t j = n0; j < n1; ++j) {
      const uint64_t* bits = w + j * words;
      uint32x4_t acc_bits = vdupq_n_u32(0);
      float32x4_t acc = vreinterpretq_f32_u32(acc_bits);
      for (int64_t t = 0; t < k4; t += 4) {
        const unsigned nibble = static_cast<unsigned>((bits[t >> 6] >> (t & 63)) & 15u);
        const uint32x4_t mask = vld1q_u32(kNibbleMasks.lanes[nibble]);
        acc = vaddq_f32(acc, vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(vld1q_f32(row + t)), mask)));
      }
      const float sum = vaddvq_f32(acc) + signed_span_sum(row, bits, k4, k);
      y[i * n + j] = alpha[j] * sum + (bias ? bias[j] : 0.f);
    }
  }
}

// C[0:MR, 0:16] = A[0:MR, :] x panel (k x 16), 4 x 16 at most: 16 accumulators of 4 floats.
template <int MR>
inline void tile_4x16(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t k, int columns,
                      const float* bias) {
  // every loop over the accumulators fully unrolled, so that they live in registers: without the
  // pragmas GCC 12 kept the array on the stack as well and stored all 16 accumulators in every
  // step of k (8 `stp` beside the 16 `fmla`)
  float32x4_t acc[4][4];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.f);
  for (int64_t t = 0; t < k; ++t) {
    const float32x4_t b0 = vld1q_f32(panel + t * 16), b1 = vld1q_f32(panel + t * 16 + 4);
    const float32x4_t b2 = vld1q_f32(panel + t * 16 + 8), b3 = vld1q_f32(panel + t * 16 + 12);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const float32x4_t av = vdupq_n_f32(a[r * lda + t]);
      acc[r][0] = vfmaq_f32(acc[r][0], av, b0);
      acc[r][1] = vfmaq_f32(acc[r][1], av, b1);
      acc[r][2] = vfmaq_f32(acc[r][2], av, b2);
      acc[r][3] = vfmaq_f32(acc[r][3], av, b3);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
    float row[16];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) vst1q_f32(row + 4 * q, acc[r][q]);
    for (int j = 0; j < columns; ++j) c[r * ldc + j] = bias ? row[j] + bias[j] : row[j];
  }
}

void sgemm_panel(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0, int64_t m1, int64_t k,
                 int columns, const float* bias) {
  int64_t i = m0;
  for (; i + 4 <= m1; i += 4) tile_4x16<4>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias);
  switch (m1 - i) {
    case 3: tile_4x16<3>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    case 2: tile_4x16<2>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    case 1: tile_4x16<1>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns, bias); break;
    default: break;
  }
}

void sgemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0, int64_t m1,
              int64_t n0, int64_t n1, int64_t k) {
  if (m1 - m0 < 4) {  // few rows: dot products along k
    for (int64_t i = m0; i < m1; ++i)
      for (int64_t j = n0; j < n1; ++j) {
        float32x4_t acc = vdupq_n_f32(0.f);
        int64_t t = 0;
        for (; t + 4 <= k; t += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i * lda + t), vld1q_f32(b + j * ldb + t));
        float sum = vaddvq_f32(acc);
        for (; t < k; ++t) sum += a[i * lda + t] * b[j * ldb + t];
        c[i * ldc + j] = sum;
      }
    return;
  }
  gemm_nt_panels(sgemm_panel, a, lda, b, ldb, c, ldc, m0, m1, n0, n1, k);
}

void sgemm_nn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0, int64_t m1,
              int64_t n, int64_t k) {
  gemm_nn_panels(sgemm_panel, a, lda, b, ldb, c, ldc, m0, m1, n, k);
}

void unpack_panel(const uint16_t* masks, int64_t k, const float* alpha, int columns, float* panel) {
  float a[16] = {0.f};
  for (int j = 0; j < columns; ++j) a[j] = alpha[j];
  float32x4_t pos[4], neg[4];
  for (int q = 0; q < 4; ++q) pos[q] = vld1q_f32(a + 4 * q), neg[q] = vnegq_f32(pos[q]);
  const uint32x4_t bit = {1u, 2u, 4u, 8u};
  for (int64_t t = 0; t < k; ++t)
    for (int q = 0; q < 4; ++q) {
      const uint32x4_t set = vtstq_u32(vdupq_n_u32(static_cast<uint32_t>(masks[t] >> (4 * q))), bit);
      vst1q_f32(panel + t * 16 + 4 * q, vbslq_f32(set, neg[q], pos[q]));
    }
}

void quantize_rows_int8_neon(const float* x, int64_t rows, int64_t k, int64_t ldx, int8_t* q, float* inv_scale,
                        int32_t* rowsum) {
  const int64_t padded = words_per_row(k) * 64, k8 = k / 8 * 8;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    float32x4_t vmax = vdupq_n_f32(0.f);
    for (int64_t c = 0; c < k8; c += 4) vmax = vmaxq_f32(vmax, vabsq_f32(vld1q_f32(row + c)));
    float absmax = vmaxvq_f32(vmax);
    for (int64_t c = k8; c < k; ++c) absmax = std::max(absmax, std::fabs(row[c]));
    // int8_lut.h: scale = 127 / max(absmax, 1e-5) and step = 1 / scale, one float division each;
    // q = round half to even of x * scale (vcvtnq)
    const float scale = 127.0f / std::max(absmax, 1e-5f);
    int8_t* out = q + r * padded;
    int32x4_t total = vdupq_n_s32(0);
    for (int64_t c = 0; c < k8; c += 8) {
      const int32x4_t v0 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(row + c), scale));
      const int32x4_t v1 = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(row + c + 4), scale));
      total = vaddq_s32(total, vaddq_s32(v0, v1));
      vst1_s8(out + c, vqmovn_s16(vcombine_s16(vqmovn_s32(v0), vqmovn_s32(v1))));
    }
    int32_t sum = vaddvq_s32(total);
    for (int64_t c = k8; c < k; ++c) {
      const int v = static_cast<int>(std::nearbyint(row[c] * scale));
      out[c] = static_cast<int8_t>(v);
      sum += v;
    }
    for (int64_t c = k; c < padded; ++c) out[c] = 0;
    inv_scale[r] = 1.0f / scale;
    rowsum[r] = sum;
  }
}

// One row x one 32-column block of the W1A8 table-lookup GEMM (int8_lut.h's layouts).
void lut_row_block(const uint8_t* lut, const uint8_t* col, int64_t groups, int32_t* masked) {
  const uint8x16_t low4 = vdupq_n_u8(0x0f);
  int32x4_t acc[8];
  for (int a = 0; a < 8; ++a) acc[a] = vdupq_n_s32(0);
  for (int64_t g0 = 0; g0 < groups; g0 += 64) {
    // int16 sums of at most 64 entries of |508|: no overflow
    int16x8_t s0 = vdupq_n_s16(0), s1 = s0, s2 = s0, s3 = s0;
    const int64_t g1 = std::min(groups, g0 + 64);
    for (int64_t g = g0; g < g1; ++g) {
      const uint8x16_t v = vld1q_u8(col + g * 16);
      const uint8x16_t idx_lo = vandq_u8(v, low4), idx_hi = vshrq_n_u8(v, 4);  // columns 0-15, 16-31
      const uint8x16_t tlo = vld1q_u8(lut + g * 32), thi = vld1q_u8(lut + g * 32 + 16);
      const uint8x16_t l0 = vqtbl1q_u8(tlo, idx_lo), h0 = vqtbl1q_u8(thi, idx_lo);
      const uint8x16_t l1 = vqtbl1q_u8(tlo, idx_hi), h1 = vqtbl1q_u8(thi, idx_hi);
      // interleave low and high bytes back into int16 entries
      s0 = vaddq_s16(s0, vreinterpretq_s16_u8(vzip1q_u8(l0, h0)));  // columns 0-7
      s1 = vaddq_s16(s1, vreinterpretq_s16_u8(vzip2q_u8(l0, h0)));  // 8-15
      s2 = vaddq_s16(s2, vreinterpretq_s16_u8(vzip1q_u8(l1, h1)));  // 16-23
      s3 = vaddq_s16(s3, vreinterpretq_s16_u8(vzip2q_u8(l1, h1)));  // 24-31
    }
    const int16x8_t sums[4] = {s0, s1, s2, s3};
    for (int a = 0; a < 4; ++a) {
      acc[2 * a] = vaddw_s16(acc[2 * a], vget_low_s16(sums[a]));
      acc[2 * a + 1] = vaddw_s16(acc[2 * a + 1], vget_high_s16(sums[a]));
    }
  }
  for (int a = 0; a < 8; ++a) vst1q_s32(masked + 4 * a, acc[a]);
}

void w1a8_linear(const uint8_t* luts, const int8_t*, const int32_t* rowsum, const float* inv_scale, const uint8_t* wlut,
                 const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                 int64_t groups) {
  for (int64_t block = n0 / 32; block * 32 < n1; ++block) {
    const uint8_t* col = wlut + block * groups * 16;
    for (int64_t i = m0; i < m1; ++i) {
      int32_t masked[32];
      lut_row_block(luts + i * groups * 32, col, groups, masked);
      for (int c = 0; c < 32; ++c) {
        const int64_t j = block * 32 + c;
        if (j >= n0 && j < n1) y[i * n + j] = lut_epilogue(rowsum[i], masked[c], inv_scale[i], alpha[j], bias, j);
      }
    }
  }
}

// exp(x) (float_approx.h)
inline float32x4_t exp4(float32x4_t x) {
  using namespace approx;
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(kExpLow)), vdupq_n_f32(kExpHigh));
  const float32x4_t n = vrndnq_f32(vmulq_n_f32(x, kLog2e));
  float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(kLn2High));
  r = vfmsq_f32(r, n, vdupq_n_f32(kLn2Low));
  float32x4_t p = vdupq_n_f32(kExpP[0]);
  for (int c = 1; c < 6; ++c) p = vfmaq_f32(vdupq_n_f32(kExpP[c]), p, r);
  p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.f)), p, vmulq_f32(r, r));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
  return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

// softmax_rows.h's row_max in two 4-lane registers (its part[0..3] and part[4..7]) with its
// compare-and-select (not fmax, which differs on NaN and signed zeros): the same value, bit for bit.
float row_max8(const float* row, int64_t n) {
  float32x4_t lo = vdupq_n_f32(-INFINITY), hi = lo;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const float32x4_t a = vld1q_f32(row + j), b = vld1q_f32(row + j + 4);
    lo = vbslq_f32(vcgtq_f32(a, lo), a, lo);
    hi = vbslq_f32(vcgtq_f32(b, hi), b, hi);
  }
  float lanes[8];
  vst1q_f32(lanes, lo);
  vst1q_f32(lanes + 4, hi);
  for (; j < n; ++j) lanes[0] = row[j] > lanes[0] ? row[j] : lanes[0];
  float top = lanes[0];
  for (int t = 1; t < 8; ++t) top = lanes[t] > top ? lanes[t] : top;
  return top;
}

// softmax_rows.h's ExpDivided: x[i] = exp(by(x[i]) - shift), the division in the exponentials'
// pass; whole vectors through exp4 (map: by's operation in 4 lanes), the tail through std::exp
template <typename Map>
float exp_mapped(float* x, int64_t count, float shift, const ScoreDivision& by, Map map) {
  float32x4_t total = vdupq_n_f32(0.f);
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) {
    const float32x4_t v = exp4(vsubq_f32(map(vld1q_f32(x + i)), vdupq_n_f32(shift)));
    vst1q_f32(x + i, v);
    total = vaddq_f32(total, v);
  }
  float sum = vaddvq_f32(total);
  for (; i < count; ++i) sum += (x[i] = std::exp(by(x[i]) - shift));
  return sum;
}

float exp_divided(float* x, int64_t count, float shift, const ScoreDivision& by) {
  const float32x4_t divisor = vdupq_n_f32(by.divisor), reciprocal = vdupq_n_f32(by.reciprocal);
  if (by.mode == ScoreDivision::kDivide)
    return exp_mapped(x, count, shift, by, [divisor](float32x4_t v) { return vdivq_f32(v, divisor); });
  if (by.mode == ScoreDivision::kMultiply)
    return exp_mapped(x, count, shift, by, [reciprocal](float32x4_t v) { return vmulq_f32(v, reciprocal); });
  return exp_mapped(x, count, shift, by, [](float32x4_t v) { return v; });
}

// erf (float_approx.h), saturating outside [-4, 4]
inline float32x4_t erf4(float32x4_t x) {
  using namespace approx;
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-kErfClamp)), vdupq_n_f32(kErfClamp));
  const float32x4_t x2 = vmulq_f32(x, x);
  float32x4_t p = vdupq_n_f32(kErfP[0]);
  for (int c = 1; c < 7; ++c) p = vfmaq_f32(vdupq_n_f32(kErfP[c]), x2, p);
  p = vmulq_f32(x, p);
  float32x4_t q = vdupq_n_f32(kErfQ[0]);
  for (int c = 1; c < 5; ++c) q = vfmaq_f32(vdupq_n_f32(kErfQ[c]), x2, q);
  return vdivq_f32(p, q);
}

inline float32x4_t gelu4(float32x4_t v) {
  // x * 0.5 * (1 + erf(x / sqrt(2))), torch's order
  const float32x4_t e = erf4(vmulq_n_f32(v, approx::kSqrtHalf));
  return vmulq_f32(vmulq_n_f32(v, 0.5f), vaddq_f32(vdupq_n_f32(1.f), e));
}

// The tail through the same polynomial, as float_avx2.h's gelu: position-independent values.
void gelu(float* x, int64_t count) {
  int64_t i = 0;
  for (; i + 4 <= count; i += 4) vst1q_f32(x + i, gelu4(vld1q_f32(x + i)));
  if (i == count) return;
  float tail[4] = {0.f, 0.f, 0.f, 0.f};
  std::copy(x + i, x + count, tail);
  vst1q_f32(tail, gelu4(vld1q_f32(tail)));
  std::copy(tail, tail + (count - i), x + i);
}

}  // namespace

const KernelTable& neon_kernels() {
  static const KernelTable table = {"neon", pack_signs, xnor_gemm_tiles<Counter>, xnor_linear_tiles<Counter>, binary_weight_linear,
                                    quantize_rows_int8_neon, w1a8_linear, LutFormat::kPlanes,
                                    sgemm_nt, sgemm_nn, sgemm_panel, unpack_panel, gelu, softmax_rows_with<exp_divided, row_max8>,
                                    nullptr, pack_elastic, build_plane_luts, nullptr, nullptr, nullptr,
                                    layer_norm_rows_with<>, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                    nullptr, nullptr, kW1a8RowTile, 16, nullptr, nullptr, nullptr,
                                    add_layer_norm_rows_with<>};
  return table;
}

}  // namespace bitmaps
