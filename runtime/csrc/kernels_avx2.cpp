// AVX2 kernels (compiled with -mavx2 -mfma -mpopcnt; only called after a CPU check).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "aligned.h"
#include "avx2_reduce.h"
#include "bit_row_sums.h"
#include "float_avx2.h"
#include "kernels.h"
#include "scale_dots.h"
#include "softmax_rows.h"
#include "layer_norm_rows.h"
#include "lut_tile_avx2.h"
#include "quantize_avx2.h"
#include "scalar_spans.h"
#include "two_set_attention_avx2.h"
#include "xnor_lut_avx2.h"
#include "xnor_tile.h"

namespace bitmaps {
namespace {

// KernelTable::pack_signs of map(x), 8 values at a time; the values after a row's last whole vector
// go through map in a zero-padded vector (as float_avx2.h's gelu takes its tail), then the scalar
// loop: the same bits and the same mean |map(x)| as map over a copy of the row and pack_signs.
template <typename Map>
void pack_mapped_signs(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs, Map map) {
  const int64_t words = words_per_row(k);
  const __m256 zero = _mm256_setzero_ps();
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    __m256 total = _mm256_setzero_ps();
    float tail_total = 0.f;
    for (int64_t w = 0; w < words; ++w) {
      // whole vectors of the word, then the scalar rest: attention heads' rows are 32 values,
      // which went through the scalar loop and made quantizing BiBERT's Q/K/V a fifth of its attention
      const int64_t base = w * 64, span = std::min<int64_t>(k - base, 64), vectors = span / 8;
      uint64_t bits = 0;
      for (int64_t b = 0; b < vectors; ++b) {
        const __m256 v = map(_mm256_loadu_ps(row + base + 8 * b));
        // v < 0 rather than the sign bit: -0.0 is +1, as in training
        const uint64_t lanes = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_LT_OQ)));
        bits |= lanes << (8 * b);
        total = _mm256_add_ps(total, _mm256_and_ps(v, abs_mask));
      }
      if (8 * vectors < span) {
        alignas(32) float tail[8] = {0.f};
        std::copy(row + base + 8 * vectors, row + base + span, tail);
        _mm256_store_ps(tail, map(_mm256_load_ps(tail)));
        bits |= pack_span(tail, 0, span - 8 * vectors, &tail_total) << (8 * vectors);
      }
      out[r * words + w] = bits;
    }
    if (mean_abs != nullptr) mean_abs[r] = (hsum_ps(total) + tail_total) / static_cast<float>(k);
  }
}

void pack_signs(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs) {
  pack_mapped_signs(x, rows, k, ldx, out, mean_abs, [](__m256 v) { return v; });
}

// KernelTable::pack_gelu_signs: XNOR's FFN-down inputs with GELU in registers (gelu8, this path's
// KernelTable::gelu), where the generic preparation copied each row, activated it in place and
// packed it in a second pass. The erf's multiply-adds and division stay the cost: the XNOR MiniLM
// forward ran 1.004x (quartiles 0.993-1.037, runtime_ab.sh, 40 pairs), perf's share of the copy,
// GELU and packing 11.3% -> 10.9%.
void pack_gelu_signs(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs) {
  pack_mapped_signs(x, rows, k, ldx, out, mean_abs, gelu8);
}

// KernelTable::pack_negative: 8 integer compares moved out as sign bits at a time
void pack_negative(const int32_t* x, int64_t rows, int64_t n, uint64_t* out) {
  const int64_t words = words_per_row(n);
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t r = 0; r < rows; ++r) {
    const int32_t* row = x + r * n;
    for (int64_t w = 0; w < words; ++w) {
      const int64_t base = w * 64, span = std::min<int64_t>(n - base, 64), vectors = span / 8;
      uint64_t bits = 0;
      for (int64_t b = 0; b < vectors; ++b) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + base + 8 * b));
        bits |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(zero, v))))) << (8 * b);
      }
      for (int64_t j = 8 * vectors; j < span; ++j) bits |= static_cast<uint64_t>(row[base + j] < 0) << j;
      out[r * words + w] = bits;
    }
  }
}

