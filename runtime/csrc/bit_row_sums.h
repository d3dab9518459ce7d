// Bi-Attention's context: attention weights of 0 or 1 (bits) against float values, so each output
// row is the sum of the value rows its bits select. A GEMM on 0/1 floats spends a multiply-add per
// key and column, most of BiBERT's attention (0.77 of 1.25 ms on Zen 4, MiniLM batch 1). Here the
// keys go in groups of four, whose 16 subset sums are built once per call (15 row additions per
// group, against the hundreds of rows that read them), and each output row adds one of them per
// group, in registers: a quarter of the additions, no multiplies.
// A template over nothing but the file's flags: each instruction-set file compiles its own copy,
// whose column loops GCC vectorizes at that width, and the portable core's copy is the fallback.
// The sums run in another order than a GEMM's, so they agree with it to rounding, not bit for bit.
// In an anonymous namespace, like softmax_rows.h.
#pragma once
#include <cstdint>
#include <cstring>

// The generic vectors below are passed and returned by value only between inline functions of
// this anonymous namespace, so GCC's note that their ABI depends on the flags concerns no caller.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace bitmaps {
namespace {

constexpr int64_t kBitRowGroup = 4;  // keys per subset table

// floats of scratch bit_row_sums needs for n keys of d values
inline int64_t bit_row_sums_scratch(int64_t n, int64_t d) { return (n + kBitRowGroup - 1) / kBitRowGroup * 16 * d; }

// table[(g * 16 + s) * d + c] = sum of v[(4g + t) * ldv + c] over the bits t of s (keys < n)
inline void subset_sums(const float* v, int64_t ldv, int64_t n, int64_t d, float* table) {
  for (int64_t j0 = 0, g = 0; j0 < n; j0 += kBitRowGroup, ++g) {
    const int64_t keys = n - j0 < kBitRowGroup ? n - j0 : kBitRowGroup;
    float* group = table + g * 16 * d;
    std::memset(group, 0, static_cast<size_t>(16 * d) * sizeof(float));
    // row s = row s without its lowest bit, plus that bit's value row; subsets naming keys past
    // n stay 0 and are never looked up
    for (int64_t s = 1; s < (int64_t{1} << keys); ++s) {
      const float* rest = group + (s & (s - 1)) * d;
      const float* row = v + (j0 + __builtin_ctzll(static_cast<uint64_t>(s))) * ldv;
      float* sum = group + s * d;
      for (int64_t c = 0; c < d; ++c) sum[c] = rest[c] + row[c];
    }
  }
}

// 8 floats in GCC's generic vectors: one ymm register on AVX2 and AVX-512 (Zen 4 splits a zmm
// addition in two anyway), two xmm on SSE2 or NEON. As locals they stay in registers, where GCC
// had kept float arrays on the stack (a load and a store beside every addition: no faster than
// the GEMM); 16-float vectors had been split through memory on AVX2.
typedef float Floats8 __attribute__((vector_size(32)));

inline Floats8 load8(const float* p) {
  Floats8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void store8(float* p, const Floats8& v) { std::memcpy(p, &v, sizeof v); }

// subset_sums for d = 8 V
template <int V>
inline void subset_sums_vectors(const float* v, int64_t ldv, int64_t n, float* table) {
  constexpr int64_t d = 8 * V;
  for (int64_t j0 = 0, g = 0; j0 < n; j0 += kBitRowGroup, ++g) {
    const int64_t keys = n - j0 < kBitRowGroup ? n - j0 : kBitRowGroup;
    float* group = table + g * 16 * d;
    for (int r = 0; r < V; ++r) store8(group + 8 * r, Floats8{});
    for (int64_t s = 1; s < 16; ++s) {
      const int64_t t = __builtin_ctzll(static_cast<uint64_t>(s));
      float* sum = group + s * d;
      if (t >= keys) {  // a key past n: never looked up, but written, as subset_sums leaves it
        for (int r = 0; r < V; ++r) store8(sum + 8 * r, Floats8{});
        continue;
      }
      const float* rest = group + (s & (s - 1)) * d;
      const float* row = v + (j0 + t) * ldv;
      for (int r = 0; r < V; ++r) store8(sum + 8 * r, load8(rest + 8 * r) + load8(row + 8 * r));
    }
  }
}

// Two output rows at a time (two chains of additions in flight), V vectors of 8 columns each; a
// word of bits is read once for its 16 groups
template <int V>
inline void bit_row_sums_vectors(const uint64_t* bits, int64_t rows, int64_t key_words, int64_t groups,
                                 const float* table, float* out, int64_t ldo) {
  constexpr int64_t d = 8 * V;
  for (int64_t i = 0; i < rows; i += 2) {
    const bool pair = i + 1 < rows;
    const uint64_t* b0 = bits + i * key_words;
    const uint64_t* b1 = pair ? b0 + key_words : b0;
    Floats8 a0[V] = {}, a1[V] = {};
    for (int64_t w = 0; w < key_words; ++w) {
      uint64_t w0 = b0[w], w1 = b1[w];
      const float* base = table + w * 16 * 16 * d;
      const int64_t in_word = groups - 16 * w < 16 ? groups - 16 * w : 16;
      for (int64_t g = 0; g < in_word; ++g, w0 >>= 4, w1 >>= 4) {
        const float* t0 = base + (g * 16 + static_cast<int64_t>(w0 & 15)) * d;
        const float* t1 = base + (g * 16 + static_cast<int64_t>(w1 & 15)) * d;
        for (int r = 0; r < V; ++r) a0[r] += load8(t0 + 8 * r);
        for (int r = 0; r < V; ++r) a1[r] += load8(t1 + 8 * r);
      }
    }
    for (int r = 0; r < V; ++r) store8(out + i * ldo + 8 * r, a0[r]);
    if (pair)
      for (int r = 0; r < V; ++r) store8(out + (i + 1) * ldo + 8 * r, a1[r]);
  }
}

// Any width: one row at a time, its sums in out's row
inline void bit_row_sums_any(const uint64_t* bits, int64_t rows, int64_t key_words, int64_t groups, int64_t d,
                             const float* table, float* out, int64_t ldo) {
  for (int64_t i = 0; i < rows; ++i) {
    float* o = out + i * ldo;
    std::memset(o, 0, static_cast<size_t>(d) * sizeof(float));
    for (int64_t g = 0; g < groups; ++g) {
      const float* t = table + (g * 16 + static_cast<int64_t>((bits[i * key_words + (g >> 4)] >> ((g & 15) * 4)) & 15)) * d;
      for (int64_t c = 0; c < d; ++c) o[c] += t[c];
    }
  }
}

// out[i * ldo + c] = sum over keys j < n with bit j of row i's bits (key_words words a row) set of
// v[j * ldv + c], for rows i < rows and columns c < d; `table` holds
// bit_row_sums_scratch(n, d) floats. Bits at j >= n must be 0.
inline void bit_row_sums_portable(const uint64_t* bits, int64_t rows, int64_t key_words, const float* v, int64_t ldv,
                                  int64_t n, int64_t d, float* out, int64_t ldo, float* table) {
  const int64_t groups = (n + kBitRowGroup - 1) / kBitRowGroup;
  // the heads of MiniLM and BERT-base (32, 64 values) in registers
  if (d == 32) {
    subset_sums_vectors<4>(v, ldv, n, table);
    return bit_row_sums_vectors<4>(bits, rows, key_words, groups, table, out, ldo);
  }
  if (d == 64) {
    subset_sums_vectors<8>(v, ldv, n, table);
    return bit_row_sums_vectors<8>(bits, rows, key_words, groups, table, out, ldo);
  }
  subset_sums(v, ldv, n, d, table);
  bit_row_sums_any(bits, rows, key_words, groups, d, table, out, ldo);
}

}  // namespace
}  // namespace bitmaps

#pragma GCC diagnostic pop
