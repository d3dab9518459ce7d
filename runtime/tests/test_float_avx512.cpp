// float_avx512.h's softmax loops against their definitions, bit for bit (compiled with the AVX-512
// flags by build_native_tests.sh; test_kernels.cpp calls it on CPUs with AVX-512F): exp16 against
// float_avx2.h's exp8 (the same operations: the same floats), position-independent (the masked
// tail), and row_max16 against a loop, on widths with and without a tail.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "float_avx2.h"
#include "float_avx512.h"

namespace {

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

int64_t avx512_softmax_loop_mismatches() {
  using namespace bitmaps;
  int64_t mismatches = 0;
  // scores' range and past the clamps (x - shift as the softmax computes it), on whole vectors
  // (exp_shifted's scalar tail calls std::exp); one value at a time gives the bits of the whole call
  std::vector<float> x(4099), x8, single;
  for (size_t i = 0; i < x.size(); ++i) x[i] = -100.f + 200.f * static_cast<float>(i) / static_cast<float>(x.size());
  x8 = x, single = x;
  exp_shifted16(x.data(), static_cast<int64_t>(x.size()), 0.5f);
  exp_shifted(x8.data(), 4096, 0.5f);
  for (size_t i = 0; i < 4096; ++i) mismatches += !same_bits(x[i], x8[i]);
  for (size_t i = 0; i < single.size(); ++i) {
    exp_shifted16(&single[i], 1, 0.5f);
    mismatches += !same_bits(x[i], single[i]);
  }
  // the sum it returns is the sum of what it wrote (up to the order of the float additions)
  std::vector<float> y(70);
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::sin(static_cast<float>(i)) * 5.f;
  const float total = exp_shifted16(y.data(), static_cast<int64_t>(y.size()), 5.f);
  double want = 0;
  for (float v : y) want += v;
  mismatches += std::fabs(total - want) > 1e-5 * want;
  for (int64_t n : {1, 15, 16, 17, 70, 128}) {
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) row[j] = std::cos(static_cast<float>(3 * j + n)) * 7.f;
    float top = -INFINITY;
    for (float v : row) top = v > top ? v : top;
    mismatches += !same_bits(row_max16(row.data(), n), top);
  }
  return mismatches;
}
