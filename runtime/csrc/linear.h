// One linear layer of any packed scheme, on raw pointers: what the encoder runs for each of its
// linears, and what the binding's single layers run for the torch modules (layer_new,
// layer_forward). The scheme ids are SCHEME_SPECS' `native_id`s (runtime/bitmaps_runtime/formats.py);
// `kDense` is a linear the export left in floating point.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "aligned.h"
#include "kernels.h"

namespace bitmaps {

enum class Scheme : int32_t {
  kW1A32 = 0,        // binary weights, fp32 inputs
  kW1A1 = 1,         // XNOR-Net: mean|x| * sign(x) inputs
  kW1A8 = 2,         // absmax int8 inputs per row
  kW1A1Elastic = 3,  // BiT: alpha * sign((x - beta) / alpha) inputs
  kW1A1TwoSet = 4,   // BiT: alpha * round(clip((x - beta) / alpha, 0, 1)) inputs
  kW158A32 = 5,      // ternary weights as two sign planes, fp32 inputs
  kW158A8 = 6,       // ternary weights as two sign planes, int8 inputs
  kDense = 7,        // fp32 weights (out x in)
};
constexpr int32_t kSchemeCount = 8;

// Scratch that grows to the largest call and is then reused: no allocation per call once warm.
struct LinearScratch {
  aligned_vector<uint64_t> bits;
  aligned_vector<float> row_scale;
  aligned_vector<int32_t> dots, rowsum;
  aligned_vector<int8_t> q;
  aligned_vector<uint8_t> luts, xnor_luts;
  aligned_vector<float> plane_out;
};

struct LinearWeights {
  Scheme scheme = Scheme::kDense;
  int64_t in = 0, out = 0;
  const uint64_t* words = nullptr;  // (planes x) out x words_per_row(in)
  const float* scale = nullptr;     // per output channel (ternary: gamma)
  const float* bias = nullptr;      // nullable
  const float* dense = nullptr;     // kDense: out x in
  float input_alpha = 1.f, input_beta = 0.f;  // BiT's learned input quantizer (|alpha| as used)
  float input_cut = 0.f;  // derived by prepare(): elastic_cut(input_alpha, input_beta, two-set)
  // derived once by prepare(): W1A8's table-lookup layout per plane, the epilogue's scales
  aligned_vector<uint8_t> lut;
  aligned_vector<float> epilogue_scale;
  aligned_vector<int32_t> weight_sums;
  // W1A32 / W1.58A32: the signs regrouped for the float GEMM, per plane, 16 channels at a time:
  // entry (g * in + t) holds bit t of channels 16g..16g+15 (bit j = channel 16g + j)
  aligned_vector<uint16_t> panel_bits;
  // 1-bit inputs: the signs in the nibble layout (xnor_lut.h), built only when prepared for a path
  // that reads it (reads_nibble_layout); without it every path runs the XOR-popcount kernels
  aligned_vector<uint8_t> nibbles;
  const uint8_t* nibble_layout() const { return nibbles.empty() ? nullptr : nibbles.data(); }
  // 1-bit inputs: the signs in column octets (kernels.h), likewise only for a path that reads them
  // (reads_octet_layout)
  aligned_vector<uint64_t> octets;
  const uint64_t* octet_layout() const { return octets.empty() ? nullptr : octets.data(); }