// below_cut (kernels.h) on 8 values at a time: x < cut (two-set; false for NaN) or !(x >= cut)
// (elastic; true for NaN)
// 32 compares to 32 bits at a time (mask_bits32)
template <bool kTwoSet>
void pack_elastic_with(const float* x, int64_t rows, int64_t k, int64_t ldx, float cut, uint64_t* out) {
  const int64_t words = words_per_row(k);
  const __m256 c = _mm256_set1_ps(cut);
  const auto below = [c](const float* p) {
    const __m256 value = _mm256_loadu_ps(p);
    return _mm256_castps_si256(kTwoSet ? _mm256_cmp_ps(value, c, _CMP_LT_OQ) : _mm256_cmp_ps(value, c, _CMP_NGE_UQ));
  };
  if (k % 32 == 0) {  // whole groups of 32 (attention heads' rows, every MiniLM and BERT width): no tails
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * ldx;
      for (int64_t w = 0; w < words; ++w) {
        const float* p = row + 64 * w;
        uint64_t bits = mask_bits32(below(p), below(p + 8), below(p + 16), below(p + 24));
        if (64 * w + 64 <= k) bits |= static_cast<uint64_t>(mask_bits32(below(p + 32), below(p + 40), below(p + 48), below(p + 56))) << 32;
        out[r * words + w] = bits;
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    for (int64_t w = 0; w < words; ++w) {
      const int64_t base = w * 64, span = std::min<int64_t>(k - base, 64);
      uint64_t bits = 0;
      int64_t t = 0;
      for (; t + 32 <= span; t += 32) {
        const float* p = row + base + t;
        bits |= static_cast<uint64_t>(mask_bits32(below(p), below(p + 8), below(p + 16), below(p + 24))) << t;
      }
      for (; t + 8 <= span; t += 8)
        bits |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(below(row + base + t))))) << t;
      if (t < span) bits |= elastic_span(row, base + t, base + span, cut, kTwoSet) << t;
      out[r * words + w] = bits;
    }
  }
}

void pack_elastic(const float* x, int64_t rows, int64_t k, int64_t ldx, float cut, bool two_set, uint64_t* out) {
  (two_set ? pack_elastic_with<true> : pack_elastic_with<false>)(x, rows, k, ldx, cut, out);
}

// KernelTable::transpose_bits for rows of one word (d <= 64 bits), the bit matrix of V's signs
// turned into one row per column for attention's packed context: each column's bits of 8 rows (32-
// bit lanes, d <= 32) or 4 (64-bit lanes) at a time are their lanes' sign bits (movemask), the
// lanes doubled between columns from the highest column down. The portable loop visits each set
// bit with a dependent or into memory, 2 us of a MiniLM head (bits_avx512.h does the same with
// mask registers). False for longer rows.
template <int kLaneBits>
void transpose_word(const uint64_t* rows, int64_t count, int64_t d, int64_t key_words, int64_t w, uint64_t* out) {
  using Lane = std::conditional_t<kLaneBits == 32, uint32_t, uint64_t>;
  constexpr int kLanes = 256 / kLaneBits, kVectors = 64 / kLanes;
  alignas(32) Lane values[64] = {};  // bit d - 1 at the top of each lane
  for (int64_t j = 0; j < count; ++j) values[j] = static_cast<Lane>(rows[j]) << (kLaneBits - d);
  __m256i v[kVectors];
  for (int q = 0; q < kVectors; ++q) v[q] = _mm256_load_si256(reinterpret_cast<const __m256i*>(values + kLanes * q));
  for (int64_t c = d - 1; c >= 0; --c) {
    uint64_t word = 0;
    for (int q = 0; q < kVectors; ++q) {
      const int signs = kLaneBits == 32 ? _mm256_movemask_ps(_mm256_castsi256_ps(v[q])) : _mm256_movemask_pd(_mm256_castsi256_pd(v[q]));
      word |= static_cast<uint64_t>(static_cast<uint32_t>(signs)) << (kLanes * q);
      v[q] = kLaneBits == 32 ? _mm256_add_epi32(v[q], v[q]) : _mm256_add_epi64(v[q], v[q]);
    }
    out[c * key_words + w] = word;
  }
}

