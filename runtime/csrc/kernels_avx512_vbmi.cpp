// W1A8 by table lookup on vpermb (AVX-512 VBMI), for CPUs whose vpdpbusd issues on one port:
// AMD Zen 4 and later. Compiled with the AVX-512 VNNI and VBMI flags and only called after a CPU
// check (dispatch.cpp); everything but W1A8 is the avx512_vnni table's.
//
// Why: with 1-bit weights and int8 inputs, avx512_vnni's W1A8 multiplies the int8 rows on
// vpdpbusd, 64 multiply-adds an instruction, and Zen 4 issues one a cycle: its layers ran at
// 85-94% of that peak (benchmarks/results/int8_products_zen4_3bda1bf.json), so the weights'
// single bit bought nothing there. Here one vpermb looks up 16 columns x 2 groups of 4 inputs in the
// kSplit6 tables (int8_lut.h) of one row, 128 multiply-adds: a 64-byte load of two groups' tables
// is [low_g, high_g, low_g+1, high_g+1], and the index of column c puts in the 4 bytes of its
// dword the entries low_g[n_g], high_g[n_g], low_g+1[n_g+1], high_g+1[n_g+1] (n: the column's
// nibbles). Four such lookups (8 groups) add as bytes (lows <= 4 * 63, highs <= 4 * 15), and one
// vpdpbusd with multipliers [1, 64, 1, 64] widens them into the column's int32 sum of biased
// entries. Per 512 multiply-adds: 4 vpermb, 3 vpaddb and one vpdpbusd, against 8 vpdpbusd. In a
// scratch harness on Zen 4 the loop ran at 373 G multiply-adds a second, vpdpbusd alone at 234
// (docs/runtime-speed.md, twentieth session). Ice Lake issues vpdpbusd on two ports and vpermb on
// one, so there the lookups are not expected to gain (not measured), and this path is not the
// default there (dispatch.cpp).
// Exact: the same integers as every other W1A8 kernel.
#include <immintrin.h>

#include <algorithm>

#include "aligned.h"
#include "buffers.h"
#include "int8_lut.h"
#include "kernels.h"

namespace bitmaps {
namespace {

constexpr int kRowTile = 4;  // rows a tile: 16 accumulators, the indices loaded as used

// The vpermb indices of one 32-column block (wlut layout, int8_lut.h): for each pair of groups,
// 64 bytes for columns 0-15, then 64 for columns 16-31 (dword c = [n_g, 16 + n_g, 32 + n_g+1,
// 48 + n_g+1] of column c). Built once per call and block, read back for every row.
void build_indices(const uint8_t* col, int64_t groups, uint8_t* out) {
  // dword c gathers byte c of group g's 16 bytes twice, then byte c of group g + 1's twice
  alignas(64) uint8_t spread[64];
  for (int c = 0; c < 16; ++c) {
    spread[4 * c] = spread[4 * c + 1] = static_cast<uint8_t>(c);
    spread[4 * c + 2] = spread[4 * c + 3] = static_cast<uint8_t>(16 + c);
  }
  const __m512i gather = _mm512_load_si512(spread);
  const __m512i nibble = _mm512_set1_epi8(0x0f), offsets = _mm512_set1_epi32(0x30201000);
  for (int64_t p = 0; p < groups / 2; ++p) {
    const __m512i bytes = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(col + 32 * p)));
    const __m512i both = _mm512_permutexvar_epi8(gather, bytes);
    // (x & 0x0f) | offsets in one ternary-logic op: A = x, B = nibble mask, C = offsets
    const __m512i low = _mm512_ternarylogic_epi32(both, nibble, offsets, 0xEA);
    const __m512i high = _mm512_ternarylogic_epi32(_mm512_srli_epi16(both, 4), nibble, offsets, 0xEA);
    _mm512_store_si512(out + 128 * p, low);
    _mm512_store_si512(out + 128 * p + 64, high);
  }
}

