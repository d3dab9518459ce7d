#include "encoder.h"

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "bit_row_sums.h"
#include "buffers.h"
#include "gemm_panels.h"
#include "int8_lut.h"
#include "tiles.h"

namespace bitmaps {
namespace {

inline int popcount64(uint64_t v) { return __builtin_popcountll(v); }

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal half: normalise
    int shift = 0;
    while (!(mantissa & 0x400u)) mantissa <<= 1, ++shift;
    bits = sign | (static_cast<uint32_t>(113 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// Row r of a table as the fp32 values the torch model computes with (packed/schemes.py unpack).
void table_row(const Table& t, int64_t r, float* out) {
  const int64_t d = t.dim;
  switch (t.format) {
    case TableFormat::kF32:
      std::memcpy(out, static_cast<const float*>(t.data) + r * d, static_cast<size_t>(d) * sizeof(float));
      break;
    case TableFormat::kF16: {
      const uint16_t* row = static_cast<const uint16_t*>(t.data) + r * d;
      for (int64_t k = 0; k < d; ++k) out[k] = half_to_float(row[k]);
      break;
    }
    case TableFormat::kInt8: {
      const int8_t* row = static_cast<const int8_t*>(t.data) + r * d;
      for (int64_t k = 0; k < d; ++k) out[k] = static_cast<float>(row[k]) * t.scale[r];
      break;
    }
    case TableFormat::kInt8Columns: {
      // (q * step) * column, in the torch reference's order (packed/schemes.py)
      const int8_t* row = static_cast<const int8_t*>(t.data) + r * d;
      for (int64_t k = 0; k < d; ++k) out[k] = static_cast<float>(row[k]) * t.scale[r] * t.column[k];
      break;
    }
    case TableFormat::kInt8Groups: {
      const int8_t* row = static_cast<const int8_t*>(t.data) + r * d;
      const float* step = t.scale + r * table_groups(d);
      for (int64_t k = 0; k < d; ++k) out[k] = static_cast<float>(row[k]) * step[k / kTableGroup];
      break;
    }
    case TableFormat::kBinary: {
      const int64_t words = words_per_row(d);
      const uint64_t* row = static_cast<const uint64_t*>(t.data) + r * words;
      for (int64_t k = 0; k < d; ++k) out[k] = ((row[k >> 6] >> (k & 63)) & 1) ? -t.scale[r] : t.scale[r];
      break;
    }
  }
}

// LayerNorm's cost per element in tiles.h's work units: three passes in double (sum, squares,
// the normalised write) and the residual add; a 128 x 384 block is then worth splitting.
constexpr int64_t kNormWork = 32;

// rows [r0, r1) of x = LayerNorm(x + residual)
void add_norm_rows(const KernelTable& kernels, float* x, const float* residual, int64_t r0, int64_t r1, int64_t h,
                   const Norm& norm, float eps) {
  if (kernels.add_layer_norm_rows)
    return kernels.add_layer_norm_rows(x + r0 * h, residual + r0 * h, r1 - r0, h, norm.weight, norm.bias, eps);
  for (int64_t i = r0 * h; i < r1 * h; ++i) x[i] += residual[i];
  kernels.layer_norm_rows(x + r0 * h, r1 - r0, h, norm.weight, norm.bias, eps);
}

// x = LayerNorm(x + residual), row-parallel
void add_norm(const KernelTable& kernels, float* x, const float* residual, int64_t rows, int64_t h, const Norm& norm,
              float eps, int threads) {
  run_rows(rows, 16, rows * h * kNormWork, threads, [&](int64_t r0, int64_t r1) {
    add_norm_rows(kernels, x, residual, r0, r1, h, norm, eps);
  });
}

// GELU's cost per element in tiles.h's work units.
constexpr int64_t kGeluWork = 16;

void activate(const KernelTable& kernels, float* x, int64_t count, Activation act, int threads) {
  run_rows(count, 4096, count * kGeluWork, threads, [&](int64_t i0, int64_t i1) {
    if (act == Activation::kGelu) return kernels.gelu(x + i0, i1 - i0);
    for (int64_t i = i0; i < i1; ++i) {
      const float v = x[i];
      switch (act) {
        case Activation::kGelu:
          x[i] = v * 0.5f * (1.f + std::erf(v * static_cast<float>(M_SQRT1_2)));
          break;
        case Activation::kGeluTanh:
          x[i] = 0.5f * v * (1.f + std::tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));
          break;
        case Activation::kRelu:
          x[i] = v > 0.f ? v : 0.f;
          break;
      }
    }
  });
}

// One head's operand after its quantizer, as the training module computes it: `values`
// (rows x d) and, for the 1-bit modes, the levels' sign bits (rows x words) and each row's scale.
// The 1-bit modes fill `values` only when asked: the packed products read the bits alone.
struct HeadOperand {
  aligned_vector<float> values, row_scale;
  aligned_vector<uint64_t> bits;
  aligned_vector<int8_t> q;
  aligned_vector<int32_t> rowsum;
};

void quantize_head(const KernelTable& kernels, const ActQuant& quant, const float* x, int64_t stride, int64_t rows,
                   int64_t d, HeadOperand& out, bool need_values = true) {
  float* values = grow(out.values, rows * d);
  const int64_t words = words_per_row(d);
  switch (quant.mode) {
    case Quantizer::kReal:
      for (int64_t r = 0; r < rows; ++r) std::memcpy(values + r * d, x + r * stride, static_cast<size_t>(d) * sizeof(float));
      break;
    case Quantizer::kInt8: {
      // the one int8 definition (int8_lut.h), applied to each row
      const int64_t padded = lut_groups(d) * 4;
      int8_t* q = grow(out.q, rows * padded);
      float* step = grow(out.row_scale, rows);
      kernels.quantize_rows_int8(x, rows, d, stride, q, step, grow(out.rowsum, rows));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < d; ++k) values[r * d + k] = static_cast<float>(q[r * padded + k]) * step[r];
      break;
    }
    case Quantizer::kSign: {
      uint64_t* bits = grow(out.bits, rows * words);
      float* scale = grow(out.row_scale, rows);
      kernels.pack_signs(x, rows, d, stride, bits, scale);  // mean |x| per row
      if (need_values)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < d; ++k) values[r * d + k] = x[r * stride + k] >= 0.f ? scale[r] : -scale[r];
      break;
    }
    case Quantizer::kElastic:
    case Quantizer::kTwoSet: {
      const bool two_set = quant.mode == Quantizer::kTwoSet;
      uint64_t* bits = grow(out.bits, rows * words);
      kernels.pack_elastic(x, rows, d, stride, quant.cut, two_set, bits);
      if (need_values)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < d; ++k) {
            // elastic alpha * s in {-alpha, alpha}; two-set alpha * b in {0, alpha}
            const bool negative = (bits[r * words + (k >> 6)] >> (k & 63)) & 1;
            values[r * d + k] = quant.alpha * (negative ? (two_set ? 0.f : -1.f) : 1.f);
          }
      break;
    }
  }
}