bool transpose_bits8(const uint64_t* rows, int64_t n, int64_t words, int64_t d, uint64_t* out) {
  if (words != 1 || d < 1 || d > 64) return false;
  const int64_t key_words = words_per_row(n);
  for (int64_t w = 0; w < key_words; ++w) {
    const int64_t count = std::min<int64_t>(n - 64 * w, 64);
    (d <= 32 ? transpose_word<32> : transpose_word<64>)(rows + 64 * w, count, d, key_words, w, out);
  }
  return true;
}

// Per-byte popcount with a nibble lookup (pshufb), Mula, Kurz & Lemire (2018).
inline __m256i popcount_bytes(__m256i v) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                       1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
  const __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
  return _mm256_add_epi8(lo, hi);
}

inline int64_t hsum_epi64(__m256i v) {
  __m128i s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return _mm_cvtsi128_si64(s) + _mm_extract_epi64(s, 1);
}

// popcount(a_i ^ b_j) for 1 row of a against up to 4 rows of b. Byte counters are flushed
// into 64-bit lanes (sad) every 31 vectors, before a byte (max 8 per vector) can overflow.
template <int J>
inline void xnor_counts(const uint64_t* a, const uint64_t* const* b, int64_t words, int64_t* counts) {
  if (words < 8) {
    // short rows (k < 512, MiniLM's 384): the vector setup and reductions would cost more than
    // the words themselves; hardware popcount on each word instead (2.5x faster at k = 384)
    for (int j = 0; j < J; ++j) {
      int64_t total = 0;
      for (int64_t w = 0; w < words; ++w) total += _mm_popcnt_u64(a[w] ^ b[j][w]);
      counts[j] = total;
    }
    return;
  }
  __m256i wide[J], bytes[J];
  for (int j = 0; j < J; ++j) wide[j] = bytes[j] = _mm256_setzero_si256();
  const int64_t vectors = words / 4;
  for (int64_t v = 0; v < vectors;) {
    const int64_t stop = v + 31 < vectors ? v + 31 : vectors;
    for (; v < stop; ++v) {
      const __m256i av = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 4 * v));
      for (int j = 0; j < J; ++j) {
        const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[j] + 4 * v));
        bytes[j] = _mm256_add_epi8(bytes[j], popcount_bytes(_mm256_xor_si256(av, bv)));
      }
    }
    for (int j = 0; j < J; ++j) {
      wide[j] = _mm256_add_epi64(wide[j], _mm256_sad_epu8(bytes[j], _mm256_setzero_si256()));
      bytes[j] = _mm256_setzero_si256();
    }
  }
  if constexpr (J == 4) {
    sum_lanes4(wide, counts);
  } else {
    for (int j = 0; j < J; ++j) counts[j] = hsum_epi64(wide[j]);
  }
  for (int j = 0; j < J; ++j)
    for (int64_t w = 4 * vectors; w < words; ++w) counts[j] += _mm_popcnt_u64(a[w] ^ b[j][w]);
}

struct Counter {
  template <int J>
  static void run(const uint64_t* a, const uint64_t* const* b, int64_t words, int64_t* counts) {
    xnor_counts<J>(a, b, words, counts);
  }
};

