// W1A1 by table lookup: the XNOR-popcount GEMM as byte shuffles, exact (the T-MAC idea applied
// to 1-bit inputs: the table is built from the inputs, the weights index it).
//
// Inputs: every row of packed sign bits (kernels.h) is read as groups of 4 bits (group g: bits
// 4g..4g+3, padding included, lut_groups(k) groups per row as int8_lut.h counts them); group g gets
// the 16-entry table T_g[p] = popcount(nibble_g(a) ^ p), 16 bytes. Weights: the nibble layout,
// columns 32 at a time; byte (block * groups + g) * 32 + nibble_byte(b) holds nibble g of column
// 32 * block + b (0 past n), one nibble per byte, so a plain 32-byte load is 32 columns' shuffle
// indices (2 bits per weight: splitting packed nibbles inside the loop had cost a fifth of the
// kernel's speed).
// Then popcount(a ^ w_j) = sum_g T_g[nibble_g(w_j)]: one shuffle counts 4 inputs x 32 columns,
// where the XOR kernels spend XOR, split, two shuffles and an add per 64 bits of one column pair.
// Padding nibbles are 0 on both sides and count nothing.
#pragma once
#include <cstdint>
#include <cstring>

#include "int8_lut.h"
#include "kernels.h"

namespace bitmaps {

inline int64_t xnor_lut_bytes(int64_t rows, int64_t k) { return rows * lut_groups(k) * 16; }
inline int64_t xnor_nibble_bytes(int64_t n, int64_t k) { return lut_column_blocks(n) * lut_groups(k) * 32; }

// Where column b (0..31) of a block sits among its 32 bytes: columns 0-15 in the even bytes and
// 16-31 in the odd ones, each 128-bit half holding 8 of each, so that the AVX2 kernel's byte counters,
// split into their even and odd bytes as int16 lanes, hold columns 0-15 and 16-31 in order and go
// to the epilogue straight from registers (reordering them through memory had stalled on
// store-to-load forwarding: a third of the kernel's time at k = 384).
constexpr int nibble_byte(int b) { return 16 * ((b % 16) / 8) + 2 * (b % 8) + b / 16; }

// Columns [j0, j1) of rows of `words` packed words in the nibble layout of `groups` groups a
// column (the first `groups` nibbles of each row: all of them for weights, the low half's 8 for
// attention's rows of at most 32 bits); the other bytes are left as they are.
inline void xnor_nibble_columns(const uint64_t* w, int64_t j0, int64_t j1, int64_t words, int64_t groups, uint8_t* out) {
  for (int64_t j = j0; j < j1; ++j)
    for (int64_t g = 0; g < groups; ++g)
      out[((j / 32) * groups + g) * 32 + nibble_byte(static_cast<int>(j % 32))] = static_cast<uint8_t>((w[j * words + g / 16] >> (4 * (g % 16))) & 15);
}

// The nibble layout of n x words packed weights (xnor_nibble_bytes(n, k) bytes).
inline void xnor_nibble_layout(const uint64_t* w, int64_t n, int64_t words, uint8_t* out) {
  std::memset(out, 0, static_cast<size_t>(lut_column_blocks(n) * words * 16 * 32));
  xnor_nibble_columns(w, 0, n, words, words * 16, out);
}

// The tables of `rows` packed rows, in plain C++ (the SIMD paths build them in their own code).
inline void build_xnor_luts_portable(const uint64_t* a, int64_t rows, int64_t words, uint8_t* luts) {
  const int64_t groups = rows * words * 16;
  for (int64_t g = 0; g < groups; ++g) {
    const int nibble = static_cast<int>((a[g / 16] >> (4 * (g % 16))) & 15);
    for (int p = 0; p < 16; ++p) luts[g * 16 + p] = static_cast<uint8_t>(__builtin_popcount(static_cast<unsigned>(nibble ^ p)));
  }
}

}  // namespace bitmaps
