// The only file that knows Python (through the buffer protocol: numpy arrays, no numpy headers):
// checks buffers (dtype, shape, contiguity), releases the GIL and calls the raw-pointer layers
// (linear.h, encoder.h) on the active kernel table.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dispatch.h"
#include "encoder.h"
#include "int8_lut.h"
#include "linear.h"
#include "model_builder.h"
#include "thread_pool.h"
#include "tiles.h"

namespace {

using bitmaps::KernelTable;

class Buffer {
 public:
  ~Buffer() {
    if (held_) PyBuffer_Release(&view_);
  }
  // kind: 'f' float32, 'u' uint64, 'i' int32, 'q' int64, 'B' uint8, 'b' int8, 'h' float16 (raw bits)
  bool get(PyObject* obj, const char* name, char kind, int ndim, bool writable) {
    const int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, &view_, flags) != 0) {
      PyErr_Format(PyExc_ValueError, "%s must be a C-contiguous%s buffer", name, writable ? " writable" : "");
      return false;
    }
    held_ = true;
    const char* format = view_.format ? view_.format : "B";
    while (*format == '<' || *format == '=' || *format == '@') ++format;
    const bool ok = (kind == 'f' && view_.itemsize == 4 && std::strcmp(format, "f") == 0) ||
                    (kind == 'u' && view_.itemsize == 8 && (std::strcmp(format, "Q") == 0 || std::strcmp(format, "L") == 0)) ||
                    (kind == 'i' && view_.itemsize == 4 && (std::strcmp(format, "i") == 0 || std::strcmp(format, "l") == 0)) ||
                    (kind == 'q' && view_.itemsize == 8 && (std::strcmp(format, "q") == 0 || std::strcmp(format, "l") == 0)) ||
                    (kind == 'h' && view_.itemsize == 2 && std::strcmp(format, "e") == 0) ||
                    (kind == 'B' && view_.itemsize == 1 && std::strcmp(format, "B") == 0) ||
                    (kind == 'H' && view_.itemsize == 2 && std::strcmp(format, "H") == 0) ||
                    (kind == 'b' && view_.itemsize == 1 && std::strcmp(format, "b") == 0);
    if (!ok) {
      const char* expected = kind == 'f' ? "float32" : kind == 'u' ? "uint64" : kind == 'i' ? "int32" : kind == 'q' ? "int64" : kind == 'h' ? "float16" : kind == 'B' ? "uint8" : kind == 'H' ? "uint16" : "int8";
      PyErr_Format(PyExc_TypeError, "%s must hold %s values (buffer format '%s')", name, expected, view_.format);
      return false;
    }
    if (view_.ndim != ndim) {
      PyErr_Format(PyExc_ValueError, "%s must be %d-dimensional, got %d dimensions", name, ndim, view_.ndim);
      return false;
    }
    return true;
  }
  int64_t dim(int i) const { return view_.shape[i]; }
  int64_t size() const { return view_.len / (view_.itemsize ? view_.itemsize : 1); }
  template <typename T>
  T* data() const { return static_cast<T*>(view_.buf); }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

// `message`: a string, or a function that builds one, called only when the check fails (a message
// concatenated before the call cost its allocations on every call: per token in model_forward).
template <typename Message>
bool check(bool condition, const Message& message) {
  if (!condition) {
    if constexpr (std::is_invocable_v<Message>)
      PyErr_SetString(PyExc_ValueError, std::string(message()).c_str());
    else
      PyErr_SetString(PyExc_ValueError, std::string(message).c_str());
  }
  return condition;
}

std::string shape(const Buffer& b, int ndim) {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) s += std::to_string(b.dim(i)) + (i + 1 < ndim ? ", " : ")");
  return s;
}

using bitmaps::run_tiles;

