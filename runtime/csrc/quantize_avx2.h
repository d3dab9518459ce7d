// Per-row absmax int8 quantization with AVX2, for the AVX2 build (anonymous namespace; the
// AVX-512 builds have quantize_avx512.h). Bit-identical to quantize_rows_int8 (int8_lut.cpp)
// and to the training quantizer: the same float32 scale, and cvtps rounds half to even under
// the default rounding mode, as nearbyint does.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "int8_lut.h"

namespace bitmaps {
namespace {

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 0x55));
  return _mm_cvtss_f32(m);
}

inline int32_t hsum_epi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

void quantize_rows_int8_avx2(const float* x, int64_t rows, int64_t k, int64_t ldx, int8_t* q, float* inv_scale,
                             int32_t* rowsum) {
  const int64_t padded = words_per_row(k) * 64, k8 = k / 8 * 8;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    __m256 vmax = _mm256_setzero_ps();
    for (int64_t c = 0; c < k8; c += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(_mm256_loadu_ps(row + c), abs_mask));
    float absmax = hmax(vmax);
    for (int64_t c = k8; c < k; ++c) absmax = std::max(absmax, std::fabs(row[c]));
    const float scale = 127.0f / std::max(absmax, 1e-5f);
    const __m256 vscale = _mm256_set1_ps(scale);
    int8_t* out = q + r * padded;
    __m256i total = _mm256_setzero_si256();
    for (int64_t c = 0; c < k8; c += 8) {
      const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(row + c), vscale));
      total = _mm256_add_epi32(total, v);
      // 8 int32 in [-127, 127] -> 8 int8 (saturating packs keep them as they are)
      const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + c), _mm_packs_epi16(w16, w16));
    }
    int32_t sum = hsum_epi32(total);
    for (int64_t c = k8; c < k; ++c) {
      const int v = static_cast<int>(std::nearbyint(row[c] * scale));
      out[c] = static_cast<int8_t>(v);
      sum += v;
    }
    std::memset(out + k, 0, static_cast<size_t>(padded - k));
    inv_scale[r] = 1.0f / scale;
    rowsum[r] = sum;
  }
}

}  // namespace
}  // namespace bitmaps
