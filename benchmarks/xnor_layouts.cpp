// One W1A1 linear (packed inputs x packed weights, scales and bias in the epilogue) at M rows, on
// each weight layout a kernel path reads: the row layout (xnor_linear, every path), the nibble
// layout of the table-lookup kernels (AVX2: tables built in the time) and column octets (AVX-512
// VPOPCNTDQ). Every variant is checked bit for bit against the row layout on the scalar path,
// then timed in interleaved rounds. Prints one JSON object: medians in microseconds per shape.
// Built and run by benchmarks/xnor_layouts.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "dispatch.h"
#include "kernels.h"
#include "xnor_lut.h"

using namespace bitmaps;

int main(int argc, char** argv) {
  const int64_t m = argc > 1 ? std::atoll(argv[1]) : 128;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 31;
  const int64_t shapes[][2] = {{384, 384}, {384, 1536}, {1536, 384}, {768, 768}, {768, 3072}, {3072, 768}};
  std::mt19937_64 rng(1);
  std::printf("{\"m\": %lld, \"rounds\": %d, \"us\": {", static_cast<long long>(m), rounds);
  bool first_shape = true;
  for (const auto& shape : shapes) {
    const int64_t k = shape[0], n = shape[1], words = words_per_row(k);
    std::vector<uint64_t> a(m * words), b(n * words);
    for (auto& x : a) x = rng();
    for (auto& x : b) x = rng();
    std::vector<float> beta(m), alpha(n), bias(n), expected(m * n), y(m * n);
    for (auto& x : beta) x = 0.5f + float(rng() % 100) / 100.f;
    for (auto& x : alpha) x = 0.5f + float(rng() % 100) / 100.f;
    for (auto& x : bias) x = float(rng() % 100) / 100.f;
    kScalarKernels.xnor_linear(a.data(), b.data(), beta.data(), alpha.data(), bias.data(), expected.data(), 0, m, 0, n, n,
                               words, k);
    std::vector<uint64_t> octets(column_groups(n, 8) * words * 8);
    to_column_groups(b.data(), n, words, 8, octets.data());
    std::vector<uint8_t> nibbles(xnor_nibble_bytes(n, k)), luts(xnor_lut_bytes(m, k));
    xnor_nibble_layout(b.data(), n, words, nibbles.data());
    std::vector<std::pair<std::string, std::function<void()>>> variants;
    for (const KernelTable* kt : available_kernels()) {
      const std::string isa = kt->isa;
      if (isa == "scalar") continue;
      variants.emplace_back(isa + " rows", [&, kt] {
        kt->xnor_linear(a.data(), b.data(), beta.data(), alpha.data(), bias.data(), y.data(), 0, m, 0, n, n, words, k);
      });
      if (kt->xnor_lut_linear)
        variants.emplace_back(isa + " nibbles", [&, kt] {
          kt->build_xnor_luts(a.data(), m, words, luts.data());
          kt->xnor_lut_linear(luts.data(), nibbles.data(), beta.data(), alpha.data(), bias.data(), y.data(), 0, m, 0, n, n,
                              words, k);
        });
      if (kt->xnor_octets_linear)
        variants.emplace_back(isa + " octets", [&, kt] {
          kt->xnor_octets_linear(a.data(), octets.data(), beta.data(), alpha.data(), bias.data(), y.data(), 0, m, 0, n, n,
                                 words, k);
        });
    }
    for (auto& v : variants) {
      std::fill(y.begin(), y.end(), -7.f);
      v.second();
      if (std::memcmp(y.data(), expected.data(), sizeof(float) * y.size()) != 0) {
        std::fprintf(stderr, "%s differs from the scalar row layout at %lldx%lld\n", v.first.c_str(),
                     static_cast<long long>(k), static_cast<long long>(n));
        return 1;
      }
    }
    std::vector<std::vector<double>> times(variants.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < variants.size(); ++i) {
        const auto start = std::chrono::steady_clock::now();
        variants[i].second();
        times[i].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
      }
    std::printf("%s\"%lldx%lld\": {", first_shape ? "" : ", ", static_cast<long long>(k), static_cast<long long>(n));
    first_shape = false;
    for (size_t i = 0; i < variants.size(); ++i) {
      std::sort(times[i].begin(), times[i].end());
      std::printf("%s\"%s\": %.1f", i ? ", " : "", variants[i].first.c_str(), times[i][times[i].size() / 2]);
    }
    std::printf("}");
  }
  std::printf("}}\n");
  return 0;
}
