// One packed encoder forward (random weights; speed does not depend on their values) on the C++
// runtime's kernel table, for benchmarks/encoder_revisions.sh: built once per revision of
// runtime/csrc, so the same driver times each. Prints one JSON object: median milliseconds per
// forward for each scheme given, at batch 1 x seq 128 on the path BITMAPS_KERNELS selects.
// Usage: encoder_bench SHAPE(minilm|bert-base) THREADS CALLS SCHEME_ID...
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "dispatch.h"
#include "model_builder.h"

using namespace bitmaps;

namespace {

void check(const std::string& problem) {
  if (!problem.empty()) {
    std::fprintf(stderr, "encoder_bench: %s\n", problem.c_str());
    std::exit(2);
  }
}

// The model prepared for the path that will run it, on revisions from a319542 (prepare takes
// the kernel table); the earlier ones prepare without it (the overload taking `long`).
template <typename Model>
auto prepare_model(Model& m, const char** error, std::vector<char>* where, int)
    -> decltype(m.prepare(active_kernels(), error, where)) {
  return m.prepare(active_kernels(), error, where);
}
template <typename Model>
bool prepare_model(Model& m, const char** error, std::vector<char>* where, long) {
  return m.prepare(error, where);
}

double forward_ms(int64_t hidden, int64_t layers, int scheme, int threads, int calls) {
  const int64_t heads = hidden / 64, inter = 4 * hidden, vocab = 1000, positions = 512, seq = 128;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto floats = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = normal(rng) * 0.05f;
    return v;
  };
  auto words = [&](int64_t out, int64_t in) {
    std::vector<uint64_t> v(static_cast<size_t>(out * ((in + 63) / 64)));
    for (auto& x : v) x = rng();
    return v;
  };
  std::deque<std::vector<float>> keep_f;  // the model points into these: a deque never moves them
  std::deque<std::vector<uint64_t>> keep_w;
  EncoderModel m;
  check(init_model(m, hidden, heads, inter, vocab, positions, 2, 1e-12, 0, false, layers));
  keep_f.push_back(floats(vocab * hidden));
  check(set_table(m, "word", 0, vocab, hidden, keep_f.back().data(), vocab * hidden, nullptr, 0));
  keep_f.push_back(floats(positions * hidden));
  check(set_table(m, "position", 0, positions, hidden, keep_f.back().data(), positions * hidden, nullptr, 0));
  keep_f.push_back(floats(2 * hidden));
  check(set_vector(m, "token_type", -1, keep_f.back().data(), 2 * hidden));
  std::vector<float> ones(static_cast<size_t>(hidden), 1.f), zeros(static_cast<size_t>(hidden), 0.f);
  check(set_vector(m, "embeddings.weight", -1, ones.data(), hidden));
  check(set_vector(m, "embeddings.bias", -1, zeros.data(), hidden));
  struct Slot { const char* name; int64_t in, out; };
  const Slot slots[] = {{"query", hidden, hidden}, {"key", hidden, hidden}, {"value", hidden, hidden},
                        {"attention_output", hidden, hidden}, {"ffn_in", hidden, inter}, {"ffn_out", inter, hidden}};
  for (int64_t l = 0; l < layers; ++l) {
    for (const char* norm : {"attention.weight", "output.weight"}) check(set_vector(m, norm, l, ones.data(), hidden));
    for (const char* norm : {"attention.bias", "output.bias"}) check(set_vector(m, norm, l, zeros.data(), hidden));
    for (const Slot& s : slots) {
      const int planes = scheme == 5 || scheme == 6 ? 2 : 1;
      keep_w.push_back(words(planes * s.out, s.in));
      keep_f.push_back(floats(s.out));
      for (auto& a : keep_f.back()) a = std::abs(a) + 0.01f;
      const float* scale = keep_f.back().data();
      keep_f.push_back(floats(s.out));
      check(set_linear(m, l, s.name, scheme, s.in, s.out, keep_w.back().data(), static_cast<int64_t>(keep_w.back().size()),
                       scale, s.out, keep_f.back().data(), s.out, 1.0, 0.0));
    }
  }
  const char* error = nullptr;
  std::vector<char> where;
  if (!prepare_model(m, &error, &where, 0)) check(std::string("prepare: ") + (error ? error : "?"));
  std::vector<int64_t> ids(seq);
  for (int64_t t = 0; t < seq; ++t) ids[t] = static_cast<int64_t>(rng() % vocab);
  std::vector<int32_t> mask(seq, 1);
  std::vector<float> out(static_cast<size_t>(seq * hidden));
  Workspace ws;
  const KernelTable& kernels = active_kernels();
  encoder_forward(m, kernels, ids.data(), mask.data(), nullptr, 1, seq, out.data(), threads, ws);  // warm-up
  std::vector<double> times;
  for (int c = 0; c < calls; ++c) {
    const auto t0 = std::chrono::steady_clock::now();
    encoder_forward(m, kernels, ids.data(), mask.data(), nullptr, 1, seq, out.data(), threads, ws);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s minilm|bert-base THREADS CALLS SCHEME_ID...\n", argv[0]);
    return 2;
  }
  // the path BITMAPS_KERNELS names, as the Python runtime takes it (the C++ core alone picks the
  // CPU's best): without this the AVX2 figures asked for were the default path's
  const char* forced = std::getenv("BITMAPS_KERNELS");
  if (forced && *forced && !set_active_kernels(forced)) {
    std::fprintf(stderr, "kernel path %s is not available here\n", forced);
    return 2;
  }
  const std::string shape = argv[1];
  const int64_t hidden = shape == "minilm" ? 384 : 768, layers = shape == "minilm" ? 6 : 12;
  const int threads = std::atoi(argv[2]), calls = std::atoi(argv[3]);
  std::printf("{\"path\": \"%s\"", active_kernels().isa);
  for (int a = 4; a < argc; ++a) std::printf(", \"%s\": %.3f", argv[a], forward_ms(hidden, layers, std::atoi(argv[a]), threads, calls));
  std::printf("}\n");
}
