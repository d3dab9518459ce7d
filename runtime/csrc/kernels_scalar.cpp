// Portable kernels: plain C++, no instruction-set flags. The baseline every other path is
// tested against (besides the pure-torch reference).
#include "kernels.h"
#include "softmax_rows.h"
#include "layer_norm_rows.h"
#include "int8_lut.h"
#include "scalar_spans.h"

#include <cmath>

namespace bitmaps {
namespace {

inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

void pack_signs(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out,
                float* mean_abs) {
  const int64_t words = words_per_row(k);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    float total = 0.f;
    for (int64_t w = 0; w < words; ++w) {
      const int64_t base = w * 64;
      const uint64_t bits = pack_span(row, base, base + 64 < k ? base + 64 : k, &total);
      out[r * words + w] = bits;
    }
    if (mean_abs != nullptr) mean_abs[r] = total / static_cast<float>(k);
  }
}

inline int32_t xnor_dot(const uint64_t* a, const uint64_t* b, int64_t words, int64_t k) {
  int64_t count = 0;
  for (int64_t w = 0; w < words; ++w) count += popcount64(a[w] ^ b[w]);
  return static_cast<int32_t>(k - 2 * count);
}

void xnor_gemm(const uint64_t* a, const uint64_t* b, int32_t* out, int64_t m0, int64_t m1,
               int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k) {
  for (int64_t i = m0; i < m1; ++i)
    for (int64_t j = n0; j < n1; ++j) out[i * n + j] = xnor_dot(a + i * words, b + j * words, words, k);
}

void xnor_linear(const uint64_t* a, const uint64_t* b, const float* beta, const float* alpha,
                 const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                 int64_t n, int64_t words, int64_t k) {
  for (int64_t i = m0; i < m1; ++i)
    for (int64_t j = n0; j < n1; ++j) {
      const float dot = static_cast<float>(xnor_dot(a + i * words, b + j * words, words, k));
      y[i * n + j] = beta[i] * alpha[j] * dot + (bias ? bias[j] : 0.f);
    }
}

void binary_weight_linear(const float* x, int64_t ldx, const uint64_t* w, const float* alpha,
                          const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k) {
  for (int64_t i = m0; i < m1; ++i) {
    const float* row = x + i * ldx;
    for (int64_t j = n0; j < n1; ++j) {
      const float acc = signed_span_sum(row, w + j * words, 0, k);
      y[i * n + j] = alpha[j] * acc + (bias ? bias[j] : 0.f);
    }
  }
}

void lut_linear(const uint8_t* luts, const int8_t*, const int32_t* rowsum, const float* inv_scale,
                const uint8_t* wlut, const float* alpha, const float* bias, float* y, int64_t m0,
                int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  for (int64_t i = m0; i < m1; ++i) {
    const uint8_t* lut = luts + i * groups * 32;
    for (int64_t j = n0; j < n1; ++j) {
      const uint8_t* block = wlut + (j / 32) * groups * 16;
      int32_t masked = 0;
      for (int64_t g = 0; g < groups; ++g) masked += lut_entry(lut, g, lut_nibble(block, g, j % 32));
      y[i * n + j] = lut_epilogue(rowsum[i], masked, inv_scale[i], alpha[j], bias, j);
    }
  }
}

void sgemm_nt(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0, int64_t m1,
              int64_t n0, int64_t n1, int64_t k) {
  for (int64_t i = m0; i < m1; ++i)
    for (int64_t j = n0; j < n1; ++j) {
      const float* x = a + i * lda;
      const float* y = b + j * ldb;
      float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};  // independent chains
      int64_t t = 0;
      for (; t + 8 <= k; t += 8)
        for (int u = 0; u < 8; ++u) acc[u] += x[t + u] * y[t + u];
      float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      for (; t < k; ++t) sum += x[t] * y[t];
      c[i * ldc + j] = sum;
    }
}

void sgemm_nn(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0, int64_t m1,
              int64_t n, int64_t k) {
  for (int64_t i = m0; i < m1; ++i) {
    float* out = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) out[j] = 0.f;
    for (int64_t t = 0; t < k; ++t) {
      const float p = a[i * lda + t];
      if (p == 0.f) continue;
      const float* row = b + t * ldb;
      for (int64_t j = 0; j < n; ++j) out[j] += p * row[j];
    }
  }
}

void sgemm_panel(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0, int64_t m1,
                 int64_t k, int columns, const float* bias) {
  for (int64_t i = m0; i < m1; ++i)
    for (int j = 0; j < columns; ++j) {
      float sum = 0.f;
      for (int64_t t = 0; t < k; ++t) sum += a[i * lda + t] * panel[(j / 16) * k * 16 + t * 16 + j % 16];
      c[i * ldc + j] = bias ? sum + bias[j] : sum;
    }
}

void unpack_panel(const uint16_t* masks, int64_t k, const float* alpha, int columns, float* panel) {
  for (int64_t t = 0; t < k; ++t)
    for (int j = 0; j < 16; ++j) panel[t * 16 + j] = j < columns ? ((masks[t] >> j) & 1 ? -alpha[j] : alpha[j]) : 0.f;
}

void gelu(float* x, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] = x[i] * 0.5f * (1.f + std::erf(x[i] * 0.70710678118654752f));
}

// softmax_rows.h's ExpDivided
float exp_divided(float* x, int64_t count, float shift, const ScoreDivision& by) {
  float sum = 0.f;
  for (int64_t i = 0; i < count; ++i) sum += (x[i] = std::exp(by(x[i]) - shift));
  return sum;
}

}  // namespace

const KernelTable kScalarKernels = {"scalar", pack_signs, xnor_gemm, xnor_linear, binary_weight_linear,
                                    quantize_rows_int8, lut_linear, LutFormat::kPlanes, sgemm_nt, sgemm_nn, sgemm_panel,
                                    unpack_panel, gelu, softmax_rows_with<exp_divided>, nullptr,
                                    pack_elastic_rows, build_plane_luts, nullptr, nullptr, nullptr,
                                    layer_norm_rows_with<>};

}  // namespace bitmaps
