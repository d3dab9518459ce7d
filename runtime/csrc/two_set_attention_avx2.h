// KernelTable::two_set_attention in 256-bit registers, for the AVX2 path, whose softmax is
// softmax_rows_with<exp_divided, row_max8> (float_avx2.h): BiT's attention weights straight from
// the integer dots of 1-bit Q and K, bit for bit what those element-wise steps give (the scores
// dot * alphas / root, the softmax, the two-set binarizer's cut). The idea is
// two_set_attention_avx512.h's: a dot takes one of d + 1 levels, so a row's exponentials are the
// d + 1 numbers exp(score(level) - maximum), computed once per maximum met in the head; the sum
// adds each key's entry in the element-wise lanes and order; the levels the cut keeps are a run
// from some level up, so a key's bit is one integer compare.
// What differs on AVX2: exp_divided adds whole vectors of 8 in 8 lanes and the row's last n % 8
// keys one by one with std::exp, whose value can differ from the vector exp's in the last bit, so
// those keys read a second table of std::exp entries and are decided by their own level set; and
// a key's entry is fetched by in-register permutes of 8-entry chunks (vpermps + blend) up to 40
// levels, by a gather above (BERT-base's d = 64), where a gather for every head had cost what the
// exponentials did.
// In an anonymous namespace, like float_avx2.h: each instruction-set file compiles its own copy.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aligned.h"
#include "avx2_reduce.h"
#include "float_avx2.h"
#include "kernels.h"
#include "two_set_levels.h"

namespace bitmaps {
namespace {

constexpr int64_t kPermuteChunks = 5;  // up to 40 levels by permutes, more by gathers

// the table entries of 8 keys' levels: a permute per 8-entry chunk, and the chunks chosen by the
// level's bits 3, 4 and 5 moved to the sign bit that blendv reads (a tree of blends); a last chunk
// that holds one level (33 levels: MiniLM's d = 32) is a broadcast, not a permute. 33 levels take
// 4 permutes, a broadcast, 3 shifts and 4 blends, where comparing the chunk number with each
// chunk's had taken 5 permutes, 4 compares and 4 blends; the permutes bound the loop.
inline __attribute__((always_inline)) __m256 level_values8(const float* table, __m256i level, int64_t chunks, int64_t levels) {
  if (chunks > kPermuteChunks) return _mm256_i32gather_ps(table, level, 4);
  const auto entries = [&](int64_t c) __attribute__((always_inline)) {
    if (c + 1 == chunks && levels == 8 * c + 1) return _mm256_broadcast_ss(table + 8 * c);
    return _mm256_permutevar8x32_ps(_mm256_load_ps(table + 8 * c), level);
  };
  const auto bit = [&](int b) __attribute__((always_inline)) { return _mm256_castsi256_ps(_mm256_slli_epi32(level, 31 - b)); };
  __m256 e = entries(0);
  if (chunks == 1) return e;
  const __m256 b3 = bit(3);
  e = _mm256_blendv_ps(e, entries(1), b3);
  if (chunks == 2) return e;
  __m256 upper = entries(2);
  if (chunks > 3) upper = _mm256_blendv_ps(upper, entries(3), b3);
  e = _mm256_blendv_ps(e, upper, bit(4));
  if (chunks == 5) e = _mm256_blendv_ps(e, entries(4), bit(5));
  return e;
}

// the levels a table's entries keep (entry * inverse not below the cut, 8 a compare), as bits over
// `slots` entries, and kept_run's answer (two_set_levels.h)
inline int64_t kept_levels(const float* table, int64_t slots, int64_t levels, float inverse, float cut, uint64_t* kept) {
  const __m256 scale = _mm256_set1_ps(inverse), c = _mm256_set1_ps(cut);
  for (int64_t w = 0; w < kLevelWords; ++w) kept[w] = 0;
  for (int64_t t = 0; t < slots; t += 8) {
    const __m256 keep = _mm256_cmp_ps(_mm256_mul_ps(_mm256_load_ps(table + t), scale), c, _CMP_NLT_UQ);
    kept[t >> 6] |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(keep))) << (t & 63);
  }
  return kept_run(kept, levels);
}

