#include "linear.h"

#include <algorithm>
#include <cmath>

#include "buffers.h"
#include "int8_lut.h"
#include "scale_dots.h"
#include "tiles.h"
#include "xnor_lut.h"

namespace bitmaps {
namespace {

// Whether the path runs W1A1 products by table lookup on w's inputs (xnor_lut.h: table-lookup
// kernels, a nibble layout, k < 32768): the inputs' tables are then built with their bits.
bool reads_xnor_tables(const KernelTable& kernels, const LinearWeights& w) {
  return kernels.xnor_lut_linear && w.nibble_layout() != nullptr && w.in < 32768;
}

// Packs 1-bit inputs (pack(r0, r1) writes rows [r0, r1) into s.bits) and, where the path runs W1A1
// by table lookup, builds their tables in the same task, while the block's bits are in L1: one pass
// over the pool, not two. Returns the tables or null. `prepared`: the previous call on this scratch
// left both. `extra_work`: per element, for a pack that does more than pack (an activation).
template <typename Pack>
const uint8_t* prepare_binary_inputs(const KernelTable& kernels, const LinearWeights& w, int64_t m, int threads,
                                     LinearScratch& s, bool prepared, Pack pack, int64_t extra_work = 0) {
  const int64_t k = w.in;
  const bool tables = reads_xnor_tables(kernels, w);
  if (prepared) return tables ? s.xnor_luts.data() : nullptr;
  const int64_t words = words_per_row(k);
  uint8_t* luts = tables ? grow(s.xnor_luts, xnor_lut_bytes(m, k)) : nullptr;
  run_rows(m, 16, m * k * ((tables ? 5 : 1) + extra_work), threads, [&](int64_t r0, int64_t r1) {
    pack(r0, r1);
    if (luts) kernels.build_xnor_luts(s.bits.data() + r0 * words, r1 - r0, words, luts + xnor_lut_bytes(r0, k));
  });
  return luts;
}

// The binarizer of a 1-bit-input layer on `rows` rows of x (stride w.in): XNOR-Net's signs and
// mean |x| (into row_scale), or BiT's elastic / two-set levels. The one place that picks the
// packing kernel by scheme.
void pack_binary_rows(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t rows, uint64_t* bits,
                      float* row_scale) {
  const int64_t k = w.in;
  if (w.scheme == Scheme::kW1A1)
    kernels.pack_signs(x, rows, k, k, bits, row_scale);
  else
    kernels.pack_elastic(x, rows, k, k, w.input_cut, w.scheme == Scheme::kW1A1TwoSet, bits);
}

// Rows [r0, r1) of a 1-bit-input layer's inputs, made as `inputs` says (BinaryInputs), into bits
// and row_scale at those rows: the one place for the three ways, read by the preparations below
// and by run_by_rows.
void pack_input_rows(const KernelTable& kernels, const LinearWeights& w, const BinaryInputs& inputs, const float* x,
                     int64_t r0, int64_t r1, uint64_t* bits, float* row_scale) {
  const int64_t k = w.in, words = words_per_row(k);
  if (!std::isnan(inputs.below))
    return kernels.pack_elastic(x + r0 * k, r1 - r0, k, k, inputs.below, true, bits + r0 * words);
  if (!inputs.activation) return pack_binary_rows(kernels, w, x + r0 * k, r1 - r0, bits + r0 * words, row_scale + r0);
  // XNOR's signs of the path's own GELU: its fused kernel where it has one (GELU in registers, no
  // copy of the row), else a copy of each row activated and packed below
  if (inputs.activation == kernels.gelu && kernels.pack_gelu_signs && w.scheme == Scheme::kW1A1)
    return kernels.pack_gelu_signs(x + r0 * k, r1 - r0, k, k, bits + r0 * words, row_scale + r0);
  thread_local aligned_vector<float> row;
  float* activated = grow(row, k);
  for (int64_t r = r0; r < r1; ++r) {
    std::copy(x + r * k, x + (r + 1) * k, activated);
    inputs.activation(activated, k);
    pack_binary_rows(kernels, w, activated, 1, bits + r * words, row_scale + r);
  }
}

// Rows [m0, m1) x columns [n0, n1) of a 1-bit-input layer's output y (m x out), from the block's
// packed inputs: `bits`, `row_scale` and (where the path reads them) `luts` start at row m0. The
// one place that picks the product kernel by scheme and layout.
void binary_input_tile(const KernelTable& kernels, const LinearWeights& w, const uint64_t* bits, const float* row_scale,
                       const uint8_t* luts, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t k = w.in, n = w.out, words = words_per_row(k), rows = m1 - m0;
  float* out = y + m0 * n;
  if (w.scheme == Scheme::kW1A1) {
    if (luts)
      return kernels.xnor_lut_linear(luts, w.nibble_layout(), row_scale, w.scale, w.bias, out, 0, rows, n0, n1, n, words, k);
    if (w.octet_layout() && kernels.xnor_octets_linear)
      return kernels.xnor_octets_linear(bits, w.octet_layout(), row_scale, w.scale, w.bias, out, 0, rows, n0, n1, n, words, k);
    return kernels.xnor_linear(bits, w.words, row_scale, w.scale, w.bias, out, 0, rows, n0, n1, n, words, k);
  }
  // two-set: sum_k b_k w_k = (sum_k s_k w_k + sum_k w_k) / 2, exact in integers
  const bool two_set = w.scheme == Scheme::kW1A1TwoSet;
  const int32_t* sums = two_set ? w.weight_sums.data() : nullptr;
  const float factor = two_set ? 0.5f : 1.f;
  if (luts && kernels.xnor_lut_scaled)
    return kernels.xnor_lut_scaled(luts, w.nibble_layout(), sums, factor, w.epilogue_scale.data(), w.bias, out, 0, rows,
                                   n0, n1, n, words, k);
  // a tile's dots go through a buffer of its rows only, which stays in cache until the epilogue
  // reads it: an m x n buffer (786 KB for 128 x 1536) had sent every dot out of L2 and back, and
  // made the epilogue cost half as much as the products (Zen 4, 128 x 384 x 1536 linear)
  thread_local aligned_vector<int32_t> tile;
  int32_t* dots = grow(tile, rows * n);
  if (luts)
    kernels.xnor_lut_gemm(luts, w.nibbles.data(), dots, 0, rows, n0, n1, n, words, k);
  else if (w.octet_layout() && kernels.xnor_octets_gemm)
    kernels.xnor_octets_gemm(bits, w.octet_layout(), dots, 0, rows, n0, n1, n, words, k);
  else
    kernels.xnor_gemm(bits, w.words, dots, 0, rows, n0, n1, n, words, k);
  (kernels.scale_dots ? kernels.scale_dots : scale_dots_rows)(dots, sums, factor, w.epilogue_scale.data(), w.bias,
                                                              out, 0, rows, n0, n1, n);
}

// A 1-bit-input layer's inputs made as `inputs` says over the pool, into s (bits, row_scale and
// the tables where the path reads them), unless `prepared`; returns the tables or null.
const uint8_t* prepare_inputs(const KernelTable& kernels, const LinearWeights& w, const BinaryInputs& inputs,
                              const float* x, int64_t m, int threads, LinearScratch& s, bool prepared) {
  uint64_t* bits = grow(s.bits, m * words_per_row(w.in));
  float* row_scale = grow(s.row_scale, m);
  return prepare_binary_inputs(kernels, w, m, threads, s, prepared, [&](int64_t r0, int64_t r1) {
    pack_input_rows(kernels, w, inputs, x, r0, r1, bits, row_scale);
  }, inputs.activation_work);
}

// A 1-bit-input layer (run_linear's cases for them): the inputs packed over the pool (or left
// by the previous call), then the product in tiles.
void linear_binary_inputs(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m, float* y,
                          int threads, LinearScratch& s, bool inputs_prepared) {
  const int64_t k = w.in, n = w.out, words = words_per_row(k);
  const uint8_t* luts = prepare_inputs(kernels, w, BinaryInputs{}, x, m, threads, s, inputs_prepared);
  const uint64_t* bits = s.bits.data();
  const float* row_scale = s.row_scale.data();
  // work in float-add units: one 64-bit XOR-popcount word takes about as long as 16 adds
  run_tiles(m, n, m * n * words * 16, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    binary_input_tile(kernels, w, bits + m0 * words, row_scale + m0, luts ? luts + xnor_lut_bytes(m0, k) : nullptr, y, m0,
                      m1, n0, n1);
  }, column_block(m, n));
}

}  // namespace

