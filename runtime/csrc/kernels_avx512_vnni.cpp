// Kernels for AVX-512 CPUs with VPOPCNTDQ, VNNI and BITALG (Intel Ice Lake and later, AMD Zen 4
// and later); compiled with those flags and only called after a CPU check (dispatch.cpp).
//
// W1A1: a native 64-bit popcount (vpopcntq) replaces the nibble-table popcount. The linears read
//   their weights in column octets (kernels.h): each input word is broadcast to 8 lanes and XORed
//   with one 512-bit load of 8 columns' words, so the lanes are the columns' counts. On Zen 4 this
//   ran 1.4-2.5x the row-layout kernel below (which sums 4 words of one column per lane, then
//   reduces lanes per output, and reads 8 words for a row of 6): the row layout stays for callers
//   without octets (a layer whose octets were not built).
// W1A8: an int8 GEMM on vpdpbusd. The weight bits, read from the table-lookup layout, become
//   bytes 0/1 with one bit shuffle (vpshufbitqmb) and one masked move; one dpbusd then does
//   16 columns x 4 multiply-adds, exactly, with no tables to build per row. A call of 16 rows or
//   more expands each 32-column block once and reads it back for all its rows (the callers give
//   it up to 256 rows a call), so that the loop is dpbusd and broadcasts alone. With the
//   accumulators as members (BlockSums below), that took trained 128-token MiniLM forwards on 1
//   thread from 10.50 to 9.85 ms (BiT stage 1 W1A8) and from 11.45 to 9.79 ms (BitNet b1.58)
//   (benchmarks/results/archive_revisions_zen4_w1a8_expand_once_*.json). Two adjacent blocks go
//   through one loop of 6-row tiles where the call has them (w1a8_planes): on Ice Lake, which issues
//   vpdpbusd on two ports, that took random-weight 128-token W1A8 forwards on 1 thread from 12.3 to
//   9.5 ms (MiniLM) and 84.6 to 75.1 ms (BERT-base), medians of 31 interleaved rounds on a noisy
//   host (benchmarks/results/archive_revisions_icx_pairs_*.json).
// W1A32 below 16 rows, 1-bit products in column quads and LayerNorm reuse the AVX2 kernels
// (dispatch.cpp assembles the table; a 512-bit LayerNorm with the same sums measured no faster on
// Ice Lake); int8 quantization is quantize_avx512.h's; sign packing (GELU fused into it for
// XNOR's FFN-down) is bits_avx512.h's; the float GEMM, its panels of attention's keys and values,
// W1A32's weight unpacking and GELU are float_avx512.h's. Attention's 1-bit products run on
// the column octets below (encoder.cpp's xnor_products): the row-layout popcount
// had made BiT stage 2's 1-bit attention take 3.4 ms of a MiniLM forward on Zen 4, the AVX2 column
// quads 1.8 ms, and the octets took a trained BiT stage 2 forward from 5.06 to 4.79 ms
// (benchmarks/results/archive_revisions_zen4_octets_bit_stage2_1t.json). The softmax runs
// float_avx512.h's 512-bit loops.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "aligned.h"
#include "avx2_reduce.h"
#include "buffers.h"
#include "bit_row_sums.h"
#include "bits_avx512.h"
#include "float_avx512.h"
#include "int8_lut.h"
#include "kernels.h"
#include "quantize_avx512.h"
#include "scale_dots.h"
#include "softmax_rows.h"
#include "two_set_attention_avx512.h"

