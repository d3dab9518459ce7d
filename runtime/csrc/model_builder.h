// The steps that fill an EncoderModel, on raw pointers and element counts: the Python binding
// calls them after checking its buffers' dtypes, and the C++ tests replay them from a golden
// fixture. Each returns an empty string, or what is wrong (naming the part). The model points into
// the arrays passed; they must outlive it.
#pragma once
#include <cstdint>
#include <string>

#include "encoder.h"

namespace bitmaps {

std::string init_model(EncoderModel& m, int64_t hidden, int64_t heads, int64_t intermediate, int64_t vocab,
                       int64_t max_positions, int64_t type_vocab, double eps, int activation, bool bi_attention,
                       int64_t layers);
// which: "word" or "position"; format: TableFormat; data: rows x dim values (binary: rows x words);
// scale: one per row for int8 and binary tables (per group for int8 groups), else null;
// column: one per column for int8 columns, else null
std::string set_table(EncoderModel& m, const std::string& which, int format, int64_t rows, int64_t dim, const void* data,
                      int64_t data_size, const float* scale, int64_t scale_size, const float* column = nullptr,
                      int64_t column_size = 0);
// "token_type" (type_vocab x hidden), "decoder_bias" (vocab), "<embeddings|attention|output|head>.<weight|bias>"
std::string set_vector(EncoderModel& m, const std::string& name, int64_t layer, const float* data, int64_t size);
// One linear on its own, checked: the fields of `w` on success (else `w` is unchanged); `name`
// names it in the message. set_linear fills an encoder's slot with it; the binding's single layers
// (what bitmaps_allennlp's packed modules run) use it directly.
std::string make_linear(LinearWeights& w, const std::string& name, int scheme, int64_t in, int64_t out, const void* weight,
                        int64_t weight_size, const float* scale, int64_t scale_size, const float* bias, int64_t bias_size,
                        double input_alpha, double input_beta);
// layer -1 with slot "dense": the head's transform; weight: sign words (planes x out x words) or
// out x in floats for Scheme::kDense; scale and bias nullable where the scheme allows
std::string set_linear(EncoderModel& m, int64_t layer, const std::string& slot, int scheme, int64_t in, int64_t out,
                       const void* weight, int64_t weight_size, const float* scale, int64_t scale_size, const float* bias,
                       int64_t bias_size, double input_alpha, double input_beta);
// modes, alpha, beta of Q, K, V and the attention weights (Quantizer numbering)
std::string set_quantizers(EncoderModel& m, int64_t layer, const int modes[4], const double alpha[4], const double beta[4]);

}  // namespace bitmaps