// KernelTable::transpose_bits, or its portable loop where the path has none for the shape: visits
// only the set bits.
void transpose_bits(const KernelTable& kernels, const uint64_t* rows, int64_t n, int64_t words, int64_t d,
                    uint64_t* out) {
  if (kernels.transpose_bits && kernels.transpose_bits(rows, n, words, d, out)) return;
  const int64_t key_words = words_per_row(n);
  std::memset(out, 0, static_cast<size_t>(d * key_words) * sizeof(uint64_t));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t w = 0; w < words; ++w)
      for (uint64_t set = rows[j * words + w]; set != 0; set &= set - 1)
        out[(w * 64 + __builtin_ctzll(set)) * key_words + (j >> 6)] |= uint64_t{1} << (j & 63);
}

// Whether every a[i] * b[j] is finite and stays nonzero divided by `root` (float rounding is
// monotone, so the extremes bound every product and quotient; a NaN fails the tests).
bool positive_finite_products(const float* a, const float* b, int64_t n, float root) {
  float a_low = INFINITY, a_high = 0.f, b_low = INFINITY, b_high = 0.f;
  for (int64_t i = 0; i < n; ++i) {
    if (!(a[i] > 0.f && b[i] > 0.f)) return false;
    a_low = std::min(a_low, a[i]), a_high = std::max(a_high, a[i]);
    b_low = std::min(b_low, b[i]), b_high = std::max(b_high, b[i]);
  }
  return a_low * b_low / root > 0.f && std::isfinite(a_high * b_high);
}

struct HeadScratch {
  HeadOperand q, k, v, p;
  aligned_vector<float> scores, key_panels, value_panels, subset_sums;
  aligned_vector<uint64_t> prob_bits, value_columns, key_groups, key_bits;
  aligned_vector<int32_t> dots;
  aligned_vector<int32_t> column_counts;
};

// out (rows x n) = k - 2 popcount(a_i ^ b_j) for packed rows a and b of `words` words: on the
// column-octet kernel where the path has one (AVX-512's native popcount, eight columns a vector),
// else the column-quad one (four), with b rearranged into `groups` (a few hundred words per
// head); attention's rows are one or two words, where the plain kernel's scalar popcount per word
// and column had made the scores cost more than float ones.
void xnor_products(const KernelTable& kernels, const uint64_t* a, const uint64_t* b, int64_t rows, int64_t n,
                   int64_t words, int64_t k, int32_t* out, aligned_vector<uint64_t>& groups) {
  if (kernels.xnor_octets_gemm) {
    uint64_t* b8 = grow(groups, column_groups(n, 8) * words * 8);
    to_column_groups(b, n, words, 8, b8);
    return kernels.xnor_octets_gemm(a, b8, out, 0, rows, 0, n, n, words, k);
  }
  if (!kernels.xnor_gemm_quads) return kernels.xnor_gemm(a, b, out, 0, rows, 0, n, n, words, k);
  uint64_t* b4 = grow(groups, column_quads(n) * words * 4);
  to_column_quads(b, n, words, b4);
  kernels.xnor_gemm_quads(a, b4, out, 0, rows, 0, n, n, words, k);
}

// Float attention fused by blocks of query rows: K's rows and V's columns are packed once per head
// into the 16-column panels of the GEMM micro-kernel, then each block of kQueryBlock query rows
// goes through its scores, softmax and context while its scores are in L1 (12 KB at 128 keys),
// instead of a seq x seq score matrix written and read back in three passes. The same micro-kernel
// and softmax in the same order as the unfused path: bit-identical to it.
constexpr int64_t kQueryBlock = 24;

