// LayerNorm of rows in place, as the encoder defines it: the sum and the sum of squares summed in
// double in one pass, each as kNormParts interleaved partial sums combined in one fixed order (a
// running sum is a chain of dependent adds, 4 cycles each: with 8 parts, AVX2's two vectors of 4
// doubles were still latency-bound); the variance is their E[x^2] - mean^2 (each square exact in
// double, so for float inputs this loses float precision only when |mean| / std exceeds about
// 1e4); then (x - mean) * inv * weight + bias in float. A second pass for the squares of the
// differences from the mean, which this replaced, had cost up to 2.9% of a MiniLM XNOR forward
// (docs/runtime-speed.md, twenty-first session). A template over the file's own loops over whole
// blocks (SumParts: kNormParts values, Normalize: 8; AddSumParts: the residual add of
// add_layer_norm_rows_with in the same pass): each instruction-set file compiles it with its
// flags, with the same lanes and order, so every path gives the same bits (the encoder's base
// flags had summed two doubles at a time). In an anonymous namespace, like softmax_rows.h.
#pragma once
#include <cmath>
#include <cstdint>

namespace bitmaps {
namespace {

constexpr int kNormParts = 32;

// part[t] += row[k + t] and square[t] += row[k + t]^2 over whole blocks of kNormParts
inline void sum_parts(const float* row, int64_t blocks, double* part, double* square) {
  for (int64_t k = 0; k < blocks * kNormParts; k += kNormParts)
    for (int t = 0; t < kNormParts; ++t) {
      const double v = row[k + t];
      part[t] += v;
      square[t] += v * v;
    }
}

// sum_parts of (row[k + t] += residual[k + t]): the residual add of add_layer_norm_rows_with,
// stored back and summed in the same pass
inline void add_sum_parts(float* row, const float* residual, int64_t blocks, double* part, double* square) {
  for (int64_t k = 0; k < blocks * kNormParts; k += kNormParts)
    for (int t = 0; t < kNormParts; ++t) {
      row[k + t] += residual[k + t];
      const double v = row[k + t];
      part[t] += v;
      square[t] += v * v;
    }
}

// row[k] = (row[k] - mean) * inv * weight[k] + bias[k] over whole blocks of 8
inline void normalize_blocks(float* row, int64_t blocks, float mean, float inv, const float* weight,
                             const float* bias) {
  for (int64_t k = 0; k < blocks * 8; ++k) row[k] = (row[k] - mean) * inv * weight[k] + bias[k];
}

// LayerNorm of x + residual (residual nullable: of x), the add stored into x
template <void (*SumParts)(const float*, int64_t, double*, double*), void (*Normalize)(float*, int64_t, float, float, const float*, const float*),
          void (*AddSumParts)(float*, const float*, int64_t, double*, double*)>
void norm_rows(float* x, const float* residual, int64_t rows, int64_t h, const float* weight, const float* bias, float eps) {
  const int64_t blocks = h / 8, sum_blocks = h / kNormParts;
  // the mean and the variance of row + added (where `added` is not null, which the pass stores
  // into row)
  const auto moments = [&](float* row, const float* added, double* mean, double* variance) {
    double part[kNormParts], square[kNormParts];
#pragma GCC unroll 32
    for (int t = 0; t < kNormParts; ++t) part[t] = square[t] = 0.0;  // stores, where `= {}` had compiled to a string store
    if (added)
      AddSumParts(row, added, sum_blocks, part, square);
    else
      SumParts(row, sum_blocks, part, square);
    for (int64_t k = sum_blocks * kNormParts; k < h; ++k) {
      if (added) row[k] += added[k];
      const double v = row[k];
      part[k % kNormParts] += v;
      square[k % kNormParts] += v * v;
    }
    for (int width = kNormParts / 2; width >= 1; width /= 2)  // halves folded onto each other
      for (int t = 0; t < width; ++t) part[t] += part[t + width], square[t] += square[t + width];
    *mean = part[0] / static_cast<double>(h);
    const double spread = square[0] / static_cast<double>(h) - *mean * *mean;
    *variance = spread > 0.0 ? spread : 0.0;  // rounding can take a constant row's below 0
  };
  // two rows at a time, each step for both: a row's steps form one long chain of dependent
  // operations (sums, mean, square root, division), which the core can overlap with the other
  // row's; the partial sums are zeroed by stores above, where `= {}` was a string store
  for (int64_t r = 0; r < rows; r += 2) {
    const int pair = r + 1 < rows ? 2 : 1;
    float* row[2] = {x + r * h, x + (r + pair - 1) * h};
    const float* added[2] = {residual ? residual + r * h : nullptr, residual ? residual + (r + pair - 1) * h : nullptr};
    double mean[2], variance[2];
    for (int p = 0; p < pair; ++p) moments(row[p], added[p], &mean[p], &variance[p]);
    for (int p = 0; p < pair; ++p) {
      const float inv = static_cast<float>(1.0 / std::sqrt(variance[p] + eps));
      const float m = static_cast<float>(mean[p]);
      Normalize(row[p], blocks, m, inv, weight, bias);
      for (int64_t k = blocks * 8; k < h; ++k) row[p][k] = (row[p][k] - m) * inv * weight[k] + bias[k];
    }
  }
}

template <void (*SumParts)(const float*, int64_t, double*, double*) = sum_parts,
          void (*Normalize)(float*, int64_t, float, float, const float*, const float*) = normalize_blocks>
void layer_norm_rows_with(float* x, int64_t rows, int64_t h, const float* weight, const float* bias, float eps) {
  norm_rows<SumParts, Normalize, add_sum_parts>(x, nullptr, rows, h, weight, bias, eps);
}

// KernelTable::add_layer_norm_rows: x = LayerNorm(x + residual), the add inside the first pass (the
// same floats as adding first, then layer_norm_rows_with, without a pass of its own over x)
template <void (*SumParts)(const float*, int64_t, double*, double*) = sum_parts,
          void (*Normalize)(float*, int64_t, float, float, const float*, const float*) = normalize_blocks,
          void (*AddSumParts)(float*, const float*, int64_t, double*, double*) = add_sum_parts>
void add_layer_norm_rows_with(float* x, const float* residual, int64_t rows, int64_t h, const float* weight,
                              const float* bias, float eps) {
  norm_rows<SumParts, Normalize, AddSumParts>(x, residual, rows, h, weight, bias, eps);
}

}  // namespace
}  // namespace bitmaps
