// vpdpbusd's throughput on this core: 12 independent accumulators (more than its latency times its
// issue rate), 64 int8 multiply-adds each per instruction. Compiled with the VNNI flags and called
// by int8_products.cpp only on the avx512_vnni kernel path (a CPU that has the instruction).
//
// The 12 instructions are one asm block on named registers: GCC 12 compiled an array of
// accumulators into the same instructions plus 15 register copies a round, which Zen 4 eliminates
// at rename but Ice Lake issues on the vector ports, so that version read 119.5 G/s on an Ice
// Lake core whose W1A8 layers ran at 139 G/s.
#include <immintrin.h>

#include <chrono>

double vnni_peak_macs_per_second() {
  __m512i a0 = _mm512_set1_epi32(0), a1 = _mm512_set1_epi32(1), a2 = _mm512_set1_epi32(2),
          a3 = _mm512_set1_epi32(3), a4 = _mm512_set1_epi32(4), a5 = _mm512_set1_epi32(5),
          a6 = _mm512_set1_epi32(6), a7 = _mm512_set1_epi32(7), a8 = _mm512_set1_epi32(8),
          a9 = _mm512_set1_epi32(9), a10 = _mm512_set1_epi32(10), a11 = _mm512_set1_epi32(11);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(3);
  const long iterations = 2000000;
  const auto start = std::chrono::steady_clock::now();
  for (long r = 0; r < iterations; ++r) {
    __asm__ volatile(
        "vpdpbusd %[b], %[a], %[x0]\n\tvpdpbusd %[b], %[a], %[x1]\n\t"
        "vpdpbusd %[b], %[a], %[x2]\n\tvpdpbusd %[b], %[a], %[x3]\n\t"
        "vpdpbusd %[b], %[a], %[x4]\n\tvpdpbusd %[b], %[a], %[x5]\n\t"
        "vpdpbusd %[b], %[a], %[x6]\n\tvpdpbusd %[b], %[a], %[x7]\n\t"
        "vpdpbusd %[b], %[a], %[x8]\n\tvpdpbusd %[b], %[a], %[x9]\n\t"
        "vpdpbusd %[b], %[a], %[x10]\n\tvpdpbusd %[b], %[a], %[x11]"
        : [x0] "+v"(a0), [x1] "+v"(a1), [x2] "+v"(a2), [x3] "+v"(a3), [x4] "+v"(a4), [x5] "+v"(a5),
          [x6] "+v"(a6), [x7] "+v"(a7), [x8] "+v"(a8), [x9] "+v"(a9), [x10] "+v"(a10), [x11] "+v"(a11)
        : [a] "v"(a), [b] "v"(b));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const __m512i sum = _mm512_add_epi32(
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                       _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7))),
      _mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)));
  const long sink = _mm512_reduce_add_epi32(sum);
  __asm__ volatile("" : : "r"(sink));
  return iterations * 12 * 64.0 / seconds;
}
