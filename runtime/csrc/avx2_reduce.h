// Horizontal sums of float and 64-bit lanes, and compare masks to bits, shared by the AVX2 and
// both AVX-512 builds (each compiles its own copy with its own flags: anonymous namespace).
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace bitmaps {
namespace {

// Lane j of the result = sum of the four 64-bit lanes of v[j], for j < 4: one transposition sums
// all four accumulators at once instead of four separate reductions.
inline __m256i lane_totals4(const __m256i v[4]) {
  const __m256i s01 = _mm256_add_epi64(_mm256_unpacklo_epi64(v[0], v[1]), _mm256_unpackhi_epi64(v[0], v[1]));
  const __m256i s23 = _mm256_add_epi64(_mm256_unpacklo_epi64(v[2], v[3]), _mm256_unpackhi_epi64(v[2], v[3]));
  return _mm256_add_epi64(_mm256_permute2x128_si256(s01, s23, 0x20), _mm256_permute2x128_si256(s01, s23, 0x31));
}

// The sum of the eight floats of v.
inline float hsum_ps(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

// The compare masks (0 or -1) of 32 int32 or float lanes, four vectors in order, as one word: bit
// 8q + l = lane l of vector q. Two saturating packs narrow them to bytes (interleaving the 128-bit
// halves, which one permute puts back in order) for one byte movemask, where the loops had spent
// a movemask, a shift and an or per vector of 8.
inline uint32_t mask_bits32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
  return static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_permutevar8x32_epi32(bytes, order)));
}

inline void sum_lanes4(const __m256i v[4], int64_t* counts) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(counts), lane_totals4(v));
}

}  // namespace
}  // namespace bitmaps
