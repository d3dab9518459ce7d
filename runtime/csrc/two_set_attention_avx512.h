// KernelTable::two_set_attention in 512-bit registers (AVX-512F), for the paths whose softmax is
// softmax_rows_with<exp_divided16, row_max16>: BiT's attention weights straight from the integer
// dots of 1-bit Q and K, bit for bit what those element-wise steps give (the scores dot * alphas /
// root, the softmax, the two-set binarizer's cut) without a score, an exponential or a
// probability per key.
//
// A dot takes one of d + 1 values (dot = d - 2 popcount, level t = (dot + d) / 2), and its score
// rises with it (alphas > 0), so a row's maximum is the score of its highest live level and its
// exponentials are the d + 1 numbers exp(score(t) - maximum), computed once per maximum met in the
// head with exp_shifted16 on the same floats as the element-wise path. A row then costs a pass for
// its maximum, one for its sum (each key's exponential fetched by an in-register permute from the
// level table, added in exp_shifted16's lanes and order, the padded keys subtracted after it in key
// order, as softmax_rows does: the same total to the bit), and one compare per 16 keys: the levels
// the binarizer keeps (exp * (1 / total) not below the cut) are those from some level T up, as
// exp rises with the level, so key j's bit is dot_j >= 2T - d. Should the kept levels not be such a
// run (an exp that is not monotone at the last bit), the row's bits are looked up per key instead.
// The element-wise steps took about 11 us of a MiniLM head's attention on Zen 4.
// In an anonymous namespace, like float_avx512.h: each instruction-set file compiles its own copy.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "aligned.h"
#include "float_avx512.h"
#include "kernels.h"
#include "two_set_levels.h"

