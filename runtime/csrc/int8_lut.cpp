// The O(rows * k) and O(n * k) preparation steps of the W1A8 kernels: plain C++, shared by
// every instruction-set path (the O(m * n * k) lookups are in the kernel tables).
#include "kernels.h"
#include "int8_lut.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bitmaps {

void quantize_rows_int8(const float* x, int64_t rows, int64_t k, int64_t ldx, int8_t* q,
                        float* inv_scale, int32_t* rowsum) {
  const int64_t padded = words_per_row(k) * 64;
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * ldx;
    float absmax = 0.f;
    for (int64_t c = 0; c < k; ++c) absmax = std::max(absmax, std::fabs(row[c]));
    // bitmaps_allennlp/quantization/int8.py defines it: scale = 127 / max(absmax, 1e-5) and
    // step = 1 / scale, each one float32 division; q = round half to even of x * scale
    const float scale = 127.0f / std::max(absmax, 1e-5f);
    int8_t* out = q + r * padded;
    int32_t total = 0;
    for (int64_t c = 0; c < k; ++c) {
      const int v = static_cast<int>(std::nearbyint(row[c] * scale));  // half to even
      out[c] = static_cast<int8_t>(v);
      total += v;
    }
    std::memset(out + k, 0, static_cast<size_t>(padded - k));
    inv_scale[r] = 1.0f / scale;
    rowsum[r] = total;
  }
}

namespace {

// Entry p of a group's table is the sum of the inputs whose bit is set in p. With GCC/Clang vector
// types (SSE2 or NEON, the baseline of either target, with no ISA flags), a table is 4 masked
// broadcasts and 3 adds over 16 int16 lanes, then its low and high byte planes by truncation:
// 5x faster than the 15 dependent scalar additions and 32 byte stores it replaces, which had made
// this O(rows * k) step most of a W1A8 linear's time.
typedef int16_t Int16x16 __attribute__((vector_size(32)));
typedef uint8_t Uint8x16 __attribute__((vector_size(16)));

// lane p of kBitLanes[t] is -1 where bit t of p is set
const Int16x16 kBitLanes[4] = {
    {0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1},
    {0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1, 0, 0, -1, -1},
    {0, 0, 0, 0, -1, -1, -1, -1, 0, 0, 0, 0, -1, -1, -1, -1},
    {0, 0, 0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -1},
};

}  // namespace

void build_luts(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts, LutFormat format) {
  const Int16x16 bit0 = kBitLanes[0], bit1 = kBitLanes[1], bit2 = kBitLanes[2], bit3 = kBitLanes[3];
  const bool split = format == LutFormat::kSplit6;
  // rows are contiguous in both layouts: one table per 4 inputs, 32 bytes each
  const int64_t tables = rows * groups;
  for (int64_t g = 0; g < tables; ++g) {
    const int8_t* a = q + 4 * g;
    const Int16x16 entries = (bit0 & static_cast<int16_t>(a[0])) + (bit1 & static_cast<int16_t>(a[1])) +
                             (bit2 & static_cast<int16_t>(a[2])) + (bit3 & static_cast<int16_t>(a[3]));
    const Int16x16 biased = entries + static_cast<int16_t>(kSplit6Bias);
    const Uint8x16 low = split ? __builtin_convertvector(biased & 63, Uint8x16) : __builtin_convertvector(entries, Uint8x16);
    const Uint8x16 high =
        split ? __builtin_convertvector(biased >> 6, Uint8x16) : __builtin_convertvector(entries >> 8, Uint8x16);
    std::memcpy(luts + 32 * g, &low, 16);
    std::memcpy(luts + 32 * g + 16, &high, 16);
  }
}

void lut_weight_layout(const uint64_t* w, int64_t n, int64_t words, uint8_t* wlut) {
  const int64_t groups = words * 16;
  std::memset(wlut, 0, static_cast<size_t>(lut_column_blocks(n) * groups * 16));
  for (int64_t j = 0; j < n; ++j) {
    uint8_t* block = wlut + (j / 32) * groups * 16;
    const int64_t b = j % 32;
    for (int64_t g = 0; g < groups; ++g) {
      const int nibble = static_cast<int>((w[j * words + g / 16] >> (4 * (g % 16))) & 15);
      block[g * 16 + (b & 15)] |= static_cast<uint8_t>(b < 16 ? nibble : nibble << 4);
    }
  }
}

}  // namespace bitmaps
