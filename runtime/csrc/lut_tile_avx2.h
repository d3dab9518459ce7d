// The W1A8 table-lookup kernel with AVX2 byte shuffles on kSplit6 tables (int8_lut.h), shared by
// the AVX2 and AVX-512 builds (the 16-entry tables fit one 128-bit lane, which is what pshufb
// indexes).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "int8_lut.h"

namespace bitmaps {
namespace {

// Rows x one 32-column block on kSplit6 tables (int8_lut.h): per group, the block's nibbles
// become shuffle indices once (lane 0: columns 0-15, lane 1: 16-31) and serve R rows; per row and
// group, two shuffles look up 32 columns' low and high parts. The lookups come in units: a group
// of one sign plane (Planes = 1, W1A8), or for ternary W1.58A8 (Planes = 2, col2 the second
// plane) a group of either plane, both planes of a group reading the same table loads, since
// sum_k q (bit_u + bit_v) = T_g[nibble_u] + T_g[nibble_v]. Low parts of 4 units are summed as
// bytes (<= 252) and added into int16 counters split by even and odd bytes (columns 0, 2, .. and
// 1, 3, ..; <= 32,256 over 512 units); high parts of 16 units are summed as bytes (<= 240) and
// widened the same way; every 512 units (and at the end) both go to int32 sums per column.
template <int R, int Planes = 1>
void lut_rows_block(const uint8_t* luts, const int32_t* rowsum, const float* inv_scale, const uint8_t* col,
                    const uint8_t* col2, const float* alpha, const float* bias, float* y, int64_t i0, int64_t block,
                    int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), low_bytes = _mm256_set1_epi16(0xff);
  // per row: columns 0-3 | 8-11, 4-7 | 12-15, 16-19 | 24-27, 20-23 | 28-31 (unpacklo/hi_epi32's order)
  __m256i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int a = 0; a < 4; ++a) acc[r][a] = _mm256_setzero_si256();
  const int64_t units = groups * Planes;
  for (int64_t g0 = 0; g0 < units; g0 += 512) {
    const int64_t g1 = std::min(units, g0 + 512);
    __m256i low_even[R], low_odd[R], high_even[R], high_odd[R];
    for (int r = 0; r < R; ++r) low_even[r] = low_odd[r] = high_even[r] = high_odd[r] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int64_t h0 = g0; h0 < g1; h0 += 16) {  // groups, and so units, come in multiples of 16
      __m256i high[R];
      for (int r = 0; r < R; ++r) high[r] = _mm256_setzero_si256();
#pragma GCC unroll 1
      for (int64_t g = h0; g < h0 + 16; g += 4) {
        // unit g + u: group (g + u) / Planes of plane (g + u) % Planes
        __m256i idx[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; ++u) {
          const uint8_t* plane = Planes == 2 && (u & 1) ? col2 : col;
          const __m256i v = _mm256_broadcastsi128_si256(
              _mm_loadu_si128(reinterpret_cast<const __m128i*>(plane + (g + u) / Planes * 16)));
          idx[u] = _mm256_and_si256(_mm256_blend_epi32(v, _mm256_srli_epi16(v, 4), 0xF0), low4);
        }
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          const uint8_t* lut = luts + (i0 + r) * groups * 32 + g / Planes * 32;
          __m256i lo[4], hi[4];
#pragma GCC unroll 4
          for (int u = 0; u < 4; u += Planes) {
            const __m256i low_table = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * (u / Planes))));
            const __m256i high_table =
                _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 32 * (u / Planes) + 16)));
            for (int p = 0; p < Planes; ++p) {
              lo[u + p] = _mm256_shuffle_epi8(low_table, idx[u + p]);
              hi[u + p] = _mm256_shuffle_epi8(high_table, idx[u + p]);
            }
          }
          const __m256i lows = _mm256_add_epi8(_mm256_add_epi8(lo[0], lo[1]), _mm256_add_epi8(lo[2], lo[3]));
          high[r] = _mm256_add_epi8(high[r], _mm256_add_epi8(_mm256_add_epi8(hi[0], hi[1]), _mm256_add_epi8(hi[2], hi[3])));
          low_even[r] = _mm256_add_epi16(low_even[r], _mm256_and_si256(lows, low_bytes));
          low_odd[r] = _mm256_add_epi16(low_odd[r], _mm256_srli_epi16(lows, 8));
        }
      }
      for (int r = 0; r < R; ++r) {
        high_even[r] = _mm256_add_epi16(high_even[r], _mm256_and_si256(high[r], low_bytes));
        high_odd[r] = _mm256_add_epi16(high_odd[r], _mm256_srli_epi16(high[r], 8));
      }
    }
    for (int r = 0; r < R; ++r) {
      // low + 64 * high per column as int32 (the int16 counters are unsigned): even columns of
      // lane 0 (0, 2, .., 14) and of lane 1 (16, .., 30), then the odd ones
      const auto sums = [](__m128i low, __m128i high) {
        return _mm256_add_epi32(_mm256_cvtepu16_epi32(low), _mm256_slli_epi32(_mm256_cvtepu16_epi32(high), 6));
      };
      const __m256i even0 = sums(_mm256_castsi256_si128(low_even[r]), _mm256_castsi256_si128(high_even[r]));
      const __m256i even1 = sums(_mm256_extracti128_si256(low_even[r], 1), _mm256_extracti128_si256(high_even[r], 1));
      const __m256i odd0 = sums(_mm256_castsi256_si128(low_odd[r]), _mm256_castsi256_si128(high_odd[r]));
      const __m256i odd1 = sums(_mm256_extracti128_si256(low_odd[r], 1), _mm256_extracti128_si256(high_odd[r], 1));
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_unpacklo_epi32(even0, odd0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_unpackhi_epi32(even0, odd0));
      acc[r][2] = _mm256_add_epi32(acc[r][2], _mm256_unpacklo_epi32(even1, odd1));
      acc[r][3] = _mm256_add_epi32(acc[r][3], _mm256_unpackhi_epi32(even1, odd1));
    }
  }
  const __m256i bias_total = _mm256_set1_epi32(static_cast<int32_t>(kSplit6Bias * units));
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    // with two planes the dot is sum_k q (s_u + s_v) = 2 rowsum - 2 sum of the lookups
    const int32_t planes_rowsum = Planes * rowsum[i];
    const __m256i rs = _mm256_set1_epi32(planes_rowsum);
    const __m256 inv = _mm256_set1_ps(inv_scale[i]);
    // columns 0-7, 8-15, 16-23, 24-31: sum_g T_g
    const __m256i columns[4] = {_mm256_permute2x128_si256(acc[r][0], acc[r][1], 0x20),
                                _mm256_permute2x128_si256(acc[r][0], acc[r][1], 0x31),
                                _mm256_permute2x128_si256(acc[r][2], acc[r][3], 0x20),
                                _mm256_permute2x128_si256(acc[r][2], acc[r][3], 0x31)};
    for (int a = 0; a < 4; ++a) {
      const __m256i masked = _mm256_sub_epi32(columns[a], bias_total);
      const int64_t j0 = block * 32 + 8 * a;
      if (j0 >= n0 && j0 + 8 <= n1) {  // lut_epilogue on 8 columns, in its order of operations
        const __m256i dot = _mm256_sub_epi32(rs, _mm256_slli_epi32(masked, 1));
        __m256 out = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), inv), _mm256_loadu_ps(alpha + j0));
        if (bias) out = _mm256_add_ps(out, _mm256_loadu_ps(bias + j0));
        _mm256_storeu_ps(y + i * n + j0, out);
        continue;
      }
      alignas(32) int32_t sums[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums), masked);
      for (int c = 0; c < 8; ++c) {
        const int64_t j = j0 + c;
        if (j >= n0 && j < n1) y[i * n + j] = lut_epilogue(planes_rowsum, sums[c], inv_scale[i], alpha[j], bias, j);
      }
    }
  }
}

