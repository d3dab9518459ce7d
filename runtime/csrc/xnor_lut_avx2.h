// The W1A1 table-lookup kernels (xnor_lut.h) with AVX2 byte shuffles.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include "xnor_lut.h"

namespace bitmaps {
namespace {

// xnor_lut.h's tables, two groups (one byte of a row) per 256-bit vector. Sixteen bytes at a time:
// their low nibbles in the low lane and their high nibbles in the high lane, so one in-lane
// shuffle broadcasts byte j's two nibbles to their lanes; XOR with 0..15 and a popcount shuffle
// make its two tables (3 vector operations and a store per byte, where broadcasting each byte from
// a scalar register had taken about twice as many).
void build_xnor_luts_avx2(const uint64_t* a, int64_t rows, int64_t words, uint8_t* luts) {
  const __m256i counts = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1,
                                          2, 2, 3, 2, 3, 3, 4);
  const __m256i iota = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7,
                                        8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i low_nibbles = _mm_set1_epi8(15);
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(a);
  const int64_t total = rows * words * 8;
  int64_t p = 0;
  for (; p + 16 <= total; p += 16) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + p));
    const __m256i nibbles =
        _mm256_setr_m128i(_mm_and_si128(b, low_nibbles), _mm_and_si128(_mm_srli_epi16(b, 4), low_nibbles));
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      const __m256i v = _mm256_shuffle_epi8(nibbles, _mm256_set1_epi8(static_cast<char>(j)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(luts + 32 * (p + j)),
                          _mm256_shuffle_epi8(counts, _mm256_xor_si256(v, iota)));
    }
  }
  for (; p < total; ++p) {  // rows of one word: 8 bytes
    const __m256i v = _mm256_setr_m128i(_mm_set1_epi8(static_cast<char>(bytes[p] & 15)),
                                        _mm_set1_epi8(static_cast<char>(bytes[p] >> 4)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(luts + 32 * p), _mm256_shuffle_epi8(counts, _mm256_xor_si256(v, iota)));
  }
}

// popcount(a_r ^ w_j) for R rows x C blocks of 32 columns, into even[r * C + c] (columns 0-15)
// and odd[r * C + c] (columns 16-31) as int16 lanes. Per group, one broadcast table per row and
// one shuffle per row and block; byte counters gain at most 4 per group and are widened every 62
// groups into the even and odd bytes' int16 lanes (and + shift instead of unpacking), which the
// nibble layout's byte order (nibble_byte) makes columns in order. Counts reach at most k
// (< 32768). Two groups per iteration: groups come in multiples of 16. Not inlined: inlined into
// xnor_lut_dots, the compiler kept the int16 counters in registers too and spilled byte counters
// inside the loop (a 16 x 384 x 384 product 6.1 -> 4.5 us with this, the 3-row tiles and the
// counters set by the first chunk, Zen 4 on this path).
template <int R, int C>
__attribute__((noinline)) void xnor_lut_counts(const uint8_t* const* luts, const uint8_t* nibbles, int64_t groups, __m256i* even,
                            __m256i* odd) {
  const __m256i zero = _mm256_setzero_si256(), low_bytes = _mm256_set1_epi16(0xff);
  __m256i bytes[R * C];
  for (int64_t g0 = 0; g0 < groups; g0 += 62) {
    const int64_t g1 = std::min<int64_t>(groups, g0 + 62);
#pragma GCC unroll 8
    for (int t = 0; t < R * C; ++t) bytes[t] = zero;
#pragma GCC unroll 1
    for (int64_t g = g0; g < g1; g += 2) {
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        __m256i index[C];
#pragma GCC unroll 4
        for (int c = 0; c < C; ++c)
          index[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(nibbles + (c * groups + g + h) * 32));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m256i table =
              _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(luts[r] + (g + h) * 16)));
#pragma GCC unroll 4
          for (int c = 0; c < C; ++c)
            bytes[r * C + c] = _mm256_add_epi8(bytes[r * C + c], _mm256_shuffle_epi8(table, index[c]));
        }
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < R * C; ++t) {  // the first chunk sets the counters: zeroing them first had
      // compiled to two string stores per call, a sixth of a 4 x 64 tile's time at k = 384
      const __m256i low = _mm256_and_si256(bytes[t], low_bytes), high = _mm256_srli_epi16(bytes[t], 8);
      even[t] = g0 ? _mm256_add_epi16(even[t], low) : low;
      odd[t] = g0 ? _mm256_add_epi16(odd[t], high) : high;
    }
  }
}