void fused_float_attention(const KernelTable& kernels, const float* q, int64_t ldq, const float* k, int64_t ldk,
                           const float* v, int64_t ldv, const int32_t* mask, int64_t seq, int64_t d, float divisor,
                           float* context, int64_t ldc, HeadScratch& s) {
  const int64_t key_panels = (seq + 15) / 16, value_panels = (d + 15) / 16;
  float* kp = grow(s.key_panels, key_panels * d * 16);
  float* vp = grow(s.value_panels, value_panels * seq * 16);
  auto columns = [](int64_t total, int64_t p) { return static_cast<int>(total - 16 * p < 16 ? total - 16 * p : 16); };
  const auto from_rows = kernels.panel_from_rows ? kernels.panel_from_rows : panel_from_rows;
  for (int64_t p = 0; p < key_panels; ++p) from_rows(k, ldk, 16 * p, columns(seq, p), d, kp + p * d * 16);
  const auto from_columns = kernels.panel_from_columns ? kernels.panel_from_columns : panel_from_columns;
  for (int64_t p = 0; p < value_panels; ++p) from_columns(v, ldv, 16 * p, columns(d, p), seq, vp + p * seq * 16);
  float* scores = grow(s.scores, kQueryBlock * seq);
  // each call takes as many consecutive panels as the path's micro-kernel reads at once
  const int64_t step = kernels.sgemm_panel_columns / 16;
  auto call_columns = [&](int64_t total, int64_t p) { return static_cast<int>(std::min(total - 16 * p, 16 * step)); };
  for (int64_t i0 = 0; i0 < seq; i0 += kQueryBlock) {
    const int64_t rows = std::min(kQueryBlock, seq - i0);
    for (int64_t p = 0; p < key_panels; p += step)
      kernels.sgemm_panel(q + i0 * ldq, ldq, kp + p * d * 16, scores + 16 * p, seq, 0, rows, d, call_columns(seq, p), nullptr);
    kernels.softmax_rows(scores, rows, seq, divisor, mask);
    for (int64_t p = 0; p < value_panels; p += step)
      kernels.sgemm_panel(scores, seq, vp + p * seq * 16, context + i0 * ldc + 16 * p, ldc, 0, rows, seq,
                          call_columns(d, p), nullptr);
  }
}

