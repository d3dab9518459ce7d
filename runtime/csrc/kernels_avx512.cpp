// AVX-512 kernels (compiled with -mavx512f -mavx512bw -mpopcnt; called only after a CPU check).
// Popcount uses the 512-bit pshufb nibble lookup, so AVX512-VPOPCNTDQ is not required.
#include <immintrin.h>

#include <cmath>

#include "avx2_reduce.h"
#include "bit_row_sums.h"
#include "bits_avx512.h"
#include "float_avx2.h"
#include "float_avx512.h"
#include "kernels.h"
#include "scale_dots.h"
#include "softmax_rows.h"
#include "two_set_attention_avx512.h"
#include "layer_norm_rows.h"
#include "lut_tile_avx2.h"
#include "quantize_avx512.h"
#include "scalar_spans.h"
#include "xnor_tile.h"

namespace bitmaps {
namespace {

inline __m512i popcount_bytes(__m512i v) {
  const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
  const __m512i low = _mm512_set1_epi8(0x0f);
  const __m512i lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low));
  const __m512i hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
  return _mm512_add_epi8(lo, hi);
}

template <int J>
inline void xnor_counts(const uint64_t* a, const uint64_t* const* b, int64_t words, int64_t* counts) {
  __m512i wide[J], bytes[J];
  for (int j = 0; j < J; ++j) wide[j] = bytes[j] = _mm512_setzero_si512();
  const int64_t vectors = words / 8;
  for (int64_t v = 0; v < vectors;) {
    const int64_t stop = v + 31 < vectors ? v + 31 : vectors;
    for (; v < stop; ++v) {
      const __m512i av = _mm512_loadu_si512(a + 8 * v);
      for (int j = 0; j < J; ++j)
        bytes[j] = _mm512_add_epi8(bytes[j], popcount_bytes(_mm512_xor_si512(av, _mm512_loadu_si512(b[j] + 8 * v))));
    }
    for (int j = 0; j < J; ++j) {
      wide[j] = _mm512_add_epi64(wide[j], _mm512_sad_epu8(bytes[j], _mm512_setzero_si512()));
      bytes[j] = _mm512_setzero_si512();
    }
  }
  if constexpr (J == 4) {
    // fold each accumulator to 256 bits, then sum all four at once
    __m256i half[4];
    for (int j = 0; j < 4; ++j)
      half[j] = _mm256_add_epi64(_mm512_castsi512_si256(wide[j]), _mm512_extracti64x4_epi64(wide[j], 1));
    sum_lanes4(half, counts);
  } else {
    for (int j = 0; j < J; ++j) counts[j] = _mm512_reduce_add_epi64(wide[j]);
  }
  for (int j = 0; j < J; ++j)
    for (int64_t w = 8 * vectors; w < words; ++w) counts[j] += _mm_popcnt_u64(a[w] ^ b[j][w]);
}

struct Counter {
  template <int J>
  static void run(const uint64_t* a, const uint64_t* const* b, int64_t words, int64_t* counts) {
    xnor_counts<J>(a, b, words, counts);
  }
};

// 16 weight bits are a mask register that selects the lanes whose sign bit an XOR flips.
// 4 output rows x 2 tokens at a time, so each weight mask and each x load is used several times.
void binary_weight_linear(const float* x, int64_t ldx, const uint64_t* w, const float* alpha,
                          const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k) {
  const int64_t k16 = k / 16 * 16;
  const __m512i sign = _mm512_set1_epi32(static_cast<int>(0x80000000u));
  auto flip = [&](__m512 v, uint16_t bits) {  // integer XOR: AVX-512F only, no DQ needed
    return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_maskz_mov_epi32(static_cast<__mmask16>(bits), sign)));
  };
  auto finish = [&](const float* xi, __m512 acc, int64_t row) {
    const float total = _mm512_reduce_add_ps(acc) + signed_span_sum(xi, w + row * words, k16, k);
    return alpha[row] * total + (bias ? bias[row] : 0.f);
  };
  for (int64_t j = n0; j < n1; j += 4) {
    const int rows = n1 - j < 4 ? static_cast<int>(n1 - j) : 4;
    const uint16_t* wb[4];
    for (int r = 0; r < 4; ++r) wb[r] = reinterpret_cast<const uint16_t*>(w + (j + (r < rows ? r : 0)) * words);
    int64_t i = m0;
    for (; i + 2 <= m1; i += 2) {
      const float* x0 = x + i * ldx;
      const float* x1 = x0 + ldx;
      __m512 acc0[4], acc1[4];
      for (int r = 0; r < 4; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
      for (int64_t kk = 0; kk < k16; kk += 16) {
        const __m512 v0 = _mm512_loadu_ps(x0 + kk), v1 = _mm512_loadu_ps(x1 + kk);
        for (int r = 0; r < 4; ++r) {
          const uint16_t bits = wb[r][kk >> 4];
          acc0[r] = _mm512_add_ps(acc0[r], flip(v0, bits));
          acc1[r] = _mm512_add_ps(acc1[r], flip(v1, bits));
        }
      }
      for (int r = 0; r < rows; ++r) {
        y[i * n + j + r] = finish(x0, acc0[r], j + r);
        y[(i + 1) * n + j + r] = finish(x1, acc1[r], j + r);
      }
    }
    for (; i < m1; ++i) {
      const float* xi = x + i * ldx;
      __m512 acc[4];
      for (int r = 0; r < 4; ++r) acc[r] = _mm512_setzero_ps();
      for (int64_t kk = 0; kk < k16; kk += 16) {
        const __m512 v = _mm512_loadu_ps(xi + kk);
        for (int r = 0; r < 4; ++r)
          acc[r] = _mm512_add_ps(acc[r], flip(v, wb[r][kk >> 4]));
      }
      for (int r = 0; r < rows; ++r) y[i * n + j + r] = finish(xi, acc[r], j + r);
    }
  }
}

}  // namespace

extern const KernelTable kAvx512Kernels;
const KernelTable kAvx512Kernels = {"avx512", pack_signs16, xnor_gemm_tiles<Counter>, xnor_linear_tiles<Counter>,
                                  binary_weight_linear, quantize_rows_int8_avx512, lut_linear_avx2, LutFormat::kSplit6,
                                  sgemm_nt512, sgemm_nn512, sgemm_panel512, unpack_panel512, gelu512, softmax_rows_with<exp_divided16, row_max16>,
                                  nullptr, pack_elastic16, build_luts_avx2, nullptr, nullptr, nullptr,
                                  layer_norm_rows_with<sum_parts8, normalize8>, nullptr, nullptr, lut_w158a8_avx2,
                                  two_set_attention_avx512, scale_dots_rows, transpose_bits16, bit_row_sums_portable,
                                  pack_negative16, nullptr, kW1a8RowTile, kPanelColumns512, panel_from_rows16,
                                    panel_from_columns16, pack_gelu_signs16,
                                    add_layer_norm_rows_with<sum_parts8, normalize8, add_sum_parts8>};

}  // namespace bitmaps