// xnor_lut_counts<4, 2> in assembly: GCC spilled three of its eight byte counters to the stack
// (and copied counters between registers when it kept them), so the loop ran below the shuffle
// ports' rate. Here the eight counters, two index vectors, the table and one product stay in 12
// registers: per group 2 index loads, 4 table broadcasts, 8 shuffles and 8 byte adds, two groups
// per iteration over a negative offset that counts up to 0 (its flags end the loop). The same
// counts, widened the same way.
#define BITMAPS_LUT_ROW(r, bytes)                                \
  "vbroadcasti128 " #bytes "(%[t" #r "],%[off]), %[table]\n\t" \
  "vpshufb %[x0], %[table], %[product]\n\t"                     \
  "vpaddb %[product], %[c" #r "0], %[c" #r "0]\n\t"             \
  "vpshufb %[x1], %[table], %[product]\n\t"                     \
  "vpaddb %[product], %[c" #r "1], %[c" #r "1]\n\t"
#define BITMAPS_LUT_GROUP(bytes, index_bytes)                    \
  "vmovdqu " #index_bytes "(%[i0],%[off],2), %[x0]\n\t"         \
  "vmovdqu " #index_bytes "(%[i1],%[off],2), %[x1]\n\t"         \
  BITMAPS_LUT_ROW(0, bytes) BITMAPS_LUT_ROW(1, bytes) BITMAPS_LUT_ROW(2, bytes) BITMAPS_LUT_ROW(3, bytes)

__attribute__((noinline)) void xnor_lut_counts_4x64(const uint8_t* const* luts, const uint8_t* nibbles, int64_t groups,
                                                    __m256i* even, __m256i* odd) {
  const __m256i low_bytes = _mm256_set1_epi16(0xff);
  for (int64_t g0 = 0; g0 < groups; g0 += 62) {  // groups and chunks are even (groups: 16 a word)
    const int64_t g1 = std::min<int64_t>(groups, g0 + 62);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    __m256i x0, x1, table, product;
    // pointers at the chunk's end, read at offset 16 * (g - g1) bytes (tables) and twice that (indices)
    const uint8_t *i0 = nibbles + g1 * 32, *i1 = nibbles + (groups + g1) * 32;
    const uint8_t *t0 = luts[0] + g1 * 16, *t1 = luts[1] + g1 * 16, *t2 = luts[2] + g1 * 16, *t3 = luts[3] + g1 * 16;
    int64_t off = (g0 - g1) * 16;
    __asm__(
        "1:\n\t"
        BITMAPS_LUT_GROUP(0, 0)
        BITMAPS_LUT_GROUP(16, 32)
        "add $32, %[off]\n\t"
        "jnz 1b\n\t"
        : [c00] "+x"(c00), [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21),
          [c30] "+x"(c30), [c31] "+x"(c31), [off] "+r"(off), [x0] "=&x"(x0), [x1] "=&x"(x1), [table] "=&x"(table),
          [product] "=&x"(product)
        : [i0] "r"(i0), [i1] "r"(i1), [t0] "r"(t0), [t1] "r"(t1), [t2] "r"(t2), [t3] "r"(t3)
        : "memory", "cc");
    const __m256i bytes[8] = {c00, c01, c10, c11, c20, c21, c30, c31};
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
      const __m256i low = _mm256_and_si256(bytes[t], low_bytes), high = _mm256_srli_epi16(bytes[t], 8);
      even[t] = g0 ? _mm256_add_epi16(even[t], low) : low;
      odd[t] = g0 ? _mm256_add_epi16(odd[t], high) : high;
    }
  }
}
#undef BITMAPS_LUT_GROUP
#undef BITMAPS_LUT_ROW