// popcount(a_r ^ b_j) for 2 rows of a against 4 rows of b (counts[r * 4 + j]), rows of 8 words
// or more: each loaded vector of a feeds 4 products and each of b 2, in named accumulators (an
// array of vectors would live on the stack).
inline void xnor_counts_2x4(const uint64_t* a0, const uint64_t* a1, const uint64_t* const* b, int64_t words,
                            int64_t* counts) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i wide[8] = {zero, zero, zero, zero, zero, zero, zero, zero};
  const int64_t vectors = words / 4;
  for (int64_t v = 0; v < vectors;) {
    // byte counters hold at most 8 per vector: flush before 32 vectors can overflow them
    const int64_t stop = v + 31 < vectors ? v + 31 : vectors;
    __m256i s00 = zero, s01 = zero, s02 = zero, s03 = zero, s10 = zero, s11 = zero, s12 = zero, s13 = zero;
    for (; v < stop; ++v) {
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a0 + 4 * v));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a1 + 4 * v));
#define BITMAPS_COLUMN(j)                                                                          \
  {                                                                                                \
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[j] + 4 * v));         \
    s0##j = _mm256_add_epi8(s0##j, popcount_bytes(_mm256_xor_si256(x0, y)));                       \
    s1##j = _mm256_add_epi8(s1##j, popcount_bytes(_mm256_xor_si256(x1, y)));                       \
  }
      BITMAPS_COLUMN(0) BITMAPS_COLUMN(1) BITMAPS_COLUMN(2) BITMAPS_COLUMN(3)
#undef BITMAPS_COLUMN
    }
    const __m256i sums[8] = {s00, s01, s02, s03, s10, s11, s12, s13};
    for (int t = 0; t < 8; ++t) wide[t] = _mm256_add_epi64(wide[t], _mm256_sad_epu8(sums[t], zero));
  }
  int64_t total[8];
  sum_lanes4(wide, total);
  sum_lanes4(wide + 4, total + 4);
  for (int j = 0; j < 4; ++j)
    for (int64_t w = 4 * vectors; w < words; ++w) {
      total[j] += _mm_popcnt_u64(a0[w] ^ b[j][w]);
      total[4 + j] += _mm_popcnt_u64(a1[w] ^ b[j][w]);
    }
  for (int t = 0; t < 8; ++t) counts[t] = total[t];
}

// The XNOR GEMM in tiles of 2 rows x 4 columns; short rows and the edges go through the 1-row tiles.
template <typename Store>
void xnor_tiles_2x4(const uint64_t* a, const uint64_t* b, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                    int64_t words, int64_t k, Store store) {
  // short rows: 1 x 4 tiles on hardware popcount (eight scalar counters of a 2 x 4 tile spill
  // out of the 16 general registers, which measured 1.5x slower in the encoder)
  if (words < 8) return xnor_tile<Counter>(a, b, m0, m1, n0, n1, words, k, store);
  int64_t i = m0;
  for (; i + 2 <= m1; i += 2) {
    int64_t j = n0;
    for (; j + 4 <= n1; j += 4) {
      const uint64_t* bj[4] = {b + j * words, b + (j + 1) * words, b + (j + 2) * words, b + (j + 3) * words};
      int64_t counts[8];
      xnor_counts_2x4(a + i * words, a + (i + 1) * words, bj, words, counts);
      for (int t = 0; t < 8; ++t) store(i + t / 4, j + t % 4, static_cast<int32_t>(k - 2 * counts[t]));
    }
    if (j < n1) xnor_tile<Counter>(a, b, i, i + 2, j, n1, words, k, store);
  }
  if (i < m1) xnor_tile<Counter>(a, b, i, m1, n0, n1, words, k, store);
}

void xnor_gemm_2x4(const uint64_t* a, const uint64_t* b, int32_t* out, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                   int64_t n, int64_t words, int64_t k) {
  xnor_tiles_2x4(a, b, m0, m1, n0, n1, words, k, [&](int64_t i, int64_t j, int32_t dot) { out[i * n + j] = dot; });
}

void xnor_linear_2x4(const uint64_t* a, const uint64_t* b, const float* beta, const float* alpha, const float* bias,
                     float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k) {
  xnor_tiles_2x4(a, b, m0, m1, n0, n1, words, k, [&](int64_t i, int64_t j, int32_t dot) {
    y[i * n + j] = beta[i] * alpha[j] * static_cast<float>(dot) + (bias ? bias[j] : 0.f);
  });
}