PyObject* pack_signs(PyObject*, PyObject* args) {
  PyObject *x_obj, *out_obj, *mean_obj;
  if (!PyArg_ParseTuple(args, "OOO", &x_obj, &out_obj, &mean_obj)) return nullptr;
  Buffer x, out, mean_abs;
  if (!x.get(x_obj, "x", 'f', 2, false) || !out.get(out_obj, "out", 'u', 2, true)) return nullptr;
  const int64_t rows = x.dim(0), k = x.dim(1);
  if (!check(k > 0, "x must have at least one column")) return nullptr;
  if (!check(out.dim(0) == rows && out.dim(1) == bitmaps::words_per_row(k),
             [&] { return "out has shape " + shape(out, 2) + ", expected (" + std::to_string(rows) + ", " +
                 std::to_string(bitmaps::words_per_row(k)) + ")"; }))
    return nullptr;
  float* mean_ptr = nullptr;
  if (mean_obj != Py_None) {
    if (!mean_abs.get(mean_obj, "mean_abs", 'f', 1, true)) return nullptr;
    if (!check(mean_abs.dim(0) == rows, "mean_abs must have one entry per row of x")) return nullptr;
    mean_ptr = mean_abs.data<float>();
  }
  const KernelTable& kernels = bitmaps::active_kernels();
  Py_BEGIN_ALLOW_THREADS
  kernels.pack_signs(x.data<float>(), rows, k, k, out.data<uint64_t>(), mean_ptr);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

bool check_packed_pair(const Buffer& a, const Buffer& b, int64_t k) {
  const int64_t words = bitmaps::words_per_row(k);
  return check(k > 0, "k must be positive") &&
         check(a.dim(1) == words && b.dim(1) == words,
               [&] { return "packed operands " + shape(a, 2) + " and " + shape(b, 2) + " do not hold rows of k=" +
                   std::to_string(k) + " bits (" + std::to_string(words) + " words)"; });
}

PyObject* xnor_gemm(PyObject*, PyObject* args) {
  PyObject *a_obj, *b_obj, *out_obj;
  long long k;
  int threads;
  if (!PyArg_ParseTuple(args, "OOLOi", &a_obj, &b_obj, &k, &out_obj, &threads)) return nullptr;
  Buffer a, b, out;
  if (!a.get(a_obj, "a", 'u', 2, false) || !b.get(b_obj, "b", 'u', 2, false) ||
      !out.get(out_obj, "out", 'i', 2, true) || !check_packed_pair(a, b, k))
    return nullptr;
  const int64_t m = a.dim(0), n = b.dim(0), words = a.dim(1);
  if (!check(out.dim(0) == m && out.dim(1) == n, [&] { return "out has shape " + shape(out, 2) + ", expected (m, n)"; })) return nullptr;
  const KernelTable& kernels = bitmaps::active_kernels();
  Py_BEGIN_ALLOW_THREADS
  run_tiles(m, n, m * n * words, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.xnor_gemm(a.data<uint64_t>(), b.data<uint64_t>(), out.data<int32_t>(), m0, m1, n0, n1, n, words, k);
  });
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// The active path's int8 quantizer alone, so tests can hold every path to the one definition
// (bitmaps_allennlp/quantization/int8.py): q (m, k) and each row's step = 1 / scale.
PyObject* quantize_int8_rows(PyObject*, PyObject* args) {
  PyObject *x_obj, *q_obj, *step_obj;
  if (!PyArg_ParseTuple(args, "OOO", &x_obj, &q_obj, &step_obj)) return nullptr;
  Buffer x, q, step;
  if (!x.get(x_obj, "x", 'f', 2, false) || !q.get(q_obj, "q", 'b', 2, true) || !step.get(step_obj, "step", 'f', 1, true))
    return nullptr;
  const int64_t m = x.dim(0), k = x.dim(1);
  if (!check(k > 0, "x must have at least one column") ||
      !check(q.dim(0) == m && q.dim(1) == k, [&] { return "q has shape " + shape(q, 2) + ", expected the shape of x"; }) ||
      !check(step.dim(0) == m, "step must have one entry per row of x"))
    return nullptr;
  const int64_t stride = bitmaps::lut_groups(k) * 4;  // the kernels' padded row
  std::vector<int8_t> padded(static_cast<size_t>(m * stride));
  std::vector<int32_t> rowsum(static_cast<size_t>(m));
  bitmaps::active_kernels().quantize_rows_int8(x.data<float>(), m, k, k, padded.data(), step.data<float>(), rowsum.data());
  for (int64_t r = 0; r < m; ++r) std::memcpy(q.data<int8_t>() + r * k, padded.data() + r * stride, static_cast<size_t>(k));
  Py_RETURN_NONE;
}

// ---- the encoder model: a capsule holding an EncoderModel whose pointers point into arrays the
// capsule keeps referenced, and the workspace its forward passes reuse.

struct ModelHandle {
  bitmaps::EncoderModel model;
  std::vector<PyObject*> arrays;  // referenced for as long as the model lives
  bitmaps::Workspace workspace;
  std::mutex busy;  // one forward at a time per model (the workspace is shared)
  const KernelTable* prepared_for = nullptr;  // null until prepared, and after a setter changed the model
  std::vector<char> error;
  ~ModelHandle() {
    for (PyObject* array : arrays) Py_DECREF(array);
  }
};

constexpr const char* kCapsule = "bitmaps_runtime.EncoderModel";

void drop_model(PyObject* capsule) { delete static_cast<ModelHandle*>(PyCapsule_GetPointer(capsule, kCapsule)); }

ModelHandle* handle_of(PyObject* capsule) {
  return static_cast<ModelHandle*>(PyCapsule_GetPointer(capsule, kCapsule));  // sets TypeError if not one
}

// The model's lock, waited for without the GIL: a forward in another thread holds it and takes
// the GIL back before it lets go of it. Setters and preparation hold it while they change the model.
std::unique_lock<std::mutex> lock_model(ModelHandle* handle) {
  std::unique_lock<std::mutex> lock(handle->busy, std::defer_lock);
  Py_BEGIN_ALLOW_THREADS
  lock.lock();
  Py_END_ALLOW_THREADS
  return lock;
}

// Keeps `obj` alive with the model and returns the buffer's data pointer.
template <typename T>
const T* keep(ModelHandle* handle, PyObject* obj, const Buffer& buffer) {
  Py_INCREF(obj);
  handle->arrays.push_back(obj);
  handle->prepared_for = nullptr;
  return buffer.data<T>();
}

bool built(const std::string& problem) { return check(problem.empty(), problem); }

PyObject* model_new(PyObject*, PyObject* args) {
  long long hidden, heads, intermediate, vocab, max_positions, type_vocab, layers;
  double eps;
  int activation, bi_attention;
  if (!PyArg_ParseTuple(args, "LLLLLLdipL", &hidden, &heads, &intermediate, &vocab, &max_positions, &type_vocab, &eps,
                        &activation, &bi_attention, &layers))
    return nullptr;
  auto* handle = new ModelHandle();
  if (!built(bitmaps::init_model(handle->model, hidden, heads, intermediate, vocab, max_positions, type_vocab, eps, activation,
                                 bi_attention != 0, layers))) {
    delete handle;
    return nullptr;
  }
  PyObject* capsule = PyCapsule_New(handle, kCapsule, drop_model);
  if (capsule == nullptr) delete handle;
  return capsule;
}

PyObject* model_table(PyObject*, PyObject* args) {
  PyObject *capsule, *data_obj, *scale_obj, *column_obj = Py_None;
  const char* name;
  int format;
  long long rows, dim;
  if (!PyArg_ParseTuple(args, "OsiLLOO|O", &capsule, &name, &format, &rows, &dim, &data_obj, &scale_obj, &column_obj))
    return nullptr;
  ModelHandle* handle = handle_of(capsule);
  if (handle == nullptr) return nullptr;
  const auto lock = lock_model(handle);
  static const char kinds[] = {'f', 'h', 'b', 'u', 'b', 'b'};  // the stored element per TableFormat id
  if (format < 0 || format >= static_cast<int>(sizeof kinds)) {  // set_table's message names the ids
    built(bitmaps::set_table(handle->model, name, format, rows, dim, nullptr, 0, nullptr, 0));
    return nullptr;
  }
  Buffer data, scale, column;
  if (!data.get(data_obj, "table", kinds[format], 2, false)) return nullptr;
  const bool scaled = format >= 2, by_column = column_obj != Py_None;
  if (scaled && !scale.get(scale_obj, "table scale", 'f', 1, false)) return nullptr;
  if (by_column && !column.get(column_obj, "table column scale", 'f', 1, false)) return nullptr;
  if (!built(bitmaps::set_table(handle->model, name, format, rows, dim, data.data<void>(), data.size(),
                                scaled ? scale.data<float>() : nullptr, scaled ? scale.size() : 0,
                                by_column ? column.data<float>() : nullptr, by_column ? column.size() : 0)))
    return nullptr;
  keep<void>(handle, data_obj, data);
  if (scaled) keep<float>(handle, scale_obj, scale);
  if (by_column) keep<float>(handle, column_obj, column);
  Py_RETURN_NONE;
}

// model_vector(model, name, layer, array): token_type (type_vocab x hidden), decoder_bias (vocab),
// and LayerNorms "<embeddings|attention|output|head>.<weight|bias>" (hidden).
PyObject* model_vector(PyObject*, PyObject* args) {
  PyObject *capsule, *array_obj;
  const char* name;
  long long layer;
  if (!PyArg_ParseTuple(args, "OsLO", &capsule, &name, &layer, &array_obj)) return nullptr;
  ModelHandle* handle = handle_of(capsule);
  if (handle == nullptr) return nullptr;
  const auto lock = lock_model(handle);
  Buffer array;
  if (!array.get(array_obj, name, 'f', std::string(name) == "token_type" ? 2 : 1, false) ||
      !built(bitmaps::set_vector(handle->model, name, layer, array.data<float>(), array.size())))
    return nullptr;
  keep<float>(handle, array_obj, array);
  Py_RETURN_NONE;
}

// model_linear(model, layer (-1: the head), slot, scheme, in, out, weight, scale|None, bias|None, input_alpha, input_beta)
// One linear's buffers, checked (model_linear, layer_new): the sign words (planes x out x words),
// or out x in floats for a dense linear; the scale (packed schemes) and the optional bias.
struct LinearBuffers {
  Buffer weight, scale, bias;
  bool dense = false, has_bias = false;
  bool get(int scheme, PyObject* weight_obj, PyObject* scale_obj, PyObject* bias_obj) {
    dense = scheme == static_cast<int>(bitmaps::Scheme::kDense);
    has_bias = bias_obj != Py_None;
    bitmaps::LinearWeights probe;  // how many sign planes the scheme stores (ternary: 2, planes x out x words)
    probe.scheme = static_cast<bitmaps::Scheme>(scheme);
    const int weight_dims = !dense && probe.planes() == 2 ? 3 : 2;
    return weight.get(weight_obj, dense ? "weight" : "packed_weight", dense ? 'f' : 'u', weight_dims, false) &&
           (dense || scale.get(scale_obj, "scale", 'f', 1, false)) &&
           (!has_bias || bias.get(bias_obj, "bias", 'f', 1, false));
  }
  // make_linear's arguments after the scheme, in and out: the pointers and their sizes
  const void* weight_data() const { return weight.data<void>(); }
  const float* scale_data() const { return dense ? nullptr : scale.data<float>(); }
  int64_t scale_size() const { return dense ? 0 : scale.size(); }
  const float* bias_data() const { return has_bias ? bias.data<float>() : nullptr; }
  int64_t bias_size() const { return has_bias ? bias.size() : 0; }
};

PyObject* model_linear(PyObject*, PyObject* args) {
  PyObject *capsule, *weight_obj, *scale_obj, *bias_obj;
  const char* slot;
  long long layer, in, out;
  int scheme;
  double input_alpha, input_beta;
  if (!PyArg_ParseTuple(args, "OLsiLLOOOdd", &capsule, &layer, &slot, &scheme, &in, &out, &weight_obj, &scale_obj, &bias_obj,
                        &input_alpha, &input_beta))
    return nullptr;
  ModelHandle* handle = handle_of(capsule);
  if (handle == nullptr) return nullptr;
  const auto lock = lock_model(handle);
  LinearBuffers b;
  if (!b.get(scheme, weight_obj, scale_obj, bias_obj)) return nullptr;
  if (!built(bitmaps::set_linear(handle->model, layer, slot, scheme, in, out, b.weight_data(), b.weight.size(), b.scale_data(),
                                 b.scale_size(), b.bias_data(), b.bias_size(), input_alpha, input_beta)))
    return nullptr;
  keep<void>(handle, weight_obj, b.weight);
  if (!b.dense) keep<float>(handle, scale_obj, b.scale);
  if (b.has_bias) keep<float>(handle, bias_obj, b.bias);
  Py_RETURN_NONE;
}

// model_quantizers(model, layer, q_mode, q_alpha, q_beta, k_..., v_..., probs_...)
PyObject* model_quantizers(PyObject*, PyObject* args) {
  PyObject* capsule;
  long long layer;
  int modes[4];
  double alpha[4], beta[4];
  if (!PyArg_ParseTuple(args, "OLiddiddiddidd", &capsule, &layer, &modes[0], &alpha[0], &beta[0], &modes[1], &alpha[1], &beta[1],
                        &modes[2], &alpha[2], &beta[2], &modes[3], &alpha[3], &beta[3]))
    return nullptr;
  ModelHandle* handle = handle_of(capsule);
  if (handle == nullptr) return nullptr;
  const auto lock = lock_model(handle);
  if (!built(bitmaps::set_quantizers(handle->model, layer, modes, alpha, beta))) return nullptr;
  handle->prepared_for = nullptr;
  Py_RETURN_NONE;
}

// Prepares the model for `kernels` once, and again when the path changed to one that needs
// derived layouts the first lacked (or no longer needs them): the layouts follow the path.
bool ensure_prepared(ModelHandle* handle, const KernelTable& kernels) {
  if (handle->prepared_for && bitmaps::same_weight_layouts(*handle->prepared_for, kernels))
    return true;
  const auto lock = lock_model(handle);  // a forward in another thread reads the layouts
  const char* error = nullptr;
  handle->prepared_for = nullptr;
  if (!handle->model.prepare(kernels, &error, &handle->error)) {
    PyErr_Format(PyExc_ValueError, "incomplete encoder model: %s", error);
    return false;
  }
  handle->prepared_for = &kernels;
  return true;
}

PyObject* model_prepare(PyObject*, PyObject* args) {
  PyObject* capsule;
  if (!PyArg_ParseTuple(args, "O", &capsule)) return nullptr;
  ModelHandle* handle = handle_of(capsule);
  if (handle == nullptr || !ensure_prepared(handle, bitmaps::active_kernels())) return nullptr;
  Py_RETURN_NONE;
}

// model_forward(model, ids (B, T) int64, mask (B, T) int32, type_ids (B, T) int64 | None, out (B, T, H) float32, threads,
//               skip_padding = False, rows_per_pass = 0 (encoder_forward's default))
PyObject* model_forward(PyObject*, PyObject* args) {
  PyObject *capsule, *ids_obj, *mask_obj, *types_obj, *out_obj;
  int threads, skip_padding = 0;
  long long rows_per_pass = 0;
  if (!PyArg_ParseTuple(args, "OOOOOi|pL", &capsule, &ids_obj, &mask_obj, &types_obj, &out_obj, &threads, &skip_padding,
                        &rows_per_pass))
    return nullptr;
  if (!check(rows_per_pass >= 0, "rows_per_pass must be 0 (the default) or a positive number of rows")) return nullptr;
  ModelHandle* handle = handle_of(capsule);
  const KernelTable& kernels = bitmaps::active_kernels();  // one path for the preparation and the run
  if (handle == nullptr || !ensure_prepared(handle, kernels)) return nullptr;
  const bitmaps::EncoderModel& m = handle->model;
  Buffer ids, mask, types, out;
  if (!ids.get(ids_obj, "token_ids", 'q', 2, false) || !mask.get(mask_obj, "mask", 'i', 2, false) ||
      !out.get(out_obj, "out", 'f', 3, true))
    return nullptr;
  const int64_t batch = ids.dim(0), seq = ids.dim(1);
  if (!check(mask.dim(0) == batch && mask.dim(1) == seq, "mask must have the shape of token_ids") ||
      !check(out.dim(0) == batch && out.dim(1) == seq && out.dim(2) == m.hidden, "out must be (batch, seq, hidden)") ||
      !check(seq <= m.max_positions, [&] { return "sequence of " + std::to_string(seq) + " tokens is longer than max_position_embeddings " +
                                         std::to_string(m.max_positions); }))
    return nullptr;
  const int64_t* type_ptr = nullptr;
  if (types_obj != Py_None) {
    if (!types.get(types_obj, "type_ids", 'q', 2, false) || !check(types.dim(0) == batch && types.dim(1) == seq, "type_ids must have the shape of token_ids"))
      return nullptr;
    type_ptr = types.data<int64_t>();
    for (int64_t i = 0; i < batch * seq; ++i)
      if (!check(type_ptr[i] >= 0 && type_ptr[i] < m.type_vocab, "type id out of range")) return nullptr;
  }
  for (int64_t i = 0; i < batch * seq; ++i)
    if (!check(ids.data<int64_t>()[i] >= 0 && ids.data<int64_t>()[i] < m.vocab,
               [&] { return "token id " + std::to_string(ids.data<int64_t>()[i]) + " is outside the vocabulary of " + std::to_string(m.vocab); }))
      return nullptr;
  if (batch * seq == 0) Py_RETURN_NONE;
  Py_BEGIN_ALLOW_THREADS
  std::lock_guard<std::mutex> lock(handle->busy);
  bitmaps::encoder_forward(m, kernels, ids.data<int64_t>(), mask.data<int32_t>(), type_ptr, batch, seq, out.data<float>(),
                           threads, handle->workspace, skip_padding != 0, rows_per_pass);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// model_logits(model, hidden (R, H) float32, out (R, vocab) float32, threads)
PyObject* model_logits(PyObject*, PyObject* args) {
  PyObject *capsule, *hidden_obj, *out_obj;
  int threads;
  if (!PyArg_ParseTuple(args, "OOOi", &capsule, &hidden_obj, &out_obj, &threads)) return nullptr;
  ModelHandle* handle = handle_of(capsule);
  const KernelTable& kernels = bitmaps::active_kernels();  // one path for the preparation and the run
  if (handle == nullptr || !ensure_prepared(handle, kernels)) return nullptr;
  const bitmaps::EncoderModel& m = handle->model;
  if (!check(m.has_head, "this model has no masked-LM head")) return nullptr;
  Buffer hidden, out;
  if (!hidden.get(hidden_obj, "hidden", 'f', 2, false) || !out.get(out_obj, "out", 'f', 2, true)) return nullptr;
  const int64_t rows = hidden.dim(0);
  if (!check(hidden.dim(1) == m.hidden, "hidden must be (rows, hidden_size)") ||
      !check(out.dim(0) == rows && out.dim(1) == m.vocab, "out must be (rows, vocab_size)"))
    return nullptr;
  if (rows == 0) Py_RETURN_NONE;
  Py_BEGIN_ALLOW_THREADS
  std::lock_guard<std::mutex> lock(handle->busy);
  bitmaps::mlm_logits(m, kernels, hidden.data<float>(), rows, out.data<float>(), threads, handle->workspace);
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// model_profile(model, enable) -> {phase: seconds} accumulated since the last call; enable turns
// the timing on or off from now on
PyObject* model_profile(PyObject*, PyObject* args) {
  PyObject* capsule;
  int enable;
  if (!PyArg_ParseTuple(args, "Op", &capsule, &enable)) return nullptr;
  ModelHandle* handle = handle_of(capsule);
  if (handle == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(handle->busy);
  bitmaps::Profile& profile = handle->workspace.profile;
  PyObject* result = PyDict_New();
  for (const auto& entry : profile.seconds) {
    PyObject* value = PyFloat_FromDouble(entry.second);
    PyDict_SetItemString(result, entry.first, value);
    Py_DECREF(value);
  }
  profile.seconds.clear();
  profile.enabled = enable != 0;
  return result;
}

// ---- one linear on its own: what bitmaps_allennlp's packed modules run, through run_linear,
// the code the encoder runs for each of its linears (one implementation per scheme, the ternary
// fused product and BiT's fronts included). A capsule holding the layer, the arrays it points into
// and its scratch; prepared for the active path on first use, and again after a switch to a path
// that reads other weight layouts.

struct LayerHandle {
  bitmaps::LinearWeights weights;
  std::vector<PyObject*> arrays;  // referenced for as long as the layer lives
  bitmaps::LinearScratch scratch;
  std::mutex busy;  // one forward at a time per layer (the scratch is shared)
  const KernelTable* prepared_for = nullptr;
  ~LayerHandle() {
    for (PyObject* array : arrays) Py_DECREF(array);
  }
};

constexpr const char* kLayerCapsule = "bitmaps_runtime.Linear";

void drop_layer(PyObject* capsule) { delete static_cast<LayerHandle*>(PyCapsule_GetPointer(capsule, kLayerCapsule)); }

// layer_new(scheme, in, out, weight, scale_or_None, bias_or_None, input_alpha, input_beta)
PyObject* layer_new(PyObject*, PyObject* args) {
  PyObject *weight_obj, *scale_obj, *bias_obj;
  long long in, out;
  int scheme;
  double input_alpha, input_beta;
  if (!PyArg_ParseTuple(args, "iLLOOOdd", &scheme, &in, &out, &weight_obj, &scale_obj, &bias_obj, &input_alpha, &input_beta))
    return nullptr;
  if (!check(scheme >= 0 && scheme < bitmaps::kSchemeCount, "unknown scheme id " + std::to_string(scheme))) return nullptr;
  LinearBuffers b;
  if (!b.get(scheme, weight_obj, scale_obj, bias_obj)) return nullptr;
  auto* handle = new LayerHandle();
  if (!built(bitmaps::make_linear(handle->weights, "linear", scheme, in, out, b.weight_data(), b.weight.size(), b.scale_data(),
                                  b.scale_size(), b.bias_data(), b.bias_size(), input_alpha, input_beta))) {
    delete handle;
    return nullptr;
  }
  for (PyObject* obj : {weight_obj, b.dense ? nullptr : scale_obj, b.has_bias ? bias_obj : nullptr})
    if (obj != nullptr) Py_INCREF(obj), handle->arrays.push_back(obj);
  PyObject* capsule = PyCapsule_New(handle, kLayerCapsule, drop_layer);
  if (capsule == nullptr) delete handle;
  return capsule;
}

// layer_forward(layer, x (m, in) float32, out (m, out) float32, threads)
PyObject* layer_forward(PyObject*, PyObject* args) {
  PyObject *capsule, *x_obj, *out_obj;
  int threads;
  if (!PyArg_ParseTuple(args, "OOOi", &capsule, &x_obj, &out_obj, &threads)) return nullptr;
  auto* handle = static_cast<LayerHandle*>(PyCapsule_GetPointer(capsule, kLayerCapsule));  // sets TypeError if not one
  if (handle == nullptr) return nullptr;
  const bitmaps::LinearWeights& w = handle->weights;
  Buffer x, out;
  if (!x.get(x_obj, "x", 'f', 2, false) || !out.get(out_obj, "out", 'f', 2, true)) return nullptr;
  const int64_t m = x.dim(0);
  if (!check(x.dim(1) == w.in, [&] { return "x has shape " + shape(x, 2) + ", expected rows of " + std::to_string(w.in); }) ||
      !check(out.dim(0) == m && out.dim(1) == w.out,
             [&] { return "out has shape " + shape(out, 2) + ", expected (" + std::to_string(m) + ", " + std::to_string(w.out) + ")"; }))
    return nullptr;
  const KernelTable& kernels = bitmaps::active_kernels();  // one path for the preparation and the run
  const char* error = nullptr;
  bool prepared = true;
  Py_BEGIN_ALLOW_THREADS
  std::lock_guard<std::mutex> lock(handle->busy);
  if (!handle->prepared_for || !bitmaps::same_weight_layouts(*handle->prepared_for, kernels)) {
    handle->prepared_for = nullptr;
    prepared = handle->weights.prepare(&error, kernels);
    if (prepared) handle->prepared_for = &kernels;
  }
  if (prepared && m > 0) bitmaps::run_linear(kernels, w, x.data<float>(), m, out.data<float>(), threads, handle->scratch);
  Py_END_ALLOW_THREADS
  if (!prepared) return PyErr_Format(PyExc_ValueError, "invalid linear: %s", error);
  Py_RETURN_NONE;
}

PyObject* isa(PyObject*, PyObject*) { return PyUnicode_FromString(bitmaps::active_kernels().isa); }

PyObject* reads_nibble_layout(PyObject*, PyObject*) { return PyBool_FromLong(bitmaps::reads_nibble_layout(bitmaps::active_kernels())); }
PyObject* reads_octet_layout(PyObject*, PyObject*) { return PyBool_FromLong(bitmaps::reads_octet_layout(bitmaps::active_kernels())); }

PyObject* default_isa(PyObject*, PyObject*) { return PyUnicode_FromString(bitmaps::default_kernels()->isa); }

PyObject* available_isas(PyObject*, PyObject*) {
  const auto tables = bitmaps::available_kernels();
  PyObject* names = PyList_New(static_cast<Py_ssize_t>(tables.size()));
  for (size_t i = 0; i < tables.size(); ++i) PyList_SET_ITEM(names, i, PyUnicode_FromString(tables[i]->isa));
  return names;
}

PyObject* set_isa(PyObject*, PyObject* args) {
  const char* name;
  if (!PyArg_ParseTuple(args, "s", &name)) return nullptr;
  if (!bitmaps::set_active_kernels(name)) {
    std::string available;
    for (const KernelTable* table : bitmaps::available_kernels()) available += std::string(" ") + table->isa;
    PyErr_Format(PyExc_ValueError, "kernel path '%s' is not available on this machine (available:%s)", name, available.c_str());
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyMethodDef kMethods[] = {
    {"pack_signs", pack_signs, METH_VARARGS, "pack_signs(x, out, mean_abs_or_None)"},
    {"xnor_gemm", xnor_gemm, METH_VARARGS, "xnor_gemm(a, b, k, out, threads)"},
    {"reads_nibble_layout", reads_nibble_layout, METH_NOARGS, "whether the kernel path in use reads W1A1's nibble layout"},
    {"reads_octet_layout", reads_octet_layout, METH_NOARGS, "whether the kernel path in use reads W1A1's column octets"},
    {"quantize_int8_rows", quantize_int8_rows, METH_VARARGS, "quantize_int8_rows(x, q_out, step_out): the active path's int8 quantizer"},
    {"layer_new", layer_new, METH_VARARGS,
     "layer_new(scheme, in, out, weight, scale_or_None, bias_or_None, input_alpha, input_beta): one linear of any scheme"},
    {"layer_forward", layer_forward, METH_VARARGS, "layer_forward(layer, x, out, threads): the linear on x, as the encoder runs it"},
    {"model_new", model_new, METH_VARARGS, "model_new(hidden, heads, intermediate, vocab, max_positions, type_vocab, eps, activation, bi_attention, layers)"},
    {"model_table", model_table, METH_VARARGS, "model_table(model, 'word'|'position', format, rows, dim, data, scale_or_None[, column_scale])"},
    {"model_vector", model_vector, METH_VARARGS, "model_vector(model, name, layer, array)"},
    {"model_linear", model_linear, METH_VARARGS, "model_linear(model, layer, slot, scheme, in, out, weight, scale, bias, input_alpha, input_beta)"},
    {"model_quantizers", model_quantizers, METH_VARARGS, "model_quantizers(model, layer, q_mode, q_alpha, q_beta, ... for k, v, probs)"},
    {"model_prepare", model_prepare, METH_VARARGS, "model_prepare(model): checks every part is set and builds derived layouts"},
    {"model_forward", model_forward, METH_VARARGS, "model_forward(model, ids, mask, type_ids_or_None, out, threads)"},
    {"model_logits", model_logits, METH_VARARGS, "model_logits(model, hidden, out, threads)"},
    {"model_profile", model_profile, METH_VARARGS, "model_profile(model, enable) -> {phase: seconds} since the last call"},
    {"isa", isa, METH_NOARGS, "the kernel path in use"},
    {"default_isa", default_isa, METH_NOARGS, "the kernel path chosen for this CPU when none is forced"},
    {"available_isas", available_isas, METH_NOARGS, "kernel paths this machine can run, in order of the instruction sets they need"},
    {"set_isa", set_isa, METH_VARARGS, "set_isa(name): use this kernel path"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_native", "Bitmaps packed inference core: 1-bit kernels and the encoder", -1, kMethods};

}  // namespace

PyMODINIT_FUNC PyInit__native() { return PyModule_Create(&kModule); }