namespace bitmaps {
namespace {

// popcount(a_i ^ b_j) for I rows of a against J rows of b, as four 64-bit lanes each.
template <int I, int J>
inline void xnor_counts(const uint64_t* const* a, const uint64_t* const* b, int64_t words, __m256i acc[I][J]) {
  for (int i = 0; i < I; ++i)
    for (int j = 0; j < J; ++j) acc[i][j] = _mm256_setzero_si256();
  auto step = [&](int64_t w, __mmask8 live) {
    __m256i av[I], bv[J];
    for (int i = 0; i < I; ++i) av[i] = _mm256_maskz_loadu_epi64(live, a[i] + w);
    for (int j = 0; j < J; ++j) bv[j] = _mm256_maskz_loadu_epi64(live, b[j] + w);
    for (int i = 0; i < I; ++i)
      for (int j = 0; j < J; ++j) acc[i][j] = _mm256_add_epi64(acc[i][j], _mm256_popcnt_epi64(_mm256_xor_si256(av[i], bv[j])));
  };
  const int64_t whole = words / 4 * 4;
  for (int64_t w = 0; w < whole; w += 4) step(w, 0xF);
  // the row's last 1-3 words: a masked step, with no reads past the row
  if (whole < words) step(whole, static_cast<__mmask8>((1u << (words - whole)) - 1));
}

// dot products k - 2 * popcount of one row of a against 4 consecutive rows of b, as int32
inline __m128i xnor_dots4(const __m256i acc[4], int64_t k) {
  const __m128i counts = _mm256_cvtepi64_epi32(lane_totals4(acc));
  return _mm_sub_epi32(_mm_set1_epi32(static_cast<int>(k)), _mm_slli_epi32(counts, 1));
}

// 2, 3 and 4 rows measured the same on Zen 4 (the popcount/xor/add ports are the limit, not
// loads); 2 keeps the register file free of spills.
constexpr int kTileRows = 2;

// Tiles of kTileRows rows x 4 columns, then the leftover rows and columns one at a time.
// Store4(i, j, dots) writes columns j..j+3 of row i; Store1(i, j, dot) a single one.
template <typename Store4, typename Store1>
void xnor_tiles(const uint64_t* a, const uint64_t* b, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                int64_t words, int64_t k, Store4 store4, Store1 store1) {
  int64_t j = n0;
  for (; j + 4 <= n1; j += 4) {
    const uint64_t* bj[4] = {b + j * words, b + (j + 1) * words, b + (j + 2) * words, b + (j + 3) * words};
    int64_t i = m0;
    for (; i + kTileRows <= m1; i += kTileRows) {
      const uint64_t* ai[kTileRows];
      for (int r = 0; r < kTileRows; ++r) ai[r] = a + (i + r) * words;
      __m256i acc[kTileRows][4];
      xnor_counts<kTileRows, 4>(ai, bj, words, acc);
      for (int r = 0; r < kTileRows; ++r) store4(i + r, j, xnor_dots4(acc[r], k));
    }
    for (; i < m1; ++i) {
      const uint64_t* ai[1] = {a + i * words};
      __m256i acc[1][4];
      xnor_counts<1, 4>(ai, bj, words, acc);
      store4(i, j, xnor_dots4(acc[0], k));
    }
  }
  for (; j < n1; ++j) {
    const uint64_t* bj[1] = {b + j * words};
    for (int64_t i = m0; i < m1; ++i) {
      const uint64_t* ai[1] = {a + i * words};
      __m256i acc[1][1];
      xnor_counts<1, 1>(ai, bj, words, acc);
      const __m256i zero = _mm256_setzero_si256();
      const __m256i four[4] = {acc[0][0], zero, zero, zero};
      store1(i, j, _mm_cvtsi128_si32(xnor_dots4(four, k)));
    }
  }
}

void xnor_gemm(const uint64_t* a, const uint64_t* b, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
               int64_t n1, int64_t n, int64_t words, int64_t k) {
  xnor_tiles(
      a, b, m0, m1, n0, n1, words, k,
      [&](int64_t i, int64_t j, __m128i dots) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i * n + j), dots); },
      [&](int64_t i, int64_t j, int32_t dot) { out[i * n + j] = dot; });
}

// Same arithmetic order as the other paths: (beta * alpha) * dot + bias.
void xnor_linear(const uint64_t* a, const uint64_t* b, const float* beta, const float* alpha, const float* bias,
                 float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k) {
  xnor_tiles(
      a, b, m0, m1, n0, n1, words, k,
      [&](int64_t i, int64_t j, __m128i dots) {
        const __m128 scale = _mm_mul_ps(_mm_set1_ps(beta[i]), _mm_loadu_ps(alpha + j));
        __m128 v = _mm_mul_ps(scale, _mm_cvtepi32_ps(dots));
        if (bias) v = _mm_add_ps(v, _mm_loadu_ps(bias + j));
        _mm_storeu_ps(y + i * n + j, v);
      },
      [&](int64_t i, int64_t j, int32_t dot) {
        y[i * n + j] = beta[i] * alpha[j] * static_cast<float>(dot) + (bias ? bias[j] : 0.f);
      });
}