  int planes() const { return scheme == Scheme::kW158A32 || scheme == Scheme::kW158A8 ? 2 : 1; }
  // int8 inputs (prepare_w1a8_inputs quantizes them); their weights are kept in the lookup layout
  bool int8_inputs() const { return scheme == Scheme::kW1A8 || scheme == Scheme::kW158A8; }
  bool uses_lut() const { return int8_inputs(); }
  bool binary_inputs() const {
    return scheme == Scheme::kW1A1 || scheme == Scheme::kW1A1Elastic || scheme == Scheme::kW1A1TwoSet;
  }
  // Builds the derived data that `kernels` read; false (with *error set) if the fields do not
  // make a layer.
  bool prepare(const char** error, const KernelTable& kernels);
};

// Whether a layer runs as a ternary W1.58A8 product in one call (KernelTable::w158a8_linear): its
// inputs are then prepared for that product (prepare_w1a8_inputs' `ternary`).
inline bool fused_ternary(const KernelTable& kernels, const LinearWeights& w) {
  return w.scheme == Scheme::kW158A8 && kernels.w158a8_linear != nullptr;
}

// y (m x out) = the layer applied to x (m x in, row stride in). `inputs_prepared`: the previous
// call on this scratch was a layer that shares_prepared_inputs with this one, on the same x, so its
// quantized rows and tables are reused (Q, K and V read one input).
void run_linear(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m, float* y,
                int threads, LinearScratch& s, bool inputs_prepared = false);

// Prepares a 1-bit-input layer's inputs (binary_inputs(): the packed signs or BiT levels, mean |x|,
// and the W1A1 lookup tables where the path reads them) from activation(x) rather than x: each
// row is copied, activated in place and packed while it is in L1, so the activated values never
// go through a buffer of their own. Bit for bit what activating x and then run_linear would pack.
// The encoder's FFN-down uses it for GELU: XNOR's mean |GELU(h)| and BiT's (GELU(h) - beta) / alpha
// need the activated values, so GELU cannot be skipped, but they need not be stored. Follow it
// with run_linear(..., inputs_prepared = true). `activation_work`: its cost per element in tiles.h
// units. Returns false, preparing nothing, for a layer whose inputs are not 1-bit.
// Prepares a two-set layer's inputs (binary_inputs()) from x's values below `cut` (kernels.h
// below_cut, two-set), where the layer's binarizer of activation(x) is that compare on x: the
// encoder's FFN-down behind GELU (gelu_two_set_cut in encoder.h), so that no GELU is computed.
// Follow it with run_linear(..., inputs_prepared = true).
void prepare_binary_inputs_below(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m,
                                 int threads, LinearScratch& s, float cut);
bool prepare_binary_inputs_activated(const KernelTable& kernels, const LinearWeights& w, const float* x, int64_t m,
                                     int threads, LinearScratch& s, void (*activation)(float*, int64_t),
                                     int64_t activation_work);

// How a 1-bit-input layer's input rows are made: its binarizer on x (the default), on
// activation(x) (as prepare_binary_inputs_activated), or two-set bits of x below a cut (as
// prepare_binary_inputs_below).
struct BinaryInputs {
  void (*activation)(float*, int64_t) = nullptr;
  int64_t activation_work = 0;  // its cost per element in tiles.h units
  float below = NAN;
};

// Whether run_by_rows runs `w` on m rows: a layer with 1-bit inputs whose tiles are whole rows
// (tiles.h column_block).
bool runs_by_rows(const LinearWeights& w, int64_t m);

// Runs `count` layers on the same m rows of x (Q, K and V; or one layer) as one job, one task per
// block of 16 rows and layer: each makes its block's inputs as `inputs` says, computes those rows
// of the layer's output ys[i] and, with one layer, calls after(r0, r1) (if set) on rows still in
// cache. Bit for bit run_linear on each layer in turn and then `after` on every row; but one
// barrier on the pool where those were one each, and no packing on one thread. Every layer must
// satisfy runs_by_rows and read m x layers[0]->in x; `after` needs count == 1.
void run_by_rows(const KernelTable& kernels, const LinearWeights* const* layers, float* const* ys, int count,
                 const float* x, int64_t m, int threads, const BinaryInputs& inputs = {},
                 const std::function<void(int64_t, int64_t)>& after = nullptr);

// Whether `b` quantizes its input exactly as `a` does, so one preparation serves both, on inputs
// of the same width: the int8 schemes (absmax per row has no parameters), and the 1-bit-input
// schemes with the same binarizer, the same learned parameters (bit for bit) and the same choice
// of lookup tables (packed signs, mean |x| and tables are then the same).
inline bool shares_prepared_inputs(const LinearWeights& a, const LinearWeights& b) {
  if (a.in != b.in) return false;
  if (a.uses_lut() && b.uses_lut()) return true;
  const bool same_parameters = a.scheme == Scheme::kW1A1 ||  // sign and mean |x|: no parameters
                               (std::memcmp(&a.input_alpha, &b.input_alpha, sizeof(float)) == 0 &&
                                std::memcmp(&a.input_beta, &b.input_beta, sizeof(float)) == 0);
  return a.binary_inputs() && a.scheme == b.scheme && same_parameters &&
         (a.nibble_layout() == nullptr) == (b.nibble_layout() == nullptr);
}

// The scheme kernels on their own (run_linear's cases; the C++ tests call them directly).
// panel_bits (nullable): the weight's panel layout (LinearWeights::panel_bits); with it, many
// rows run as a float GEMM on unpacked panels
void linear_w1a32(const KernelTable& kernels, const float* x, int64_t m, int64_t k, const uint64_t* w,
                  const float* alpha, const float* bias, int64_t n, float* y, int threads,
                  const uint16_t* panel_bits = nullptr);
// The panel layout of n x k sign words (LinearWeights::panel_bits): ceil(n / 16) * k entries.
void build_panel_bits(const uint64_t* w, int64_t n, int64_t k, uint16_t* out);
// Quantizes x once (q, step, rowsum and, when the path uses them, lookup tables) into scratch.
// `ternary`: for a W1.58A8 layer (w1a8_tables_for in kernels.h).
void prepare_w1a8_inputs(const KernelTable& kernels, const float* x, int64_t m, int64_t k, int threads,
                         LinearScratch& scratch, bool ternary = false);
// prepare_w1a8_inputs of activation(x), x activated in place row by row, each just before it is
// quantized (activation_work: its cost per element in tiles.h units). The same bits as
// activating all of x first (KernelTable::gelu's values do not depend on their place in the call),
// without a pass over x of its own: a BERT-base FFN-down input is 1.5 MB at 128 rows, past an Ice
// Lake core's 1.25 MB L2, and had been activated whole, then read back from L3 to be quantized.
void prepare_w1a8_inputs_activated(const KernelTable& kernels, float* x, int64_t m, int64_t k, int threads,
                                   LinearScratch& scratch, void (*activation)(float*, int64_t), int64_t activation_work,
                                   bool ternary = false);
// The W1A8 product on inputs prepared by prepare_w1a8_inputs; with wlut2 (ternary's second sign
// plane), both planes in one product (KernelTable::w158a8_linear, which the caller checks).
void linear_w1a8_prepared(const KernelTable& kernels, int64_t m, int64_t k, const uint8_t* wlut, const float* alpha,
                          const float* bias, int64_t n, float* y, int threads, const LinearScratch& scratch,
                          const uint8_t* wlut2 = nullptr);
void linear_dense(const KernelTable& kernels, const float* x, int64_t m, int64_t k, const float* w, const float* bias,
                  int64_t n, float* y, int threads);
// From this many rows on, W1A32 unpacks weight tiles to floats and runs the float GEMM: the
// sign-flipping sums win at few rows, where unpacking would cost more than the product.
constexpr int64_t kUnpackRows = 16;

}  // namespace bitmaps