// popcount(a_r ^ b_j) for R rows of a x C column quads of b (kernels.h's column_quads): each word
// of a is broadcast to the four 64-bit lanes and XORed with one load of four columns' words, so
// the byte counters of one vector belong to four columns and one sad per flush leaves their four
// counts in its lanes. Short rows (MiniLM's 6 words) run on vector popcounts this way instead of
// one scalar popcount per word and column. Fully unrolled so that the R x C counters stay in
// registers.
template <int R, int C>
inline void xnor_quad_counts(const uint64_t* const* a, const uint64_t* const* b4, int64_t words, __m256i* counts) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i wide[R * C], bytes[R * C];
#pragma GCC unroll 8
  for (int t = 0; t < R * C; ++t) wide[t] = zero;
  for (int64_t w0 = 0; w0 < words; w0 += 31) {  // a byte counter gains at most 8 per word
    const int64_t w1 = w0 + 31 < words ? w0 + 31 : words;
#pragma GCC unroll 8
    for (int t = 0; t < R * C; ++t) bytes[t] = zero;
    for (int64_t w = w0; w < w1; ++w) {
      __m256i av[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) av[r] = _mm256_set1_epi64x(static_cast<long long>(a[r][w]));
#pragma GCC unroll 8
      for (int c = 0; c < C; ++c) {
        const __m256i bv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b4[c] + 4 * w));
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r)
          bytes[r * C + c] = _mm256_add_epi8(bytes[r * C + c], popcount_bytes(_mm256_xor_si256(av[r], bv)));
      }
    }
#pragma GCC unroll 8
    for (int t = 0; t < R * C; ++t) wide[t] = _mm256_add_epi64(wide[t], _mm256_sad_epu8(bytes[t], zero));
  }
#pragma GCC unroll 8
  for (int t = 0; t < R * C; ++t) counts[t] = wide[t];
}

// Rows of at most 32 bits (attention heads of up to 32 dimensions: one word each, whose upper
// half is zero padding in both operands) by table lookup, as the W1A1 linears (xnor_lut_avx2.h)
// but over the 8 groups of the low halves only: the tables of a's rows [m0, m1), the columns' low
// halves in the nibble layout, then the same 4 x 64 tiles: one shuffle per 4 inputs x 32 dots,
// where the XOR-popcount tiles it replaces spent a xor, a nibble split, two shuffles and two
// multiply-adds per eight dots.
void xnor_half_word_lut(const uint64_t* a, const uint64_t* b4, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                        int64_t n1, int64_t n, int64_t k) {
  constexpr int64_t groups = 8;
  thread_local aligned_vector<uint64_t> halves;  // a's low halves, two rows a word
  thread_local aligned_vector<uint8_t> luts, nibbles;
  const int64_t rows = m1 - m0, words = (rows + 1) / 2;
  halves.assign(static_cast<size_t>(words), 0);
  uint8_t* bytes = reinterpret_cast<uint8_t*>(halves.data());
  for (int64_t i = 0; i < rows; ++i) {
    const uint32_t low = static_cast<uint32_t>(a[m0 + i]);
    std::memcpy(bytes + 4 * i, &low, sizeof low);
  }
  luts.resize(static_cast<size_t>(words * 2 * groups * 16));
  build_xnor_luts_avx2(halves.data(), words, 1, luts.data());  // 16 groups a word: 8 a row
  // the nibble layout of columns [n0, n1)'s blocks, at their places among n's blocks
  const int64_t first = n0 / 32, last = (n1 + 31) / 32;
  nibbles.resize(static_cast<size_t>(last * groups * 32));
  std::memset(nibbles.data() + first * groups * 32, 0, static_cast<size_t>((last - first) * groups * 32));
  // one word a row: the column quads are the columns in order
  xnor_nibble_columns(b4, first * 32, n1, 1, groups, nibbles.data());
  xnor_lut_tiles(luts.data(), nibbles.data(), 0, rows, n0, n1, groups, k, [=](int64_t i, int64_t j0, __m256i dots, auto inside) {
    if constexpr (decltype(inside)::value)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (m0 + i) * n + j0), dots);
    else
      store_dots(out + (m0 + i) * n, j0, n0, n1, dots);
  });
}

