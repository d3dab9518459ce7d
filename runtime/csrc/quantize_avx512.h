// Per-row absmax int8 quantization in 512-bit registers, for the AVX-512 builds (anonymous
// namespace: each compiles its own copy). The same operations as quantize_avx2.h (the absmax, the
// float32 scale, cvtps rounding half to even, as nearbyint does), so the same bytes, scales and
// row sums as quantize_rows_int8 (int8_lut.cpp). Why a 512-bit copy: in quantize_avx2.h the
// absmax is one chain of dependent maxes and the narrowing three shuffles a vector, which Ice Lake
// issues on one port; W1A8 layers at 128 rows spent 10-12% of their time there on an Ice Lake-SP
// core (perf, benchmarks/int8_products.sh). Here four independent maxes and one saturating
// narrow (vpmovsdb) do 16 values, and the row's tail is a masked step.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "float_avx512.h"
#include "int8_lut.h"

namespace bitmaps {
namespace {

void quantize_rows_int8_avx512(const float* x, int64_t rows, int64_t k, int64_t ldx, int8_t* q, float* inv_scale,
                               int32_t* rowsum) {
  const int64_t padded = words_per_row(k) * 64, k64 = k / 64 * 64;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    int64_t c = 0;
    for (; c < k64; c += 64) {
      m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_loadu_ps(row + c)));
      m1 = _mm512_max_ps(m1, _mm512_abs_ps(_mm512_loadu_ps(row + c + 16)));
      m2 = _mm512_max_ps(m2, _mm512_abs_ps(_mm512_loadu_ps(row + c + 32)));
      m3 = _mm512_max_ps(m3, _mm512_abs_ps(_mm512_loadu_ps(row + c + 48)));
    }
    for (; c < k; c += 16) m0 = _mm512_max_ps(m0, _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(k - c), row + c)));
    const float absmax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    const float scale = 127.0f / std::max(absmax, 1e-5f);
    const __m512 vscale = _mm512_set1_ps(scale);
    int8_t* out = q + r * padded;
    __m512i total = _mm512_setzero_si512();
    for (c = 0; c < k; c += 16) {
      const __mmask16 live = tail_mask(k - c);
      // masked-off lanes load 0 and quantize to 0: nothing added, nothing stored
      const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(live, row + c), vscale));
      total = _mm512_add_epi32(total, v);
      _mm512_mask_cvtsepi32_storeu_epi8(out + c, live, v);  // in [-127, 127]: saturation changes nothing
    }
    std::memset(out + k, 0, static_cast<size_t>(padded - k));
    inv_scale[r] = 1.0f / scale;
    rowsum[r] = _mm512_reduce_add_epi32(total);
  }
}

}  // namespace
}  // namespace bitmaps