// popcount(a_r ^ column) for R rows x C octets of columns (words >= 1), one int64 lane per
// column. The first word's counts start the accumulators rather than being added to zeros: at
// k = 384 (6 words a row, most of MiniLM's linears) that add was one in six of the loop's.
template <int R, int C, bool First>
inline void octet_word(const uint64_t* a, const uint64_t* const* b8, int64_t words, int64_t w, __m512i acc[R * C]) {
  __m512i av[R], bv[C];
  for (int r = 0; r < R; ++r) av[r] = _mm512_set1_epi64(static_cast<long long>(a[r * words + w]));
  for (int c = 0; c < C; ++c) bv[c] = _mm512_loadu_si512(b8[c] + 8 * w);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      const __m512i count = _mm512_popcnt_epi64(_mm512_xor_si512(av[r], bv[c]));
      acc[r * C + c] = First ? count : _mm512_add_epi64(acc[r * C + c], count);
    }
}

template <int R, int C>
inline void octet_counts(const uint64_t* a, const uint64_t* const* b8, int64_t words, __m512i acc[R * C]) {
  octet_word<R, C, true>(a, b8, words, 0, acc);
  for (int64_t w = 1; w < words; ++w) octet_word<R, C, false>(a, b8, words, w, acc);
}

// The 16 columns' counts of two octets (int64 lanes) as int32 lanes in column order: one permute
// for 16 columns, where narrowing each octet apart took two uops for 8. The dot product is
// k - 2 * count.
inline __m512i octet_pair_counts(__m512i low, __m512i high) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_epi32(low, even, high);
}

// Rows m0..m1 against the 16 columns (C = 2 octets) or 8 (C = 1) at b8: tiles of R rows, then one
// tile of the 1..R-1 rows left. out(i, counts) stores row i's 16 results from their counts.
template <int R, int C, typename Out>
inline void octet_rows(const uint64_t* a, const uint64_t* const* b8, int64_t m0, int64_t m1, int64_t words,
                       const Out& out) {
  if (words < 1) return;  // octet_counts reads a first word
  int64_t i = m0;
  for (; i + R <= m1; i += R) {
    __m512i acc[R * C];
    octet_counts<R, C>(a + i * words, b8, words, acc);
    for (int r = 0; r < R; ++r)
      out(i + r, octet_pair_counts(acc[r * C], C == 2 ? acc[r * C + 1] : _mm512_setzero_si512()));
  }
  if constexpr (R > 1) octet_rows<R / 2, C>(a, b8, i, m1, words, out);
}

// kOctetRows rows x 2 octets (16 columns) a tile, then a last single octet. columns(j0, live)
// gives the store for columns j0..j0+15, `live` masking those inside [n0, n1); it is made once
// for all the rows (a linear loads its column scales and bias there) and holds them by value.
// The epilogue this replaced stored 8 columns at a time, narrowed each octet alone (two uops),
// reloaded the column scales, bias and output pointer through its captured references at every
// store, and at k = 384-768 (6-12 words a row) cost about as much as the popcounts: on Ice Lake
// this loop runs 128 x 768 x 768 in 73 us where the old one took 97 us (scratch harness,
// interleaved). The inner loop alone ran at 70-85% of the rate its ports allow (3 uops a word
// and 8 columns on ports 0 and 5, vpopcntq on 5 only: 512 x 2 / 3 bit products a cycle), with
// data in L1 at an assumed 3.3 GHz. 4 rows measured faster than 6 or 8 here.
constexpr int kOctetRows = 4;

template <typename Columns>
inline void octet_tiles(const uint64_t* a, const uint64_t* b8, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                        int64_t words, const Columns& columns) {
  const int64_t o1 = column_groups(n1, 8);
  for (int64_t o = n0 / 8; o < o1; o += 2) {
    const int64_t j0 = 8 * o, from = n0 > j0 ? n0 - j0 : 0, to = n1 - j0 < 16 ? n1 - j0 : 16;
    const __mmask16 live = static_cast<__mmask16>(((1u << to) - 1) & ~((1u << from) - 1));
    const uint64_t* b[2] = {b8 + o * words * 8, b8 + (o + 1) * words * 8};
    const auto out = columns(j0, live);
    if (o + 2 <= o1)
      octet_rows<kOctetRows, 2>(a, b, m0, m1, words, out);
    else
      octet_rows<kOctetRows, 1>(a, b, m0, m1, words, out);
  }
}