// build_luts (int8_lut.h) in kSplit6, two groups' tables (64 bytes) a step: the 8 inputs as int16,
// each spread by a masked vpermw to the entries whose index has its bit set and summed onto the
// bias, split at 6 bits, and the two halves' low bytes put in table order by one vpermt2b. About
// 14 vector operations for 64 bytes, where lut_tile_avx2.h's 256-bit builder takes 17 for 32,
// which had taken about 14% of a W1A8 layer's samples here (perf; now about 10%).
void build_luts_vbmi(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts) {
  alignas(64) int16_t spread[4][32];
  alignas(64) uint8_t order[64];
  for (int lane = 0; lane < 32; ++lane)
    for (int t = 0; t < 4; ++t) spread[t][lane] = static_cast<int16_t>(lane / 16 * 4 + t);
  for (int o = 0; o < 64; ++o) {  // [low_g, high_g, low_g+1, high_g+1]; bytes 64.. are `high`'s
    const int group = o / 32, part = o % 32 / 16, entry = o % 16;
    order[o] = static_cast<uint8_t>(64 * part + 2 * (16 * group + entry));
  }
  const __m512i spread0 = _mm512_load_si512(spread[0]), spread1 = _mm512_load_si512(spread[1]);
  const __m512i spread2 = _mm512_load_si512(spread[2]), spread3 = _mm512_load_si512(spread[3]);
  const __m512i pack = _mm512_load_si512(order);
  const __m512i bias = _mm512_set1_epi16(kSplit6Bias), low6 = _mm512_set1_epi16(63);
  // lane p of each group's 16 gets input t where bit t of p is set
  constexpr __mmask32 kBit0 = 0xAAAAAAAAu, kBit1 = 0xCCCCCCCCu, kBit2 = 0xF0F0F0F0u, kBit3 = 0xFF00FF00u;
  const int64_t tables = rows * groups;  // even: groups come in multiples of 16
  for (int64_t g = 0; g < tables; g += 2) {
    const __m512i a = _mm512_castsi128_si512(
        _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 4 * g))));
    const __m512i entries = _mm512_add_epi16(
        _mm512_add_epi16(_mm512_maskz_permutexvar_epi16(kBit0, spread0, a), _mm512_maskz_permutexvar_epi16(kBit1, spread1, a)),
        _mm512_add_epi16(_mm512_maskz_permutexvar_epi16(kBit2, spread2, a), _mm512_maskz_permutexvar_epi16(kBit3, spread3, a)));
    const __m512i biased = _mm512_add_epi16(entries, bias);
    const __m512i split = _mm512_permutex2var_epi8(_mm512_and_si512(biased, low6), pack, _mm512_srli_epi16(biased, 6));
    _mm512_storeu_si512(luts + 32 * g, split);
  }
}

// vpermb on a table read from memory
inline __m512i lookup(__m512i index, const uint8_t* table) {
  return _mm512_permutexvar_epi8(index, _mm512_loadu_si512(table));
}