namespace bitmaps {
namespace {

// the table entries of 16 keys' levels: chunk c of 32 levels by one two-register permute each
inline __m512 level_values(const float* table, __m512i level, int64_t chunks) {
  __m512 e = _mm512_permutex2var_ps(_mm512_load_ps(table), level, _mm512_load_ps(table + 16));
  for (int64_t c = 1; c < chunks; ++c) {
    const __mmask16 in_chunk = _mm512_cmpeq_epi32_mask(_mm512_srli_epi32(level, 5), _mm512_set1_epi32(static_cast<int>(c)));
    e = _mm512_mask_mov_ps(e, in_chunk, _mm512_permutex2var_ps(_mm512_load_ps(table + 32 * c), level, _mm512_load_ps(table + 32 * c + 16)));
  }
  return e;
}

bool two_set_attention_avx512(const int32_t* dots, int64_t rows, int64_t n, int64_t d, float alphas, float root,
                              const int32_t* mask, float cut, uint64_t* bits) {
  if (d < 1 || d >= kMaxTwoSetHeadDim || n < 1 || !(alphas > 0.f) || !std::isfinite(alphas) || !(root > 0.f)) return false;
  const int64_t levels = d + 1, chunks = (levels + 31) / 32, slots = 32 * chunks, words = words_per_row(n);
  // the level scores as the encoder computes them from a dot (float(dot) * alphas / root)
  alignas(64) float scores[kMaxTwoSetHeadDim + 1 + 32];
  for (int64_t t = 0; t < slots; ++t) scores[t] = static_cast<float>(2 * (t < levels ? t : d) - d) * alphas / root;
  for (int64_t t = 0; t < levels; ++t)
    if (!std::isfinite(scores[t])) return false;
  // the exponential tables, one per row maximum met (the maximum is a level's score)
  thread_local aligned_vector<float> storage;
  thread_local aligned_vector<int64_t> filled;
  if (storage.size() < static_cast<size_t>(levels * slots + 16)) storage.assign(static_cast<size_t>(levels * slots + 16), 0.f);
  float* tables = storage.data() + ((64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64) / sizeof(float);
  filled.assign(static_cast<size_t>(levels), 0);
  const __m512i offset = _mm512_set1_epi32(static_cast<int>(d));
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t* row = dots + i * n;
    uint64_t* out = bits + i * words;
    // the highest live level
    __m512i high = _mm512_set1_epi32(INT_MIN);
    for (int64_t j = 0; j < n; j += 16) {
      __mmask16 live = tail_mask(n - j);
      if (mask) live = _mm512_mask_cmpneq_epi32_mask(live, _mm512_maskz_loadu_epi32(live, mask + j), _mm512_setzero_si512());
      high = _mm512_mask_max_epi32(high, live, high, _mm512_maskz_loadu_epi32(live, row + j));
    }
    const int32_t top = _mm512_reduce_max_epi32(high);
    if (top == INT_MIN) return false;  // every key padded: the element-wise steps' NaN row, left to them
    const int64_t top_level = (top + d) / 2;
    float* table = tables + top_level * slots;
    if (!filled[top_level]) {
      std::memcpy(table, scores, static_cast<size_t>(slots) * sizeof(float));
      exp_shifted16(table, slots, scores[top_level]);  // slots: whole vectors, no tail
      filled[top_level] = 1;
    }
    // the sum in exp_shifted16's lanes and order (every key, padded or not), then softmax_rows'
    // subtraction of the padded keys in key order
    __m512 total = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
      const __m512i level = _mm512_srli_epi32(_mm512_add_epi32(_mm512_loadu_si512(row + j), offset), 1);
      total = _mm512_add_ps(total, level_values(table, level, chunks));
    }
    if (j < n) {
      const __mmask16 m = tail_mask(n - j);
      const __m512i level = _mm512_srli_epi32(_mm512_add_epi32(_mm512_maskz_loadu_epi32(m, row + j), offset), 1);
      total = _mm512_mask_add_ps(total, m, total, level_values(table, level, chunks));
    }
    float sum = _mm512_reduce_add_ps(total);
    if (mask)
      for (int64_t k = 0; k < n; ++k)
        if (mask[k] == 0) sum -= table[(row[k] + d) / 2];
    const float inverse = 1.f / sum;
    // the levels the binarizer keeps (16 a compare: a scalar loop over them had cost as much as
    // the rest of the row), and whether they are the run from `first` up
    uint64_t kept[kLevelWords] = {};
    const __m512 scale = _mm512_set1_ps(inverse), c = _mm512_set1_ps(cut);
    for (int64_t t = 0; t < slots; t += 16)
      kept[t >> 6] |= static_cast<uint64_t>(static_cast<uint16_t>(
          _mm512_cmp_ps_mask(_mm512_mul_ps(_mm512_load_ps(table + t), scale), c, _CMP_NLT_UQ))) << (t & 63);
    const int64_t first = kept_run(kept, levels);
    const bool run = first >= 0;
    const bool padded_kept = !below_cut(0.f * inverse, cut, true);
    if (!run) {
      for (int64_t w = 0; w < words; ++w) out[w] = 0;
      for (int64_t k = 0; k < n; ++k) {
        const int64_t t = (row[k] + d) / 2;
        const bool keep = (mask && mask[k] == 0) ? padded_kept : ((kept[t >> 6] >> (t & 63)) & 1) != 0;
        out[k >> 6] |= static_cast<uint64_t>(keep) << (k & 63);
      }
      continue;
    }
    // each word built in a register (or-ing into memory had chained store-to-load forwarding)
    const __m512i threshold = _mm512_set1_epi32(static_cast<int>(2 * first - d));
    for (int64_t w = 0; w < words; ++w) {
      uint64_t word = 0;
      for (j = 64 * w; j < std::min(n, 64 * w + 64); j += 16) {
        const __mmask16 in_row = tail_mask(n - j);
        __mmask16 keep = _mm512_mask_cmpge_epi32_mask(in_row, _mm512_maskz_loadu_epi32(in_row, row + j), threshold);
        if (mask) {
          const __mmask16 padded = _mm512_mask_cmpeq_epi32_mask(in_row, _mm512_maskz_loadu_epi32(in_row, mask + j), _mm512_setzero_si512());
          keep = static_cast<__mmask16>((keep & ~padded) | (padded_kept ? padded : 0));
        }
        word |= static_cast<uint64_t>(keep) << (j & 63);
      }
      out[w] = word;
    }
  }
  return true;
}

}  // namespace
}  // namespace bitmaps