// Attention of head h of sequence b: context rows (seq x d) into `context` (stride hidden).
void attention_head(const EncoderModel& model, const Layer& layer, const KernelTable& kernels, const float* Q,
                    const float* K, const float* V, const int32_t* mask, int64_t seq, float* context,
                    HeadScratch& s) {
  const int64_t H = model.hidden, d = H / model.heads, words = words_per_row(d);
  const bool sign_qk = layer.q.mode == Quantizer::kSign && layer.k.mode == Quantizer::kSign;
  const bool elastic_qk = layer.q.mode == Quantizer::kElastic && layer.k.mode == Quantizer::kElastic;
  // {0, c} attention weights against 1-bit V: the context is counted on packed operands below
  const bool binary_probs = model.bi_attention || layer.probs.mode == Quantizer::kTwoSet;
  const bool packed_context = binary_probs && layer.v.mode == Quantizer::kElastic;
  // as the training module: scores / sqrt(d), the divisor rounded to float32
  const float root = static_cast<float>(std::sqrt(static_cast<double>(d)));
  bool padded = false;
  for (int64_t j = 0; j < seq; ++j) padded |= mask[j] == 0;
  if (!(sign_qk || elastic_qk) && !model.bi_attention && layer.probs.mode == Quantizer::kReal) {
    // float scores and weights: the fused path, on the quantizers' values (real ones in place)
    auto operand = [&](const ActQuant& quant, const float* x, HeadOperand& out) -> std::pair<const float*, int64_t> {
      if (quant.mode == Quantizer::kReal) return {x, H};
      quantize_head(kernels, quant, x, H, seq, d, out);
      return {out.values.data(), d};
    };
    const auto q = operand(layer.q, Q, s.q), k = operand(layer.k, K, s.k), v = operand(layer.v, V, s.v);
    return fused_float_attention(kernels, q.first, q.second, k.first, k.second, v.first, v.second,
                                 padded ? mask : nullptr, seq, d, root, context, H, s);
  }
  quantize_head(kernels, layer.q, Q, H, seq, d, s.q, !(sign_qk || elastic_qk));
  quantize_head(kernels, layer.k, K, H, seq, d, s.k, !(sign_qk || elastic_qk));
  quantize_head(kernels, layer.v, V, H, seq, d, s.v, !packed_context);
  float* scores = grow(s.scores, seq * seq);
  float divisor = 1.f;  // what the scores are still to be divided by
  const int64_t key_words = words_per_row(seq);
  // BiT's two-set weights, b = 1 bits (seq x key_words), when the path's fused kernel made them
  // from the dots: no score, softmax or probability quantizer below
  bool weights_packed = false;
  // Bi-Attention's weight bits straight from the sign dots: below
  bool bits_ready = false;
  if (sign_qk || elastic_qk) {
    // 1-bit Q and K: the exact integer dots of the packed signs (the kernel table's XNOR-popcount
    // GEMM: this file has no popcount instruction), times the scales
    int32_t* dots = grow(s.dots, seq * seq);
    xnor_products(kernels, s.q.bits.data(), s.k.bits.data(), seq, seq, words, d, dots, s.key_groups);
    const float alphas = layer.q.alpha * layer.k.alpha;
    if (elastic_qk && packed_context && !model.bi_attention && layer.probs.mode == Quantizer::kTwoSet &&
        kernels.two_set_attention)
      weights_packed = kernels.two_set_attention(dots, seq, seq, d, alphas, root, padded ? mask : nullptr,
                                                 layer.probs.cut, grow(s.prob_bits, seq * key_words));
    // Bi-Attention keeps 1[score >= 0] of score = dot * (q_i k_j) / root, and the row scales (mean
    // |x|) are >= 0: where no product q_i k_j is infinite, NaN or so small that a negative score
    // rounds to -0, the weight is 1[dot >= 0], so the dots' signs are the weights' bits: no
    // multiply, divide or float at all. Other scales keep the float arithmetic's answers below.
    if (sign_qk && model.bi_attention &&
        positive_finite_products(s.q.row_scale.data(), s.k.row_scale.data(), seq, root)) {
      (kernels.pack_negative ? kernels.pack_negative : pack_negative_rows)(dots, seq, seq,
                                                                           grow(s.prob_bits, seq * key_words));
      bits_ready = true;
    }
    for (int64_t i = 0; i < seq && !weights_packed && !bits_ready; ++i) {
      const int32_t* d = dots + i * seq;
      float* row = scores + i * seq;
      if (sign_qk)
        for (int64_t j = 0; j < seq; ++j) row[j] = static_cast<float>(d[j]) * (s.q.row_scale[i] * s.k.row_scale[j]) / root;
      else
        for (int64_t j = 0; j < seq; ++j) row[j] = static_cast<float>(d[j]) * alphas / root;
    }
  } else {
    kernels.sgemm_nt(s.q.values.data(), d, s.k.values.data(), d, scores, seq, 0, seq, 0, seq, d);
    divisor = root;  // divided below, with the softmax
  }
  // attention weights over the keys; padded keys get 0 before the probability quantizer, which
  // sees the whole row as the training module's does. Unpadded sequences skip the mask tests.
  if (weights_packed) {
    // the fused kernel's bits stand for the weights and their quantizer
  } else if (model.bi_attention) {
    // weights 1[score >= 0], 0 on padded keys, as bits (s.prob_bits): the complement of the
    // negative scores' bits (pack_signs: x < 0, and NaN -1 here) on the real keys
    uint64_t* bits = grow(s.prob_bits, seq * key_words);
    if (!bits_ready) {
      for (int64_t i = 0; i < seq; ++i) {
        float* row = scores + i * seq;
        // x / 1 is x: 1-bit scores skip the division, which had cost more than their XNOR products
        if (divisor == 1.f)
          for (int64_t j = 0; j < seq; ++j) row[j] = row[j] >= 0.f ? 1.f : -1.f;
        else
          for (int64_t j = 0; j < seq; ++j) row[j] = row[j] / divisor >= 0.f ? 1.f : -1.f;
      }
      kernels.pack_signs(scores, seq, seq, seq, bits, nullptr);
    }
    uint64_t* keys = grow(s.key_bits, key_words);  // the real keys
    for (int64_t w = 0; w < key_words; ++w) {
      keys[w] = 0;
      for (int64_t j = 64 * w; j < seq && j < 64 * w + 64; ++j) keys[w] |= static_cast<uint64_t>(mask[j] != 0) << (j & 63);
    }
    for (int64_t i = 0; i < seq; ++i)
      for (int64_t w = 0; w < key_words; ++w) bits[i * key_words + w] = ~bits[i * key_words + w] & keys[w];
  } else {
    kernels.softmax_rows(scores, seq, seq, divisor, padded ? mask : nullptr);
  }
  const ActQuant& probs = layer.probs;
  float prob_scale = 1.f;
  if (!model.bi_attention && probs.mode == Quantizer::kTwoSet) prob_scale = probs.alpha;
  if (!weights_packed && !model.bi_attention && probs.mode != Quantizer::kReal) {
    // the packed context below reads the quantizer's bits; the float one reads its values
    quantize_head(kernels, probs, scores, seq, seq, seq, s.p, !packed_context);
    if (!packed_context) std::memcpy(scores, s.p.values.data(), static_cast<size_t>(seq * seq) * sizeof(float));
  }
  if (packed_context) {
    // {0, c} weights against 1-bit V (+-alpha_v): sum_j b_ij s_jd counted on packed operands,
    // popcount(b_i) - 2 popcount(b_i & neg_d), with neg_d the keys whose V sign is -1 in column d
    uint64_t* bits = grow(s.prob_bits, seq * key_words);
    uint64_t* columns = grow(s.value_columns, d * key_words);  // V's sign bits, one row per column
    if (weights_packed || model.bi_attention) {
      // made by the fused kernel or the Bi-Attention step above
    } else if (probs.mode == Quantizer::kTwoSet) {
      // the probability quantizer's own bits mark b = 0: b = 1 is their complement on the seq keys
      const uint64_t last = seq % 64 ? (uint64_t{1} << (seq % 64)) - 1 : ~uint64_t{0};
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t w = 0; w < key_words; ++w)
          bits[i * key_words + w] = ~s.p.bits[i * key_words + w] & (w + 1 == key_words ? last : ~uint64_t{0});
    }
    transpose_bits(kernels, s.v.bits.data(), seq, words, d, columns);
    // popcount(b) - 2 popcount(b & n) = popcount(b ^ n) - popcount(n), and the XNOR GEMM over the
    // seq key bits gives seq - 2 popcount(b ^ n): one kernel call for the whole head, then int32
    // arithmetic the compiler vectorizes
    const float scale = prob_scale * layer.v.alpha;
    int32_t* xnor = grow(s.dots, seq * d);
    xnor_products(kernels, bits, columns, seq, d, key_words, seq, xnor, s.key_groups);
    aligned_vector<int32_t>& negatives_in_column = s.column_counts;
    negatives_in_column.assign(static_cast<size_t>(d), 0);
    for (int64_t c = 0; c < d; ++c)
      for (int64_t w = 0; w < key_words; ++w)
        negatives_in_column[c] += static_cast<int32_t>(popcount64(columns[c * key_words + w]));
    const int32_t keys = static_cast<int32_t>(seq), *negatives = negatives_in_column.data();
    for (int64_t i = 0; i < seq; ++i) {
      const int32_t* x = xnor + i * d;
      float* out = context + i * H;
      for (int64_t c = 0; c < d; ++c) out[c] = static_cast<float>(((keys - x[c]) >> 1) - negatives[c]) * scale;
    }
    return;
  }
  if (model.bi_attention) {
    // 0/1 weights against V's values: each context row the sum of the value rows its bits select
    float* table = grow(s.subset_sums, bit_row_sums_scratch(seq, d));
    (kernels.bit_row_sums ? kernels.bit_row_sums : bit_row_sums_portable)(
        s.prob_bits.data(), seq, key_words, s.v.values.data(), d, seq, d, context, H, table);
    return;
  }
  kernels.sgemm_nn(scores, seq, s.v.values.data(), d, context, H, 0, seq, d, seq);
}

