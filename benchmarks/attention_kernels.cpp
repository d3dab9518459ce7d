// One attention head's kernels (sequence 128, head dimension 32: MiniLM's), timed on the kernel
// table BITMAPS_KERNELS names (default: the one this CPU gets): the 1-bit scores' XNOR products (column quads, k = 32), the softmax with and
// without the division by sqrt(d), and the float scores and context on the GEMM micro-kernel.
// Prints one JSON object of median microseconds. Built and run against several revisions of
// runtime/csrc by benchmarks/attention_kernels.sh, which interleaves them and saves the JSON.
#include <cstddef>
#include <vector>

#include "gemm_panels.h"
#include "dispatch.h"
#include "kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <random>
#include <cstdlib>

using namespace bitmaps;

static double median_us(const std::function<void()>& f, int calls) {
  std::vector<double> t;
  for (int r = 0; r < calls; ++r) {
    const auto s = std::chrono::steady_clock::now();
    f();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2] * 1e6;
}

int main() {
  const char* forced = std::getenv("BITMAPS_KERNELS");
  if (forced && *forced && !set_active_kernels(forced)) {
    std::fprintf(stderr, "kernel path %s is not available here\n", forced);
    return 2;
  }
  const KernelTable& kt = active_kernels();
  const int64_t seq = 128, d = 32, calls = 2000;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  std::vector<uint64_t> qbits(seq), kbits(seq), quads(column_quads(seq) * 4);
  for (auto* v : {&qbits, &kbits})
    for (auto& w : *v) w = rng() & 0xffffffffu;  // 32 dimensions: the upper half is padding
  std::vector<int32_t> dots(seq * seq);
  std::vector<float> q(seq * d), k(seq * d), v(seq * d), base(seq * seq), scores(seq * seq), context(seq * d);
  for (auto* x : {&q, &k, &v})
    for (auto& e : *x) e = normal(rng);
  for (auto& e : base) e = 3 * normal(rng);
  std::vector<float> kp(8 * d * 16), vp(2 * seq * 16);
  for (int p = 0; p < 8; ++p) panel_from_rows(k.data(), d, 16 * p, 16, d, kp.data() + p * d * 16);
  for (int p = 0; p < 2; ++p) panel_from_columns(v.data(), d, 16 * p, 16, seq, vp.data() + p * seq * 16);
  const double scores_1bit = median_us([&] {
    to_column_quads(kbits.data(), seq, 1, quads.data());
    kt.xnor_gemm_quads(qbits.data(), quads.data(), dots.data(), 0, seq, 0, seq, seq, 1, d);
  }, calls);
  const double copy = median_us([&] { std::copy(base.begin(), base.end(), scores.begin()); }, calls);
  const double softmax_div = median_us([&] {
    std::copy(base.begin(), base.end(), scores.begin());
    kt.softmax_rows(scores.data(), seq, seq, 5.656854f, nullptr);
  }, calls) - copy;
  const double softmax = median_us([&] {
    std::copy(base.begin(), base.end(), scores.begin());
    kt.softmax_rows(scores.data(), seq, seq, 1.f, nullptr);
  }, calls) - copy;
  const double float_scores = median_us([&] {
    for (int p = 0; p < 8; ++p) kt.sgemm_panel(q.data(), d, kp.data() + p * d * 16, scores.data() + 16 * p, seq, 0, seq, d, 16, nullptr);
  }, calls);
  const double float_context = median_us([&] {
    for (int p = 0; p < 2; ++p) kt.sgemm_panel(base.data(), seq, vp.data() + p * seq * 16, context.data() + 16 * p, d, 0, seq, seq, 16, nullptr);
  }, calls);
  long check = 0;
  for (int32_t x : dots) check += x;
  std::printf("{\"scores_1bit_us\": %.3f, \"softmax_sqrt_d_us\": %.3f, \"softmax_us\": %.3f, \"float_scores_us\": %.3f, "
              "\"float_context_us\": %.3f, \"check\": %ld, \"isa\": \"%s\"}\n",
              scores_1bit, softmax_div, softmax, float_scores, float_context, check, kt.isa);
}