void linear_w1a32_unpacked(const KernelTable& kernels, const float* x, int64_t m, int64_t k, const uint16_t* panel_bits,
                           const float* alpha, const float* bias, int64_t n, float* y, int threads);

bool LinearWeights::prepare(const char** error, const KernelTable& kernels) {
  if (in <= 0 || out <= 0) return *error = "a linear needs positive in and out features", false;
  if (scheme == Scheme::kDense) {
    if (dense == nullptr) return *error = "a dense linear needs its weight", false;
    return true;
  }
  if (words == nullptr || scale == nullptr) return *error = "a packed linear needs its words and scale", false;
  const int64_t nwords = words_per_row(in);
  epilogue_scale.assign(static_cast<size_t>(out), 0.f);
  switch (scheme) {
    case Scheme::kW158A32:
    case Scheme::kW158A8:
      for (int64_t j = 0; j < out; ++j) epilogue_scale[j] = scale[j] * 0.5f;  // each plane: gamma / 2
      break;
    case Scheme::kW1A1Elastic:
    case Scheme::kW1A1TwoSet:
      if (!(input_alpha > 0.f) || !std::isfinite(input_alpha) || !std::isfinite(input_beta))
        return *error = "input_alpha must be positive and finite, input_beta finite", false;
      input_cut = elastic_cut(input_alpha, input_beta, scheme == Scheme::kW1A1TwoSet);
      for (int64_t j = 0; j < out; ++j) epilogue_scale[j] = scale[j] * input_alpha;
      weight_sums.assign(static_cast<size_t>(out), 0);
      for (int64_t j = 0; j < out; ++j) {
        int64_t set = 0;
        for (int64_t v = 0; v < nwords; ++v) set += __builtin_popcountll(words[j * nwords + v]);
        weight_sums[j] = static_cast<int32_t>(in - 2 * set);
      }
      break;
    default:
      break;
  }
  if (scheme == Scheme::kW1A32 || scheme == Scheme::kW158A32) {
    const int64_t plane = ((out + 15) / 16) * in;
    panel_bits.assign(static_cast<size_t>(plane * planes()), 0);
    for (int p = 0; p < planes(); ++p) build_panel_bits(words + p * out * nwords, out, in, panel_bits.data() + p * plane);
  }
  if (binary_inputs() && reads_nibble_layout(kernels)) {
    nibbles.assign(static_cast<size_t>(xnor_nibble_bytes(out, in)), 0);
    xnor_nibble_layout(words, out, nwords, nibbles.data());
  } else {
    aligned_vector<uint8_t>().swap(nibbles);  // a model prepared again for another path frees it
  }
  if (binary_inputs() && reads_octet_layout(kernels)) {
    octets.assign(static_cast<size_t>(column_groups(out, 8) * nwords * 8), 0);
    to_column_groups(words, out, nwords, 8, octets.data());
  } else {
    aligned_vector<uint64_t>().swap(octets);
  }
  if (uses_lut()) {
    const int64_t plane_bytes = lut_column_blocks(out) * lut_groups(in) * 16;
    lut.assign(static_cast<size_t>(plane_bytes * planes()), 0);
    for (int p = 0; p < planes(); ++p)
      lut_weight_layout(words + p * out * nwords, out, nwords, lut.data() + p * plane_bytes);
  }
  return true;
}

