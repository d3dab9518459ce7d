// NEON kernels for aarch64 (Advanced SIMD is part of every ARMv8-A core: no flags, no CPU check).
//
// W1A1: eor + cnt (vcntq_u8) per 128 bits, byte counts widened by pairwise adds (vpadalq_u8) into
//   16-bit accumulators, as Larq Compute Engine and daBNN do; the horizontal reductions happen
//   once per output, outside the inner loop. Tiles of 1 activation row x 4 weight rows.
// W1A32: sign flips by XOR with lane masks looked up per weight nibble, 4 weights per vector.
// Float work (attention, dense linears, W1A32 at many rows, the decoder): a 4 x 16 FMA tile
//   (vfmaq_f32) on the same 16-column panels as the AVX2 path; panel unpacking by vtstq_u32.
// Activation packing: compare, narrow and shift to bits, 16 floats at a time.
// W1A8, int8 quantization, GELU and exp: the portable definitions (int8_lut.cpp, kernels_scalar.cpp),
//   taken from the scalar table; a table-lookup (vqtbl1q_u8) or sdot W1A8 is still to come.
#include <arm_neon.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "scalar_spans.h"

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
      const int64_t base = w * 64;
      uint64_t bits = 0;
      if (k - base >= 64) {
        for (int q = 0; q < 16; ++q) {
          const float32x4_t v = vld1q_f32(row + base + 4 * q);
          // v < 0 rather than the sign bit: -0.0 is +1, as in training
          const uint32x4_t negative = vandq_u32(vcltq_f32(v, vdupq_n_f32(0.f)), weights);
          bits |= static_cast<uint64_t>(vaddvq_u32(negative)) << (4 * q);
          total = vaddq_f32(total, vabsq_f32(v));
        }
      } else {
        bits = pack_span(row, base, k, &tail_total);
      }
      out[r * words + w] = bits;
    }
    if (mean_abs != nullptr) mean_abs[r] = (vaddvq_f32(total) + tail_total) / static_cast<float>(k);
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

inline int64_t xnor_count1(const uint64_t* a, const uint64_t* b, int64_t words) {
  int64_t total = 0;
  for (int64_t w = 0; w < words; ++w) total += __builtin_popcountll(a[w] ^ b[w]);
  return total;
}

template <typename Store>
void xnor_tiles(const uint64_t* a, const uint64_t* b, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t words,
                int64_t k, Store store) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* ai = a + i * words;
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) {
      const uint64_t* bj[4] = {b + j * words, b + (j + 1) * words, b + (j + 2) * words, b + (j + 3) * words};
      int64_t counts[4];
      xnor_counts4(ai, bj, words, counts);
      for (int t = 0; t < 4; ++t) store(i, j + t, static_cast<int32_t>(k - 2 * counts[t]));
    }
    for (; j < n1; ++j) store(i, j, static_cast<int32_t>(k - 2 * xnor_count1(ai, b + j * words, words)));
  }
}

void xnor_gemm(const uint64_t* a, const uint64_t* b, int32_t* out, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
               int64_t n, int64_t words, int64_t k) {
  xnor_tiles(a, b, m0, m1, n0, n1, words, k, [&](int64_t i, int64_t j, int32_t dot) { out[i * n + j] = dot; });
}

void xnor_linear(const uint64_t* a, const uint64_t* b, const float* beta, const float* alpha, const float* bias, float* y,
                 int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k) {
  xnor_tiles(a, b, m0, m1, n0, n1, words, k, [&](int64_t i, int64_t j, int32_t dot) {
    y[i * n + j] = beta[i] * alpha[j] * static_cast<float>(dot) + (bias ? bias[j] : 0.f);
  });
}

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
inline void tile_4x16(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t k, int columns) {
  float32x4_t acc[4][4];
  for (int r = 0; r < 4; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.f);
  for (int64_t t = 0; t < k; ++t) {
    const float32x4_t b0 = vld1q_f32(panel + t * 16), b1 = vld1q_f32(panel + t * 16 + 4);
    const float32x4_t b2 = vld1q_f32(panel + t * 16 + 8), b3 = vld1q_f32(panel + t * 16 + 12);
    for (int r = 0; r < MR; ++r) {
      const float32x4_t av = vdupq_n_f32(a[r * lda + t]);
      acc[r][0] = vfmaq_f32(acc[r][0], av, b0);
      acc[r][1] = vfmaq_f32(acc[r][1], av, b1);
      acc[r][2] = vfmaq_f32(acc[r][2], av, b2);
      acc[r][3] = vfmaq_f32(acc[r][3], av, b3);
    }
  }
  for (int r = 0; r < MR; ++r) {
    float row[16];
    for (int q = 0; q < 4; ++q) vst1q_f32(row + 4 * q, acc[r][q]);
    for (int j = 0; j < columns; ++j) c[r * ldc + j] = row[j];
  }
}

void sgemm_panel(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0, int64_t m1, int64_t k,
                 int columns) {
  int64_t i = m0;
  for (; i + 4 <= m1; i += 4) tile_4x16<4>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns);
  switch (m1 - i) {
    case 3: tile_4x16<3>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns); break;
    case 2: tile_4x16<2>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns); break;
    case 1: tile_4x16<1>(a + i * lda, lda, panel, c + i * ldc, ldc, k, columns); break;
    default: break;
  }
}

float* panel_buffer(int64_t k) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < k * 16) buffer.resize(static_cast<size_t>(k * 16));
  return buffer.data();
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
  float* panel = panel_buffer(k);
  for (int64_t j = n0; j < n1; j += 16) {
    const int columns = static_cast<int>(n1 - j < 16 ? n1 - j : 16);
    for (int64_t t = 0; t < k; ++t)
      for (int jj = 0; jj < 16; ++jj) panel[t * 16 + jj] = jj < columns ? b[(j + jj) * ldb + t] : 0.f;
    sgemm_panel(a, lda, panel, c + j, ldc, m0, m1, k, columns);
  }
}

void sgemm_nn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0, int64_t m1,
              int64_t n, int64_t k) {
  float* panel = panel_buffer(k);
  for (int64_t j = 0; j < n; j += 16) {
    const int columns = static_cast<int>(n - j < 16 ? n - j : 16);
    for (int64_t t = 0; t < k; ++t)
      for (int jj = 0; jj < 16; ++jj) panel[t * 16 + jj] = jj < columns ? b[t * ldb + j + jj] : 0.f;
    sgemm_panel(a, lda, panel, c + j, ldc, m0, m1, k, columns);
  }
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

}  // namespace

// Built on first call from the scalar table (not a static initializer reading another file's table).
const KernelTable& neon_kernels(const KernelTable& scalar) {
  static const KernelTable table = {"neon", pack_signs, xnor_gemm, xnor_linear, binary_weight_linear,
                                    scalar.quantize_rows_int8, scalar.w1a8_linear, scalar.w1a8_uses_luts,
                                    sgemm_nt, sgemm_nn, sgemm_panel, unpack_panel, scalar.gelu, scalar.exp_shifted};
  return table;
}

}  // namespace bitmaps