bool prepare_linear(LinearWeights& w, int64_t in, int64_t out, const char* name, int64_t layer, const KernelTable& kernels,
                    const char** error, std::vector<char>* where) {
  const char* problem = nullptr;
  if (w.in != in || w.out != out) problem = "has the wrong shape or was never set";
  else if (!w.prepare(&problem, kernels)) {}
  if (problem == nullptr) return true;
  const std::string text = (layer >= 0 ? "layer " + std::to_string(layer) + " " : std::string()) + name + ": " + problem;
  where->assign(text.begin(), text.end());
  where->push_back('\0');
  *error = where->data();
  return false;
}

// Times a phase into the workspace's profile when it is enabled.
class Phase {
 public:
  Phase(Profile& profile, const char* name) : profile_(profile), name_(name) {
    if (profile_.enabled) start_ = std::chrono::steady_clock::now();
  }
  ~Phase() {
    if (profile_.enabled)
      profile_.add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

 private:
  Profile& profile_;
  const char* name_;
  std::chrono::steady_clock::time_point start_;
};

const char* linear_phase(const LinearWeights& w) {
  static const char* names[kSchemeCount] = {"linear w1a32", "linear w1a1", "linear w1a8", "linear w1a1_elastic",
                                            "linear w1a1_two_set", "linear w158a32", "linear w158a8", "linear dense fp32"};
  return names[static_cast<int>(w.scheme)];
}

void timed_linear(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m, float* y, int threads,
                  Workspace& ws, bool inputs_prepared = false) {
  Phase phase(ws.profile, linear_phase(w));
  run_linear(kernels, w, x, m, y, threads, ws.linear, inputs_prepared);
}

}  // namespace

void Profile::add(const char* phase, double value) {
  for (auto& entry : seconds)
    if (std::strcmp(entry.first, phase) == 0) return void(entry.second += value);
  seconds.emplace_back(phase, value);
}

bool gelu_two_set_cut(const KernelTable& kernels, float alpha, float beta, float* cut) {
  *cut = NAN;
  if (!(alpha > 0.f) || !std::isfinite(alpha) || !std::isfinite(beta)) return false;
  const float value_cut = elastic_cut(alpha, beta, true);  // the GELU values the binarizer marks lie below it
  auto gelu = [&](float h) {
    kernels.gelu(&h, 1);  // a lone value goes through the path's vector polynomial (kernels.h)
    return h;
  };
  // GELU(h) <= 0 for h <= 0; the path's is 0.5 h (1 + erf(h / sqrt 2)) with erf clamped at -4,
  // so far left (h < -5.7) it is 0.5 h times one constant, <= 0 when GELU(-8) is, and nearer it
  // errs by about 1e-6 at most: every h <= 0 is marked when the cut on values is above the margin
  constexpr float kMargin = 1e-3f;
  if (!(value_cut > kMargin) || !(gelu(-8.f) <= 0.f)) return false;
  if (gelu(FLT_MAX) < value_cut) return false;  // every value marked: no cut on the rising branch
  *cut = lowest_above([&](float h) { return gelu(h) < value_cut; }, 0.f, FLT_MAX);
  return true;
}

