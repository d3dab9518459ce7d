// vpdpbusd's throughput on this core: 12 independent accumulators (more than its latency times its
// issue rate), 64 int8 multiply-adds each per instruction. Compiled with the VNNI flags and called
// by int8_products.cpp only on the avx512_vnni kernel path (a CPU that has the instruction).
#include <immintrin.h>

#include <chrono>

double vnni_peak_macs_per_second() {
  __m512i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_epi32(i);
  __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(3);
  const long iterations = 2000000;
  const auto start = std::chrono::steady_clock::now();
  for (long r = 0; r < iterations; ++r) {
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    __asm__ volatile("" : "+v"(a), "+v"(b));  // keeps the operands live, the loop not folded
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long sink = 0;
  for (int i = 0; i < 12; ++i) sink += _mm512_reduce_add_epi32(acc[i]);
  __asm__ volatile("" : : "r"(sink));
  return iterations * 12 * 64.0 / seconds;
}