// Rows i0..i0+R-1 x B blocks of 32 columns from `block` on (those in [n0, n1)); `indices` holds
// the blocks' indices one after the other (groups * 64 bytes each).
template <int R, int B>
void rows_blocks(const uint8_t* luts, const int32_t* rowsum, const float* inv_scale, const uint8_t* indices,
                 const float* alpha, const float* bias, float* y, int64_t i0, int64_t block, int64_t n0, int64_t n1,
                 int64_t n, int64_t groups) {
  constexpr int C = 2 * B;  // column vectors of 16
  const __m512i widen = _mm512_set1_epi32(0x40014001);  // bytes 1, 64, 1, 64: low + 64 * high
  // every loop over the accumulators unrolled, so that they live in registers, not in an array
  __m512i acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_si512();
  const int64_t pairs = groups / 2;  // groups come in multiples of 16
  for (int64_t p = 0; p < pairs; p += 4) {
    // a column vector's 4 indices at a time, each row's 4 tables read from memory by the vpermb
    // (L1 after the first vector): the 16 accumulators stay in registers
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const uint8_t* at = indices + (c / 2) * groups * 64 + 128 * p + 64 * (c % 2);
      const __m512i ix0 = _mm512_load_si512(at), ix1 = _mm512_load_si512(at + 128);
      const __m512i ix2 = _mm512_load_si512(at + 256), ix3 = _mm512_load_si512(at + 384);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const uint8_t* t = luts + (i0 + r) * groups * 32 + 64 * p;
        const __m512i b = _mm512_add_epi8(_mm512_add_epi8(lookup(ix0, t), lookup(ix1, t + 64)),
                                          _mm512_add_epi8(lookup(ix2, t + 128), lookup(ix3, t + 192)));
        acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], b, widen);
      }
    }
  }
  const __m512i bias_total = _mm512_set1_epi32(static_cast<int32_t>(kSplit6Bias * groups));
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    const int64_t i = i0 + r;
    const __m512i rs = _mm512_set1_epi32(rowsum[i]);
    const __m512 inv = _mm512_set1_ps(inv_scale[i]);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const int64_t j0 = block * 32 + 16 * c;
      const int64_t lo = std::max<int64_t>(n0 - j0, 0), hi = std::min<int64_t>(n1 - j0, 16);
      if (lo >= hi) continue;
      const __mmask16 keep = static_cast<__mmask16>(((1u << hi) - 1) & ~((1u << lo) - 1));
      // lut_epilogue's order of operations: (rowsum - 2 masked) * inv_scale * alpha + bias
      const __m512i masked = _mm512_sub_epi32(acc[r][c], bias_total);
      const __m512i dot = _mm512_sub_epi32(rs, _mm512_slli_epi32(masked, 1));
      __m512 out = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(dot), inv), _mm512_maskz_loadu_ps(keep, alpha + j0));
      if (bias) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(keep, bias + j0));
      _mm512_mask_storeu_ps(y + i * n + j0, keep, out);
    }
  }
}

template <int R, int B>
void row_tiles(const uint8_t* luts, const int32_t* rowsum, const float* inv_scale, const uint8_t* indices,
               const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1, int64_t block, int64_t n0,
               int64_t n1, int64_t n, int64_t groups) {
  int64_t i = m0;
  for (; i + R <= m1; i += R)
    rows_blocks<R, B>(luts, rowsum, inv_scale, indices, alpha, bias, y, i, block, n0, n1, n, groups);
  for (; i < m1; ++i) rows_blocks<1, B>(luts, rowsum, inv_scale, indices, alpha, bias, y, i, block, n0, n1, n, groups);
}

void w1a8_vbmi(const uint8_t* luts, const int8_t*, const int32_t* rowsum, const float* inv_scale, const uint8_t* wlut,
               const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
               int64_t n, int64_t groups) {
  thread_local aligned_vector<uint8_t> indices;
  uint8_t* ix = grow(indices, 2 * groups * 64);
  int64_t block = n0 / 32;
  for (; block * 32 + 32 < n1; block += 2) {  // two blocks a tile while the call has a second one
    build_indices(wlut + block * groups * 16, groups, ix);
    build_indices(wlut + (block + 1) * groups * 16, groups, ix + groups * 64);
    row_tiles<kRowTile, 2>(luts, rowsum, inv_scale, ix, alpha, bias, y, m0, m1, block, n0, n1, n, groups);
  }
  if (block * 32 < n1) {
    build_indices(wlut + block * groups * 16, groups, ix);
    row_tiles<kRowTile, 1>(luts, rowsum, inv_scale, ix, alpha, bias, y, m0, m1, block, n0, n1, n, groups);
  }
}

}  // namespace

const KernelTable& avx512_vbmi_kernels(const KernelTable& vnni) {
  static const KernelTable table = [&] {
    KernelTable t = vnni;
    t.isa = "avx512_vbmi";
    t.w1a8_linear = w1a8_vbmi;
    t.w1a8_tables = LutFormat::kSplit6;
    t.build_luts = build_luts_vbmi;
    t.w158a8_reads_rows = true;        // ternary: avx512_vnni's product, on q
    t.w1a8_wide_table_blocks = true;   // build_indices once for more rows
    return t;
  }();
  return table;
}

}  // namespace bitmaps