// k - 2 * popcount for the same tile, handed to sink(r, c, e, dots) as eight int32 for columns
// 8e..8e+7 of block c, straight from the counters' registers; exact in int16 arithmetic (the
// result lies in [-k, k], the doubled count may wrap on the way).
template <int R, int C, typename Sink>
inline void xnor_lut_dots(const uint8_t* const* luts, const uint8_t* nibbles, int64_t groups, int64_t k, Sink sink) {
  __m256i even[R * C], odd[R * C];
  if constexpr (R == 4 && C == 2)
    xnor_lut_counts_4x64(luts, nibbles, groups, even, odd);
  else
    xnor_lut_counts<R, C>(luts, nibbles, groups, even, odd);
  const __m256i total = _mm256_set1_epi16(static_cast<int16_t>(k));
#pragma GCC unroll 8
  for (int t = 0; t < R * C; ++t) {
    const __m256i low = _mm256_sub_epi16(total, _mm256_slli_epi16(even[t], 1));   // columns 0-15
    const __m256i high = _mm256_sub_epi16(total, _mm256_slli_epi16(odd[t], 1));   // columns 16-31
    sink(t / C, t % C, 0, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(low)));
    sink(t / C, t % C, 1, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(low, 1)));
    sink(t / C, t % C, 2, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(high)));
    sink(t / C, t % C, 3, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(high, 1)));
  }
}

template <int R, typename Sink>
inline void xnor_lut_rows(const uint8_t* const* luts, const uint8_t* nibbles, int64_t groups, int64_t k,
                          int columns_blocks, Sink sink) {
  if (columns_blocks == 2) return xnor_lut_dots<R, 2>(luts, nibbles, groups, k, sink);
  xnor_lut_dots<R, 1>(luts, nibbles, groups, k, sink);
}

// Rows per tile when `left` rows remain: 4 x 64 columns (xnor_lut_counts_4x64) while four are
// left, then the rest in one tile of the compiled loop (2 x 64 tiles run slower: fewer shuffles
// per load).
inline int xnor_lut_tile_rows(int64_t left) { return static_cast<int>(std::min<int64_t>(4, left)); }

// Tiles of 4 (the last one fewer) rows x 64 columns over rows [m0, m1) x columns [n0, n1) (n0 a
// multiple of 32, as run_tiles cuts them, else the first block is recomputed in part).
// store(i, j0, dots, inside) gets columns j0..j0+7 (eight int32 k - 2 * popcount); `inside` is
// std::true_type where all eight lie in [n0, n1), as in every tile but those at the edges, and
// std::false_type where the caller keeps only those that do. Resolving that once per tile and
// not per eight columns, with the callers' own options as template arguments and values captured
// by copy (by reference, every may-alias vector store made the compiler reload them).
// `groups`: the tables' and nibbles' groups a row (xnor_lut.h: lut_groups(k), or 8 for the
// half-word rows below), even.
template <typename Store>
void xnor_lut_tiles(const uint8_t* luts, const uint8_t* nibbles, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                    int64_t groups, int64_t k, Store store) {
  for (int64_t i = m0, rows = 0; i < m1; i += rows) {
    rows = xnor_lut_tile_rows(m1 - i);
    const uint8_t* row_luts[4];
    for (int r = 0; r < 4; ++r) row_luts[r] = luts + (i + std::min<int64_t>(r, rows - 1)) * groups * 16;
    for (int64_t block = n0 / 32; block * 32 < n1; block += 2) {
      const int blocks = (block + 1) * 32 < n1 ? 2 : 1;
      const uint8_t* w = nibbles + block * groups * 32;
      if (rows == 4 && blocks == 2 && block * 32 >= n0 && (block + 2) * 32 <= n1) {
        xnor_lut_dots<4, 2>(row_luts, w, groups, k, [=](int r, int c, int e, __m256i dots) {
          store(i + r, (block + c) * 32 + 8 * e, dots, std::true_type{});
        });
        continue;
      }
      const auto sink = [=](int r, int c, int e, __m256i dots) {
        const int64_t j0 = (block + c) * 32 + 8 * e;
        if (j0 < n1) store(i + r, j0, dots, std::false_type{});
      };
      switch (rows) {
        case 4: xnor_lut_rows<4>(row_luts, w, groups, k, blocks, sink); break;
        case 3: xnor_lut_rows<3>(row_luts, w, groups, k, blocks, sink); break;
        case 2: xnor_lut_rows<2>(row_luts, w, groups, k, blocks, sink); break;
        default: xnor_lut_rows<1>(row_luts, w, groups, k, blocks, sink); break;
      }
    }
  }
}