void linear_w1a32(const KernelTable& kernels, const float* x, int64_t m, int64_t k, const uint64_t* w,
                  const float* alpha, const float* bias, int64_t n, float* y, int threads, const uint16_t* panel_bits) {
  if (panel_bits && m >= kUnpackRows)
    return linear_w1a32_unpacked(kernels, x, m, k, panel_bits, alpha, bias, n, y, threads);
  const int64_t words = words_per_row(k);
  run_tiles(m, n, m * n * k, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.binary_weight_linear(x, k, w, alpha, bias, y, m0, m1, n0, n1, n, words, k);
  });
}

void prepare_binary_inputs_below(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m,
                                 int threads, LinearScratch& s, float cut) {
  BinaryInputs inputs;
  inputs.below = cut;
  prepare_inputs(kernels, w, inputs, x, m, threads, s, false);
}

bool prepare_binary_inputs_activated(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m,
                                     int threads, LinearScratch& s, void (*activation)(float*, int64_t),
                                     int64_t activation_work) {
  if (!w.binary_inputs()) return false;
  BinaryInputs inputs;
  inputs.activation = activation, inputs.activation_work = activation_work;
  prepare_inputs(kernels, w, inputs, x, m, threads, s, false);
  return true;
}

bool runs_by_rows(const LinearWeights& w, int64_t m) { return w.binary_inputs() && column_block(m, w.out) == w.out; }

