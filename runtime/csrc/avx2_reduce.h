// Horizontal sums of float and 64-bit lanes, shared by the AVX2 and both AVX-512 builds (each compiles its own
// copy with its own flags: anonymous namespace).
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

inline void sum_lanes4(const __m256i v[4], int64_t* counts) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(counts), lane_totals4(v));
}

}  // namespace
}  // namespace bitmaps