// The table sums of G rows of dots (n a row, the first `whole` keys), the rows' chains of
// dependent adds interleaved so that they overlap; G a template argument so that the G
// accumulators stay in registers (indexed by a loop variable they had gone through the stack, a
// store and a load on every add).
template <int G>
inline __attribute__((always_inline)) void level_sums(const int32_t* dots, int64_t n, int64_t whole, int64_t d, const float* const* tables, int64_t chunks,
                       __m256* totals) {
  const __m256i offset = _mm256_set1_epi32(static_cast<int>(d));
  __m256 sums[G];
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) sums[g] = _mm256_setzero_ps();
  for (int64_t j = 0; j < whole; j += 8) {
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(dots + g * n + j));
      const __m256i level = _mm256_srli_epi32(_mm256_add_epi32(v, offset), 1);
      sums[g] = _mm256_add_ps(sums[g], level_values8(tables[g], level, chunks, d + 1));
    }
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; ++g) totals[g] = sums[g];
}

bool two_set_attention_avx2(const int32_t* dots, int64_t rows, int64_t n, int64_t d, float alphas, float root,
                            const int32_t* mask, float cut, uint64_t* bits) {
  if (d < 1 || d >= kMaxTwoSetHeadDim || n < 1 || !(alphas > 0.f) || !std::isfinite(alphas) || !(root > 0.f)) return false;
  const int64_t levels = d + 1, chunks = (levels + 7) / 8, slots = 8 * chunks, words = words_per_row(n);
  const int64_t whole = n - n % 8;  // keys in whole vectors; the rest take std::exp's values
  // the level scores as the encoder computes them from a dot (float(dot) * alphas / root)
  alignas(32) float scores[kMaxTwoSetHeadDim + 1 + 8];
  for (int64_t t = 0; t < slots; ++t) scores[t] = static_cast<float>(2 * (t < levels ? t : d) - d) * alphas / root;
  for (int64_t t = 0; t < levels; ++t)
    if (!std::isfinite(scores[t])) return false;
  // per row maximum met: the vector exponentials and, where the row has a tail, std::exp's, slots
  // entries each, so that every block starts aligned
  const int64_t block = 2 * slots;
  thread_local aligned_vector<float> storage;
  thread_local aligned_vector<int64_t> filled;
  if (storage.size() < static_cast<size_t>(levels * block + 8)) storage.assign(static_cast<size_t>(levels * block + 8), 0.f);
  float* tables = storage.data() + ((32 - reinterpret_cast<uintptr_t>(storage.data()) % 32) % 32) / sizeof(float);
  filled.assign(static_cast<size_t>(levels), 0);
  const __m256i lowest = _mm256_set1_epi32(INT_MIN);
  // rows in groups of kRowGroup: each row's sum is a chain of dependent vector adds (its lanes'
  // order is the element-wise one), so the group's chains are interleaved to overlap
  constexpr int kRowGroup = 4;
  for (int64_t i0 = 0; i0 < rows; i0 += kRowGroup) {
    const int group = static_cast<int>(std::min<int64_t>(kRowGroup, rows - i0));
    const float* vector_tables[kRowGroup];
    const float* scalar_tables[kRowGroup];
    for (int g = 0; g < group; ++g) {
      const int32_t* row = dots + (i0 + g) * n;
      // the highest live level
      __m256i high = lowest;
      int32_t top = INT_MIN;
      for (int64_t j = 0; j < whole; j += 8) {
        __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + j));
        if (mask) {
          const __m256i padded = _mm256_cmpeq_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mask + j)),
                                                    _mm256_setzero_si256());
          v = _mm256_blendv_epi8(v, lowest, padded);
        }
        high = _mm256_max_epi32(high, v);
      }
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), high);
      for (int t = 0; t < 8; ++t) top = std::max(top, lanes[t]);
      for (int64_t j = whole; j < n; ++j)
        if (!mask || mask[j] != 0) top = std::max(top, row[j]);
      if (top == INT_MIN) return false;  // every key padded: the element-wise steps' NaN row, left to them
      const int64_t top_level = (top + d) / 2;
      float* vector_table = tables + top_level * block;
      float* scalar_table = vector_table + slots;
      if (!filled[top_level]) {
        std::memcpy(vector_table, scores, static_cast<size_t>(slots) * sizeof(float));
        exp_shifted(vector_table, slots, scores[top_level]);  // slots: whole vectors, exp8 on each
        if (whole < n)  // read only for the tail keys
          for (int64_t t = 0; t < slots; ++t) scalar_table[t] = std::exp(scores[t] - scores[top_level]);
        filled[top_level] = 1;
      }
      vector_tables[g] = vector_table, scalar_tables[g] = scalar_table;
    }
    // the sums as exp_shifted adds them (every key, padded or not)
    __m256 totals[kRowGroup];
    const int32_t* group_dots = dots + i0 * n;
    switch (group) {
      case 4: level_sums<4>(group_dots, n, whole, d, vector_tables, chunks, totals); break;
      case 3: level_sums<3>(group_dots, n, whole, d, vector_tables, chunks, totals); break;
      case 2: level_sums<2>(group_dots, n, whole, d, vector_tables, chunks, totals); break;
      default: level_sums<1>(group_dots, n, whole, d, vector_tables, chunks, totals); break;
    }
    for (int g = 0; g < group; ++g) {
      const int64_t i = i0 + g;
      const int32_t* row = dots + i * n;
      uint64_t* out = bits + i * words;
      const float* vector_table = vector_tables[g];
      const float* scalar_table = scalar_tables[g];
      // the tail keys, then softmax_rows' subtraction of the padded keys in key order
      float sum = hsum_ps(totals[g]);
      for (int64_t j = whole; j < n; ++j) sum += scalar_table[(row[j] + d) / 2];
      if (mask)
        for (int64_t k = 0; k < n; ++k)
          if (mask[k] == 0) sum -= (k < whole ? vector_table : scalar_table)[(row[k] + d) / 2];
      const float inverse = 1.f / sum;
      uint64_t kept[kLevelWords], kept_tail[kLevelWords];
      const int64_t first = kept_levels(vector_table, slots, levels, inverse, cut, kept);
      if (whole < n) kept_levels(scalar_table, slots, levels, inverse, cut, kept_tail);
      const bool padded_kept = !below_cut(0.f * inverse, cut, true);
      const auto key_bit = [&](int64_t k) {
        if (mask && mask[k] == 0) return padded_kept;
        const int64_t t = (row[k] + d) / 2;
        return (((k < whole ? kept : kept_tail)[t >> 6] >> (t & 63)) & 1) != 0;
      };
      if (first < 0) {  // the kept levels are not a run: key by key
        for (int64_t w = 0; w < words; ++w) out[w] = 0;
        for (int64_t k = 0; k < n; ++k) out[k >> 6] |= static_cast<uint64_t>(key_bit(k)) << (k & 63);
        continue;
      }
      // each word built in a register: dot >= 2 first - d on the whole vectors, the tail key by key
      const __m256i below = _mm256_set1_epi32(static_cast<int>(2 * first - d - 1));
      for (int64_t w = 0; w < words; ++w) {
        uint64_t word = 0;
        const int64_t end = std::min(n, 64 * w + 64);
        int64_t j = 64 * w;
        const auto keep = [&](int64_t at) {
          __m256i kept8 = _mm256_cmpgt_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + at)), below);
          if (mask) {
            const __m256i padded = _mm256_cmpeq_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(mask + at)),
                                                      _mm256_setzero_si256());
            kept8 = padded_kept ? _mm256_or_si256(kept8, padded) : _mm256_andnot_si256(padded, kept8);
          }
          return kept8;
        };
        for (; j + 32 <= std::min(end, whole); j += 32)
          word |= static_cast<uint64_t>(mask_bits32(keep(j), keep(j + 8), keep(j + 16), keep(j + 24))) << (j & 63);
        for (; j + 8 <= std::min(end, whole); j += 8)
          word |= static_cast<uint64_t>(static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(keep(j))))) << (j & 63);
        for (; j < end; ++j) word |= static_cast<uint64_t>(key_bit(j)) << (j & 63);
        out[w] = word;
      }
    }
  }
  return true;
}

}  // namespace
}  // namespace bitmaps
