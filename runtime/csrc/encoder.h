// The packed BERT masked LM's inference forward on raw pointers: embeddings (any table format
// of the packed file), LayerNorm, attention (softmax or Bi-Attention, padding masks, the
// quantizers the recipes train on Q, K, V and the attention weights), GELU, every packed
// scheme's linear, and the MLM head. No Python, no torch: the binding fills an EncoderModel
// with pointers into the packed file's tensors, which must outlive it.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "linear.h"

namespace bitmaps {

// kInt8Groups: a step per group of kTableGroup values of a row (bitmaps_runtime/formats.py TABLE_GROUP);
// kInt8Columns: a step per row times a scale per column (formats.py TABLE_COLUMN_EXPONENT)
enum class TableFormat : int32_t { kF32 = 0, kF16 = 1, kInt8 = 2, kBinary = 3, kInt8Groups = 4, kInt8Columns = 5 };
constexpr int64_t kTableGroup = 64;
inline int64_t table_groups(int64_t dim) { return (dim + kTableGroup - 1) / kTableGroup; }

struct Table {
  TableFormat format = TableFormat::kF32;
  int64_t rows = 0, dim = 0;
  const void* data = nullptr;   // f32 / f16 (uint16 bits) / int8 levels / sign words
  const float* scale = nullptr; // int8: step per row (int8 groups: per group); binary: scale per row
  const float* column = nullptr; // int8 columns: scale per column (dim), else null
};

// The quantizer in front of an attention product (bitmaps_allennlp/modules/activation_quantizer.py).
enum class Quantizer : int32_t { kReal = 0, kInt8 = 1, kSign = 2, kElastic = 3, kTwoSet = 4 };

struct ActQuant {
  Quantizer mode = Quantizer::kReal;
  float alpha = 1.f, beta = 0.f;  // elastic / two-set: |alpha| clamped as training uses it
  float cut = 0.f;                // derived by EncoderModel::prepare: elastic_cut(alpha, beta, two-set)
};

enum class Activation : int32_t { kGelu = 0, kGeluTanh = 1, kRelu = 2 };

struct Norm {
  const float* weight = nullptr;
  const float* bias = nullptr;
};

struct Layer {
  LinearWeights query, key, value, attention_output, ffn_in, ffn_out;
  Norm attention_norm, output_norm;
  ActQuant q, k, v, probs;
  // derived by EncoderModel::prepare: a two-set FFN-down behind GELU whose bits are h below this
  // cut (gelu_two_set_cut), else NaN
  float ffn_out_gelu_cut = NAN;
};

// For BiT's two-set binarizer of GELU(h) (ffn-down's input): the cut c with the binarizer's bit
// set exactly where h < c, when there is one, computed with the path's own GELU. GELU falls from 0
// to its minimum (about -0.17 at h = -0.75) and rises after it, so there is one when every value
// of the falling branch is marked (the binarizer's own cut on GELU's values lies above them, with
// a margin for the path's erf, which is not exactly -1 far left); then c is where the rising
// branch crosses that cut (the binarizer is monotone and the path's GELU rises there). BiT's
// trained and initial quantizers have it (beta + alpha / 2 above 0); false, with *cut NaN, if not.
bool gelu_two_set_cut(const KernelTable& kernels, float alpha, float beta, float* cut);

struct EncoderModel {
  int64_t hidden = 0, heads = 0, intermediate = 0, vocab = 0, max_positions = 0, type_vocab = 0;
  float eps = 1e-12f;
  Activation activation = Activation::kGelu;
  bool bi_attention = false;
  Table word, position;
  const float* token_type = nullptr;  // type_vocab x hidden
  Norm embedding_norm;
  std::vector<Layer> layers;
  bool has_head = false;
  LinearWeights head_dense;
  Norm head_norm;
  const float* decoder_bias = nullptr;  // vocab

  // Derived data of every linear that `kernels` read; false (with *error naming the part) if
  // something is missing. Other paths run a model prepared for one path (the derived layouts they
  // lack have fallbacks: see LinearWeights::nibbles).
  bool prepare(const KernelTable& kernels, const char** error, std::vector<char>* where);
};

// Where a forward pass spends its time, by phase, when `enabled` (BITMAPS_PROFILE=1 in the
// binding): seconds accumulated over calls until read.
struct Profile {
  bool enabled = false;
  std::vector<std::pair<const char*, double>> seconds;
  void add(const char* phase, double value);
};

// The most rows one pass of encoder_forward takes through the layers by default. A batch run as one
// pass had every layer's activations leave the core's cache: MiniLM's FFN activations alone are
// 6 MB at 8 x 128 rows, against a Zen 4 core's 1 MB L2 (0.8 MB at 128 rows). Trained MiniLM,
// 8 x 128, 1 thread, Zen 4 (benchmarks/rows_per_pass.py, results/rows_per_pass_zen4.json): W1A8
// 94.0 -> 79.7 ms, W1A1 35.4 -> 25.7 ms in passes of 128 rows; 32 x 16 wordpieces ran fastest at
// 32-128 rows a pass, and passes of 256 gave back part of the gain nearly everywhere.
constexpr int64_t kRowsPerPass = 128;

// Activations of one forward pass, grown to the largest pass and reused.
struct Workspace {
  aligned_vector<float> hidden2, q, k, v, context, projected, inner;
  LinearScratch linear;
  Profile profile;
  std::vector<Workspace> side;  // one per thread, when encoder_forward runs passes side by side
};

// hidden (batch * seq x hidden) for token ids (batch x seq), mask (batch x seq, nonzero = real
// token) and token type ids (nullable: all 0). Padded positions are computed as the torch model
// computes them, unless `skip_padding`: then, where every mask row is real tokens followed by
// padding, only the real tokens go through the layers (the linears on their rows alone, each
// sequence's attention over its own length) and the padded positions' states are 0. The real
// tokens' states are the same up to the softmax's summation order.
//
// Sequences go through the layers in passes of at most `rows_per_pass` rows (<= 0: kRowsPerPass;
// a longer sequence makes a pass alone), every layer of one pass before the next. A row's result
// does not depend on the pass it is in, except in float rounding where a linear with float inputs
// picks its kernel by the number of rows (W1A32 unpacks weight tiles into a GEMM at many rows).
void encoder_forward(const EncoderModel& model, const KernelTable& kernels, const int64_t* ids,
                     const int32_t* mask, const int64_t* type_ids, int64_t batch, int64_t seq, float* hidden,
                     int threads, Workspace& ws, bool skip_padding = false, int64_t rows_per_pass = 0);

// MLM logits (rows x vocab) of hidden states (rows x hidden).
void mlm_logits(const EncoderModel& model, const KernelTable& kernels, const float* hidden, int64_t rows,
                float* logits, int threads, Workspace& ws);

}  // namespace bitmaps