bool EncoderModel::prepare(const KernelTable& kernels, const char** error, std::vector<char>* where) {
  auto fail = [&](const std::string& text) {
    where->assign(text.begin(), text.end());
    where->push_back('\0');
    *error = where->data();
    return false;
  };
  if (hidden <= 0 || heads <= 0 || hidden % heads || intermediate <= 0 || vocab <= 0)
    return fail("config: hidden, heads, intermediate and vocab must be positive, hidden a multiple of heads");
  if (word.data == nullptr || word.rows != vocab || word.dim != hidden) return fail("word embeddings are missing or misshaped");
  if (position.data == nullptr || position.dim != hidden) return fail("position embeddings are missing or misshaped");
  if (token_type == nullptr) return fail("token type embeddings are missing");
  if (!embedding_norm.weight || !embedding_norm.bias) return fail("embeddings LayerNorm is missing");
  for (int64_t l = 0; l < static_cast<int64_t>(layers.size()); ++l) {
    Layer& layer = layers[l];
    const int64_t H = hidden, I = intermediate;
    if (!prepare_linear(layer.query, H, H, "query", l, kernels, error, where) ||
        !prepare_linear(layer.key, H, H, "key", l, kernels, error, where) ||
        !prepare_linear(layer.value, H, H, "value", l, kernels, error, where) ||
        !prepare_linear(layer.attention_output, H, H, "attention output", l, kernels, error, where) ||
        !prepare_linear(layer.ffn_in, H, I, "ffn in", l, kernels, error, where) ||
        !prepare_linear(layer.ffn_out, I, H, "ffn out", l, kernels, error, where))
      return false;
    if (!layer.attention_norm.weight || !layer.output_norm.weight)
      return fail("layer " + std::to_string(l) + ": a LayerNorm is missing");
    for (ActQuant* quant : {&layer.q, &layer.k, &layer.v, &layer.probs}) {
      if (quant->mode != Quantizer::kElastic && quant->mode != Quantizer::kTwoSet) continue;
      if (!(quant->alpha > 0.f) || !std::isfinite(quant->alpha) || !std::isfinite(quant->beta))
        return fail("layer " + std::to_string(l) + ": an elastic or two-set quantizer needs a positive finite alpha and a finite beta");
      quant->cut = elastic_cut(quant->alpha, quant->beta, quant->mode == Quantizer::kTwoSet);
    }
    layer.ffn_out_gelu_cut = NAN;
    if (activation == Activation::kGelu && layer.ffn_out.scheme == Scheme::kW1A1TwoSet)
      gelu_two_set_cut(kernels, layer.ffn_out.input_alpha, layer.ffn_out.input_beta, &layer.ffn_out_gelu_cut);
  }
  if (has_head) {
    if (!prepare_linear(head_dense, hidden, hidden, "head dense", -1, kernels, error, where)) return false;
    if (!head_norm.weight || !head_norm.bias || !decoder_bias) return fail("head: LayerNorm or decoder bias is missing");
  }
  return true;
}