void run_by_rows(const KernelTable& kernels, const LinearWeights* const* layers, float* const* ys, int count,
                 const float* x, int64_t m, int threads, const BinaryInputs& inputs,
                 const std::function<void(int64_t, int64_t)>& after) {
  int64_t work = 0;
  for (int i = 0; i < count; ++i) {
    const LinearWeights& w = *layers[i];
    work += m * w.out * words_per_row(w.in) * 16 + m * w.in * ((reads_xnor_tables(kernels, w) ? 5 : 1) + inputs.activation_work);
  }
  // one task per block of 16 rows and layer, each packing its own inputs (BiT's Q, K and V each
  // have their own binarizer; where they share one, packing 16 rows again costs a few percent of
  // their product). A fixed split by rows (parallel_for_fixed): a thread takes the same blocks in
  // every such job, so the rows one job writes are read by the next on the same core.
  const int64_t blocks = (m + 15) / 16;
  parallel_for_fixed(blocks * count, work < kSerialWork ? 1 : threads, [&](int64_t task) {
    // the block's inputs live in this task only: no scratch shared between the tasks
    thread_local aligned_vector<uint64_t> bits;
    thread_local aligned_vector<float> row_scale;
    thread_local aligned_vector<uint8_t> luts;
    const int64_t layer = task % count, r0 = task / count * 16, r1 = std::min(m, r0 + 16), rows = r1 - r0;
    const LinearWeights& w = *layers[layer];
    const int64_t k = w.in, words = words_per_row(k);
    const bool tables = reads_xnor_tables(kernels, w);
    pack_input_rows(kernels, w, inputs, x + r0 * k, 0, rows, grow(bits, rows * words), grow(row_scale, rows));
    if (tables) kernels.build_xnor_luts(bits.data(), rows, words, grow(luts, xnor_lut_bytes(rows, k)));
    binary_input_tile(kernels, w, bits.data(), row_scale.data(), tables ? luts.data() : nullptr, ys[layer], r0, r1, 0, w.out);
    if (after && count == 1) after(r0, r1);
  });
}

namespace {

// Tables of more bytes than this are built per block of 16 rows inside the product, just before
// that block's lookups, instead of all at once ahead of it: at 128 x 1536 inputs the 1.5 MB of
// tables had been written out to L3 and read back in every column tile. Below it (128 x 384 inputs:
// 393 KB) they stay in L2 and are built once for the linears that share them (Q, K and V).
constexpr int64_t kResidentLutBytes = 512 * 1024;

bool luts_per_block(LutFormat tables, int64_t m, int64_t groups) {
  return tables != LutFormat::kNone && m * groups * 32 > kResidentLutBytes;
}

// Rows a block when the tables are built per block: 16, or on a path with
// KernelTable::w1a8_wide_table_blocks as many as kResidentLutBytes hold, but no more than each
// thread's share of m; a multiple of 16.
int64_t lut_block_rows(const KernelTable& kernels, int64_t m, int64_t groups, int threads) {
  if (!kernels.w1a8_wide_table_blocks) return 16;
  const int64_t fit = kResidentLutBytes / (groups * 32), share = (m + threads - 1) / threads;
  return std::max<int64_t>(16, std::min(fit, share) / 16 * 16);
}

// prepare_w1a8_inputs, each row first activated in place where `activation` is set (a row of 12 KB
// stays in L1 between the activation and the quantizer's two passes)
void quantize_inputs(const KernelTable& kernels, const float* x, float* activated, int64_t m, int64_t k, int threads,
                     LinearScratch& s, void (*activation)(float*, int64_t), int64_t activation_work, bool ternary) {
  const int64_t groups = lut_groups(k);
  int8_t* q = grow(s.q, m * groups * 4);
  const LutFormat tables = w1a8_tables_for(kernels, ternary);
  const bool ahead = tables != LutFormat::kNone && !luts_per_block(tables, m, groups);
  uint8_t* luts = ahead ? grow(s.luts, m * groups * 32) : nullptr;
  float* step = grow(s.row_scale, m);
  int32_t* rowsum = grow(s.rowsum, m);
  // quantizing and 32 table bytes per 4 inputs: worth splitting from 128 x 384 on
  run_rows(m, 16, m * k * (32 + activation_work), threads, [&](int64_t r0, int64_t r1) {
    if (activation) {
      for (int64_t r = r0; r < r1; ++r) {
        activation(activated + r * k, k);
        kernels.quantize_rows_int8(x + r * k, 1, k, k, q + r * groups * 4, step + r, rowsum + r);
      }
    } else {
      kernels.quantize_rows_int8(x + r0 * k, r1 - r0, k, k, q + r0 * groups * 4, step + r0, rowsum + r0);
    }
    if (luts) kernels.build_luts(q + r0 * groups * 4, r1 - r0, groups, luts + r0 * groups * 32);
  });
}

}  // namespace

