// The 16-column panels the float GEMM micro-kernels read (k x 16 floats, zero-padded), built from
// B's rows (C = A B^T) or columns (C = A B). Portable loops shared by the SIMD files; in an
// anonymous namespace, so each file compiles its own copy with its own flags.
#pragma once
#include <cstdint>
#include <vector>

#include "aligned.h"

namespace bitmaps {
namespace {

inline float* panel_buffer(int64_t k) {
  thread_local aligned_vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < k * 16) buffer.resize(static_cast<size_t>(k * 16));
  return buffer.data();
}

// panel[t * 16 + jj] = B[j + jj, t] (rows of B, each k long, stride ldb)
inline void panel_from_rows(const float* b, int64_t ldb, int64_t j, int columns, int64_t k, float* panel) {
  for (int64_t t = 0; t < k; ++t)
    for (int jj = 0; jj < 16; ++jj) panel[t * 16 + jj] = jj < columns ? b[(j + jj) * ldb + t] : 0.f;
}

// panel[t * 16 + jj] = B[t, j + jj] (B row-major k x n, stride ldb)
inline void panel_from_columns(const float* b, int64_t ldb, int64_t j, int columns, int64_t k, float* panel) {
  for (int64_t t = 0; t < k; ++t)
    for (int jj = 0; jj < 16; ++jj) panel[t * 16 + jj] = jj < columns ? b[t * ldb + j + jj] : 0.f;
}

// C = A B^T (rows [m0, m1), columns [n0, n1)) or C = A B (all n columns) through `tiles`, the
// micro-kernel over rows: tiles(a, lda, panel, c, ldc, m0, m1, k, columns, bias = nullptr), which
// reads `Panels` consecutive panels (columns <= 16 * Panels; the next panel at panel + k * 16).
// FromRows: how B's rows become a panel (panel_from_rows's arguments), panel_from_rows by default.
template <int Panels = 1, typename Tiles, typename FromRows = decltype(&panel_from_rows)>
void gemm_nt_panels(Tiles tiles, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                    int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t k, FromRows from_rows = panel_from_rows) {
  float* panel = panel_buffer(k * Panels);
  for (int64_t j = n0; j < n1; j += 16 * Panels) {
    const int columns = static_cast<int>(n1 - j < 16 * Panels ? n1 - j : 16 * Panels);
    for (int p = 0; 16 * p < columns; ++p)
      from_rows(b, ldb, j + 16 * p, columns - 16 * p < 16 ? columns - 16 * p : 16, k, panel + p * k * 16);
    tiles(a, lda, panel, c + j, ldc, m0, m1, k, columns, nullptr);
  }
}

template <int Panels = 1, typename Tiles>
void gemm_nn_panels(Tiles tiles, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                    int64_t m0, int64_t m1, int64_t n, int64_t k) {
  float* panel = panel_buffer(k * Panels);
  for (int64_t j = 0; j < n; j += 16 * Panels) {
    const int columns = static_cast<int>(n - j < 16 * Panels ? n - j : 16 * Panels);
    for (int p = 0; 16 * p < columns; ++p)
      panel_from_columns(b, ldb, j + 16 * p, columns - 16 * p < 16 ? columns - 16 * p : 16, k, panel + p * k * 16);
    tiles(a, lda, panel, c + j, ldc, m0, m1, k, columns, nullptr);
  }
}

}  // namespace
}  // namespace bitmaps