void xnor_octets_gemm(const uint64_t* a, const uint64_t* b8, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                      int64_t n1, int64_t n, int64_t words, int64_t k) {
  const __m512i total = _mm512_set1_epi32(static_cast<int>(k));
  octet_tiles(a, b8, m0, m1, n0, n1, words, [out, n, total](int64_t j0, __mmask16 live) {
    return [row = out + j0, n, live, total](int64_t i, __m512i counts) {
      _mm512_mask_storeu_epi32(row + i * n, live, _mm512_sub_epi32(total, _mm512_slli_epi32(counts, 1)));
    };
  });
}

// (beta * alpha) * dot + bias, as xnor_linear (a missing bias adds 0, as the scalar path does).
// dot = k - 2 * count is formed in floats, one multiply-add on the converted count: every term is
// an integer below 2^24, so it is exact and the same float as the integer's conversion, in one
// uop fewer a row (a shift and a subtract before). With the first word's counts above, 1.05x on
// 128 x 1536 at k = 384 in a scratch harness, 1.01x at k = 1536.
void xnor_octets_linear(const uint64_t* a, const uint64_t* b8, const float* beta, const float* alpha,
                        const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                        int64_t words, int64_t k) {
  const __m512 total = _mm512_set1_ps(static_cast<float>(k));
  octet_tiles(a, b8, m0, m1, n0, n1, words, [=](int64_t j0, __mmask16 live) {
    const __m512 alpha16 = _mm512_maskz_loadu_ps(live, alpha + j0);
    const __m512 bias16 = bias ? _mm512_maskz_loadu_ps(live, bias + j0) : _mm512_setzero_ps();
    return [row = y + j0, beta, n, live, alpha16, bias16, total](int64_t i, __m512i counts) {
      const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(beta[i]), alpha16);
      const __m512 dots = _mm512_fmadd_ps(_mm512_cvtepi32_ps(counts), _mm512_set1_ps(-2.f), total);
      _mm512_mask_storeu_ps(row + i * n, live, _mm512_add_ps(_mm512_mul_ps(scale, dots), bias16));
    };
  });
}

// W1A8. For one 32-column block and group g of 4 inputs, the layout holds 16 bytes: byte c has
// column c's 4 bits in its low nibble and column 16 + c's in its high nibble. Broadcast to 512
// bits, 64-bit lane L holds bytes 0-7 (L even) or 8-15 (L odd); the bit shuffle gathers, for
// int32 lane 2L + h, the 4 bits of column kLaneColumn[2L + h] (a column whose byte lies in lane
// L), so each int32 lane of the dpbusd result is one column's sum over the group.
struct W1a8Shuffle {
  int lane_column[16];
  __m512i low, high;  // bit indices for columns 0-15 and 16-31
  __m512i to_column_order;  // permutation: result lane c <- the lane holding column c
  W1a8Shuffle() {
    alignas(64) uint8_t lo[64], hi[64];
    alignas(64) int32_t order[16];
    for (int lane = 0; lane < 16; ++lane) {
      const int L = lane / 2, h = lane % 2;
      const int byte_in_half = 2 * (L / 2) + h;  // 0-7 within the 8 bytes of 64-bit lane L
      lane_column[lane] = 8 * (L % 2) + byte_in_half;
      for (int t = 0; t < 4; ++t) {
        lo[4 * lane + t] = static_cast<uint8_t>(8 * byte_in_half + t);
        hi[4 * lane + t] = static_cast<uint8_t>(8 * byte_in_half + 4 + t);
      }
    }
    for (int lane = 0; lane < 16; ++lane) order[lane_column[lane]] = lane;
    low = _mm512_load_si512(lo);
    high = _mm512_load_si512(hi);
    to_column_order = _mm512_load_si512(order);
  }
};

inline int32_t load_group(const int8_t* q) {
  int32_t v;
  std::memcpy(&v, q, sizeof v);
  return v;
}

