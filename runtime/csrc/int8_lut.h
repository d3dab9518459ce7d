// W1A8 by table lookup, in the style of T-MAC / bitnet.cpp's TL kernels, but exact.
//
// Activations: each row is quantized to int8 with its own absmax scale (x * 127 / max|x|,
// rounded half to even, as the training quantizer does) and zero-padded to whole 64-bit words.
// For every group g of 4 consecutive activations q[4g..4g+3] the row gets a 16-entry table
// T_g[p] = sum over bits t set in p of q[4g+t], an int16 in [-508, 508], stored in 32 bytes per
// group as two planes of 16, so one pshufb per plane looks up 32 columns at once. Two layouts
// (LutFormat, kernels.h; each path says which its builder writes and its kernel reads):
// - kPlanes: the entry's low bytes, then its high bytes (scalar, NEON);
// - kSplit6: u = T_g[p] + 508 in [0, 1016] as u & 63, then u >> 6 (AVX2, AVX-512). Low parts of 4
//   groups add to at most 252 and high parts (<= 15) of 16 groups to at most 240, so the kernel
//   adds them as bytes and widens them every 4 and 16 groups, instead of interleaving two planes
//   into int16 for every group (two shuffles per row and group, on the ports the lookups need);
//   sum_g T_g = sum_g low + 64 * sum_g high - 508 * groups, exact.
// Since a set weight bit means -1, dot(q, s_j) = rowsum(q) - 2 * sum_g T_g[nibble].
//
// Weights: columns are taken 32 at a time; for each block and group, byte b holds the nibble of
// column 32*block + b in its low half and of column 32*block + 16 + b in its high half
// (16 bytes per block and group). `lut_weight_layout` converts from the packed-word layout once.
#pragma once
#include <cstdint>

#include "kernels.h"

namespace bitmaps {

inline int64_t lut_groups(int64_t k) { return words_per_row(k) * 16; }
inline int64_t lut_column_blocks(int64_t n) { return (n + 31) / 32; }

// Absmax int8 per row as bitmaps_allennlp/quantization/int8.py defines it. q: rows x (words * 64)
// int8 (padding zeroed); inv_scale = 1 / scale (the `step`), rowsum = sum of q.
void quantize_rows_int8(const float* x, int64_t rows, int64_t k, int64_t ldx, int8_t* q,
                        float* inv_scale, int32_t* rowsum);
// luts: rows x groups x 32 bytes, from q (rows x groups * 4), in `format` (not kNone); the
// portable definition that every path's own builder must equal byte for byte.
void build_luts(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts, LutFormat format);
// kPlanes tables: the scalar and NEON kernel tables' builder
inline void build_plane_luts(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts) {
  build_luts(q, rows, groups, luts, LutFormat::kPlanes);
}
constexpr int kSplit6Bias = 508;  // kSplit6: the largest |entry|, added so that entries are >= 0
// wlut: column_blocks x groups x 16 bytes, from packed weights (n x words).
void lut_weight_layout(const uint64_t* w, int64_t n, int64_t words, uint8_t* wlut);

// The nibble of column j (within its block of 32) for group g, from the weight layout.
inline int lut_nibble(const uint8_t* block, int64_t g, int64_t column_in_block) {
  const uint8_t byte = block[g * 16 + (column_in_block & 15)];
  return column_in_block < 16 ? (byte & 15) : (byte >> 4);
}

// An entry of a kPlanes table.
inline int32_t lut_entry(const uint8_t* lut, int64_t g, int nibble) {
  return static_cast<int16_t>(lut[g * 32 + nibble] | (lut[g * 32 + 16 + nibble] << 8));
}

inline float lut_epilogue(int32_t rowsum, int32_t masked, float inv_scale, float alpha, const float* bias,
                          int64_t j) {
  return static_cast<float>(rowsum - 2 * masked) * inv_scale * alpha + (bias ? bias[j] : 0.f);
}

}  // namespace bitmaps
