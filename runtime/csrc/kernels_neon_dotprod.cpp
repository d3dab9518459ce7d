// W1A8 on the ARMv8.2 dot-product instructions (sdot, `vdotq_s32`), as bitnet.cpp's I2_S kernel
// uses them for int8 activations. Compiled with -march=armv8.2-a+dotprod; dispatch.cpp selects it
// only when the kernel reports the feature (HWCAP_ASIMDDP), so the module still runs on ARMv8.0
// cores (Cortex-A53, Raspberry Pi 3/4), which take the table-lookup path of kernels_neon.cpp.
//
// Weights stay in int8_lut.h's layout: per 32-column block and group g of 4 inputs, 16 bytes,
// byte c holding column c's 4 bits in its low nibble and column 16 + c's in its high nibble. For 4
// columns at a time, one table lookup repeats each column's byte 4 times and one `cmtst` against
// the bit masks {1, 2, 4, 8} (or {16, ..., 128}) turns the nibble into 4 bytes of 0 or -1: int32
// lane L of the vector is column L's weights for the group, and `sdot` with the group's 4 int8
// activations (broadcast) adds -sum_t q_t * bit_t to lane L. So every accumulator lane is one
// output column, in order, and dot(q, s_j) = rowsum + 2 * acc_j. Exact, like the other paths.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "int8_lut.h"
#include "kernels.h"

namespace bitmaps {
namespace {

inline int8x16_t broadcast_group(const int8_t* q) {
  int32_t v;
  std::memcpy(&v, q, sizeof v);
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// R rows x 16 columns (half h of a 32-column block): 4 accumulators of 4 columns per row.
template <int R>
void rows_x16(const int8_t* q, int64_t stride, const uint8_t* col, int half, int64_t groups, int32x4_t (*acc)[4]) {
  // lookup indices: vector v repeats bytes 4v .. 4v+3 of the group's 16 four times each
  static const uint8_t kRepeat[4][16] = {
      {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3},
      {4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7},
      {8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11},
      {12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15}};
  static const uint8_t kBits[2][16] = {{1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8, 1, 2, 4, 8},
                                       {16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128, 16, 32, 64, 128}};
  const uint8x16_t bits = vld1q_u8(kBits[half]);
  const uint8x16_t r0 = vld1q_u8(kRepeat[0]), r1 = vld1q_u8(kRepeat[1]), r2 = vld1q_u8(kRepeat[2]), r3 = vld1q_u8(kRepeat[3]);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) acc[r][v] = vdupq_n_s32(0);
  for (int64_t g = 0; g < groups; ++g) {
    const uint8x16_t packed = vld1q_u8(col + g * 16);
    // 0xff (-1) where the weight bit is set, i.e. where the weight is -1
    const int8x16_t w0 = vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(packed, r0), bits));
    const int8x16_t w1 = vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(packed, r1), bits));
    const int8x16_t w2 = vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(packed, r2), bits));
    const int8x16_t w3 = vreinterpretq_s8_u8(vtstq_u8(vqtbl1q_u8(packed, r3), bits));
    for (int r = 0; r < R; ++r) {
      const int8x16_t x = broadcast_group(q + r * stride + 4 * g);
      acc[r][0] = vdotq_s32(acc[r][0], w0, x);
      acc[r][1] = vdotq_s32(acc[r][1], w1, x);
      acc[r][2] = vdotq_s32(acc[r][2], w2, x);
      acc[r][3] = vdotq_s32(acc[r][3], w3, x);
    }
  }
}

template <int R>
void block_rows(const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* col, const float* alpha,
                const float* bias, float* y, int64_t i0, int64_t block, int64_t n0, int64_t n1, int64_t n, int64_t groups) {
  const int64_t stride = groups * 4;
  for (int half = 0; half < 2; ++half) {
    const int64_t j0 = block * 32 + 16 * half;
    if (j0 >= n1 || j0 + 16 <= n0) continue;
    int32x4_t acc[R][4];
    rows_x16<R>(q + i0 * stride, stride, col, half, groups, acc);
    for (int r = 0; r < R; ++r) {
      const int64_t i = i0 + r;
      int32_t minus_masked[16];
      for (int v = 0; v < 4; ++v) vst1q_s32(minus_masked + 4 * v, acc[r][v]);
      for (int c = 0; c < 16; ++c) {
        const int64_t j = j0 + c;
        if (j >= n0 && j < n1) y[i * n + j] = lut_epilogue(rowsum[i], -minus_masked[c], inv_scale[i], alpha[j], bias, j);
      }
    }
  }
}

void w1a8_linear(const uint8_t*, const int8_t* q, const int32_t* rowsum, const float* inv_scale, const uint8_t* wlut,
                 const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                 int64_t groups) {
  constexpr int kRows = 4;  // 16 accumulators + 4 weight vectors + 4 index/mask vectors of the 32
  for (int64_t block = n0 / 32; block * 32 < n1; ++block) {
    const uint8_t* col = wlut + block * groups * 16;
    int64_t i = m0;
    for (; i + kRows <= m1; i += kRows) block_rows<kRows>(q, rowsum, inv_scale, col, alpha, bias, y, i, block, n0, n1, n, groups);
    for (; i < m1; ++i) block_rows<1>(q, rowsum, inv_scale, col, alpha, bias, y, i, block, n0, n1, n, groups);
  }
}

}  // namespace

const KernelTable& neon_dotprod_kernels(const KernelTable& neon) {
  static const KernelTable table = {"neon_dotprod", neon.pack_signs, neon.xnor_gemm, neon.xnor_linear,
                                    neon.binary_weight_linear, neon.quantize_rows_int8, w1a8_linear, LutFormat::kNone,
                                    neon.sgemm_nt, neon.sgemm_nn, neon.sgemm_panel, neon.unpack_panel, neon.gelu,
                                    neon.softmax_rows, nullptr, neon.pack_elastic, nullptr, nullptr, nullptr, nullptr,
                                    neon.layer_norm_rows, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                    nullptr, nullptr, kW1a8RowTile, 16, nullptr, nullptr, nullptr,
                                    neon.add_layer_norm_rows};
  return table;
}

}  // namespace bitmaps
