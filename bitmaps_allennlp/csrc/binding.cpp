// The only file that knows Python: checks buffers (dtype, shape, contiguity), releases the GIL,
// splits the work into tiles for the thread pool and calls the active kernel table.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "dispatch.h"
#include "int8_lut.h"
#include "thread_pool.h"

namespace {

using bitmaps::KernelTable;

class Buffer {
 public:
  ~Buffer() {
    if (held_) PyBuffer_Release(&view_);
  }
  // kind: 'f' float32, 'u' uint64, 'i' int32, 'B' uint8, 'b' int8
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
                    (kind == 'B' && view_.itemsize == 1 && std::strcmp(format, "B") == 0) ||
                    (kind == 'b' && view_.itemsize == 1 && std::strcmp(format, "b") == 0);
    if (!ok) {
      const char* expected = kind == 'f' ? "float32" : kind == 'u' ? "uint64" : kind == 'i' ? "int32" : kind == 'B' ? "uint8" : "int8";
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
  template <typename T>
  T* data() const { return static_cast<T*>(view_.buf); }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

bool check(bool condition, const std::string& message) {
  if (!condition) PyErr_SetString(PyExc_ValueError, message.c_str());
  return condition;
}

std::string shape(const Buffer& b, int ndim) {
  std::string s = "(";
  for (int i = 0; i < ndim; ++i) s += std::to_string(b.dim(i)) + (i + 1 < ndim ? ", " : ")");
  return s;
}

// Tiles of 16 rows x 64 columns. `work` counts inner-loop operations (a float add, or one 64-bit
// XOR-popcount); below ~1M of them, waking the pool (tens of microseconds on a busy machine)
// costs more than it saves, so the caller's thread does it all.
template <typename Fn>
void run_tiles(int64_t m, int64_t n, int64_t work, int threads, Fn fn) {
  const int64_t row_block = 16, col_block = 64;
  const int64_t row_tiles = (m + row_block - 1) / row_block, col_tiles = (n + col_block - 1) / col_block;
  if (work < (int64_t{1} << 20)) threads = 1;
  bitmaps::parallel_for(row_tiles * col_tiles, threads, [&](int64_t task) {
    const int64_t r = task / col_tiles, c = task % col_tiles;
    fn(r * row_block, std::min(m, (r + 1) * row_block), c * col_block, std::min(n, (c + 1) * col_block));
  });
}

PyObject* pack_signs(PyObject*, PyObject* args) {
  PyObject *x_obj, *out_obj, *mean_obj;
  if (!PyArg_ParseTuple(args, "OOO", &x_obj, &out_obj, &mean_obj)) return nullptr;
  Buffer x, out, mean_abs;
  if (!x.get(x_obj, "x", 'f', 2, false) || !out.get(out_obj, "out", 'u', 2, true)) return nullptr;
  const int64_t rows = x.dim(0), k = x.dim(1);
  if (!check(k > 0, "x must have at least one column")) return nullptr;
  if (!check(out.dim(0) == rows && out.dim(1) == bitmaps::words_per_row(k),
             "out has shape " + shape(out, 2) + ", expected (" + std::to_string(rows) + ", " +
                 std::to_string(bitmaps::words_per_row(k)) + ")"))
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
               "packed operands " + shape(a, 2) + " and " + shape(b, 2) + " do not hold rows of k=" +
                   std::to_string(k) + " bits (" + std::to_string(words) + " words)");
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
  if (!check(out.dim(0) == m && out.dim(1) == n, "out has shape " + shape(out, 2) + ", expected (m, n)")) return nullptr;
  const KernelTable& kernels = bitmaps::active_kernels();
  Py_BEGIN_ALLOW_THREADS
  run_tiles(m, n, m * n * words, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.xnor_gemm(a.data<uint64_t>(), b.data<uint64_t>(), out.data<int32_t>(), m0, m1, n0, n1, n, words, k);
  });
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

bool get_bias(PyObject* obj, Buffer& bias, int64_t n, const float** ptr) {
  *ptr = nullptr;
  if (obj == Py_None) return true;
  if (!bias.get(obj, "bias", 'f', 1, false)) return false;
  if (!check(bias.dim(0) == n, "bias must have one entry per output")) return false;
  *ptr = bias.data<float>();
  return true;
}

// The arguments both fused linears take: (x, weight, alpha, bias_or_None, out, threads), checked.
struct LinearArgs {
  Buffer x, w, alpha, bias, out;
  const float* bias_ptr = nullptr;
  int threads = 1;
  int64_t m = 0, k = 0, n = 0, words = 0;

