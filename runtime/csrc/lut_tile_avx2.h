// The W1A8 table-lookup kernel with AVX2 byte shuffles, shared by the AVX2 and AVX-512 builds
// (the 16-entry tables fit one 128-bit lane, which is what pshufb indexes).
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "int8_lut.h"

namespace bitmaps {
namespace {

// Rows x one 32-column block: per group, the block's nibbles become shuffle indices once and
// serve R rows; per row two shuffles look up 32 columns' int16 entries (low and high byte
// planes), interleaved back into int16 and summed. int16 sums are widened to int32 every 64
// groups, before |sum| <= 64 * 508 could overflow.
template <int R>
void lut_rows_block(const uint8_t* luts, const int32_t* rowsum, const float* inv_scale, const uint8_t* col,
                    const float* alpha, const float* bias, float* y, int64_t i0, int64_t block, int64_t n0,
                    int64_t n1, int64_t n, int64_t groups) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  // per row: columns 0-7, 16-23, 8-15, 24-31 of the block (the lane order of unpacklo/hi)
  __m256i acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int a = 0; a < 4; ++a) acc[r][a] = _mm256_setzero_si256();
  for (int64_t g0 = 0; g0 < groups; g0 += 64) {
    __m256i lo16[R], hi16[R];
    for (int r = 0; r < R; ++r) lo16[r] = hi16[r] = _mm256_setzero_si256();
    const int64_t g1 = std::min(groups, g0 + 64);
    // not unrolled: at -O3 GCC unrolls it and spills an accumulator (1.6x slower at k = 384)
#pragma GCC unroll 1
    for (int64_t g = g0; g < g1; ++g) {
      const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col + g * 16)));
      // lane 0: low nibbles (columns 0-15), lane 1: high nibbles (columns 16-31)
      const __m256i idx = _mm256_and_si256(_mm256_blend_epi32(v, _mm256_srli_epi16(v, 4), 0xF0), low4);
      // unrolled so that the accumulators stay in registers (GCC -O2 otherwise keeps them on the
      // stack: a store-to-load round trip per group, half the kernel's speed)
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const uint8_t* lut = luts + (i0 + r) * groups * 32 + g * 32;
        const __m256i tlo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut)));
        const __m256i thi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(lut + 16)));
        const __m256i rlo = _mm256_shuffle_epi8(tlo, idx), rhi = _mm256_shuffle_epi8(thi, idx);
        lo16[r] = _mm256_add_epi16(lo16[r], _mm256_unpacklo_epi8(rlo, rhi));
        hi16[r] = _mm256_add_epi16(hi16[r], _mm256_unpackhi_epi8(rlo, rhi));
      }
    }
    for (int r = 0; r < R; ++r) {
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo16[r])));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo16[r], 1)));
      acc[r][2] = _mm256_add_epi32(acc[r][2], _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi16[r])));
      acc[r][3] = _mm256_add_epi32(acc[r][3], _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi16[r], 1)));
    }
  }
  static const int kOffset[4] = {0, 16, 8, 24};
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const __m256i rs = _mm256_set1_epi32(rowsum[i]);
    const __m256 inv = _mm256_set1_ps(inv_scale[i]);
    for (int a = 0; a < 4; ++a) {
      const int64_t j0 = block * 32 + kOffset[a];
      if (j0 >= n0 && j0 + 8 <= n1) {  // lut_epilogue on 8 columns, in its order of operations
        const __m256i dot = _mm256_sub_epi32(rs, _mm256_slli_epi32(acc[r][a], 1));
        __m256 out = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), inv), _mm256_loadu_ps(alpha + j0));
        if (bias) out = _mm256_add_ps(out, _mm256_loadu_ps(bias + j0));
        _mm256_storeu_ps(y + i * n + j0, out);
        continue;
      }
      alignas(32) int32_t masked[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(masked), acc[r][a]);
      for (int c = 0; c < 8; ++c) {
        const int64_t j = j0 + c;
        if (j >= n0 && j < n1) y[i * n + j] = lut_epilogue(rowsum[i], masked[c], inv_scale[i], alpha[j], bias, j);
      }
    }
  }
}

// build_luts (int8_lut.h) with one 256-bit vector per table: the group's 4 inputs broadcast to
// 16 int16 lanes by byte shuffles, masked by the bits of each lane's index and summed; then one
// shuffle and one permute split the 16 entries into their low and high byte planes. About 3x
// faster than the portable 128-bit build.
void build_luts_avx2(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts) {
  // lane p of bit[t] is all ones where bit t of p is set
  const __m256i bit0 = _mm256_setr_epi16(0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1);
  const __m256i bit1 = _mm256_setr_epi16(0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1);
  const __m256i bit2 = _mm256_setr_epi16(0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1);
  const __m256i bit3 = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i word0 = _mm256_set1_epi16(0x0100), word1 = _mm256_set1_epi16(0x0302);
  const __m256i word2 = _mm256_set1_epi16(0x0504), word3 = _mm256_set1_epi16(0x0706);
  // per 128-bit lane: the low bytes of its 8 entries, then their high bytes
  const __m256i planes = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                          0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const int64_t tables = rows * groups;
  for (int64_t g = 0; g < tables; ++g) {
    int32_t group;
    std::memcpy(&group, q + 4 * g, sizeof group);
    const __m256i a = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(group)));
    const __m256i entries = _mm256_add_epi16(
        _mm256_add_epi16(_mm256_and_si256(_mm256_shuffle_epi8(a, word0), bit0), _mm256_and_si256(_mm256_shuffle_epi8(a, word1), bit1)),
        _mm256_add_epi16(_mm256_and_si256(_mm256_shuffle_epi8(a, word2), bit2), _mm256_and_si256(_mm256_shuffle_epi8(a, word3), bit3)));
    // [low 0-7, high 0-7 | low 8-15, high 8-15] -> [low 0-15, high 0-15]
    const __m256i split = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(entries, planes), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(luts + 32 * g), split);
  }
}

void lut_linear_avx2(const uint8_t* luts, const int8_t*, const int32_t* rowsum, const float* inv_scale,
                     const uint8_t* wlut, const float* alpha, const float* bias, float* y,
                     int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  constexpr int kRows = 4;
  for (int64_t block = n0 / 32; block * 32 < n1; ++block) {
    const uint8_t* col = wlut + block * groups * 16;
    int64_t i = m0;
    for (; i + kRows <= m1; i += kRows)
      lut_rows_block<kRows>(luts, rowsum, inv_scale, col, alpha, bias, y, i, block, n0, n1, n, groups);
    for (; i < m1; ++i) lut_rows_block<1>(luts, rowsum, inv_scale, col, alpha, bias, y, i, block, n0, n1, n, groups);
  }
}

}  // namespace
}  // namespace bitmaps