// One group's weights of a 32-column block as bytes, w0 for columns 0-15 and w1 for 16-31 (in the
// shuffle's lane order): 0/1 for one sign plane (Planes = 1: W1A8), the sum of two, 0-2, for
// ternary W1.58A8 (col2 its second plane). Two planes add as bytes before one dpbusd: with
// s = 1 - 2 bit per plane, sum_k q (s_u + s_v) = 2 rowsum - 2 sum_k q (bit_u + bit_v), and
// bit_u + bit_v is an unsigned byte, so a ternary product costs one multiply-add per input
// where two planes had cost two (and the plane outputs are summed as integers, exactly).
template <int Planes>
inline void expand_group(const uint8_t* col, const uint8_t* col2, int64_t g, const W1a8Shuffle& shuffle, __m512i& w0,
                         __m512i& w1) {
  const __m512i ones = _mm512_set1_epi8(1);
  const __m512i bits = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col + g * 16)));
  w0 = _mm512_maskz_mov_epi8(_mm512_bitshuffle_epi64_mask(bits, shuffle.low), ones);
  w1 = _mm512_maskz_mov_epi8(_mm512_bitshuffle_epi64_mask(bits, shuffle.high), ones);
  if constexpr (Planes == 2) {
    const __m512i other = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(col2 + g * 16)));
    w0 = _mm512_mask_add_epi8(w0, _mm512_bitshuffle_epi64_mask(other, shuffle.low), w0, ones);
    w1 = _mm512_mask_add_epi8(w1, _mm512_bitshuffle_epi64_mask(other, shuffle.high), w1, ones);
  }
}

// The dpbusd sums of R rows against one block (V = 2: columns 0-15 and 16-31) or two adjacent
// blocks (V = 4), one member per accumulator rather than an array: GCC 12 kept an array's 16
// accumulators in registers but moved each to another register and back every group (32 moves
// and two spills per 16 dpbusd); as members the loop is the dpbusd and broadcasts alone.
template <int R, int V>
struct BlockSums {
  static_assert(V == 2 || V == 4, "one block or two");
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;  // s2, s3: the second block's
  BlockSums<R - 1, V> rest;
  // group g's 4 inputs of each row (q: the first row's, `stride` bytes a row) times w0-w3
  void add(const int8_t* q, int64_t stride, __m512i w0, __m512i w1, __m512i w2, __m512i w3) {
    const __m512i x = _mm512_set1_epi32(load_group(q));
    s0 = _mm512_dpbusd_epi32(s0, w0, x);
    s1 = _mm512_dpbusd_epi32(s1, w1, x);
    if constexpr (V == 4) {
      s2 = _mm512_dpbusd_epi32(s2, w2, x);
      s3 = _mm512_dpbusd_epi32(s3, w3, x);
    }
    rest.add(q + stride, stride, w0, w1, w2, w3);
  }
  void get(__m512i (*acc)[V]) const {
    acc[0][0] = s0, acc[0][1] = s1;
    if constexpr (V == 4) acc[0][2] = s2, acc[0][3] = s3;
    rest.get(acc + 1);
  }
};
template <int V>
struct BlockSums<0, V> {
  void add(const int8_t*, int64_t, __m512i, __m512i, __m512i, __m512i) {}
  void get(__m512i (*)[V]) const {}
};

// Rows i0..i0+R-1 of columns j0..j0+15 (those in [n0, n1)) from their dpbusd sums `sums` (stride
// `step` vectors a row): (dot * inv_scale) * alpha + bias, the order of lut_epilogue.
template <int R, int Planes>
inline void w1a8_store16(const __m512i* sums, int step, const int32_t* rowsum, const float* inv_scale,
                         const float* alpha, const float* bias, float* y, int64_t i0, int64_t j0, int64_t n0,
                         int64_t n1, int64_t n, const W1a8Shuffle& shuffle) {
  if (j0 >= n1 || j0 + 16 <= n0) return;
  const int64_t from = n0 > j0 ? n0 - j0 : 0, to = n1 - j0 < 16 ? n1 - j0 : 16;
  const __mmask16 live = static_cast<__mmask16>(((1u << to) - 1) & ~((1u << from) - 1));
  const __m512 a = _mm512_maskz_loadu_ps(live, alpha + j0);
  const __m512 b = bias ? _mm512_maskz_loadu_ps(live, bias + j0) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const __m512i masked = _mm512_permutexvar_epi32(shuffle.to_column_order, sums[r * step]);
    const __m512i dot = _mm512_sub_epi32(_mm512_set1_epi32(Planes * rowsum[i]), _mm512_slli_epi32(masked, 1));
    const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_set1_ps(inv_scale[i])), a), b);
    _mm512_mask_storeu_ps(y + i * n + j0, live, v);
  }
}

