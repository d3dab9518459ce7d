// Sign bits made and rearranged in 512-bit registers (AVX-512F/BW), for the files compiled with
// AVX-512 flags. In an anonymous namespace, like float_avx512.h: each file compiles its own copy.
//   pack_signs16: KernelTable::pack_signs (XNOR-Net's signs and mean |x|), 16 compares to a mask
//     register at a time (the AVX2 loop moves each 8 compares out with a movemask, a shift and an
//     or); a partial last word in masked lanes, not a scalar tail; pack_gelu_signs16 packs GELU(x)
//     so, with GELU in registers (no copy of the row, no GELU pass stored and read back);
//   pack_elastic16: KernelTable::pack_elastic, the same compares against BiT's cut (no scalar tail
//     here);
//   pack_negative16: KernelTable::pack_negative, the same for integers (Bi-Attention's dots);
//   transpose_bits16: KernelTable::transpose_bits for rows of one word, the bit matrix of V's signs
//     turned into one row per column for attention's packed context, by test-into-mask: the
//     portable loop visits each set bit with a dependent or into memory (2 us of a MiniLM head).
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "float_avx512.h"
#include "kernels.h"

namespace bitmaps {
namespace {

// Rows of k values into bits, 16 lanes at a time: mask(row, at, live) gives the bits of the live
// lanes of the 16 values from `at` of that row (no scalar tail: masked loads)
template <typename Mask>
inline void pack_rows16(int64_t rows, int64_t k, uint64_t* out, Mask mask) {
  const int64_t words = words_per_row(k);
  const __mmask16 all = static_cast<__mmask16>(0xFFFF);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t w = 0; w < words; ++w) {
      if (64 * w + 64 <= k) {  // a whole word: unmasked loads, the four masks joined in mask registers
        const __mmask32 low = _mm512_kunpackw(mask(r, 64 * w + 16, all), mask(r, 64 * w, all));
        const __mmask32 high = _mm512_kunpackw(mask(r, 64 * w + 48, all), mask(r, 64 * w + 32, all));
        out[r * words + w] = _cvtmask64_u64(_mm512_kunpackd(high, low));
        continue;
      }
      uint64_t bits = 0;
      for (int64_t v = 0; v < 4 && 64 * w + 16 * v < k; ++v) {
        const int64_t at = 64 * w + 16 * v;
        bits |= static_cast<uint64_t>(mask(r, at, tail_mask(k - at))) << (16 * v);
      }
      out[r * words + w] = bits;
    }
}

// KernelTable::pack_signs of map(x), 16 values at a time: bit set where map(x) < 0 (so -0.0 is +1,
// as in training; NaN +1), and mean |map(x)| of each row summed in 16 lanes in key order (the AVX2
// path's 8 lanes round differently, within the kernel tests' 1e-5)
template <typename Map>
inline void pack_mapped_signs16(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs,
                                Map map) {
  const int64_t words = words_per_row(k);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    __m512 total = _mm512_setzero_ps();
    for (int64_t w = 0; w < words; ++w) {
      if (64 * w + 64 <= k) {
        // a whole word: its four vectors mapped first, as independent chains (GELU's division
        // each), then compared and summed in key order, the same bits and sums as one at a time;
        // one at a time, the loop ran a 128 x 1536 GELU pack at 0.52 ns a value on Zen 4,
        // against 0.31 for gelu512 alone (scratch)
        __m512 value[4];
        for (int v = 0; v < 4; ++v) value[v] = map(_mm512_loadu_ps(row + 64 * w + 16 * v));
        uint64_t bits = 0;
        for (int v = 0; v < 4; ++v) {
          bits |= static_cast<uint64_t>(_mm512_cmp_ps_mask(value[v], zero, _CMP_LT_OQ)) << (16 * v);
          total = _mm512_add_ps(total, _mm512_abs_ps(value[v]));
        }
        out[r * words + w] = bits;
        continue;
      }
      uint64_t bits = 0;
      for (int64_t v = 0; v < 4 && 64 * w + 16 * v < k; ++v) {
        const int64_t at = 64 * w + 16 * v;
        const __mmask16 live = tail_mask(k - at);
        const __m512 value = _mm512_maskz_mov_ps(live, map(_mm512_maskz_loadu_ps(live, row + at)));
        bits |= static_cast<uint64_t>(_mm512_mask_cmp_ps_mask(live, value, zero, _CMP_LT_OQ)) << (16 * v);
        total = _mm512_add_ps(total, _mm512_abs_ps(value));  // the masked lanes are +0
      }
      out[r * words + w] = bits;
    }
    if (mean_abs != nullptr) mean_abs[r] = _mm512_reduce_add_ps(total) / static_cast<float>(k);
  }
}