// build_luts (int8_lut.h) in kSplit6, one 256-bit vector per table: the group's 4 inputs broadcast
// to 16 int16 lanes by byte shuffles, masked by the bits of each lane's index and summed; biased,
// split at 6 bits and packed to bytes. About 3x faster than the portable 128-bit build.
void build_luts_avx2(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts) {
  // lane p of bit[t] is all ones where bit t of p is set
  const __m256i bit0 = _mm256_setr_epi16(0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1);
  const __m256i bit1 = _mm256_setr_epi16(0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1);
  const __m256i bit2 = _mm256_setr_epi16(0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1);
  const __m256i bit3 = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i word0 = _mm256_set1_epi16(0x0100), word1 = _mm256_set1_epi16(0x0302);
  const __m256i word2 = _mm256_set1_epi16(0x0504), word3 = _mm256_set1_epi16(0x0706);
  const __m256i bias = _mm256_set1_epi16(kSplit6Bias), low6 = _mm256_set1_epi16(63);
  const int64_t tables = rows * groups;
  for (int64_t g = 0; g < tables; ++g) {
    int32_t group;
    std::memcpy(&group, q + 4 * g, sizeof group);
    const __m256i a = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(group)));
    const __m256i entries = _mm256_add_epi16(
        _mm256_add_epi16(_mm256_and_si256(_mm256_shuffle_epi8(a, word0), bit0), _mm256_and_si256(_mm256_shuffle_epi8(a, word1), bit1)),
        _mm256_add_epi16(_mm256_and_si256(_mm256_shuffle_epi8(a, word2), bit2), _mm256_and_si256(_mm256_shuffle_epi8(a, word3), bit3)));
    const __m256i biased = _mm256_add_epi16(entries, bias);
    const __m256i low = _mm256_and_si256(biased, low6), high = _mm256_srli_epi16(biased, 6);
    // [low 0-7, high 0-7 | low 8-15, high 8-15] -> [low 0-15, high 0-15]
    const __m256i split = _mm256_permute4x64_epi64(_mm256_packus_epi16(low, high), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(luts + 32 * g), split);
  }
}