// R rows x one 32-column block (Blocks = 1) or two adjacent ones (Blocks = 2, from `expanded`
// only), of one sign plane (Planes = 1) or the sum of two (Planes = 2). The weights come expanded
// (`expanded`: 2 vectors a block a group, expand_group's, the blocks' side by side) or are
// expanded here.
template <int R, int Planes, int Blocks>
void w1a8_rows_block(const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* col,
                     const uint8_t* col2, const __m512i* expanded, const float* alpha, const float* bias, float* y,
                     int64_t i0, int64_t block, int64_t n0, int64_t n1, int64_t n, int64_t groups,
                     const W1a8Shuffle& shuffle) {
  constexpr int V = 2 * Blocks;
  const int64_t stride = groups * 4;
  const int8_t* rows = q + i0 * stride;
  BlockSums<R, V> sums;
  if (Blocks == 2 || expanded) {
    for (int64_t g = 0; g < groups; ++g) {
      const __m512i* w = expanded + V * g;
      if constexpr (Blocks == 2)
        sums.add(rows + 4 * g, stride, _mm512_load_si512(w), _mm512_load_si512(w + 1), _mm512_load_si512(w + 2),
                 _mm512_load_si512(w + 3));
      else
        sums.add(rows + 4 * g, stride, _mm512_load_si512(w), _mm512_load_si512(w + 1), _mm512_setzero_si512(),
                 _mm512_setzero_si512());
    }
  } else {
    for (int64_t g = 0; g < groups; ++g) {
      __m512i w0, w1;
      expand_group<Planes>(col, col2, g, shuffle, w0, w1);
      sums.add(rows + 4 * g, stride, w0, w1, w0, w1);
    }
  }
  __m512i acc[R][V];
  sums.get(acc);
  for (int half = 0; half < V; ++half)
    w1a8_store16<R, Planes>(&acc[0][half], V, rowsum, inv_scale, alpha, bias, y, i0, block * 32 + 16 * half, n0, n1,
                            n, shuffle);
}

// From this many rows a call expands each block's weights once into an L1/L2 buffer and reads them
// back for every row tile, instead of expanding them again per tile of 8 rows (whose shuffles
// share the dpbusd's ports); below it, expanding in the loop costs less than the stores and loads.
// The callers give this path's calls up to KernelTable::w1a8_row_tile rows.
constexpr int64_t kExpandOnceRows = 16;
// Calls of up to 256 rows (KernelTable::w1a8_row_tile): a 128-token input's rows in one call per
// 64 columns, so its weights are expanded once; their int8 inputs (256 x 1536 bytes at most in a
// BERT-base FFN-down) stay in L2 while the column tiles pass over them.
constexpr int64_t kVnniRowTile = 256;

// Row tiles for two blocks at a time (24 accumulators + 4 weight vectors of the 32 registers),
// when the call's columns hold two blocks and its weights are expanded: 6 broadcasts and 4 loads
// feed 24 dpbusd, where one block's 8-row tile has 10 loads for 16. In a scratch harness on an
// Ice Lake-SP core (two 512-bit ports that take vpdpbusd, two load ports), the loop alone ran
// 296-331 G multiply-adds a second at k = 1536 against the 8-row tile's 252-286.
constexpr int kPairRows = 6;
constexpr int kRows = 8;  // one block: 16 accumulators + 2 weight vectors

// The rows left after the full tiles, in one tile of R = Left rows (1 <= Left < Tile): one row at a
// time would run its V accumulators as dependent chains, at a fraction of the dpbusd rate (a 128-row
// call leaves 2 rows after 21 six-row tiles, which had cost as much as 5 rows in tiles).
template <int Left, int Planes, int Blocks>
void w1a8_left_rows(int64_t left, const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* col,
                    const uint8_t* col2, const __m512i* expanded, const float* alpha, const float* bias, float* y,
                    int64_t i, int64_t block, int64_t n0, int64_t n1, int64_t n, int64_t groups,
                    const W1a8Shuffle& shuffle) {
  if constexpr (Left > 0) {
    if (left == Left)
      return w1a8_rows_block<Left, Planes, Blocks>(q, rowsum, inv_scale, col, col2, expanded, alpha, bias, y, i, block,
                                                   n0, n1, n, groups, shuffle);
    w1a8_left_rows<Left - 1, Planes, Blocks>(left, q, rowsum, inv_scale, col, col2, expanded, alpha, bias, y, i, block,
                                             n0, n1, n, groups, shuffle);
  }
}