void prepare_w1a8_inputs(const KernelTable& kernels, const float* x, int64_t m, int64_t k, int threads,
                         LinearScratch& s, bool ternary) {
  quantize_inputs(kernels, x, nullptr, m, k, threads, s, nullptr, 0, ternary);
}

void prepare_w1a8_inputs_activated(const KernelTable& kernels, float* x, int64_t m, int64_t k, int threads,
                                   LinearScratch& s, void (*activation)(float*, int64_t), int64_t activation_work,
                                   bool ternary) {
  quantize_inputs(kernels, x, x, m, k, threads, s, activation, activation_work, ternary);
}

void linear_w1a8_prepared(const KernelTable& kernels, int64_t m, int64_t k, const uint8_t* wlut, const float* alpha,
                          const float* bias, int64_t n, float* y, int threads, const LinearScratch& s,
                          const uint8_t* wlut2) {
  const int64_t groups = lut_groups(k), planes = wlut2 ? 2 : 1;
  // one product of rows [m0, m1) x columns [n0, n1) on tables `luts` and int8 rows `q` that start at row r
  auto product = [&](const uint8_t* luts, int64_t r, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    const int8_t* q = s.q.data() + r * groups * 4;
    const int32_t* rowsum = s.rowsum.data() + r;
    const float* step = s.row_scale.data() + r;
    float* out = y + r * n;
    if (wlut2)
      kernels.w158a8_linear(luts, q, rowsum, step, wlut, wlut2, alpha, bias, out, m0, m1, n0, n1, n, groups);
    else
      kernels.w1a8_linear(luts, q, rowsum, step, wlut, alpha, bias, out, m0, m1, n0, n1, n, groups);
  };
  if (luts_per_block(w1a8_tables_for(kernels, wlut2 != nullptr), m, groups)) {
    run_rows(m, lut_block_rows(kernels, m, groups, threads), planes * m * n * groups, threads, [&](int64_t r0, int64_t r1) {
      thread_local aligned_vector<uint8_t> block;
      uint8_t* luts = grow(block, (r1 - r0) * groups * 32);
      kernels.build_luts(s.q.data() + r0 * groups * 4, r1 - r0, groups, luts);
      product(luts, r0, 0, r1 - r0, 0, n);
    });
    return;
  }
  // one table lookup covers 4 multiply-adds: count work like the other kernels do. 64-column tiles
  // (whole rows of 16-row tiles measured 2% slower, MiniLM W1A8, Zen 4)
  run_tiles(m, n, planes * m * n * groups, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    product(s.luts.data(), 0, m0, m1, n0, n1);
  }, 64, kernels.w1a8_row_tile);
}

void linear_dense(const KernelTable& kernels, const float* x, int64_t m, int64_t k, const float* w, const float* bias,
                  int64_t n, float* y, int threads) {
  run_tiles(m, n, m * n * k, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.sgemm_nt(x, k, w, k, y, n, m0, m1, n0, n1, k);
    if (bias)
      for (int64_t i = m0; i < m1; ++i)
        for (int64_t j = n0; j < n1; ++j) y[i * n + j] += bias[j];
  });
}

void build_panel_bits(const uint64_t* w, int64_t n, int64_t k, uint16_t* out) {
  const int64_t words = words_per_row(k), groups = (n + 15) / 16;
  std::fill(out, out + groups * k, uint16_t{0});
  for (int64_t j = 0; j < n; ++j)
    for (int64_t t = 0; t < k; ++t)
      if ((w[j * words + (t >> 6)] >> (t & 63)) & 1) out[(j / 16) * k + t] |= static_cast<uint16_t>(1u << (j % 16));
}

