// The XNOR-popcount GEMM tile loop shared by the SIMD paths; each path supplies its own popcount
// inner loop (`Counter::run<J>`: popcount(a ^ b_j) for J rows of b at once). Everything here is
// in an anonymous namespace on purpose: each instruction-set file compiles its own copy with its
// own flags, and no copy can be merged with another's at link time.
#pragma once
#include "kernels.h"

namespace bitmaps {
namespace {

template <typename Counter, typename Epilogue>
inline void xnor_tile(const uint64_t* a, const uint64_t* b, int64_t m0, int64_t m1, int64_t n0,
                      int64_t n1, int64_t words, int64_t k, Epilogue store) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint64_t* ai = a + i * words;
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) {
      const uint64_t* bj[4] = {b + j * words, b + (j + 1) * words, b + (j + 2) * words, b + (j + 3) * words};
      int64_t counts[4];
      Counter::template run<4>(ai, bj, words, counts);
      for (int t = 0; t < 4; ++t) store(i, j + t, static_cast<int32_t>(k - 2 * counts[t]));
    }
    for (; j < n1; ++j) {
      const uint64_t* bj[1] = {b + j * words};
      int64_t count;
      Counter::template run<1>(ai, bj, words, &count);
      store(i, j, static_cast<int32_t>(k - 2 * count));
    }
  }
}

template <typename Counter>
void xnor_gemm_tiles(const uint64_t* a, const uint64_t* b, int32_t* out, int64_t m0, int64_t m1,
                     int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k) {
  xnor_tile<Counter>(a, b, m0, m1, n0, n1, words, k,
                     [&](int64_t i, int64_t j, int32_t dot) { out[i * n + j] = dot; });
}

template <typename Counter>
void xnor_linear_tiles(const uint64_t* a, const uint64_t* b, const float* beta, const float* alpha,
                       const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                       int64_t n, int64_t words, int64_t k) {
  xnor_tile<Counter>(a, b, m0, m1, n0, n1, words, k, [&](int64_t i, int64_t j, int32_t dot) {
    y[i * n + j] = beta[i] * alpha[j] * static_cast<float>(dot) + (bias ? bias[j] : 0.f);
  });
}

}  // namespace
}  // namespace bitmaps