template <int Planes, int Blocks>
void w1a8_row_tiles(const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* col,
                    const uint8_t* col2, const __m512i* expanded, const float* alpha, const float* bias, float* y,
                    int64_t m0, int64_t m1, int64_t block, int64_t n0, int64_t n1, int64_t n, int64_t groups,
                    const W1a8Shuffle& shuffle) {
  constexpr int Tile = Blocks == 2 ? kPairRows : kRows;
  int64_t i = m0;
  for (; i + Tile <= m1; i += Tile)
    w1a8_rows_block<Tile, Planes, Blocks>(q, rowsum, inv_scale, col, col2, expanded, alpha, bias, y, i, block, n0, n1, n,
                                          groups, shuffle);
  w1a8_left_rows<Tile - 1, Planes, Blocks>(m1 - i, q, rowsum, inv_scale, col, col2, expanded, alpha, bias, y, i, block,
                                           n0, n1, n, groups, shuffle);
}

template <int Planes>
void w1a8_planes(const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* wlut,
                 const uint8_t* wlut2, const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1,
                 int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  static const W1a8Shuffle shuffle;
  thread_local aligned_vector<uint8_t> buffer;  // 64-byte aligned (aligned.h): 2 vectors a block a group
  const bool expand_once = m1 - m0 >= kExpandOnceRows;
  __m512i* expanded = expand_once ? reinterpret_cast<__m512i*>(grow(buffer, 4 * groups * 64)) : nullptr;
  const int64_t last = (n1 - 1) / 32;  // the call's last block
  for (int64_t block = n0 / 32; block <= last;) {
    const uint8_t* col = wlut + block * groups * 16;
    const uint8_t* col2 = Planes == 2 ? wlut2 + block * groups * 16 : nullptr;
    if (expanded && block < last) {  // two blocks, side by side in the buffer
      for (int64_t g = 0; g < groups; ++g)
        for (int b = 0; b < 2; ++b)
          expand_group<Planes>(col + b * groups * 16, Planes == 2 ? col2 + b * groups * 16 : nullptr, g, shuffle,
                               expanded[4 * g + 2 * b], expanded[4 * g + 2 * b + 1]);
      w1a8_row_tiles<Planes, 2>(q, rowsum, inv_scale, col, col2, expanded, alpha, bias, y, m0, m1, block, n0, n1, n,
                                groups, shuffle);
      block += 2;
      continue;
    }
    if (expanded)
      for (int64_t g = 0; g < groups; ++g) expand_group<Planes>(col, col2, g, shuffle, expanded[2 * g], expanded[2 * g + 1]);
    w1a8_row_tiles<Planes, 1>(q, rowsum, inv_scale, col, col2, expanded, alpha, bias, y, m0, m1, block, n0, n1, n, groups,
                              shuffle);
    ++block;
  }
}

void w1a8_linear(const uint8_t*, const int8_t* q, const int32_t* rowsum, const float* inv_scale,
                 const uint8_t* wlut, const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1,
                 int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  w1a8_planes<1>(q, rowsum, inv_scale, wlut, nullptr, alpha, bias, y, m0, m1, n0, n1, n, groups);
}

void w158a8_linear(const uint8_t*, const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* wlut_u,
                   const uint8_t* wlut_v, const float* half_gamma, const float* bias, float* y, int64_t m0, int64_t m1,
                   int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  w1a8_planes<2>(q, rowsum, inv_scale, wlut_u, wlut_v, half_gamma, bias, y, m0, m1, n0, n1, n, groups);
}

}  // namespace

const KernelTable& avx512_vnni_kernels(const KernelTable& avx2) {
  static const KernelTable table = {"avx512_vnni", pack_signs16, xnor_gemm, xnor_linear,
                                    avx2.binary_weight_linear, quantize_rows_int8_avx512, w1a8_linear, LutFormat::kNone,
                                    sgemm_nt512, sgemm_nn512, sgemm_panel512, unpack_panel512, gelu512,
                                    softmax_rows_with<exp_divided16, row_max16>, avx2.xnor_gemm_quads, pack_elastic16, nullptr, nullptr, nullptr, nullptr,
                                    avx2.layer_norm_rows, xnor_octets_gemm, xnor_octets_linear,
                                    w158a8_linear, two_set_attention_avx512, scale_dots_rows, transpose_bits16,
                                    bit_row_sums_portable, pack_negative16, nullptr, kVnniRowTile,
                                    kPanelColumns512, panel_from_rows16,
                                    panel_from_columns16, pack_gelu_signs16, avx2.add_layer_norm_rows};
  return table;
}

}  // namespace bitmaps