// Binary weights at many rows: each 16 output channels expanded once into a GEMM panel of
// +-alpha floats (the values the training layer multiplies by), then the float micro-kernel over
// all rows, on as many panels a call as it reads at once.
void linear_w1a32_unpacked(const KernelTable& kernels, const float* x, int64_t m, int64_t k, const uint16_t* panel_bits,
                           const float* alpha, const float* bias, int64_t n, float* y, int threads) {
  const int64_t block = kernels.sgemm_panel_columns;
  run_rows(n, block, m * n * k, threads, [&](int64_t j0, int64_t j1) {
    thread_local aligned_vector<float> buffer;
    float* panel = grow(buffer, k * block);
    for (int64_t j = j0; j < j1; j += 16)
      kernels.unpack_panel(panel_bits + (j / 16) * k, k, alpha + j, static_cast<int>(std::min<int64_t>(j1 - j, 16)),
                           panel + (j - j0) * k);
    kernels.sgemm_panel(x, k, panel, y + j0, n, 0, m, k, static_cast<int>(j1 - j0), bias ? bias + j0 : nullptr);
  });
}

void run_linear(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m, float* y,
                int threads, LinearScratch& s, bool inputs_prepared) {
  const int64_t k = w.in, n = w.out;
  switch (w.scheme) {
    case Scheme::kDense:
      return linear_dense(kernels, x, m, k, w.dense, w.bias, n, y, threads);
    case Scheme::kW1A32:
      return linear_w1a32(kernels, x, m, k, w.words, w.scale, w.bias, n, y, threads, w.panel_bits.data());
    case Scheme::kW1A8:
      if (!inputs_prepared) prepare_w1a8_inputs(kernels, x, m, k, threads, s);
      return linear_w1a8_prepared(kernels, m, k, w.lut.data(), w.scale, w.bias, n, y, threads, s);
    case Scheme::kW1A1:
    case Scheme::kW1A1Elastic:
    case Scheme::kW1A1TwoSet:
      return linear_binary_inputs(kernels, w, x, m, y, threads, s, inputs_prepared);
    case Scheme::kW158A32:
    case Scheme::kW158A8: {
      const int64_t plane_lut = lut_column_blocks(n) * lut_groups(k) * 16;
      if (fused_ternary(kernels, w)) {
        // both planes in one product, the bias in its epilogue, so no second plane's output to
        // hold and add (and its tables, where the path has them, built and read once)
        if (!inputs_prepared) prepare_w1a8_inputs(kernels, x, m, k, threads, s, true);
        return linear_w1a8_prepared(kernels, m, k, w.lut.data(), w.epilogue_scale.data(), w.bias, n, y, threads, s,
                                    w.lut.data() + plane_lut);
      }
      // x @ (gamma t).T + b = plane_u(x, gamma / 2) + plane_v(x, gamma / 2) + b
      float* second = grow(s.plane_out, m * n);
      const int64_t plane_words = n * words_per_row(k);
      if (w.scheme == Scheme::kW158A32) {
        const int64_t plane_panel = ((n + 15) / 16) * k;
        linear_w1a32(kernels, x, m, k, w.words, w.epilogue_scale.data(), nullptr, n, y, threads, w.panel_bits.data());
        linear_w1a32(kernels, x, m, k, w.words + plane_words, w.epilogue_scale.data(), nullptr, n, second, threads,
                     w.panel_bits.data() + plane_panel);
      } else {
        if (!inputs_prepared) prepare_w1a8_inputs(kernels, x, m, k, threads, s);
        linear_w1a8_prepared(kernels, m, k, w.lut.data(), w.epilogue_scale.data(), nullptr, n, y, threads, s);
        linear_w1a8_prepared(kernels, m, k, w.lut.data() + plane_lut, w.epilogue_scale.data(), nullptr, n, second,
                             threads, s);
      }
      // (u + v) + b, the reference's order, row by row: a flat loop with `bias[i % n]` had cost an
      // integer division per output
      run_rows(m, 16, m * n, threads, [&](int64_t r0, int64_t r1) {
        for (int64_t i = r0; i < r1; ++i) {
          float* out = y + i * n;
          const float* other = second + i * n;
          for (int64_t j = 0; j < n; ++j) out[j] += other[j];
          if (w.bias)
            for (int64_t j = 0; j < n; ++j) out[j] += w.bias[j];
        }
      });
      return;
    }
  }
}

}  // namespace bitmaps