// The quad tiles over rows [m0, m1) x columns [n0, n1): 2 rows x 2 quads, then the edges.
// Always inlined: once this file grew (the table-lookup kernels), GCC's unit-growth limit stopped
// inlining them into their one caller, and attention's 1-bit scores ran at 12-15 instead of 9.5 us
// per head (benchmarks/attention_kernels.sh, most rounds).
// store(i, j0, dots) gets columns j0..j0+3 (dots: four int32 k - 2 * popcount; the caller keeps
// only columns inside [n0, n1)).
template <typename Store>
inline __attribute__((always_inline)) void xnor_quad_tiles(const uint64_t* a, const uint64_t* b4, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                     int64_t words, int64_t k, Store store) {
  const __m256i total = _mm256_set1_epi32(static_cast<int>(k));
  const __m256i low_halves = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  auto emit = [&](int64_t i, int64_t q, __m256i counts) {
    // the counts are < 2^31: their low halves, k - 2 * count
    const __m128i low = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(counts, low_halves));
    store(i, 4 * q, _mm_sub_epi32(_mm256_castsi256_si128(total), _mm_slli_epi32(low, 1)));
  };
  const int64_t q0 = n0 / 4, q1 = column_quads(n1);
  int64_t i = m0;
  for (; i < m1; i += 2) {
    const bool pair = i + 1 < m1;
    const uint64_t* rows[2] = {a + i * words, a + (pair ? i + 1 : i) * words};
    int64_t q = q0;
    for (; q + 2 <= q1; q += 2) {
      const uint64_t* quads[2] = {b4 + q * words * 4, b4 + (q + 1) * words * 4};
      __m256i counts[4];
      if (pair) {
        xnor_quad_counts<2, 2>(rows, quads, words, counts);
        emit(i, q, counts[0]), emit(i, q + 1, counts[1]), emit(i + 1, q, counts[2]), emit(i + 1, q + 1, counts[3]);
      } else {
        xnor_quad_counts<1, 2>(rows, quads, words, counts);
        emit(i, q, counts[0]), emit(i, q + 1, counts[1]);
      }
    }
    if (q < q1) {
      const uint64_t* quads[1] = {b4 + q * words * 4};
      __m256i counts[2];
      if (pair) {
        xnor_quad_counts<2, 1>(rows, quads, words, counts);
        emit(i, q, counts[0]), emit(i + 1, q, counts[1]);
      } else {
        xnor_quad_counts<1, 1>(rows, quads, words, counts);
        emit(i, q, counts[0]);
      }
    }
  }
}

void xnor_gemm_quads(const uint64_t* a, const uint64_t* b4, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                     int64_t n1, int64_t n, int64_t words, int64_t k) {
  if (words == 1 && k <= 32) return xnor_half_word_lut(a, b4, out, m0, m1, n0, n1, n, k);
  xnor_quad_tiles(a, b4, m0, m1, n0, n1, words, k,
                  [&](int64_t i, int64_t j0, __m128i dots) { store_dots(out + i * n, j0, n0, n1, dots); });
}


// For each weight byte, the 8 float sign masks it stands for: XOR flips x where the bit is 1.
struct SignMasks {
  alignas(32) uint32_t lanes[256][8];
  SignMasks() {
    for (int byte = 0; byte < 256; ++byte)
      for (int b = 0; b < 8; ++b) lanes[byte][b] = ((byte >> b) & 1) ? 0x80000000u : 0u;
  }
};
const SignMasks kSignMasks;

inline __m256 sign_mask(uint8_t byte) {
  return _mm256_load_ps(reinterpret_cast<const float*>(kSignMasks.lanes[byte]));
}