namespace {

// Where each sequence's rows start when the padding is left out: starts[b] = the real tokens of
// sequences before b, starts[batch] = all of them. Empty unless every mask row is a run of real
// tokens from the start followed only by padding (the layout tokenizers pad to), since a sequence's
// rows must stay contiguous and in order for its attention.
std::vector<int64_t> unpadded_starts(const int32_t* mask, int64_t batch, int64_t seq) {
  std::vector<int64_t> starts(static_cast<size_t>(batch + 1), 0);
  for (int64_t b = 0; b < batch; ++b) {
    const int32_t* row = mask + b * seq;
    int64_t length = 0;
    while (length < seq && row[length] != 0) ++length;
    for (int64_t j = length; j < seq; ++j)
      if (row[j] != 0) return {};
    starts[b + 1] = starts[b] + length;
  }
  return starts;
}

// Which rows the layers compute: every batch x seq position, or with the padding left out only
// the real tokens, sequence after sequence (scattered back to their places, the padded rows zero,
// at the end).
struct SequenceRows {
  int64_t seq = 0;
  std::vector<int64_t> starts;  // unpadded_starts; empty when every position is computed
  std::vector<int64_t> source;  // the (batch x seq) position of each computed row, when unpadded
  bool unpadded() const { return !starts.empty(); }
  int64_t first_row(int64_t b) const { return unpadded() ? starts[b] : b * seq; }
  int64_t length(int64_t b) const { return unpadded() ? starts[b + 1] - starts[b] : seq; }
  int64_t position(int64_t row) const { return unpadded() ? source[row] : row; }
};

// The embeddings and every layer for sequences [b0, b1) of the batch: rows [first_row(b0),
// first_row(b1)) of hidden, with the workspace sized for those rows alone.
void encode_sequences(const EncoderModel& model, const KernelTable& kernels, const int64_t* ids,
                      const int32_t* mask, const int64_t* type_ids, const SequenceRows& rows_of, int64_t b0,
                      int64_t b1, float* all_hidden, int threads, Workspace& ws) {
  const int64_t H = model.hidden, I = model.intermediate, seq = rows_of.seq;
  const int64_t r0_all = rows_of.first_row(b0), rows = rows_of.first_row(b1) - r0_all;
  float* hidden = all_hidden + r0_all * H;
  {
  Phase phase(ws.profile, "embeddings + LayerNorm");
  run_rows(rows, 16, rows * H * kNormWork, threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> position(static_cast<size_t>(H));
    for (int64_t r = r0; r < r1; ++r) {
      float* out = hidden + r * H;
      const int64_t at = rows_of.position(r0_all + r);
      table_row(model.word, ids[at], out);
      const float* type_row = model.token_type + (type_ids ? type_ids[at] : 0) * H;
      table_row(model.position, at % seq, position.data());
      // as BertEmbeddings: (word + token type) + position
      for (int64_t k = 0; k < H; ++k) out[k] = (out[k] + type_row[k]) + position[k];
    }
    kernels.layer_norm_rows(hidden + r0 * H, r1 - r0, H, model.embedding_norm.weight, model.embedding_norm.bias, model.eps);
  });
  }
  float* q = grow(ws.q, rows * H);
  float* k = grow(ws.k, rows * H);
  float* v = grow(ws.v, rows * H);
  float* context = grow(ws.context, rows * H);
  float* attended = grow(ws.hidden2, rows * H);
  float* inner = grow(ws.inner, rows * I);
  const int64_t heads = model.heads, d = H / heads, sequences = b1 - b0;
  for (const Layer& layer : model.layers) {
    // Where the linears have 1-bit inputs and whole-row tiles, each block of 16 rows goes through
    // its input packing, its products and the residual + LayerNorm after them in one task
    // (run_by_rows): per layer five jobs on the pool instead of ten, and no packing on one thread.
    // On 2 threads that took the trained BiT stage 2 MiniLM (batch 1 x 128, Zen 4) from 1.95 to
    // 1.85 ms, its 1-thread time unchanged (benchmarks/results/thread_scaling_zen4_w1a1_8764722):
    // the barriers, the threads' uneven last tasks and the packing on one thread.
    if (runs_by_rows(layer.query, rows) && runs_by_rows(layer.key, rows) && runs_by_rows(layer.value, rows)) {
      Phase phase(ws.profile, "Q, K, V linears (by rows)");
      const LinearWeights* qkv[] = {&layer.query, &layer.key, &layer.value};
      float* outputs[] = {q, k, v};
      run_by_rows(kernels, qkv, outputs, 3, hidden, rows, threads);
    } else {
      timed_linear(kernels, layer.query, hidden, rows, q, threads, ws);
      timed_linear(kernels, layer.key, hidden, rows, k, threads, ws, shares_prepared_inputs(layer.query, layer.key));
      timed_linear(kernels, layer.value, hidden, rows, v, threads, ws,
                   shares_prepared_inputs(layer.query, layer.key) && shares_prepared_inputs(layer.key, layer.value));
    }
    {
      Phase phase(ws.profile, "attention (scores, softmax, context)");
      // work: two seq x seq x d products per head
      parallel_for(sequences * heads, 2 * rows * seq * d < kSerialWork ? 1 : threads, [&](int64_t task) {
        thread_local HeadScratch scratch;
        const int64_t b = b0 + task / heads, h = task % heads, length = rows_of.length(b);
        if (length == 0) return;  // a sequence of padding only, left out
        const int64_t offset = (rows_of.first_row(b) - r0_all) * H + h * d;
        attention_head(model, layer, kernels, q + offset, k + offset, v + offset, mask + b * seq, length,
                       context + offset, scratch);
      });
    }
    if (runs_by_rows(layer.attention_output, rows)) {
      Phase phase(ws.profile, "attention output linear + residual + LayerNorm (by rows)");
      const LinearWeights* output[] = {&layer.attention_output};
      run_by_rows(kernels, output, &attended, 1, context, rows, threads, {}, [&](int64_t r0, int64_t r1) {
        add_norm_rows(kernels, attended, hidden, r0, r1, H, layer.attention_norm, model.eps);
      });
    } else {
      timed_linear(kernels, layer.attention_output, context, rows, attended, threads, ws);
      Phase phase(ws.profile, "residual + LayerNorm");
      add_norm(kernels, attended, hidden, rows, H, layer.attention_norm, model.eps, threads);
    }
    if (runs_by_rows(layer.ffn_in, rows)) {
      Phase phase(ws.profile, "FFN-up linear (by rows)");
      const LinearWeights* up[] = {&layer.ffn_in};
      run_by_rows(kernels, up, &inner, 1, attended, rows, threads);
    } else {
      timed_linear(kernels, layer.ffn_in, attended, rows, inner, threads, ws);
    }
    // A 1-bit FFN-down reads GELU(h) only through its binarizer (signs and mean |GELU(h)|, or BiT's
    // levels): GELU runs inside its input packing, row by row, and is never stored. Other
    // activations (no kernel-table entry) and other schemes activate in place first.
    // A two-set FFN-down whose binarizer of GELU(h) is a cut on h (gelu_two_set_cut) compares h
    // with it and computes no GELU at all.
    const bool fused = model.activation == Activation::kGelu && layer.ffn_out.binary_inputs();
    const bool cut = fused && !std::isnan(layer.ffn_out_gelu_cut);
    BinaryInputs down_inputs;
    if (cut) down_inputs.below = layer.ffn_out_gelu_cut;
    else if (fused) down_inputs.activation = kernels.gelu, down_inputs.activation_work = kGeluWork;
    if (runs_by_rows(layer.ffn_out, rows)) {
      if (!fused) {
        Phase phase(ws.profile, "GELU");
        activate(kernels, inner, rows * I, model.activation, threads);
      }
      Phase phase(ws.profile, cut ? "FFN-down (GELU's cut, linear) + residual + LayerNorm (by rows)"
                              : fused ? "FFN-down (GELU, linear) + residual + LayerNorm (by rows)"
                                      : "FFN-down linear + residual + LayerNorm (by rows)");
      const LinearWeights* down[] = {&layer.ffn_out};
      run_by_rows(kernels, down, &hidden, 1, inner, rows, threads, down_inputs, [&](int64_t r0, int64_t r1) {
        add_norm_rows(kernels, hidden, attended, r0, r1, H, layer.output_norm, model.eps);
      });
      continue;
    }
    // an int8-input FFN-down activates each row of h just before quantizing it (in cache)
    const bool quantized = model.activation == Activation::kGelu && layer.ffn_out.int8_inputs();
    {
      Phase phase(ws.profile, cut          ? "FFN-down input packing (GELU's cut)"
                              : fused      ? "GELU + FFN-down input packing"
                              : quantized  ? "GELU + FFN-down input quantization"
                                           : "GELU");
      if (cut)
        prepare_binary_inputs_below(kernels, layer.ffn_out, inner, rows, threads, ws.linear, layer.ffn_out_gelu_cut);
      else if (fused)
        prepare_binary_inputs_activated(kernels, layer.ffn_out, inner, rows, threads, ws.linear, kernels.gelu, kGeluWork);
      else if (quantized)
        prepare_w1a8_inputs_activated(kernels, inner, rows, I, threads, ws.linear, kernels.gelu, kGeluWork,
                                      fused_ternary(kernels, layer.ffn_out));
      else
        activate(kernels, inner, rows * I, model.activation, threads);
    }
    timed_linear(kernels, layer.ffn_out, inner, rows, hidden, threads, ws, fused || quantized);
    {
      Phase phase(ws.profile, "residual + LayerNorm");
      add_norm(kernels, hidden, attended, rows, H, layer.output_norm, model.eps, threads);
    }
  }
}

}  // namespace