void xnor_lut_gemm_avx2(const uint8_t* luts, const uint8_t* nibbles, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                        int64_t n1, int64_t n, int64_t words, int64_t k) {
  xnor_lut_tiles(luts, nibbles, m0, m1, n0, n1, words * 16, k, [=](int64_t i, int64_t j0, __m256i dots, auto inside) {
    if constexpr (decltype(inside)::value)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i * n + j0), dots);
    else
      store_dots(out + i * n, j0, n0, n1, dots);
  });
}

template <bool kBias>
void xnor_lut_linear_with(const uint8_t* luts, const uint8_t* nibbles, const float* beta, const float* alpha,
                          const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                          int64_t words, int64_t k) {
  xnor_lut_tiles(luts, nibbles, m0, m1, n0, n1, words * 16, k, [=](int64_t i, int64_t j0, __m256i dots, auto inside) {
    const __m256 dot = _mm256_cvtepi32_ps(dots);
    if (decltype(inside)::value || (j0 >= n0 && j0 + 8 <= n1)) {
      // xnor_linear's order of operations: (beta * alpha) * dot + bias
      __m256 out = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(beta[i]), _mm256_loadu_ps(alpha + j0)), dot);
      if (kBias) out = _mm256_add_ps(out, _mm256_loadu_ps(bias + j0));
      return _mm256_storeu_ps(y + i * n + j0, out);
    }
    alignas(32) float d[8];
    _mm256_store_ps(d, dot);
    for (int t = 0; t < 8; ++t) {
      const int64_t j = j0 + t;
      if (j >= n0 && j < n1) y[i * n + j] = beta[i] * alpha[j] * d[t] + (kBias ? bias[j] : 0.f);
    }
  });
}

void xnor_lut_linear_avx2(const uint8_t* luts, const uint8_t* nibbles, const float* beta, const float* alpha,
                          const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                          int64_t words, int64_t k) {
  (bias ? xnor_lut_linear_with<true> : xnor_lut_linear_with<false>)(luts, nibbles, beta, alpha, bias, y, m0, m1, n0,
                                                                     n1, n, words, k);
}

// xnor_lut_gemm then scale_dots (scale_dots.h) in one: each tile's 8 columns scaled from the
// counters' registers in scale_dots_rows' operations and order
template <bool kAdd, bool kBias>
void xnor_lut_scaled_with(const uint8_t* luts, const uint8_t* nibbles, const int32_t* add, float factor,
                          const float* scale, const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k) {
  const __m256 f = _mm256_set1_ps(factor);
  xnor_lut_tiles(luts, nibbles, m0, m1, n0, n1, words * 16, k, [=](int64_t i, int64_t j0, __m256i dots, auto inside) {
    if (decltype(inside)::value || (j0 >= n0 && j0 + 8 <= n1)) {
      if (kAdd) dots = _mm256_add_epi32(dots, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(add + j0)));
      __m256 out = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(dots), f), _mm256_loadu_ps(scale + j0));
      if (kBias) out = _mm256_add_ps(out, _mm256_loadu_ps(bias + j0));
      return _mm256_storeu_ps(y + i * n + j0, out);
    }
    alignas(32) int32_t d[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(d), dots);
    for (int t = 0; t < 8; ++t) {
      const int64_t j = j0 + t;
      if (j < n0 || j >= n1) continue;
      const float v = static_cast<float>(kAdd ? d[t] + add[j] : d[t]) * factor * scale[j];
      y[i * n + j] = kBias ? v + bias[j] : v;
    }
  });
}

void xnor_lut_scaled_avx2(const uint8_t* luts, const uint8_t* nibbles, const int32_t* add, float factor,
                          const float* scale, const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k) {
  const auto run = add ? (bias ? xnor_lut_scaled_with<true, true> : xnor_lut_scaled_with<true, false>)
                       : (bias ? xnor_lut_scaled_with<false, true> : xnor_lut_scaled_with<false, false>);
  run(luts, nibbles, add, factor, scale, bias, y, m0, m1, n0, n1, n, words, k);
}

}  // namespace
}  // namespace bitmaps