// y = alpha * sum_k (x_k with its sign flipped where the weight bit is 1): one XOR and one add
// per 8 weights, 4 output rows x 2 tokens at a time so each load is used several times.
void binary_weight_linear(const float* x, int64_t ldx, const uint64_t* w, const float* alpha,
                          const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k) {
  const int64_t k8 = k / 8 * 8;
  auto tail = [&](const float* row, const uint64_t* bits) { return signed_span_sum(row, bits, k8, k); };
  for (int64_t j = n0; j < n1; j += 4) {
    const int rows = n1 - j < 4 ? static_cast<int>(n1 - j) : 4;
    const uint8_t* wb[4];
    for (int r = 0; r < 4; ++r) wb[r] = reinterpret_cast<const uint8_t*>(w + (j + (r < rows ? r : 0)) * words);
    int64_t i = m0;
    for (; i + 2 <= m1; i += 2) {
      const float* x0 = x + i * ldx;
      const float* x1 = x0 + ldx;
      __m256 acc[2][4];
      for (int r = 0; r < 4; ++r) acc[0][r] = acc[1][r] = _mm256_setzero_ps();
      for (int64_t kk = 0; kk < k8; kk += 8) {
        const __m256 v0 = _mm256_loadu_ps(x0 + kk), v1 = _mm256_loadu_ps(x1 + kk);
        for (int r = 0; r < 4; ++r) {
          const __m256 mask = sign_mask(wb[r][kk >> 3]);
          acc[0][r] = _mm256_add_ps(acc[0][r], _mm256_xor_ps(v0, mask));
          acc[1][r] = _mm256_add_ps(acc[1][r], _mm256_xor_ps(v1, mask));
        }
      }
      for (int r = 0; r < rows; ++r) {
        const uint64_t* bits = w + (j + r) * words;
        const float b = bias ? bias[j + r] : 0.f;
        y[i * n + j + r] = alpha[j + r] * (hsum_ps(acc[0][r]) + tail(x0, bits)) + b;
        y[(i + 1) * n + j + r] = alpha[j + r] * (hsum_ps(acc[1][r]) + tail(x1, bits)) + b;
      }
    }
    for (; i < m1; ++i) {
      const float* x0 = x + i * ldx;
      __m256 acc[4];
      for (int r = 0; r < 4; ++r) acc[r] = _mm256_setzero_ps();
      for (int64_t kk = 0; kk < k8; kk += 8) {
        const __m256 v0 = _mm256_loadu_ps(x0 + kk);
        for (int r = 0; r < 4; ++r) acc[r] = _mm256_add_ps(acc[r], _mm256_xor_ps(v0, sign_mask(wb[r][kk >> 3])));
      }
      for (int r = 0; r < rows; ++r)
        y[i * n + j + r] = alpha[j + r] * (hsum_ps(acc[r]) + tail(x0, w + (j + r) * words)) + (bias ? bias[j + r] : 0.f);
    }
  }
}

}  // namespace

extern const KernelTable kAvx2Kernels;
const KernelTable kAvx2Kernels = {"avx2", pack_signs, xnor_gemm_2x4, xnor_linear_2x4,
                                  binary_weight_linear, quantize_rows_int8_avx2, lut_linear_avx2, LutFormat::kSplit6,
                                  sgemm_nt, sgemm_nn, sgemm_panel, unpack_panel, gelu, softmax_rows_with<exp_divided, row_max8>,
                                  xnor_gemm_quads, pack_elastic, build_luts_avx2, build_xnor_luts_avx2,
                                  xnor_lut_gemm_avx2, xnor_lut_linear_avx2,
                                  layer_norm_rows_with<sum_parts8, normalize8>, nullptr, nullptr, lut_w158a8_avx2,
                                  two_set_attention_avx2, scale_dots_rows, transpose_bits8, bit_row_sums_portable, pack_negative,
                                  xnor_lut_scaled_avx2, kW1a8RowTile, 16, nullptr, nullptr, pack_gelu_signs,
                                  add_layer_norm_rows_with<sum_parts8, normalize8, add_sum_parts8>};

}  // namespace bitmaps