void pack_signs16(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs) {
  pack_mapped_signs16(x, rows, k, ldx, out, mean_abs, [](__m512 v) { return v; });
}

// KernelTable::pack_gelu_signs: GELU in registers (float_avx512.h's gelu16, the path's KernelTable::gelu)
void pack_gelu_signs16(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs) {
  pack_mapped_signs16(x, rows, k, ldx, out, mean_abs, gelu16);
}

void pack_elastic16(const float* x, int64_t rows, int64_t k, int64_t ldx, float cut, bool two_set, uint64_t* out) {
  const __m512 c = _mm512_set1_ps(cut);
  pack_rows16(rows, k, out, [&](int64_t r, int64_t at, __mmask16 live) {
    const __m512 value = _mm512_maskz_loadu_ps(live, x + r * ldx + at);
    // below_cut: x < cut (two-set; false for NaN), !(x >= cut) (elastic; true for NaN)
    return two_set ? _mm512_mask_cmp_ps_mask(live, value, c, _CMP_LT_OQ)
                   : _mm512_mask_cmp_ps_mask(live, value, c, _CMP_NGE_UQ);
  });
}

// KernelTable::pack_negative: 16 integer compares to a mask register at a time
void pack_negative16(const int32_t* x, int64_t rows, int64_t n, uint64_t* out) {
  pack_rows16(rows, n, out, [&](int64_t r, int64_t at, __mmask16 live) {
    return _mm512_mask_cmplt_epi32_mask(live, _mm512_maskz_loadu_epi32(live, x + r * n + at), _mm512_setzero_si512());
  });
}

// Bit j of out row c (words_per_row(n) words a row) = bit c of row j, for n rows of one word each
// holding d <= 64 bits; false (nothing written) for rows of several words.
bool transpose_bits16(const uint64_t* rows, int64_t n, int64_t words, int64_t d, uint64_t* out) {
  if (words != 1 || d > 64) return false;
  const int64_t key_words = words_per_row(n);
  for (int64_t w = 0; w < key_words; ++w) {
    const int64_t base = 64 * w, count = n - base < 64 ? n - base : 64;
    if (d <= 32) {
      // 16 rows a vector in 32-bit lanes (their low halves): 4 vectors hold the word's 64 rows
      __m512i v[4];
      for (int q = 0; q < 4; ++q) {
        const int64_t from = 16 * q;
        const __mmask8 lo = from < count ? static_cast<__mmask8>(tail_mask(count - from) & 0xFF) : 0;
        const __mmask8 hi = from + 8 < count ? static_cast<__mmask8>(tail_mask(count - from - 8) & 0xFF) : 0;
        const __m256i a = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(lo, rows + base + from));
        const __m256i b = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(hi, rows + base + from + 8));
        v[q] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
      }
      for (int64_t c = 0; c < d; ++c) {
        const __m512i bit = _mm512_set1_epi32(static_cast<int>(1u << c));
        uint64_t word = 0;
        for (int q = 0; q < 4; ++q) word |= static_cast<uint64_t>(_mm512_test_epi32_mask(v[q], bit)) << (16 * q);
        out[c * key_words + w] = word;
      }
    } else {
      __m512i v[8];  // 8 rows a vector in 64-bit lanes
      for (int q = 0; q < 8; ++q) {
        const int64_t from = 8 * q;
        const __mmask8 live = from < count ? static_cast<__mmask8>(tail_mask(count - from) & 0xFF) : 0;
        v[q] = _mm512_maskz_loadu_epi64(live, rows + base + from);
      }
      for (int64_t c = 0; c < d; ++c) {
        const __m512i bit = _mm512_set1_epi64(static_cast<long long>(uint64_t{1} << c));
        uint64_t word = 0;
        for (int q = 0; q < 8; ++q) word |= static_cast<uint64_t>(_mm512_test_epi64_mask(v[q], bit)) << (8 * q);
        out[c * key_words + w] = word;
      }
    }
  }
  return true;
}

}  // namespace
}  // namespace bitmaps
