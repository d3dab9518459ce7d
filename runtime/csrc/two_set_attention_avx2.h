// two_set_attention.h's vector loops in 256-bit registers (AVX2): a key's level indexes its table
// entry and its quantizer bit with gathers (8 keys an instruction; permutes of 8-entry tables would
// take 5 permutes and blends per 8 keys at d = 32), the last n % 8 keys one at a time. In an
// anonymous namespace, like float_avx2.h: each instruction-set file that includes it compiles its
// own copy.
#pragma once
#include <immintrin.h>

#include <climits>
#include <cstdint>

#include "avx2_reduce.h"
#include "float_avx2.h"
#include "two_set_attention.h"

namespace bitmaps {
namespace {

struct TwoSetAvx2 {
  static float exp_shifted(float* x, int64_t count, float shift) { return bitmaps::exp_shifted(x, count, shift); }

  // all ones in the lanes of keys j..j+7 that are not padded
  static __m256i live_keys(const int32_t* mask, int64_t j) {
    if (!mask) return _mm256_set1_epi32(-1);
    const __m256i m = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(mask + j));
    return _mm256_xor_si256(_mm256_cmpeq_epi32(m, _mm256_setzero_si256()), _mm256_set1_epi32(-1));
  }

  static __m256i levels(const int32_t* row, int64_t j, int64_t d) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j));
    return _mm256_srli_epi32(_mm256_add_epi32(v, _mm256_set1_epi32(static_cast<int>(d))), 1);
  }

  static void extremes(const int32_t* row, int64_t n, const int32_t* mask, int32_t* top, int32_t* bottom) {
    __m256i high = _mm256_set1_epi32(INT_MIN), low = _mm256_set1_epi32(INT_MAX);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256i live = live_keys(mask, j), v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j));
      high = _mm256_max_epi32(high, _mm256_blendv_epi8(_mm256_set1_epi32(INT_MIN), v, live));
      low = _mm256_min_epi32(low, _mm256_blendv_epi8(_mm256_set1_epi32(INT_MAX), v, live));
    }
    alignas(32) int32_t highs[8], lows[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(highs), high);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lows), low);
    int32_t t = INT_MIN, b = INT_MAX;
    for (int lane = 0; lane < 8; ++lane) t = highs[lane] > t ? highs[lane] : t, b = lows[lane] < b ? lows[lane] : b;
    for (; j < n; ++j)
      if (!mask || mask[j]) t = row[j] > t ? row[j] : t, b = row[j] < b ? row[j] : b;
    *top = t, *bottom = b;
  }

  static float sum(const int32_t* row, int64_t n, const int32_t* mask, int64_t d, const float* exps) {
    __m256 total = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = _mm256_i32gather_ps(exps, levels(row, j, d), 4);
      total = _mm256_add_ps(total, _mm256_and_ps(e, _mm256_castsi256_ps(live_keys(mask, j))));
    }
    float sum = hsum_ps(total);
    for (; j < n; ++j)
      if (!mask || mask[j]) sum += exps[(row[j] + d) / 2];
    return sum;
  }

  static void bits(const int32_t* row, int64_t n, const int32_t* mask, int64_t d, const int32_t* negative,
                   bool padded_negative, uint64_t* out) {
    const __m256i padded = _mm256_set1_epi32(padded_negative ? -1 : 0);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256i bit = _mm256_blendv_epi8(padded, _mm256_i32gather_epi32(negative, levels(row, j, d), 4), live_keys(mask, j));
      out[j >> 6] |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_castsi256_ps(bit))) << (j & 63);
    }
    for (; j < n; ++j) {
      const bool set = (!mask || mask[j]) ? negative[(row[j] + d) / 2] != 0 : padded_negative;
      out[j >> 6] |= static_cast<uint64_t>(set) << (j & 63);
    }
  }
};

}  // namespace
}  // namespace bitmaps