template <int Planes>
void lut_planes_avx2(const uint8_t* luts, const int32_t* rowsum, const float* inv_scale, const uint8_t* wlut,
                     const uint8_t* wlut2, const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1,
                     int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  constexpr int kRows = 4;
  for (int64_t block = n0 / 32; block * 32 < n1; ++block) {
    const uint8_t* col = wlut + block * groups * 16;
    const uint8_t* col2 = Planes == 2 ? wlut2 + block * groups * 16 : nullptr;
    int64_t i = m0;
    for (; i + kRows <= m1; i += kRows)
      lut_rows_block<kRows, Planes>(luts, rowsum, inv_scale, col, col2, alpha, bias, y, i, block, n0, n1, n, groups);
    for (; i < m1; ++i)
      lut_rows_block<1, Planes>(luts, rowsum, inv_scale, col, col2, alpha, bias, y, i, block, n0, n1, n, groups);
  }
}

void lut_linear_avx2(const uint8_t* luts, const int8_t*, const int32_t* rowsum, const float* inv_scale,
                     const uint8_t* wlut, const float* alpha, const float* bias, float* y,
                     int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  lut_planes_avx2<1>(luts, rowsum, inv_scale, wlut, nullptr, alpha, bias, y, m0, m1, n0, n1, n, groups);
}

// Ternary W1.58A8 in one table-lookup product (KernelTable::w158a8_linear): both planes' lookups
// into the same accumulators, so the tables are built and loaded, and the epilogue run, once for
// the two, with no second output to add. Trained BitNet b1.58 MiniLM, 128 tokens, 1 thread, on
// Zen 4 with BITMAPS_KERNELS=avx2: 19.86 -> 16.99 ms against two products summed in float; W1A8
// unchanged (benchmarks/results/archive_revisions_zen4_avx2_w158a8_fused_*.json).
void lut_w158a8_avx2(const uint8_t* luts, const int8_t*, const int32_t* rowsum, const float* inv_scale,
                     const uint8_t* wlut_u, const uint8_t* wlut_v, const float* half_gamma, const float* bias, float* y,
                     int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  lut_planes_avx2<2>(luts, rowsum, inv_scale, wlut_u, wlut_v, half_gamma, bias, y, m0, m1, n0, n1, n, groups);
}

}  // namespace
}  // namespace bitmaps
