// The int8-input linears (W1A8, ternary W1.58A8) at 128 rows (or argv[2]) against the instruction they run on:
// each layer of MiniLM's and BERT-base's shapes through run_linear (quantizing its inputs, building
// tables where the path has them, the product and its epilogue), 1 thread, on the kernel path
// BITMAPS_KERNELS names (default: this CPU's), as int8 multiply-adds a second; and, on a CPU with
// AVX-512 VNNI, that of vpdpbusd alone (int8_peak_vnni.cpp), which ONNX Runtime's int8 GEMM also
// runs on there. Prints one JSON object. Built and run by benchmarks/int8_products.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernels.h"
#include "linear.h"

using namespace bitmaps;

double vnni_peak_macs_per_second();  // int8_peak_vnni.cpp

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const char* forced = std::getenv("BITMAPS_KERNELS");
  if (forced && *forced && !set_active_kernels(forced)) {
    std::fprintf(stderr, "kernel path %s is not available here\n", forced);
    return 2;
  }
  const KernelTable& kt = active_kernels();
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 21;
  const int64_t m = argc > 2 ? std::atoll(argv[2]) : 128;
  struct Shape {
    const char* name;
    int64_t k, n;
  } shapes[] = {{"minilm 384x384", 384, 384},   {"minilm 384x1536", 384, 1536},  {"minilm 1536x384", 1536, 384},
                {"bert-base 768x768", 768, 768}, {"bert-base 768x3072", 768, 3072}, {"bert-base 3072x768", 3072, 768}};
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  std::string layers;
  for (const Shape& shape : shapes) {
    const int64_t k = shape.k, n = shape.n, words = words_per_row(k);
    std::vector<float> x(m * k), scale(n, 0.01f), bias(n, 0.1f), y(m * n);
    for (auto& v : x) v = normal(rng);
    std::vector<uint64_t> w(2 * n * words);
    for (auto& v : w) v = rng();
    for (int64_t j = 0; j < 2 * n; ++j)
      if (k % 64) w[j * words + words - 1] &= (uint64_t{1} << (k % 64)) - 1;  // padding bits zero
    std::string fields;
    for (Scheme scheme : {Scheme::kW1A8, Scheme::kW158A8}) {
      LinearWeights layer;
      layer.scheme = scheme, layer.in = k, layer.out = n, layer.words = w.data(), layer.scale = scale.data(),
      layer.bias = bias.data();
      const char* error = nullptr;
      if (!layer.prepare(&error, kt)) {
        std::fprintf(stderr, "prepare: %s\n", error);
        return 1;
      }
      LinearScratch scratch;
      run_linear(kt, layer, x.data(), m, y.data(), 1, scratch);  // warm-up: scratch and caches
      const int calls = m * k * n > 128000000 ? 1 : m * k * n > 64000000 ? 3 : 10;
      std::vector<double> times;
      for (int r = 0; r < rounds; ++r) {
        const double start = now();
        for (int c = 0; c < calls; ++c) run_linear(kt, layer, x.data(), m, y.data(), 1, scratch);
        times.push_back((now() - start) / calls);
      }
      const double seconds = median(times);
      char field[160];
      std::snprintf(field, sizeof field, "%s\"%s_us\": %.1f, \"%s_gmacs\": %.1f", fields.empty() ? "" : ", ",
                    scheme == Scheme::kW1A8 ? "w1a8" : "w158a8", seconds * 1e6,
                    scheme == Scheme::kW1A8 ? "w1a8" : "w158a8", m * k * n / seconds / 1e9);
      fields += field;
    }
    layers += (layers.empty() ? "" : ", ") + std::string("\"") + shape.name + "\": {" + fields + "}";
  }
  const bool vnni = std::string(kt.isa) == "avx512_vnni" || std::string(kt.isa) == "avx512_vbmi";
  std::printf("{\"isa\": \"%s\", \"rows\": %ld, \"rounds\": %d, \"layers\": {%s}, \"vpdpbusd_peak_gmacs\": ", kt.isa,
              static_cast<long>(m), rounds, layers.c_str());
  if (vnni) {
    std::vector<double> peaks;
    for (int r = 0; r < 5; ++r) peaks.push_back(vnni_peak_macs_per_second());
    std::printf("%.1f}\n", median(peaks) / 1e9);
  } else {
    std::printf("null}\n");
  }
}
