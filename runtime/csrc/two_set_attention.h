// BiT's two-set attention weights of 1-bit scores (KernelTable::two_set_attention_bits), the part
// every instruction set shares; the vector loops are the Isa's (two_set_attention_avx2.h,
// two_set_attention_avx512.h). In an anonymous namespace, like float_avx2.h: each instruction-set
// file that includes it compiles its own copy with its own flags.
//
// With 1-bit Q and K a score is one of d + 1 values, c * dot for dot in {-d, -d + 2, ..., d}
// (c = alphas / root), so a row's exponentials are d + 1 numbers, not one per key: they are
// computed once per row maximum into a table of levels (level t: dot 2t - d), with the path's own
// exp on the same floats as its element-wise softmax, so each is that softmax's value bit for bit
// (but in the AVX2 softmax's scalar tail), and the keys look theirs up. The two-set quantizer
// then depends on a key only through its level, so its bit is looked up too, and no score or
// probability is written. The element-wise steps (scale, softmax_rows, pack_elastic) had made
// these three about 16 us of a MiniLM head's 39 us on Zen 4. The one difference from them is the
// order of each row's sum.
//
// An Isa provides, for rows of n int32 dots and a nullable mask (0: padded key):
//   exp_shifted(x, count, shift): the path's softmax exponentials (softmax_rows.h's ExpShifted);
//   extremes(row, n, mask, &top, &bottom): the highest and lowest dot of the unpadded keys
//     (INT_MIN and INT_MAX when every key is padded);
//   sum(row, n, mask, d, exps): the sum of exps[level] over the unpadded keys;
//   bits(row, n, mask, d, negative, padded_negative, out): out's bit j (zeroed words, n bits) set
//     where negative[level of key j] is -1, or padded_negative for a padded key.
// TwoSetPortable below is one in plain loops, for the paths without vector versions (NEON).
#pragma once
#include <climits>
#include <cstdint>
#include <cstring>

#include "kernels.h"

namespace bitmaps {
namespace {

// levels, padded to whole vectors of the widest path
constexpr int64_t kTwoSetLevelSlots = (kMaxTwoSetHeadDim + 1 + 31) / 32 * 32;

// a score as the encoder computes it from a dot (the float operations, in their order)
inline float two_set_score(int32_t dot, float alphas, float root) { return static_cast<float>(dot) * alphas / root; }

template <typename Isa>
void two_set_attention_rows(const int32_t* dots, int64_t rows, int64_t n, int64_t d, float alphas, float root,
                            const int32_t* mask, float alpha, float beta, uint64_t* out) {
  const int64_t words = words_per_row(n), slots = (d + 1 + 31) / 32 * 32;
  // a padded key weighs 0 before the quantizer, as in the element-wise path
  const bool padded_negative = elastic_negative(0.f, alpha, beta, true);
  // the tables of the row maxima met so far: a maximum is the score of a row's highest or lowest
  // level, so a head has at most d + 1 of them, and most rows share a few
  alignas(64) float tables[kMaxTwoSetHeadDim + 1][kTwoSetLevelSlots];
  bool filled[kMaxTwoSetHeadDim + 1] = {};
  alignas(64) int32_t negative[kTwoSetLevelSlots];
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t* row = dots + i * n;
    uint64_t* bits = out + i * words;
    std::memset(bits, 0, static_cast<size_t>(words) * sizeof(uint64_t));
    int32_t top = INT_MIN, bottom = INT_MAX;
    Isa::extremes(row, n, mask, &top, &bottom);
    if (top < bottom) {  // every key padded: every weight is 0
      if (padded_negative)
        for (int64_t j = 0; j < n; ++j) bits[j >> 6] |= uint64_t{1} << (j & 63);
      continue;
    }
    // the score is monotone in the dot (rising or falling with the sign of alphas), so the row
    // maximum of the element-wise path is the score of the highest or the lowest dot
    const float at_top = two_set_score(top, alphas, root), at_bottom = two_set_score(bottom, alphas, root);
    const int32_t peak = at_top >= at_bottom ? top : bottom;
    const int64_t peak_level = (peak + d) / 2;
    float* exps = tables[peak_level];
    if (!filled[peak_level]) {
      for (int64_t t = 0; t < slots; ++t) exps[t] = two_set_score(static_cast<int32_t>(2 * t - d), alphas, root);
      Isa::exp_shifted(exps, slots, two_set_score(peak, alphas, root));  // slots: whole vectors, no scalar tail
      filled[peak_level] = true;
    }
    const float inverse = 1.f / Isa::sum(row, n, mask, d, exps);
    // each level's probability times the inverse as softmax_rows normalises, then the quantizer
    for (int64_t t = 0; t < slots; ++t) negative[t] = elastic_negative(exps[t] * inverse, alpha, beta, true) ? -1 : 0;
    Isa::bits(row, n, mask, d, negative, padded_negative, bits);
  }
}

// The Isa in plain loops over the path's own exp.
template <float (*ExpShifted)(float*, int64_t, float)>
struct TwoSetPortable {
  static float exp_shifted(float* x, int64_t count, float shift) { return ExpShifted(x, count, shift); }

  static void extremes(const int32_t* row, int64_t n, const int32_t* mask, int32_t* top, int32_t* bottom) {
    for (int64_t j = 0; j < n; ++j)
      if (!mask || mask[j]) *top = row[j] > *top ? row[j] : *top, *bottom = row[j] < *bottom ? row[j] : *bottom;
  }

  static float sum(const int32_t* row, int64_t n, const int32_t* mask, int64_t d, const float* exps) {
    float total = 0.f;
    for (int64_t j = 0; j < n; ++j)
      if (!mask || mask[j]) total += exps[(row[j] + d) / 2];
    return total;
  }

  static void bits(const int32_t* row, int64_t n, const int32_t* mask, int64_t d, const int32_t* negative,
                   bool padded_negative, uint64_t* out) {
    for (int64_t j = 0; j < n; ++j) {
      const bool set = (!mask || mask[j]) ? negative[(row[j] + d) / 2] != 0 : padded_negative;
      out[j >> 6] |= static_cast<uint64_t>(set) << (j & 63);
    }
  }
};

}  // namespace
}  // namespace bitmaps
