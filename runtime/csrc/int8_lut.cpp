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

void build_luts(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts) {
  for (int64_t r = 0; r < rows; ++r) {
    const int8_t* row = q + r * groups * 4;
    uint8_t* lut = luts + r * groups * 32;
    for (int64_t g = 0; g < groups; ++g) {
      const int8_t* a = row + 4 * g;
      // T[p + 2^t] = T[p] + a[t]: 15 additions per table instead of a sum per entry
      int16_t t[16];
      t[0] = 0;
      for (int bit = 0; bit < 4; ++bit)
        for (int p = 0; p < (1 << bit); ++p) t[p + (1 << bit)] = static_cast<int16_t>(t[p] + a[bit]);
      for (int p = 0; p < 16; ++p) {
        lut[g * 32 + p] = static_cast<uint8_t>(t[p] & 0xff);
        lut[g * 32 + 16 + p] = static_cast<uint8_t>((t[p] >> 8) & 0xff);
      }
    }
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