void encoder_forward(const EncoderModel& model, const KernelTable& kernels, const int64_t* ids,
                     const int32_t* mask, const int64_t* type_ids, int64_t batch, int64_t seq, float* hidden,
                     int threads, Workspace& ws, bool skip_padding, int64_t rows_per_pass) {
  SequenceRows rows_of;
  rows_of.seq = seq;
  if (skip_padding) rows_of.starts = unpadded_starts(mask, batch, seq);
  if (rows_of.unpadded() && rows_of.starts[batch] == batch * seq) rows_of.starts.clear();  // no padding to leave out
  if (rows_of.unpadded()) {
    rows_of.source.reserve(static_cast<size_t>(rows_of.starts[batch]));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t p = 0; p < rows_of.length(b); ++p) rows_of.source.push_back(b * seq + p);
  }
  // Whole sequences in passes of at most kRowsPerPass rows (a longer sequence alone), each pass
  // through every layer before the next (kRowsPerPass says why).
  std::vector<std::pair<int64_t, int64_t>> passes;
  const int64_t budget = rows_per_pass > 0 ? rows_per_pass : kRowsPerPass;
  for (int64_t b0 = 0, b1 = 0; b0 < batch; b0 = b1) {
    int64_t rows = rows_of.length(b0);
    for (b1 = b0 + 1; b1 < batch && rows + rows_of.length(b1) <= budget; ++b1) rows += rows_of.length(b1);
    passes.emplace_back(b0, b1);
  }
  const int64_t count = static_cast<int64_t>(passes.size());
  // With several threads and passes enough to keep them all busy to the end (a multiple of the
  // thread count, or at least 4 a thread, so that the last round leaves a thread idle for at most
  // a fifth of the time),
  // the passes run side by side: each thread takes whole passes, one after another, with a
  // workspace of its own. No layer then waits at a barrier for the other threads, and a pass stays
  // in one core's cache (with the threads sharing each pass's layers, 2 threads had gained less
  // from the passes than 1: benchmarks/results/rows_per_pass_zen4.json, before this). Otherwise
  // the threads share each layer of a pass.
  const bool side_by_side = threads > 1 && (count % threads == 0 || count >= 4 * threads);
  if (side_by_side) {
    if (static_cast<int64_t>(ws.side.size()) < threads) ws.side.resize(static_cast<size_t>(threads));
    std::atomic<int64_t> next{0};
    parallel_for(threads, threads, [&](int64_t t) {
      Workspace& own = ws.side[static_cast<size_t>(t)];
      own.profile.enabled = ws.profile.enabled;
      for (int64_t p = next++; p < count; p = next++)
        encode_sequences(model, kernels, ids, mask, type_ids, rows_of, passes[p].first, passes[p].second, hidden, 1, own);
    });
    for (Workspace& own : ws.side) {
      for (const auto& entry : own.profile.seconds) ws.profile.add(entry.first, entry.second);
      own.profile.seconds.clear();
    }
  } else {
    for (const auto& pass : passes)
      encode_sequences(model, kernels, ids, mask, type_ids, rows_of, pass.first, pass.second, hidden, threads, ws);
  }
  if (rows_of.unpadded()) {
    // each computed row to its place, last first (a row's place is never before it, and never on
    // a row still to move); the padded places zero
    const int64_t H = model.hidden;
    for (int64_t b = batch - 1; b >= 0; --b) {
      const int64_t length = rows_of.length(b);
      for (int64_t p = length - 1; p >= 0; --p)
        std::memmove(hidden + (b * seq + p) * H, hidden + (rows_of.starts[b] + p) * H, sizeof(float) * H);
      std::memset(hidden + (b * seq + length) * H, 0, sizeof(float) * H * (seq - length));
    }
  }
}

void mlm_logits(const EncoderModel& model, const KernelTable& kernels, const float* hidden, int64_t rows,
                float* logits, int threads, Workspace& ws) {
  const int64_t H = model.hidden, vocab = model.vocab;
  float* transformed = grow(ws.projected, rows * H);
  Phase phase(ws.profile, "MLM head");
  run_linear(kernels, model.head_dense, hidden, rows, transformed, threads, ws.linear);
  activate(kernels, transformed, rows * H, model.activation, threads);
  run_rows(rows, 16, rows * H * kNormWork, threads, [&](int64_t r0, int64_t r1) {
    kernels.layer_norm_rows(transformed + r0 * H, r1 - r0, H, model.head_norm.weight, model.head_norm.bias, model.eps);
  });
  // the decoder tied to the word table: blocks of table rows decoded to floats once, then a
  // float GEMM against every hidden row
  run_rows(vocab, 64, rows * vocab * H, threads, [&](int64_t j0, int64_t j1) {
    thread_local aligned_vector<float> block;
    const float* table = nullptr;
    if (model.word.format == TableFormat::kF32) {
      table = static_cast<const float*>(model.word.data) + j0 * H;
    } else {
      float* decoded = grow(block, (j1 - j0) * H);
      for (int64_t j = j0; j < j1; ++j) table_row(model.word, j, decoded + (j - j0) * H);
      table = decoded;
    }
    kernels.sgemm_nt(transformed, H, table, H, logits + j0, vocab, 0, rows, 0, j1 - j0, H);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = j0; j < j1; ++j) logits[i * vocab + j] += model.decoder_bias[j];
  });
}

}  // namespace bitmaps
