// The C++ encoder end to end against a golden output written on x86 by the torch reference
// (runtime/tests/make_golden.py): replays the recorded model-building steps with the C++ model
// builder (model_builder.h), runs the forward pass on every kernel path of this CPU (or the one
// BITMAPS_KERNELS names), and compares the last hidden states at the real (unpadded) positions.
// Usage: test_encoder_golden FIXTURE. Exit status 0 when all paths agree.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dispatch.h"
#include "encoder.h"
#include "model_builder.h"

using namespace bitmaps;

namespace {

struct Value {
  char tag = 'n';
  int64_t i = 0;
  double d = 0;
  std::string s;
  char dtype = 0;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  const void* data() const { return tag == 'a' ? bytes.data() : nullptr; }
};

class Reader {
 public:
  explicit Reader(std::vector<uint8_t> data) : data_(std::move(data)) {}
  template <typename T>
  T read() {
    T value;
    need(sizeof(T));
    std::memcpy(&value, data_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  Value value() {
    Value v;
    v.tag = static_cast<char>(read<uint8_t>());
    if (v.tag == 'i') v.i = read<int64_t>();
    else if (v.tag == 'd') v.d = read<double>();
    else if (v.tag == 's') {
      const uint32_t n = read<uint32_t>();
      need(n);
      v.s.assign(reinterpret_cast<const char*>(data_.data() + at_), n);
      at_ += n;
    } else if (v.tag == 'a') {
      v.dtype = static_cast<char>(read<uint8_t>());
      const uint32_t dims = read<uint32_t>();
      for (uint32_t k = 0; k < dims; ++k) v.shape.push_back(static_cast<int64_t>(read<uint64_t>()));
      const int64_t item = v.dtype == 'f' || v.dtype == 'i' ? 4 : v.dtype == 'e' ? 2 : v.dtype == 'b' ? 1 : 8;
      const size_t n = static_cast<size_t>(v.count() * item);
      need(n);
      v.bytes.assign(data_.begin() + at_, data_.begin() + at_ + n);
      at_ += n;
    } else if (v.tag != 'n') {
      fail("unknown value tag");
    }
    return v;
  }
  bool done() const { return at_ == data_.size(); }

 private:
  void need(size_t n) {
    if (at_ + n > data_.size()) fail("fixture is truncated");
  }
  [[noreturn]] static void fail(const char* what) {
    std::fprintf(stderr, "golden fixture: %s\n", what);
    std::exit(2);
  }
  std::vector<uint8_t> data_;
  size_t at_ = 0;
};

std::string replay(EncoderModel& m, const std::string& function, const std::vector<Value>& a) {
  auto f = [](const Value& v) { return static_cast<const float*>(v.data()); };
  if (function == "model_new")
    return init_model(m, a[0].i, a[1].i, a[2].i, a[3].i, a[4].i, a[5].i, a[6].d, static_cast<int>(a[7].i), a[8].i != 0,
                      a[9].i);
  if (function == "model_table")
    return set_table(m, a[0].s, static_cast<int>(a[1].i), a[2].i, a[3].i, a[4].data(), a[4].count(), f(a[5]),
                     a[5].tag == 'a' ? a[5].count() : 0, a.size() > 6 ? f(a[6]) : nullptr,
                     a.size() > 6 && a[6].tag == 'a' ? a[6].count() : 0);
  if (function == "model_vector") return set_vector(m, a[0].s, a[1].i, f(a[2]), a[2].count());
  if (function == "model_linear")
    return set_linear(m, a[0].i, a[1].s, static_cast<int>(a[2].i), a[3].i, a[4].i, a[5].data(), a[5].count(), f(a[6]),
                      a[6].tag == 'a' ? a[6].count() : 0, f(a[7]), a[7].tag == 'a' ? a[7].count() : 0, a[8].d, a[9].d);
  if (function == "model_quantizers") {
    int modes[4];
    double alpha[4], beta[4];
    for (int q = 0; q < 4; ++q) modes[q] = static_cast<int>(a[1 + 3 * q].i), alpha[q] = a[2 + 3 * q].d, beta[q] = a[3 + 3 * q].d;
    return set_quantizers(m, a[0].i, modes, alpha, beta);
  }
  if (function == "model_prepare") return "";
  return "unknown step " + function;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s FIXTURE\n", argv[0]);
    return 2;
  }
  std::ifstream file(argv[1], std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  Reader reader(std::vector<uint8_t>((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>()));
  char magic[8];
  for (char& c : magic) c = static_cast<char>(reader.read<uint8_t>());
  if (std::memcmp(magic, "BMGOLD1\n", 8) != 0) {
    std::fprintf(stderr, "%s is not a golden fixture\n", argv[1]);
    return 2;
  }
  // the values must outlive the model, which points into them
  std::vector<std::vector<Value>> steps;
  std::vector<std::string> functions;
  const uint32_t count = reader.read<uint32_t>();
  for (uint32_t k = 0; k < count; ++k) {
    functions.push_back(reader.value().s);
    std::vector<Value> args(reader.read<uint32_t>());
    for (Value& v : args) v = reader.value();
    steps.push_back(std::move(args));
  }
  const Value ids = reader.value(), mask = reader.value(), expected = reader.value();
  EncoderModel model;
  for (uint32_t k = 0; k < count; ++k) {
    const std::string problem = replay(model, functions[k], steps[k]);
    if (!problem.empty()) {
      std::fprintf(stderr, "step %u (%s): %s\n", k, functions[k].c_str(), problem.c_str());
      return 1;
    }
  }
  const char* error = nullptr;
  std::vector<char> where;
  if (!model.prepare(active_kernels(), &error, &where)) {  // the other paths run it with their fallbacks
    std::fprintf(stderr, "model: %s\n", error);
    return 1;
  }
  const int64_t batch = ids.shape[0], seq = ids.shape[1], hidden = model.hidden;
  const auto* want = static_cast<const float*>(expected.data());
  const auto* real = static_cast<const int32_t*>(mask.data());
  const char* forced = std::getenv("BITMAPS_KERNELS");
  int failures = 0, tested = 0;
  for (const KernelTable* table : available_kernels()) {
    if (forced && *forced && std::string(forced) != "auto" && std::string(forced) != table->isa) continue;
    for (int threads : {1, 2}) {
      std::vector<float> out(static_cast<size_t>(batch * seq * hidden));
      Workspace ws;
      encoder_forward(model, *table, static_cast<const int64_t*>(ids.data()), real, nullptr, batch, seq, out.data(), threads, ws);
      double worst = 0;
      for (int64_t r = 0; r < batch * seq; ++r)
        if (real[r])
          for (int64_t c = 0; c < hidden; ++c) worst = std::fmax(worst, std::fabs(out[r * hidden + c] - want[r * hidden + c]));
      const bool ok = worst < 1e-4;
      failures += !ok;
      std::printf("%s encoder end to end, %s path, %d thread(s): max |difference| %.2e against the torch reference\n",
                  ok ? "ok" : "FAIL", table->isa, threads, worst);
      // The batch in passes of fewer rows (each sequence alone; two, then one), with the padding
      // computed and left out: every row as in one pass, bit for bit, since no row's result may
      // depend on the rows beside it.
      for (bool skip_padding : {false, true}) {
        std::vector<float> whole(out.size());
        if (skip_padding) {
          Workspace ws_whole;
          encoder_forward(model, *table, static_cast<const int64_t*>(ids.data()), real, nullptr, batch, seq,
                          whole.data(), threads, ws_whole, true);
        } else {
          whole = out;
        }
        for (int64_t rows_per_pass : {int64_t{1}, 2 * seq}) {
          std::vector<float> passes(out.size(), -1.f);
          Workspace ws_passes;
          encoder_forward(model, *table, static_cast<const int64_t*>(ids.data()), real, nullptr, batch, seq,
                          passes.data(), threads, ws_passes, skip_padding, rows_per_pass);
          const bool same = std::memcmp(passes.data(), whole.data(), sizeof(float) * whole.size()) == 0;
          failures += !same;
          std::printf("%s encoder in passes of %lld rows%s, %s path, %d thread(s): %s one pass\n", same ? "ok" : "FAIL",
                      static_cast<long long>(rows_per_pass), skip_padding ? ", padding left out" : "", table->isa,
                      threads, same ? "the same bits as" : "differs from");
        }
      }
    }
    ++tested;
  }
  if (tested == 0) {
    std::fprintf(stderr, "no kernel path matched BITMAPS_KERNELS\n");
    return 1;
  }
  return failures ? 1 : 0;
}