  bool parse(PyObject* args) {
    PyObject *x_obj, *w_obj, *alpha_obj, *bias_obj, *out_obj;
    if (!PyArg_ParseTuple(args, "OOOOOi", &x_obj, &w_obj, &alpha_obj, &bias_obj, &out_obj, &threads)) return false;
    if (!x.get(x_obj, "x", 'f', 2, false) || !w.get(w_obj, "weight", 'u', 2, false) ||
        !alpha.get(alpha_obj, "alpha", 'f', 1, false) || !out.get(out_obj, "out", 'f', 2, true))
      return false;
    m = x.dim(0), k = x.dim(1), n = w.dim(0), words = w.dim(1);
    return get_bias(bias_obj, bias, n, &bias_ptr) &&
           check(k > 0 && words == bitmaps::words_per_row(k),
                 "weight " + shape(w, 2) + " does not hold rows of " + std::to_string(k) + " bits") &&
           check(alpha.dim(0) == n, "alpha needs one entry per output") &&
           check(out.dim(0) == m && out.dim(1) == n, "out has shape " + shape(out, 2) + ", expected (m, n)");
  }
};

// XNOR-Net linear in one call: binarize-and-pack the activations (with their mean |x| scale)
// into scratch, then the popcount GEMM with the scales and bias applied in its epilogue.
PyObject* binary_linear_w1a1(PyObject*, PyObject* args) {
  LinearArgs a;
  if (!a.parse(args)) return nullptr;
  const KernelTable& kernels = bitmaps::active_kernels();
  Py_BEGIN_ALLOW_THREADS
  std::vector<uint64_t> packed(static_cast<size_t>(a.m * a.words));
  std::vector<float> beta(static_cast<size_t>(a.m));
  const int64_t row_block = 16;
  const int pack_threads = a.m * a.k < (int64_t{1} << 20) ? 1 : a.threads;
  bitmaps::parallel_for((a.m + row_block - 1) / row_block, pack_threads, [&](int64_t task) {
    const int64_t r0 = task * row_block, rows = std::min(row_block, a.m - r0);
    kernels.pack_signs(a.x.data<float>() + r0 * a.k, rows, a.k, a.k, packed.data() + r0 * a.words, beta.data() + r0);
  });
  run_tiles(a.m, a.n, a.m * a.n * a.words, a.threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.xnor_linear(packed.data(), a.w.data<uint64_t>(), beta.data(), a.alpha.data<float>(), a.bias_ptr,
                        a.out.data<float>(), m0, m1, n0, n1, a.n, a.words, a.k);
  });
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// Binary weights, real activations.
PyObject* binary_weight_linear(PyObject*, PyObject* args) {
  LinearArgs a;
  if (!a.parse(args)) return nullptr;
  const KernelTable& kernels = bitmaps::active_kernels();
  Py_BEGIN_ALLOW_THREADS
  run_tiles(a.m, a.n, a.m * a.n * a.k, a.threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.binary_weight_linear(a.x.data<float>(), a.k, a.w.data<uint64_t>(), a.alpha.data<float>(), a.bias_ptr,
                                 a.out.data<float>(), m0, m1, n0, n1, a.n, a.words, a.k);
  });
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// The W1A8 weight layout (int8_lut.h), computed once per layer by the caller.
PyObject* lut_weight_layout(PyObject*, PyObject* args) {
  PyObject *w_obj, *out_obj;
  long long k;
  if (!PyArg_ParseTuple(args, "OLO", &w_obj, &k, &out_obj)) return nullptr;
  Buffer w, out;
  if (!w.get(w_obj, "weight", 'u', 2, false) || !out.get(out_obj, "out", 'B', 2, true)) return nullptr;
  const int64_t n = w.dim(0), words = w.dim(1);
  if (!check(k > 0 && words == bitmaps::words_per_row(k), "weight " + shape(w, 2) + " does not hold rows of " + std::to_string(k) + " bits") ||
      !check(out.dim(0) == bitmaps::lut_column_blocks(n) && out.dim(1) == bitmaps::lut_groups(k) * 16,
             "out has shape " + shape(out, 2) + ", expected (" + std::to_string(bitmaps::lut_column_blocks(n)) + ", " +
                 std::to_string(bitmaps::lut_groups(k) * 16) + ")"))
    return nullptr;
  Py_BEGIN_ALLOW_THREADS
  bitmaps::lut_weight_layout(w.data<uint64_t>(), n, words, out.data<uint8_t>());
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

// W1A8 in one call: quantize each row to int8 (absmax per row), build its lookup tables when the
// active path uses them, then the W1A8 GEMM with the scales and bias in its epilogue.
PyObject* binary_linear_w1a8(PyObject*, PyObject* args) {
  PyObject *x_obj, *w_obj, *alpha_obj, *bias_obj, *out_obj;
  int threads;
  if (!PyArg_ParseTuple(args, "OOOOOi", &x_obj, &w_obj, &alpha_obj, &bias_obj, &out_obj, &threads)) return nullptr;
  Buffer x, wlut, alpha, bias, out;
  if (!x.get(x_obj, "x", 'f', 2, false) || !wlut.get(w_obj, "lut_weight", 'B', 2, false) ||
      !alpha.get(alpha_obj, "alpha", 'f', 1, false) || !out.get(out_obj, "out", 'f', 2, true))
    return nullptr;
  const int64_t m = x.dim(0), k = x.dim(1), n = alpha.dim(0);
  const float* bias_ptr = nullptr;
  if (!get_bias(bias_obj, bias, n, &bias_ptr) || !check(k > 0, "x must have at least one column") ||
      !check(wlut.dim(0) == bitmaps::lut_column_blocks(n) && wlut.dim(1) == bitmaps::lut_groups(k) * 16,
             "lut_weight " + shape(wlut, 2) + " does not match " + std::to_string(n) + " outputs of " + std::to_string(k) + " inputs") ||
      !check(out.dim(0) == m && out.dim(1) == n, "out has shape " + shape(out, 2) + ", expected (m, n)"))
    return nullptr;
  const KernelTable& kernels = bitmaps::active_kernels();
  const int64_t groups = bitmaps::lut_groups(k);
  Py_BEGIN_ALLOW_THREADS
  std::vector<int8_t> q(static_cast<size_t>(m * groups * 4));
  std::vector<uint8_t> luts(kernels.w1a8_uses_luts ? static_cast<size_t>(m * groups * 32) : 0);
  std::vector<float> inv_scale(static_cast<size_t>(m));
  std::vector<int32_t> rowsum(static_cast<size_t>(m));
  const int64_t row_block = 16;
  const int prep_threads = m * k < (int64_t{1} << 18) ? 1 : threads;
  bitmaps::parallel_for((m + row_block - 1) / row_block, prep_threads, [&](int64_t task) {
    const int64_t r0 = task * row_block, rows = std::min(row_block, m - r0);
    kernels.quantize_rows_int8(x.data<float>() + r0 * k, rows, k, k, q.data() + r0 * groups * 4, inv_scale.data() + r0,
                                rowsum.data() + r0);
    if (kernels.w1a8_uses_luts) bitmaps::build_luts(q.data() + r0 * groups * 4, rows, groups, luts.data() + r0 * groups * 32);
  });
  // one table lookup covers 4 multiply-adds: count work like the other kernels do
  run_tiles(m, n, m * n * groups, threads, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    kernels.w1a8_linear(luts.data(), q.data(), rowsum.data(), inv_scale.data(), wlut.data<uint8_t>(), alpha.data<float>(), bias_ptr,
                       out.data<float>(), m0, m1, n0, n1, n, groups);
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
      !check(q.dim(0) == m && q.dim(1) == k, "q has shape " + shape(q, 2) + ", expected the shape of x") ||
      !check(step.dim(0) == m, "step must have one entry per row of x"))
    return nullptr;
  const int64_t stride = bitmaps::lut_groups(k) * 4;  // the kernels' padded row
  std::vector<int8_t> padded(static_cast<size_t>(m * stride));
  std::vector<int32_t> rowsum(static_cast<size_t>(m));
  bitmaps::active_kernels().quantize_rows_int8(x.data<float>(), m, k, k, padded.data(), step.data<float>(), rowsum.data());
  for (int64_t r = 0; r < m; ++r) std::memcpy(q.data<int8_t>() + r * k, padded.data() + r * stride, static_cast<size_t>(k));
  Py_RETURN_NONE;
}

PyObject* isa(PyObject*, PyObject*) { return PyUnicode_FromString(bitmaps::active_kernels().isa); }

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
    {"binary_linear_w1a1", binary_linear_w1a1, METH_VARARGS, "binary_linear_w1a1(x, weight, alpha, bias_or_None, out, threads)"},
    {"binary_weight_linear", binary_weight_linear, METH_VARARGS, "binary_weight_linear(x, weight, alpha, bias_or_None, out, threads)"},
    {"lut_weight_layout", lut_weight_layout, METH_VARARGS, "lut_weight_layout(weight, k, out): W1A8 weight layout"},
    {"binary_linear_w1a8", binary_linear_w1a8, METH_VARARGS, "binary_linear_w1a8(x, lut_weight, alpha, bias_or_None, out, threads)"},
    {"quantize_int8_rows", quantize_int8_rows, METH_VARARGS, "quantize_int8_rows(x, q_out, step_out): the active path's int8 quantizer"},
    {"isa", isa, METH_NOARGS, "the kernel path in use"},
    {"default_isa", default_isa, METH_NOARGS, "the kernel path chosen for this CPU when none is forced"},
    {"available_isas", available_isas, METH_NOARGS, "kernel paths this machine can run, in order of the instruction sets they need"},
    {"set_isa", set_isa, METH_VARARGS, "set_isa(name): use this kernel path"},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "_native", "Bitmaps 1-bit CPU kernels", -1, kMethods};

}  // namespace

PyMODINIT_FUNC PyInit__native() { return PyModule_Create(&kModule); }
