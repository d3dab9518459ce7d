// two_set_attention.h's vector loops in 512-bit registers (AVX-512F): a key's level indexes its
// table entry with in-register permutes of 32 entries (one per chunk of 32 levels), and its
// quantizer bit with a variable shift of the chunk's 32 bits. In an anonymous namespace, like
// float_avx512.h: each instruction-set file that includes it compiles its own copy.
#pragma once
#include <immintrin.h>

#include <climits>
#include <cstdint>

#include "float_avx512.h"
#include "two_set_attention.h"

namespace bitmaps {
namespace {

struct TwoSetAvx512 {
  static float exp_shifted(float* x, int64_t count, float shift) { return exp_shifted16(x, count, shift); }

  // keys j..j+15 inside the row and not padded
  static __mmask16 live_keys(const int32_t* mask, int64_t n, int64_t j) {
    __mmask16 live = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
    if (mask) live = _mm512_mask_cmpneq_epi32_mask(live, _mm512_maskz_loadu_epi32(live, mask + j), _mm512_setzero_si512());
    return live;
  }

  static __m512i levels(const int32_t* row, int64_t j, __mmask16 live, int64_t d) {
    return _mm512_srli_epi32(_mm512_add_epi32(_mm512_maskz_loadu_epi32(live, row + j), _mm512_set1_epi32(static_cast<int>(d))), 1);
  }

  static void extremes(const int32_t* row, int64_t n, const int32_t* mask, int32_t* top, int32_t* bottom) {
    __m512i high = _mm512_set1_epi32(INT_MIN), low = _mm512_set1_epi32(INT_MAX);
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 live = live_keys(mask, n, j);
      const __m512i v = _mm512_maskz_loadu_epi32(live, row + j);
      high = _mm512_mask_max_epi32(high, live, high, v);
      low = _mm512_mask_min_epi32(low, live, low, v);
    }
    *top = _mm512_reduce_max_epi32(high), *bottom = _mm512_reduce_min_epi32(low);
  }

  static float sum(const int32_t* row, int64_t n, const int32_t* mask, int64_t d, const float* exps) {
    const int64_t chunks = (d + 1 + 31) / 32;
    __m512 total = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 live = live_keys(mask, n, j);
      const __m512i level = levels(row, j, live, d);
      // the permute reads the level's low 5 bits: chunk c's result counts for the lanes in chunk c
      __m512 e = _mm512_permutex2var_ps(_mm512_load_ps(exps), level, _mm512_load_ps(exps + 16));
      for (int64_t c = 1; c < chunks; ++c) {
        const __mmask16 in_chunk = _mm512_cmpeq_epi32_mask(_mm512_srli_epi32(level, 5), _mm512_set1_epi32(static_cast<int>(c)));
        e = _mm512_mask_mov_ps(e, in_chunk, _mm512_permutex2var_ps(_mm512_load_ps(exps + 32 * c), level, _mm512_load_ps(exps + 32 * c + 16)));
      }
      total = _mm512_mask_add_ps(total, live, total, e);
    }
    return _mm512_reduce_add_ps(total);
  }

  static void bits(const int32_t* row, int64_t n, const int32_t* mask, int64_t d, const int32_t* negative,
                   bool padded_negative, uint64_t* out) {
    const int64_t chunks = (d + 1 + 31) / 32;
    uint32_t words[kTwoSetLevelSlots / 32];
    for (int64_t c = 0; c < chunks; ++c) {
      const __mmask16 low = _mm512_test_epi32_mask(_mm512_load_si512(negative + 32 * c), _mm512_set1_epi32(-1));
      const __mmask16 high = _mm512_test_epi32_mask(_mm512_load_si512(negative + 32 * c + 16), _mm512_set1_epi32(-1));
      words[c] = static_cast<uint32_t>(low) | static_cast<uint32_t>(high) << 16;
    }
    for (int64_t j = 0; j < n; j += 16) {
      const __mmask16 in_row = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
      const __mmask16 live = live_keys(mask, n, j);
      const __m512i level = levels(row, j, live, d);
      const __m512i bit = _mm512_and_si512(level, _mm512_set1_epi32(31));
      __mmask16 set = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const __mmask16 in_chunk = _mm512_mask_cmpeq_epi32_mask(live, _mm512_srli_epi32(level, 5), _mm512_set1_epi32(static_cast<int>(c)));
        const __m512i shifted = _mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(words[c])), bit);
        set |= _mm512_mask_test_epi32_mask(in_chunk, shifted, _mm512_set1_epi32(1));
      }
      if (padded_negative) set |= static_cast<__mmask16>(in_row & ~live);
      out[j >> 6] |= static_cast<uint64_t>(set) << (j & 63);
    }
  }
};

}  // namespace
}  // namespace bitmaps
