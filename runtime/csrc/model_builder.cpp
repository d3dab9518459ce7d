#include "model_builder.h"

#include <cmath>

namespace bitmaps {
namespace {

LinearWeights* linear_slot(EncoderModel& m, int64_t layer, const std::string& slot) {
  if (layer == -1 && slot == "dense") return &m.head_dense;
  if (layer < 0 || layer >= static_cast<int64_t>(m.layers.size())) return nullptr;
  Layer& l = m.layers[layer];
  if (slot == "query") return &l.query;
  if (slot == "key") return &l.key;
  if (slot == "value") return &l.value;
  if (slot == "attention_output") return &l.attention_output;
  if (slot == "ffn_in") return &l.ffn_in;
  if (slot == "ffn_out") return &l.ffn_out;
  return nullptr;
}

}  // namespace

std::string init_model(EncoderModel& m, int64_t hidden, int64_t heads, int64_t intermediate, int64_t vocab,
                       int64_t max_positions, int64_t type_vocab, double eps, int activation, bool bi_attention,
                       int64_t layers) {
  if (!(hidden > 0 && heads > 0 && hidden % heads == 0 && intermediate > 0 && vocab > 0 && max_positions > 0 &&
        type_vocab > 0 && layers >= 0))
    return "config sizes must be positive and hidden a multiple of heads";
  if (activation < 0 || activation > 2) return "activation must be 0 (gelu), 1 (gelu tanh) or 2 (relu)";
  m = EncoderModel();
  m.hidden = hidden, m.heads = heads, m.intermediate = intermediate, m.vocab = vocab;
  m.max_positions = max_positions, m.type_vocab = type_vocab, m.eps = static_cast<float>(eps);
  m.activation = static_cast<Activation>(activation);
  m.bi_attention = bi_attention;
  m.layers.resize(static_cast<size_t>(layers));
  return "";
}

std::string set_table(EncoderModel& m, const std::string& which, int format, int64_t rows, int64_t dim, const void* data,
                      int64_t data_size, const float* scale, int64_t scale_size, const float* column, int64_t column_size) {
  if (which != "word" && which != "position") return "table must be 'word' or 'position'";
  if (format < 0 || format > 5)
    return "table format must be 0 (f32), 1 (f16), 2 (int8), 3 (binary), 4 (int8 groups) or 5 (int8 columns)";
  const auto kind = static_cast<TableFormat>(format);
  if (rows <= 0 || dim != m.hidden) return "table " + which + " must have hidden_size columns";
  const int64_t columns = kind == TableFormat::kBinary ? words_per_row(dim) : dim;
  if (data == nullptr || data_size != rows * columns)
    return "table " + which + " holds " + std::to_string(data_size) + " values, expected " + std::to_string(rows * columns);
  const int64_t scales = kind == TableFormat::kInt8Groups ? rows * table_groups(dim) : rows;
  if (format >= 2 && (scale == nullptr || scale_size != scales))
    return "table " + which + (kind == TableFormat::kInt8Groups ? " needs a step per group of 64 values" : " needs a scale per row");
  const bool by_column = kind == TableFormat::kInt8Columns;
  if (by_column && (column == nullptr || column_size != dim)) return "table " + which + " needs a scale per column";
  if (!by_column && column != nullptr) return "table " + which + ": only format 5 (int8 columns) takes column scales";
  Table table;
  table.format = kind;
  table.rows = rows, table.dim = dim, table.data = data;
  table.scale = format >= 2 ? scale : nullptr;
  table.column = by_column ? column : nullptr;
  (which == "word" ? m.word : m.position) = table;
  return "";
}

std::string set_vector(EncoderModel& m, const std::string& name, int64_t layer, const float* data, int64_t size) {
  if (data == nullptr) return name + " is missing";
  if (name == "token_type") {
    if (size != m.type_vocab * m.hidden) return "token_type needs type_vocab_size x hidden_size entries";
    m.token_type = data;
    return "";
  }
  if (name == "decoder_bias") {
    if (size != m.vocab) return "decoder_bias needs vocab_size entries";
    m.decoder_bias = data;
    m.has_head = true;
    return "";
  }
  const auto dot = name.find('.');
  const std::string part = name.substr(0, dot), field = dot == std::string::npos ? "" : name.substr(dot + 1);
  Norm* norm = nullptr;
  if (part == "embeddings") norm = &m.embedding_norm;
  else if (part == "head") norm = &m.head_norm;
  else if ((part == "attention" || part == "output") && layer >= 0 && layer < static_cast<int64_t>(m.layers.size()))
    norm = part == "attention" ? &m.layers[layer].attention_norm : &m.layers[layer].output_norm;
  if (norm == nullptr || (field != "weight" && field != "bias"))
    return "unknown model vector '" + name + "' (layer " + std::to_string(layer) + ")";
  if (size != m.hidden) return name + " needs hidden_size entries";
  (field == "weight" ? norm->weight : norm->bias) = data;
  return "";
}

std::string make_linear(LinearWeights& w, const std::string& name, int scheme, int64_t in, int64_t out, const void* weight,
                        int64_t weight_size, const float* scale, int64_t scale_size, const float* bias, int64_t bias_size,
                        double input_alpha, double input_beta) {
  if (scheme < 0 || scheme >= kSchemeCount) return "unknown scheme id " + std::to_string(scheme);
  if (in <= 0 || out <= 0) return "a linear needs positive in and out features";
  LinearWeights fresh;
  fresh.scheme = static_cast<Scheme>(scheme);
  fresh.in = in, fresh.out = out;
  fresh.input_alpha = static_cast<float>(input_alpha), fresh.input_beta = static_cast<float>(input_beta);
  if (fresh.scheme == Scheme::kDense) {
    if (weight == nullptr || weight_size != out * in) return name + " weight does not hold " + std::to_string(out) + " x " + std::to_string(in) + " floats";
    fresh.dense = static_cast<const float*>(weight);
  } else {
    if (weight == nullptr || weight_size != fresh.planes() * out * words_per_row(in))
      return name + " packed_weight does not hold " + std::to_string(out) + " x " + std::to_string(in) + " bits";
    if (scale == nullptr || scale_size != out) return name + " needs a scale per output";
    fresh.words = static_cast<const uint64_t*>(weight);
    fresh.scale = scale;
  }
  if (bias != nullptr) {
    if (bias_size != out) return name + " needs a bias per output";
    fresh.bias = bias;
  }
  w = std::move(fresh);
  return "";
}

std::string set_linear(EncoderModel& m, int64_t layer, const std::string& slot, int scheme, int64_t in, int64_t out,
                       const void* weight, int64_t weight_size, const float* scale, int64_t scale_size, const float* bias,
                       int64_t bias_size, double input_alpha, double input_beta) {
  LinearWeights* w = linear_slot(m, layer, slot);
  if (w == nullptr) return "unknown linear '" + slot + "' of layer " + std::to_string(layer);
  return make_linear(*w, slot, scheme, in, out, weight, weight_size, scale, scale_size, bias, bias_size, input_alpha,
                     input_beta);
}

std::string set_quantizers(EncoderModel& m, int64_t layer, const int modes[4], const double alpha[4], const double beta[4]) {
  if (layer < 0 || layer >= static_cast<int64_t>(m.layers.size())) return "no layer " + std::to_string(layer);
  Layer& l = m.layers[layer];
  ActQuant* slots[4] = {&l.q, &l.k, &l.v, &l.probs};
  for (int i = 0; i < 4; ++i) {
    if (modes[i] < 0 || modes[i] > 4) return "quantizer mode must be 0..4";
    if (modes[i] >= 3 && (!(static_cast<float>(alpha[i]) > 0.f) || !std::isfinite(static_cast<float>(alpha[i])) ||
                          !std::isfinite(static_cast<float>(beta[i]))))
      return "an elastic or two-set quantizer needs a positive finite alpha and a finite beta (as float32)";
    *slots[i] = {static_cast<Quantizer>(modes[i]), static_cast<float>(alpha[i]), static_cast<float>(beta[i])};
  }
  return "";
}

}  // namespace bitmaps
