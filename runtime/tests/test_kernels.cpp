// C++ tests of the kernel tables and the scheme layer, without Python: every kernel path this CPU
// has (or the one BITMAPS_KERNELS names) against naive loops written here, on shapes with partial
// words, partial tiles and rows on an int8 rounding boundary. Exit status 0 when all pass.
#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bit_row_sums.h"
#include "dispatch.h"
#include "encoder.h"
#include "gemm_panels.h"
#include "int8_lut.h"
#include "layer_norm_rows.h"
#include "linear.h"
#include "scale_dots.h"
#include "xnor_lut.h"

using namespace bitmaps;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::fprintf(stderr, "FAIL %s\n", what.c_str());
  }
}

struct Case {
  int64_t m, k, n;
};
const Case kCases[] = {{1, 64, 1}, {4, 32, 6}, {3, 20, 9}, {3, 70, 5}, {17, 130, 33}, {16, 256, 64}, {40, 384, 97}, {5, 600, 9}, {6, 2100, 7}, {7, 1536, 130}, {9, 32, 130}, {20, 96, 64}, {33, 130, 70}, {19, 64, 128}, {18, 1100, 64}, {16, 500, 70}};

std::vector<float> random_floats(std::mt19937& rng, int64_t count) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> out(static_cast<size_t>(count));
  for (auto& v : out) v = normal(rng);
  return out;
}

// sign bits of rows (bit 1 = negative), the layout of kernels.h
std::vector<uint64_t> pack(const std::vector<float>& x, int64_t rows, int64_t k) {
  const int64_t words = words_per_row(k);
  std::vector<uint64_t> out(static_cast<size_t>(rows * words), 0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < k; ++c)
      if (x[r * k + c] < 0.f) out[r * words + c / 64] |= uint64_t{1} << (c % 64);
  return out;
}

float sign_of(const std::vector<uint64_t>& bits, int64_t words, int64_t row, int64_t c) {
  return ((bits[row * words + c / 64] >> (c % 64)) & 1) ? -1.f : 1.f;
}

bool close(float a, float b, float tolerance) { return std::fabs(a - b) <= tolerance * (1.f + std::fabs(b)); }

// mean |x| of a row as the path `isa` sums it, bit for bit, so that a change of a path's order of
// additions (which moves the XNOR activation scale by an ulp and every output with it) fails here
// rather than passing the 1e-5 check: lanes of `width` values summed in key order (position c in
// lane c % width; the AVX2 and NEON paths take whole vectors within each 64-value word and the
// rest in one scalar sum, the AVX-512 ones every position, masked), then the lanes folded as the
// path's horizontal sum does (x86: halves onto halves; NEON's vaddvq: adjacent pairs). Returns
// false for a path whose order this does not model.
bool path_mean_abs(const std::string& isa, const float* row, int64_t k, float* mean) {
  const bool avx512 = isa.rfind("avx512", 0) == 0, neon = isa.rfind("neon", 0) == 0;
  const int width = avx512 ? 16 : isa == "avx2" ? 8 : neon ? 4 : isa == "scalar" ? 1 : 0;
  if (width == 0) return false;
  std::vector<float> lane(static_cast<size_t>(width), 0.f);
  float tail = 0.f;
  for (int64_t c = 0; c < k; ++c) {
    const int64_t span = std::min<int64_t>(k - c / 64 * 64, 64), whole = avx512 ? span : span / width * width;
    if (c % 64 < whole)
      lane[c % width] += std::fabs(row[c]);
    else
      tail += std::fabs(row[c]);
  }
  if (neon) {
    lane[0] = (lane[0] + lane[1]) + (lane[2] + lane[3]);
  } else {
    for (int half = width / 2; half >= 1; half /= 2)
      for (int l = 0; l < half; ++l) lane[l] += lane[l + half];
  }
  *mean = (lane[0] + tail) / static_cast<float>(k);
  return true;
}

void test_table(const KernelTable& kt) {
  const std::string isa = kt.isa;
  std::mt19937 rng(7);
  for (const Case& c : kCases) {
    const std::string shape = isa + " " + std::to_string(c.m) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n);
    const int64_t words = words_per_row(c.k);
    auto x = random_floats(rng, c.m * c.k), w = random_floats(rng, c.n * c.k), alpha = random_floats(rng, c.n),
         bias = random_floats(rng, c.n);
    for (auto& a : alpha) a = std::fabs(a) + 0.1f;
    // an exact zero and a negative zero: both pack as +1
    x[0] = 0.f;
    if (c.k > 1) x[1] = -0.f;
    // rows at the int8 extremes (every input 127 or -127): W1A8 table entries of +-508
    if (c.m >= 3)
      for (int64_t t = 0; t < c.k; ++t) x[(c.m - 1) * c.k + t] = 1.f, x[(c.m - 2) * c.k + t] = -1.f;
    auto wb = pack(w, c.n, c.k), xb = pack(x, c.m, c.k);

    std::vector<uint64_t> packed(static_cast<size_t>(c.m * words));
    std::vector<float> mean(static_cast<size_t>(c.m));
    kt.pack_signs(x.data(), c.m, c.k, c.k, packed.data(), mean.data());
    expect(packed == xb, "pack_signs bits " + shape);
    for (int64_t i = 0; i < c.m; ++i) {
      double total = 0;
      for (int64_t t = 0; t < c.k; ++t) total += std::fabs(x[i * c.k + t]);
      expect(close(mean[i], static_cast<float>(total / c.k), 1e-5f), "pack_signs mean " + shape);
      float path_mean = 0.f;
      if (path_mean_abs(isa, x.data() + i * c.k, c.k, &path_mean))
        expect(std::memcmp(&path_mean, &mean[i], sizeof(float)) == 0, "pack_signs mean in the path's order " + shape);
    }

    std::vector<int32_t> dots(static_cast<size_t>(c.m * c.n));
    kt.xnor_gemm(xb.data(), wb.data(), dots.data(), 0, c.m, 0, c.n, c.n, words, c.k);
    std::vector<float> y(static_cast<size_t>(c.m * c.n)), y_ref(y.size());
    kt.xnor_linear(xb.data(), wb.data(), mean.data(), alpha.data(), bias.data(), y.data(), 0, c.m, 0, c.n, c.n, words, c.k);
    bool exact = true, linear_ok = true;
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        int32_t dot = 0;
        for (int64_t t = 0; t < c.k; ++t) dot += static_cast<int32_t>(sign_of(xb, words, i, t) * sign_of(wb, words, j, t));
        exact &= dots[i * c.n + j] == dot;
        linear_ok &= close(y[i * c.n + j], mean[i] * alpha[j] * dot + bias[j], 1e-5f);
      }
    expect(exact, "xnor_gemm exact " + shape);
    expect(linear_ok, "xnor_linear " + shape);
    if (kt.xnor_gemm_quads) {
      // the column-quad kernel equals the plain one bit for bit, on the whole output and on a
      // tile whose edges cut through quads and row pairs
      std::vector<uint64_t> quads(static_cast<size_t>(column_quads(c.n) * words * 4));
      to_column_quads(wb.data(), c.n, words, quads.data());
      const int64_t m0 = c.m > 2 ? 1 : 0, n0 = c.n > 2 ? 1 : 0, n1 = c.n > 3 ? c.n - 1 : c.n;
      for (const auto& tile : {std::array<int64_t, 4>{0, c.m, 0, c.n}, std::array<int64_t, 4>{m0, c.m, n0, n1}}) {
        std::vector<int32_t> qdots(dots.size(), -7);
        kt.xnor_gemm_quads(xb.data(), quads.data(), qdots.data(), tile[0], tile[1], tile[2], tile[3], c.n, words, c.k);
        bool same = true;
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t j = 0; j < c.n; ++j) {
            const bool inside = i >= tile[0] && i < tile[1] && j >= tile[2] && j < tile[3];
            same &= inside ? qdots[i * c.n + j] == dots[i * c.n + j] : qdots[i * c.n + j] == -7;
          }
        expect(same, "xnor quads == plain, inside the tile only " + shape);
      }
    }
    if (kt.xnor_octets_linear) {
      // the column-octet kernels equal the plain ones bit for bit, on the whole output, on a tile
      // whose edges cut through octets and the 4-row tiles, and on run_tiles' aligned 16 x 64 tiles
      std::vector<uint64_t> octets(static_cast<size_t>(column_groups(c.n, 8) * words * 8));
      to_column_groups(wb.data(), c.n, words, 8, octets.data());
      const int64_t m0 = c.m > 2 ? 1 : 0, n0 = c.n > 2 ? 1 : 0, n1 = c.n > 3 ? c.n - 1 : c.n;
      const int64_t a0 = c.n > 64 ? 64 : 0, a1 = c.n > 64 ? std::min<int64_t>(c.n, 128) : c.n;
      for (const auto& tile : {std::array<int64_t, 4>{0, c.m, 0, c.n}, std::array<int64_t, 4>{m0, c.m, n0, n1},
                               std::array<int64_t, 4>{0, std::min<int64_t>(c.m, 16), a0, a1}}) {
        std::vector<int32_t> odots(dots.size(), -7);
        std::vector<float> oy(y.size(), -7.f);
        kt.xnor_octets_gemm(xb.data(), octets.data(), odots.data(), tile[0], tile[1], tile[2], tile[3], c.n, words, c.k);
        kt.xnor_octets_linear(xb.data(), octets.data(), mean.data(), alpha.data(), bias.data(), oy.data(), tile[0],
                              tile[1], tile[2], tile[3], c.n, words, c.k);
        bool same = true;
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t j = 0; j < c.n; ++j) {
            const bool inside = i >= tile[0] && i < tile[1] && j >= tile[2] && j < tile[3];
            same &= inside ? odots[i * c.n + j] == dots[i * c.n + j] && oy[i * c.n + j] == y[i * c.n + j]
                           : odots[i * c.n + j] == -7 && oy[i * c.n + j] == -7.f;
          }
        expect(same, "xnor octets == plain, inside the tile only " + shape);
      }
    }
    if (kt.xnor_lut_linear) {
      // the table-lookup kernels: the path's tables equal the portable ones, and the products equal
      // the plain kernels bit for bit, on the whole output and on tiles cutting through row quads
      // and 32-column blocks (a tile starting inside a block, as well as run_tiles' aligned ones)
      std::vector<uint8_t> luts(static_cast<size_t>(xnor_lut_bytes(c.m, c.k))), portable(luts.size());
      kt.build_xnor_luts(xb.data(), c.m, words, luts.data());
      build_xnor_luts_portable(xb.data(), c.m, words, portable.data());
      expect(luts == portable, "build_xnor_luts == portable " + shape);
      std::vector<uint8_t> nibbles(static_cast<size_t>(xnor_nibble_bytes(c.n, c.k)));
      xnor_nibble_layout(wb.data(), c.n, words, nibbles.data());
      const int64_t m0 = c.m > 2 ? 1 : 0, n0 = c.n > 2 ? 1 : 0, n1 = c.n > 3 ? c.n - 1 : c.n;
      const int64_t a0 = c.n > 64 ? 32 : 0, a1 = c.n > 64 ? 64 : c.n;
      for (const auto& tile : {std::array<int64_t, 4>{0, c.m, 0, c.n}, std::array<int64_t, 4>{m0, c.m, n0, n1},
                               std::array<int64_t, 4>{m0, c.m, a0, a1}}) {
        std::vector<int32_t> ldots(dots.size(), -7);
        std::vector<float> ly(y.size(), -7.f);
        kt.xnor_lut_gemm(luts.data(), nibbles.data(), ldots.data(), tile[0], tile[1], tile[2], tile[3], c.n, words, c.k);
        kt.xnor_lut_linear(luts.data(), nibbles.data(), mean.data(), alpha.data(), bias.data(), ly.data(), tile[0],
                           tile[1], tile[2], tile[3], c.n, words, c.k);
        bool same = true;
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t j = 0; j < c.n; ++j) {
            const bool inside = i >= tile[0] && i < tile[1] && j >= tile[2] && j < tile[3];
            same &= inside ? ldots[i * c.n + j] == dots[i * c.n + j] && ly[i * c.n + j] == y[i * c.n + j]
                           : ldots[i * c.n + j] == -7 && ly[i * c.n + j] == -7.f;
          }
        expect(same, "xnor lut == plain, inside the tile only " + shape);
        if (kt.xnor_lut_scaled) {
          // the fused epilogue: the floats of the product then scale_dots_rows, bit for bit, with and
          // without the two-set addend and the bias, inside the tile only
          std::vector<int32_t> add(static_cast<size_t>(c.n));
          for (int64_t j = 0; j < c.n; ++j) add[j] = static_cast<int32_t>(j % 11) - 5;
          for (const bool two_set : {false, true})
            for (const float* b : {static_cast<const float*>(nullptr), static_cast<const float*>(bias.data())}) {
              const int32_t* a = two_set ? add.data() : nullptr;
              const float factor = two_set ? 0.5f : 1.f;
              std::vector<float> want(y.size(), -7.f), got(y.size(), -7.f);
              scale_dots_rows(ldots.data(), a, factor, alpha.data(), b, want.data(), tile[0], tile[1], tile[2], tile[3], c.n);
              kt.xnor_lut_scaled(luts.data(), nibbles.data(), a, factor, alpha.data(), b, got.data(), tile[0], tile[1],
                                 tile[2], tile[3], c.n, words, c.k);
              expect(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0,
                     "xnor lut scaled == gemm + scale_dots " + shape + (two_set ? ", two-set" : "") + (b ? ", bias" : ""));
            }
        }
      }
    }

    // BiT's elastic binarizer: bit for bit the rule of kernels.h, with values on its boundaries
    // ((x - beta) / alpha exactly 0 and 0.5), zeros and a NaN
    {
      const float alpha = 0.75f, beta = -0.25f;
      std::vector<float> e = x;
      for (int64_t t = 0; t < c.k; t += 5) e[t] = beta;                // scaled 0
      for (int64_t t = 1; t < c.k; t += 7) e[t] = beta + 0.5f * alpha;  // scaled 0.5
      if (c.k > 2) e[2] = std::nanf("");
      std::vector<uint64_t> bits(static_cast<size_t>(c.m * words));
      for (bool two_set : {false, true}) {
        kt.pack_elastic(e.data(), c.m, c.k, c.k, elastic_cut(alpha, beta, two_set), two_set, bits.data());
        bool elastic_ok = true;
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t t = 0; t < words * 64; ++t) {
            const bool bit = (bits[i * words + t / 64] >> (t % 64)) & 1;
            elastic_ok &= bit == (t < c.k && elastic_negative(e[i * c.k + t], alpha, beta, two_set));
          }
        expect(elastic_ok, std::string("pack_elastic ") + (two_set ? "two-set " : "elastic ") + shape);
      }
    }

    kt.binary_weight_linear(x.data(), c.k, wb.data(), alpha.data(), bias.data(), y.data(), 0, c.m, 0, c.n, c.n, words, c.k);
    bool w1a32_ok = true;
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        double acc = 0;
        for (int64_t t = 0; t < c.k; ++t) acc += x[i * c.k + t] * sign_of(wb, words, j, t);
        w1a32_ok &= close(y[i * c.n + j], static_cast<float>(alpha[j] * acc + bias[j]), 1e-4f);
      }
    expect(w1a32_ok, "binary_weight_linear " + shape);

    // W1A8: the int8 levels against the one definition, then the exact integer products
    // row 0 on a rounding boundary: absmax 1 (x[3]), so x[2] * 127 = 63.5, a tie that rounds to even
    for (int64_t t = 0; t < c.k; ++t) x[t] = std::max(-1.f, std::min(1.f, x[t]));
    if (c.k > 3) x[2] = 0.5f, x[3] = -1.0f;
    const int64_t groups = lut_groups(c.k);
    std::vector<int8_t> q(static_cast<size_t>(c.m * groups * 4));
    std::vector<float> step(static_cast<size_t>(c.m));
    std::vector<int32_t> rowsum(static_cast<size_t>(c.m));
    kt.quantize_rows_int8(x.data(), c.m, c.k, c.k, q.data(), step.data(), rowsum.data());
    bool quant_ok = true;
    for (int64_t i = 0; i < c.m; ++i) {
      float absmax = 0.f;
      for (int64_t t = 0; t < c.k; ++t) absmax = std::max(absmax, std::fabs(x[i * c.k + t]));
      const float scale = 127.0f / std::max(absmax, 1e-5f);
      int32_t total = 0;
      for (int64_t t = 0; t < c.k; ++t) {
        const int level = static_cast<int>(std::nearbyint(x[i * c.k + t] * scale));
        quant_ok &= q[i * groups * 4 + t] == level;
        total += level;
      }
      for (int64_t t = c.k; t < groups * 4; ++t) quant_ok &= q[i * groups * 4 + t] == 0;  // the padding
      quant_ok &= rowsum[i] == total && step[i] == 1.0f / scale;
    }
    if (c.k > 3) expect(q[2] == 64, isa + " int8 tie 63.5 rounds to even (64), got " + std::to_string(q[2]));
    expect(quant_ok, "quantize_rows_int8 " + shape);
    std::vector<uint8_t> luts(static_cast<size_t>(c.m * groups * 32)), wlut(static_cast<size_t>(lut_column_blocks(c.n) * groups * 16));
    // the tables in this path's format (the portable builder's own format where it uses none)
    build_luts(q.data(), c.m, groups, luts.data(),
               kt.w1a8_tables == LutFormat::kNone ? LutFormat::kPlanes : kt.w1a8_tables);
    if (kt.build_luts) {  // this path's table builder against the portable one, byte for byte
      std::vector<uint8_t> own(luts.size(), 0xAB);
      kt.build_luts(q.data(), c.m, groups, own.data());
      expect(own == luts, "build_luts " + shape);
    }
    expect(kt.build_luts != nullptr || kt.w1a8_tables == LutFormat::kNone, isa + " has a table builder where it uses tables");
    lut_weight_layout(wb.data(), c.n, words, wlut.data());
    std::fill(y.begin(), y.end(), std::nanf(""));  // every output must be written, none left from before
    kt.w1a8_linear(luts.data(), q.data(), rowsum.data(), step.data(), wlut.data(), alpha.data(), bias.data(), y.data(), 0, c.m,
                   0, c.n, c.n, groups);
    bool w1a8_ok = true;
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        int32_t dot = 0;
        for (int64_t t = 0; t < c.k; ++t) dot += q[i * groups * 4 + t] * static_cast<int32_t>(sign_of(wb, words, j, t));
        w1a8_ok &= y[i * c.n + j] == static_cast<float>(dot) * step[i] * alpha[j] + bias[j];
      }
    expect(w1a8_ok, "w1a8_linear exact " + shape);
  }
}

// sgemm_panel on 1 to sgemm_panel_columns columns from consecutive 16-column panels: every C
// value the fused multiply-add chain over k in order (std::fma) on the SIMD x86 paths, whose
// micro-kernels (float_avx2.h, float_avx512.h) promise those bits; close to it elsewhere; no
// column at or past `columns` and no row outside [m0, m1) written, for 1 to 25 rows.
void test_sgemm_panel(const KernelTable& kt) {
  const std::string isa = kt.isa;
  const bool fused = isa == "avx2" || isa == "avx512" || isa == "avx512_vnni" || isa == "avx512_vbmi";
  std::mt19937 rng(11);
  const float sentinel = -7.25f;
  for (int64_t k : {1, 3, 32, 129})
    for (int columns : {1, 5, 16, 17, 31, 32})
      for (bool with_bias : {false, true}) {
        if (columns > kt.sgemm_panel_columns) continue;
        const int64_t m = 27, ldc = 40, panels = (columns + 15) / 16;
        auto a = random_floats(rng, m * k), b = random_floats(rng, k * columns), bias = random_floats(rng, columns);
        std::vector<float> panel(static_cast<size_t>(panels * k * 16), 0.f);
        for (int64_t t = 0; t < k; ++t)
          for (int j = 0; j < columns; ++j) panel[(j / 16) * k * 16 + t * 16 + j % 16] = b[t * columns + j];
        bool ok = true;
        // 1 to 25 rows from row 1: every count of rows left after a micro-kernel's full tiles (up to 12)
        for (int64_t m0 = 1, m1 = 2; m1 <= 26; ++m1) {
          std::vector<float> c(static_cast<size_t>(m * ldc), sentinel);
          kt.sgemm_panel(a.data(), k, panel.data(), c.data(), ldc, m0, m1, k, columns, with_bias ? bias.data() : nullptr);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < ldc; ++j) {
              const float got = c[i * ldc + j];
              if (i < m0 || i >= m1 || j >= columns) {
                ok &= got == sentinel;
                continue;
              }
              float chain = 0.f;
              for (int64_t t = 0; t < k; ++t) chain = std::fma(a[i * k + t], b[t * columns + j], chain);
              if (with_bias) chain += bias[j];  // added once, after the chain
              ok &= fused ? got == chain : close(got, chain, 1e-5f);
            }
        }
        expect(ok, isa + " sgemm_panel k=" + std::to_string(k) + " columns=" + std::to_string(columns) +
                       (with_bias ? " with bias" : ""));
      }
}

// unpack_panel against its definition (kernels.h), bit for bit on every path: +-alpha where a
// column's bit is set or clear, +0 past `columns`, and nothing written past k x 16 floats.
void test_unpack_panel(const KernelTable& kt) {
  std::mt19937 rng(13);
  for (int64_t k : {1, 7, 64, 385})
    for (int columns : {1, 9, 16}) {
      std::vector<uint16_t> masks(static_cast<size_t>(k));
      for (auto& m : masks) m = static_cast<uint16_t>(rng() & ((1u << columns) - 1u));
      const auto alpha = random_floats(rng, 16);
      const float sentinel = -7.25f;
      std::vector<float> panel(static_cast<size_t>(k * 16 + 16), sentinel);
      kt.unpack_panel(masks.data(), k, alpha.data(), columns, panel.data());
      bool ok = true;
      for (int64_t t = 0; t < k; ++t)
        for (int j = 0; j < 16; ++j) {
          const float want = j < columns ? ((masks[t] >> j) & 1 ? -alpha[j] : alpha[j]) : 0.f;
          const float got = panel[t * 16 + j];
          ok &= std::memcmp(&got, &want, sizeof(float)) == 0;
        }
      for (int j = 0; j < 16; ++j) ok &= panel[k * 16 + j] == sentinel;
      expect(ok, std::string(kt.isa) + " unpack_panel k=" + std::to_string(k) + " columns=" + std::to_string(columns));
    }
}

// The float kernels against double loops and std::erf / std::exp.
void test_float_kernels(const KernelTable& kt) {
  const std::string isa = kt.isa;
  std::mt19937 rng(5);
  for (const Case& c : kCases) {
    const std::string shape = isa + " " + std::to_string(c.m) + "x" + std::to_string(c.k) + "x" + std::to_string(c.n);
    auto a = random_floats(rng, c.m * c.k), b = random_floats(rng, c.n * c.k), bn = random_floats(rng, c.k * c.n);
    for (int64_t t = 0; t < c.k; t += 3) a[t] = 0.f;  // sgemm_nn skips zero weights
    std::vector<float> nt(static_cast<size_t>(c.m * c.n), -1.f), nn(nt.size(), -1.f);
    kt.sgemm_nt(a.data(), c.k, b.data(), c.k, nt.data(), c.n, 0, c.m, 0, c.n, c.k);
    kt.sgemm_nn(a.data(), c.k, bn.data(), c.n, nn.data(), c.n, 0, c.m, c.n, c.k);
    bool nt_ok = true, nn_ok = true;
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        double x = 0, y = 0;
        for (int64_t t = 0; t < c.k; ++t) x += double(a[i * c.k + t]) * b[j * c.k + t], y += double(a[i * c.k + t]) * bn[t * c.n + j];
        nt_ok &= close(nt[i * c.n + j], float(x), 1e-4f);
        nn_ok &= close(nn[i * c.n + j], float(y), 1e-4f);
      }
    expect(nt_ok, "sgemm_nt " + shape);
    expect(nn_ok, "sgemm_nn " + shape);
  }
  std::vector<float> x(1001), e(1001);
  for (size_t i = 0; i < x.size(); ++i) x[i] = -10.f + 20.f * float(i) / 1000.f;
  std::vector<float> g = x;
  kt.gelu(g.data(), static_cast<int64_t>(g.size()));
  bool gelu_ok = true;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = 0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0)));
    gelu_ok &= std::fabs(g[i] - want) <= 2e-6 * (1.0 + std::fabs(want));
  }
  expect(gelu_ok, isa + " gelu within 2e-6 of erf's");
  // position-independent: 13 values (a partial vector on every path) one at a time give the bits
  // of the whole call
  std::vector<float> one_by_one(x.begin() + 400, x.begin() + 413), whole = one_by_one;
  kt.gelu(whole.data(), static_cast<int64_t>(whole.size()));
  for (float& v : one_by_one) kt.gelu(&v, 1);
  expect(std::memcmp(whole.data(), one_by_one.data(), whole.size() * sizeof(float)) == 0,
         isa + " gelu of a value does not depend on its place in the call");
  // softmax rows of 70 keys (a partial vector) against double loops: scores / divisor, the
  // maximum and the sum over unpadded keys, padded keys 0; with and without a mask
  const int64_t rows = 3, keys = 70;
  std::vector<float> scores(static_cast<size_t>(rows * keys));
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = x[i % x.size()] * 3.f;
  std::vector<int32_t> mask(static_cast<size_t>(keys), 1);
  for (int64_t j = 60; j < keys; ++j) mask[j] = 0;
  for (const int32_t* m : {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(mask.data())}) {
    for (float divisor : {1.f, std::sqrt(32.f)}) {
      std::vector<float> p = scores;
      kt.softmax_rows(p.data(), rows, keys, divisor, m);
      bool softmax_ok = true;
      for (int64_t i = 0; i < rows; ++i) {
        double top = -INFINITY, total = 0;
        for (int64_t j = 0; j < keys; ++j)
          if (!m || m[j]) top = std::max(top, double(scores[i * keys + j] / divisor));
        for (int64_t j = 0; j < keys; ++j)
          if (!m || m[j]) total += std::exp(double(scores[i * keys + j] / divisor) - top);
        for (int64_t j = 0; j < keys; ++j) {
          const double want = (!m || m[j]) ? std::exp(double(scores[i * keys + j] / divisor) - top) / total : 0.0;
          softmax_ok &= (m && !m[j]) ? p[i * keys + j] == 0.f : std::fabs(p[i * keys + j] - want) <= 1e-6 * want + 1e-9;
        }
      }
      expect(softmax_ok, isa + " softmax_rows within 1e-6 relative" + (m ? ", padded keys" : "") +
                             (divisor != 1.f ? ", divided" : ""));
    }
    // the division is the float one, bit for bit, whether the divisor is a power of two (taken as
    // a multiply) or not: the same as dividing first and calling with divisor 1; scores down to
    // subnormal quotients and up to the float range
    std::vector<float> wide = scores;
    for (size_t i = 0; i < wide.size(); i += 5) wide[i] *= 1e-38f;
    for (size_t i = 2; i < wide.size(); i += 7) wide[i] *= 1e30f;
    for (float divisor : {8.f, 0.25f, std::sqrt(32.f), 3.f}) {
      std::vector<float> own = wide, divided = wide;
      for (float& v : divided) v = v / divisor;
      kt.softmax_rows(own.data(), rows, keys, divisor, m);
      kt.softmax_rows(divided.data(), rows, keys, 1.f, m);
      expect(std::memcmp(own.data(), divided.data(), sizeof(float) * own.size()) == 0,
             isa + " softmax_rows divides as x / divisor, divisor " + std::to_string(divisor) + (m ? ", padded keys" : ""));
    }
  }
  // LayerNorm: bit for bit the portable definition (layer_norm_rows.h), on widths with and
  // without a tail past whole blocks of 8 (and an odd number of them: 200), and within 1e-5 of a
  // two-pass double-precision LayerNorm; the fourth row sits 50 standard deviations off 0 (the
  // one-pass variance's cancellation), the fifth is constant (variance 0: the bias)
  for (int64_t h : {5, 37, 200, 384, 768}) {
    const int64_t norm_rows = 5;
    std::vector<float> rows_in(static_cast<size_t>(norm_rows * h)), weight(static_cast<size_t>(h)), bias(weight.size());
    for (size_t i = 0; i < rows_in.size(); ++i) rows_in[i] = x[i % x.size()] * 2.f + 0.5f;
    for (int64_t t = 0; t < h; ++t) rows_in[3 * h + t] += 100.f, rows_in[4 * h + t] = 7.25f;
    for (int64_t t = 0; t < h; ++t) weight[t] = 1.f + 0.01f * float(t % 7), bias[t] = 0.1f * float(t % 3);
    std::vector<float> own = rows_in, portable = rows_in;
    kt.layer_norm_rows(own.data(), norm_rows, h, weight.data(), bias.data(), 1e-12f);
    layer_norm_rows_with<>(portable.data(), norm_rows, h, weight.data(), bias.data(), 1e-12f);
    bool near = true;
    for (int64_t i = 0; i < norm_rows; ++i) {
      double mean = 0, var = 0;
      for (int64_t t = 0; t < h; ++t) mean += rows_in[i * h + t];
      mean /= double(h);
      for (int64_t t = 0; t < h; ++t) var += (rows_in[i * h + t] - mean) * (rows_in[i * h + t] - mean);
      var /= double(h);
      for (int64_t t = 0; t < h; ++t)
        near &= close(own[i * h + t], float((rows_in[i * h + t] - mean) / std::sqrt(var + 1e-12) * weight[t] + bias[t]), 1e-5f);
    }
    expect(own == portable, isa + " layer_norm_rows equals the portable loops, h = " + std::to_string(h));
    expect(near, isa + " layer_norm_rows near a double LayerNorm, h = " + std::to_string(h));
    // LayerNorm(x + residual) with the add in the first pass: the bits of adding first and then
    // layer_norm_rows, the sums stored into x (the path's entry where it has one, and the portable
    // template on every path)
    std::vector<float> residual(rows_in.size());
    for (size_t i = 0; i < residual.size(); ++i) residual[i] = x[(i * 7 + 3) % x.size()] * 1.5f - 0.25f;
    std::vector<float> added = rows_in, fused_portable = rows_in;
    for (size_t i = 0; i < added.size(); ++i) added[i] += residual[i];
    kt.layer_norm_rows(added.data(), norm_rows, h, weight.data(), bias.data(), 1e-12f);
    add_layer_norm_rows_with<>(fused_portable.data(), residual.data(), norm_rows, h, weight.data(), bias.data(), 1e-12f);
    expect(std::memcmp(added.data(), fused_portable.data(), added.size() * sizeof(float)) == 0,
           isa + " add_layer_norm_rows_with<> equals an add, then layer_norm_rows, h = " + std::to_string(h));
    if (kt.add_layer_norm_rows) {
      std::vector<float> fused = rows_in;
      kt.add_layer_norm_rows(fused.data(), residual.data(), norm_rows, h, weight.data(), bias.data(), 1e-12f);
      expect(std::memcmp(added.data(), fused.data(), added.size() * sizeof(float)) == 0,
             isa + " add_layer_norm_rows equals an add, then layer_norm_rows, h = " + std::to_string(h));
    }
  }
}

// prepare_w1a8_inputs_activated (an int8-input FFN-down's GELU, row by row before quantizing):
// the same int8 rows, steps, row sums and tables as the path's gelu over all of x, then
// prepare_w1a8_inputs, with x left activated; on 1 and 2 threads, k with and without a partial group
void test_w1a8_inputs_activated(const KernelTable& kt) {
  std::mt19937 rng(17);
  for (int64_t k : {100, 1536})
    for (int threads : {1, 2}) {
      const int64_t m = 21;
      const auto x = random_floats(rng, m * k);
      std::vector<float> first = x, fused = x;
      LinearScratch want, got;
      kt.gelu(first.data(), m * k);
      prepare_w1a8_inputs(kt, first.data(), m, k, threads, want);
      prepare_w1a8_inputs_activated(kt, fused.data(), m, k, threads, got, kt.gelu, 16);
      const std::string at = std::string(kt.isa) + ", k " + std::to_string(k) + ", " + std::to_string(threads) + " thread(s)";
      expect(std::memcmp(first.data(), fused.data(), first.size() * sizeof(float)) == 0,
             "prepare_w1a8_inputs_activated leaves x activated, " + at);
      const size_t q_bytes = static_cast<size_t>(m * lut_groups(k) * 4);
      expect(std::memcmp(want.q.data(), got.q.data(), q_bytes) == 0 &&
                 std::memcmp(want.row_scale.data(), got.row_scale.data(), m * sizeof(float)) == 0 &&
                 std::memcmp(want.rowsum.data(), got.rowsum.data(), m * sizeof(int32_t)) == 0 &&
                 want.luts.size() == got.luts.size() &&
                 std::memcmp(want.luts.data(), got.luts.data(), want.luts.size()) == 0,
             "prepare_w1a8_inputs_activated quantizes as gelu, then prepare_w1a8_inputs, " + at);
    }
}

// The scheme layer (linear.h) on the active table, against the kernels it composes.
void test_schemes(const KernelTable& kt) {
  std::mt19937 rng(11);
  const int64_t m = 21, k = 100, n = 70, words = words_per_row(k);
  auto x = random_floats(rng, m * k), w = random_floats(rng, 2 * n * k), scale = random_floats(rng, n), bias = random_floats(rng, n);
  for (auto& s : scale) s = std::fabs(s) + 0.1f;
  auto wb = pack(w, 2 * n, k);
  LinearScratch scratch;
  std::vector<float> y(static_cast<size_t>(m * n)), expected(y.size()), other(y.size());
  const char* error = nullptr;
  // ternary W1.58A32 = the two planes' W1A32 products with gamma / 2, plus the bias
  LinearWeights ternary;
  ternary.scheme = Scheme::kW158A32, ternary.in = k, ternary.out = n, ternary.words = wb.data(), ternary.scale = scale.data(),
  ternary.bias = bias.data();
  expect(ternary.prepare(&error, kt), "prepare ternary");
  run_linear(kt, ternary, x.data(), m, y.data(), 2, scratch);
  std::vector<float> half(scale.size());
  for (size_t j = 0; j < half.size(); ++j) half[j] = scale[j] * 0.5f;
  linear_w1a32(kt, x.data(), m, k, wb.data(), half.data(), nullptr, n, expected.data(), 1);
  linear_w1a32(kt, x.data(), m, k, wb.data() + n * words, half.data(), nullptr, n, other.data(), 1);
  bool ok = true;
  // (the planes here run the sign-flipping kernel, the layer the unpacked GEMM: other sum orders)
  for (int64_t i = 0; i < m * n; ++i) ok &= close(y[i], (expected[i] + other[i]) + bias[i % n], 1e-5f);
  expect(ok, std::string(kt.isa) + " w158a32 = two planes");
  {
    // ternary W1.58A8 = sum_k q (s_u + s_v) / 2 exactly, times step and gamma, plus the bias: the
    // path's product (one fused product on AVX2 and AVX-512, the planes summed in float on scalar and NEON)
    LinearWeights ternary8 = ternary;
    ternary8.scheme = Scheme::kW158A8;
    expect(ternary8.prepare(&error, kt), "prepare ternary int8");
    for (int threads : {1, 2}) {
      LinearScratch fresh;
      run_linear(kt, ternary8, x.data(), m, y.data(), threads, fresh);
      const int64_t groups = lut_groups(k);
      std::vector<int8_t> q(static_cast<size_t>(m * groups * 4));
      std::vector<float> step(static_cast<size_t>(m));
      std::vector<int32_t> rowsum(static_cast<size_t>(m));
      kt.quantize_rows_int8(x.data(), m, k, k, q.data(), step.data(), rowsum.data());
      bool near = true;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          int64_t dot = 0;
          for (int64_t t = 0; t < k; ++t)
            dot += q[i * groups * 4 + t] * static_cast<int64_t>(sign_of(wb, words, j, t) + sign_of(wb, words, n + j, t));
          near &= close(y[i * n + j], static_cast<float>(dot) * step[i] * (scale[j] * 0.5f) + bias[j], 1e-5f);
        }
      expect(near, std::string(kt.isa) + " w158a8 = sum of the planes' integer dots, " + std::to_string(threads) + " thread(s)");
    }
  }
  // W1A32 at many rows (the unpacked-panel GEMM) against a double loop
  std::vector<uint16_t> panel_bits(static_cast<size_t>((n + 15) / 16 * k));
  build_panel_bits(wb.data(), n, k, panel_bits.data());
  linear_w1a32(kt, x.data(), m, k, wb.data(), scale.data(), bias.data(), n, y.data(), 2, panel_bits.data());
  ok = m >= kUnpackRows;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t t = 0; t < k; ++t) acc += x[i * k + t] * sign_of(wb, words, j, t) * scale[j];
      ok &= close(y[i * n + j], static_cast<float>(acc + bias[j]), 1e-4f);
    }
  expect(ok, std::string(kt.isa) + " w1a32 unpacked panels");
  // two-set inputs: b = round(clip((x - beta) / alpha, 0, 1)); y = alpha * scale * sum b w + bias
  LinearWeights two_set;
  two_set.scheme = Scheme::kW1A1TwoSet, two_set.in = k, two_set.out = n, two_set.words = wb.data(), two_set.scale = scale.data(),
  two_set.bias = bias.data(), two_set.input_alpha = 0.7f, two_set.input_beta = 0.1f;
  expect(two_set.prepare(&error, kt), "prepare two-set");
  run_linear(kt, two_set, x.data(), m, y.data(), 2, scratch);
  ok = true;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int32_t dot = 0;
      for (int64_t t = 0; t < k; ++t) {
        const float s = (x[i * k + t] - 0.1f) / 0.7f;
        const float b = std::nearbyint(s < 0.f ? 0.f : (s > 1.f ? 1.f : s));
        dot += static_cast<int32_t>(b * sign_of(wb, words, j, t));
      }
      ok &= y[i * n + j] == static_cast<float>(dot) * (scale[j] * 0.7f) + bias[j];
    }
  expect(ok, std::string(kt.isa) + " w1a1_two_set exact");
  {
    // 1-bit inputs prepared once for layers that share them (Q, K, V): the second layer, run on
    // the first's packed signs, scales and tables, equals the same layer run on its own; the
    // sharing rule refuses a binarizer with other parameters
    for (Scheme scheme : {Scheme::kW1A1, Scheme::kW1A1Elastic}) {
      LinearWeights first, second;
      for (LinearWeights* layer : {&first, &second})
        layer->scheme = scheme, layer->in = k, layer->out = n, layer->scale = scale.data(), layer->bias = bias.data(),
        layer->input_alpha = 0.7f, layer->input_beta = 0.1f;
      first.words = wb.data(), second.words = wb.data() + n * words;
      expect(first.prepare(&error, kt) && second.prepare(&error, kt), "prepare shared 1-bit inputs");
      expect(shares_prepared_inputs(first, second), std::string(kt.isa) + " same binarizer shares inputs");
      std::vector<float> shared(y.size()), alone(y.size());
      LinearScratch reused, fresh;
      run_linear(kt, first, x.data(), m, y.data(), 2, reused);
      run_linear(kt, second, x.data(), m, shared.data(), 2, reused, true);
      run_linear(kt, second, x.data(), m, alone.data(), 2, fresh);
      expect(shared == alone && shared != y, std::string(kt.isa) + " shared 1-bit inputs equal a fresh preparation");
      // the nibble layout only where the path reads it; a layer prepared for the scalar path (no
      // nibbles) runs on this one with its XOR-popcount kernels, to the same bits
      expect((second.nibble_layout() != nullptr) == reads_nibble_layout(kt), std::string(kt.isa) + " nibbles where read");
      expect((second.octet_layout() != nullptr) == reads_octet_layout(kt), std::string(kt.isa) + " octets where read");
      LinearWeights scalar_prepared = second;
      expect(scalar_prepared.prepare(&error, kScalarKernels) && scalar_prepared.nibble_layout() == nullptr &&
                 scalar_prepared.octet_layout() == nullptr,
             "prepared for scalar: no nibbles, no octets");
      std::vector<float> other(y.size());
      LinearScratch other_scratch;
      run_linear(kt, scalar_prepared, x.data(), m, other.data(), 2, other_scratch);
      expect(other == alone, std::string(kt.isa) + " a layer prepared for another path runs to the same bits");
      second.input_beta = 0.2f;
      expect(scheme == Scheme::kW1A1 ? shares_prepared_inputs(first, second) : !shares_prepared_inputs(first, second),
             std::string(kt.isa) + " sharing follows the binarizer's parameters");
    }
  }
  {
    // GELU inside the 1-bit input preparation (the encoder's FFN-down) gives the bits of GELU over
    // the whole block first and then the layer (k = 100: each row ends in a partial vector); a
    // layer without 1-bit inputs is left to the caller
    for (Scheme scheme : {Scheme::kW1A1, Scheme::kW1A1Elastic, Scheme::kW1A1TwoSet}) {
      LinearWeights layer;
      layer.scheme = scheme, layer.in = k, layer.out = n, layer.words = wb.data(), layer.scale = scale.data(),
      layer.bias = bias.data(), layer.input_alpha = 0.7f, layer.input_beta = 0.1f;
      expect(layer.prepare(&error, kt), "prepare for fused GELU");
      std::vector<float> activated = x, fused(y.size()), plain(y.size());
      kt.gelu(activated.data(), m * k);
      LinearScratch fused_scratch, plain_scratch;
      expect(prepare_binary_inputs_activated(kt, layer, x.data(), m, 2, fused_scratch, kt.gelu, 16),
             "1-bit inputs take a fused activation");
      run_linear(kt, layer, x.data(), m, fused.data(), 2, fused_scratch, true);
      run_linear(kt, layer, activated.data(), m, plain.data(), 2, plain_scratch);
      expect(fused == plain, std::string(kt.isa) + " GELU fused into the 1-bit input preparation, scheme " +
                                 std::to_string(static_cast<int>(scheme)));
    }
    LinearWeights int8_inputs;
    int8_inputs.scheme = Scheme::kW1A8, int8_inputs.in = k, int8_inputs.out = n, int8_inputs.words = wb.data(),
    int8_inputs.scale = scale.data(), int8_inputs.bias = bias.data();
    expect(int8_inputs.prepare(&error, kt), "prepare w1a8 for fused GELU");
    LinearScratch unused;
    expect(!prepare_binary_inputs_activated(kt, int8_inputs, x.data(), m, 2, unused, kt.gelu, 16),
           std::string(kt.isa) + " no fused activation for int8 inputs");
  }
  {
    // W1A8 through the scheme layer on inputs whose tables exceed the resident budget (100 x 1400:
    // 1.1 MB), so they are built per block of rows inside the product (blocks of 16 rows, or of
    // 32 and a last one of 4 on avx512_vbmi): exact, on 1 and 2 threads
    const int64_t bm = 100, bk = 1400, bn = 37, bwords = words_per_row(bk), bgroups = lut_groups(bk);
    auto bx = random_floats(rng, bm * bk), bw = random_floats(rng, bn * bk);
    auto bwb = pack(bw, bn, bk);
    // and ternary W1.58A8 on the same inputs, its two planes (u: those weights, v: new ones) in one
    // product where the path has one, its tables built once per block of rows
    auto bv = random_floats(rng, bn * bk);
    std::vector<float> planes(bw);
    planes.insert(planes.end(), bv.begin(), bv.end());
    auto bpb = pack(planes, 2 * bn, bk);
    for (const int plane_count : {1, 2}) {
      LinearWeights big;
      big.scheme = plane_count == 1 ? Scheme::kW1A8 : Scheme::kW158A8, big.in = bk, big.out = bn,
      big.words = plane_count == 1 ? bwb.data() : bpb.data(), big.scale = scale.data(), big.bias = bias.data();
      const std::string name = plane_count == 1 ? "w1a8" : "w158a8";
      expect(big.prepare(&error, kt), "prepare " + name + " large");
      const std::vector<uint64_t>& words = plane_count == 1 ? bwb : bpb;
      for (int threads : {1, 2}) {
        LinearScratch fresh;
        std::vector<float> by(static_cast<size_t>(bm * bn));
        run_linear(kt, big, bx.data(), bm, by.data(), threads, fresh);
        bool ok = true;
        for (int64_t i = 0; i < bm; ++i)
          for (int64_t j = 0; j < bn; ++j) {
            int32_t dot = 0;
            for (int64_t t = 0; t < bk; ++t) {
              int32_t sign = 0;
              for (int plane = 0; plane < plane_count; ++plane) sign += static_cast<int32_t>(sign_of(words, bwords, plane * bn + j, t));
              dot += fresh.q[i * bgroups * 4 + t] * sign;
            }
            // W1A8 exact; ternary (gamma / 2 per channel) near, since the paths without a fused
            // product sum the two planes' outputs in float
            if (plane_count == 1)
              ok &= by[i * bn + j] == static_cast<float>(dot) * fresh.row_scale[i] * scale[j] + bias[j];
            else
              ok &= close(by[i * bn + j], static_cast<float>(dot) * fresh.row_scale[i] * (scale[j] * 0.5f) + bias[j], 1e-5f);
          }
        expect(ok, std::string(kt.isa) + " " + name + " layer with tables per block of rows, " + std::to_string(threads) +
                       " thread(s)");
      }
    }
  }
  // a layer with missing parts is refused, not run
  LinearWeights broken;
  broken.scheme = Scheme::kW1A8, broken.in = k, broken.out = n;
  expect(!broken.prepare(&error, kt) && error != nullptr, "missing words refused");
}

// BiT's binarizer as a cut (kernels.h elastic_cut): below_cut agrees with elastic_negative on
// every value tried: random ones, each float within 300 of the cut in float order, the rule's own
// boundaries, zeros, infinities, subnormals and NaN; for quantizers from tiny to huge alpha.
// run_by_rows (the encoder's linears by blocks of rows) against run_linear on each layer: bit for
// bit, on 70 rows (a last block of 6), for Q/K/V-like groups with shared and own binarizers and
// outputs of two widths, for inputs made below a cut or through an activation, and with a step
// after each block, on 1 and 2 threads
void test_run_by_rows(const KernelTable& kt) {
  std::mt19937 rng(17);
  const int64_t m = 70, k = 100, n = 70, narrow = 40;
  auto x = random_floats(rng, m * k), w = random_floats(rng, 3 * n * k), scale = random_floats(rng, n), bias = random_floats(rng, n);
  for (auto& s : scale) s = std::fabs(s) + 0.1f;
  auto wb = pack(w, 3 * n, k);
  const char* error = nullptr;
  for (Scheme scheme : {Scheme::kW1A1, Scheme::kW1A1Elastic, Scheme::kW1A1TwoSet}) {
    const std::string what = std::string(kt.isa) + " run_by_rows, scheme " + std::to_string(static_cast<int>(scheme));
    LinearWeights layers[3];
    for (int i = 0; i < 3; ++i) {
      LinearWeights& layer = layers[i];
      layer.scheme = scheme, layer.in = k, layer.out = i == 1 ? narrow : n, layer.words = wb.data() + i * n * words_per_row(k),
      layer.scale = scale.data(), layer.bias = bias.data(), layer.input_alpha = 0.7f, layer.input_beta = i == 2 ? 0.3f : 0.1f;
      expect(layer.prepare(&error, kt), "prepare " + what);
      expect(runs_by_rows(layer, m) && !runs_by_rows(layer, 21), what + ": by rows from 64 rows on");
    }
    std::vector<std::vector<float>> expected(3), got(3);
    for (int i = 0; i < 3; ++i) {
      LinearScratch fresh;
      expected[i].resize(static_cast<size_t>(m * layers[i].out));
      run_linear(kt, layers[i], x.data(), m, expected[i].data(), 1, fresh);
    }
    const LinearWeights* group[] = {&layers[0], &layers[1], &layers[2]};
    for (int threads : {1, 2}) {
      for (int i = 0; i < 3; ++i) got[i].assign(expected[i].size(), NAN);
      float* outputs[] = {got[0].data(), got[1].data(), got[2].data()};
      run_by_rows(kt, group, outputs, 3, x.data(), m, threads);
      expect(got == expected, what + ", three layers, " + std::to_string(threads) + " thread(s)");
      // a step after each block sees that block's rows finished, once
      std::vector<int> visits(static_cast<size_t>(m), 0);
      std::vector<float> after(expected[0].size(), NAN);
      float* one[] = {after.data()};
      run_by_rows(kt, group, one, 1, x.data(), m, threads, {}, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          ++visits[r];
          for (int64_t j = 0; j < n; ++j) after[r * n + j] = after[r * n + j] == expected[0][r * n + j] ? 1.f : 0.f;
        }
      });
      expect(std::all_of(visits.begin(), visits.end(), [](int v) { return v == 1; }) &&
                 std::all_of(after.begin(), after.end(), [](float v) { return v == 1.f; }),
             what + ", the step after each block, " + std::to_string(threads) + " thread(s)");
    }
    // inputs made through an activation, or below a cut (two-set), as the preparations make them
    std::vector<float> prepared(expected[0].size()), by_rows(expected[0].size());
    float* one[] = {by_rows.data()};
    BinaryInputs activated;
    activated.activation = kt.gelu, activated.activation_work = 16;
    LinearScratch scratch;
    expect(prepare_binary_inputs_activated(kt, layers[0], x.data(), m, 2, scratch, kt.gelu, 16), what + ": activated");
    run_linear(kt, layers[0], x.data(), m, prepared.data(), 2, scratch, true);
    run_by_rows(kt, group, one, 1, x.data(), m, 2, activated);
    expect(by_rows == prepared, what + ", inputs through an activation");
    if (scheme == Scheme::kW1A1TwoSet) {
      BinaryInputs below;
      below.below = 0.25f;
      LinearScratch cut_scratch;
      prepare_binary_inputs_below(kt, layers[0], x.data(), m, 2, cut_scratch, 0.25f);
      run_linear(kt, layers[0], x.data(), m, prepared.data(), 2, cut_scratch, true);
      run_by_rows(kt, group, one, 1, x.data(), m, 2, below);
      expect(by_rows == prepared, what + ", inputs below a cut");
    }
  }
  LinearWeights int8_inputs;
  int8_inputs.scheme = Scheme::kW1A8, int8_inputs.in = k, int8_inputs.out = n, int8_inputs.words = wb.data(),
  int8_inputs.scale = scale.data(), int8_inputs.bias = bias.data();
  expect(int8_inputs.prepare(&error, kt) && !runs_by_rows(int8_inputs, m), std::string(kt.isa) + " no run_by_rows for int8 inputs");
}

void test_elastic_cut() {
  std::mt19937 rng(7);
  const float alphas[] = {1e-30f, 1e-6f, 0.05f, 0.75f, 1.f, 3.f, 1e6f, 1e30f};
  const float betas[] = {0.f, -0.25f, 0.3f, -1e-20f, 7e5f, -3e30f};
  std::vector<float> x = random_floats(rng, 2000);
  for (auto& v : x) v *= 4.f;
  for (float a : alphas)
    for (float b : betas)
      for (bool two_set : {false, true}) {
        const float cut = elastic_cut(a, b, two_set);
        std::vector<float> values = x;
        for (int64_t t = -300; t <= 300; ++t) values.push_back(float_at_order(float_order(cut) + t));
        for (float v : {b, b + 0.5f * a, b - 0.5f * a, 0.f, -0.f, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, 1e-45f,
                        -1e-45f, 1e-39f, std::nanf("")})
          values.push_back(v);
        int64_t wrong = 0;
        for (float v : values) wrong += below_cut(v, cut, two_set) != elastic_negative(v, a, b, two_set);
        expect(wrong == 0, "elastic_cut alpha " + std::to_string(a) + " beta " + std::to_string(b) +
                               (two_set ? " two-set: " : " elastic: ") + std::to_string(wrong) + " values disagree");
      }
}

// The FFN-down's GELU cut (encoder.h gelu_two_set_cut) on the path's own GELU: h below it exactly
// where the two-set binarizer marks GELU(h), on normal values, far-left ones and every float
// within 2,000 of the cut; and no cut where the binarizer marks part of GELU's falling branch.
void test_gelu_cut(const KernelTable& kt) {
  std::mt19937 rng(11);
  std::vector<float> h = random_floats(rng, 200000);
  for (auto& v : h) v *= 3.f;
  for (float v : {-5.f, -5.7f, -8.f, -100.f, -1e4f, -1e20f, -FLT_MAX, 0.f, -0.f, 1e-30f, FLT_MAX}) h.push_back(v);
  const float quantizers[][2] = {{0.3f, 0.f}, {0.5f, -0.1f}, {1.f, 0.2f}, {0.02f, 0.001f}, {2.f, 3.f}};
  for (const auto& q : quantizers) {
    float cut = 0.f;
    const std::string what = "gelu_two_set_cut alpha " + std::to_string(q[0]) + " beta " + std::to_string(q[1]) + " on " + kt.isa;
    expect(gelu_two_set_cut(kt, q[0], q[1], &cut), what + ": no cut");
    std::vector<float> values = h;
    for (int64_t t = -2000; t <= 2000; ++t) values.push_back(float_at_order(float_order(cut) + t));
    std::vector<float> activated = values;
    kt.gelu(activated.data(), static_cast<int64_t>(activated.size()));
    int64_t wrong = 0;
    for (size_t i = 0; i < values.size(); ++i)
      wrong += below_cut(values[i], cut, true) != elastic_negative(activated[i], q[0], q[1], true);
    expect(wrong == 0, what + ": " + std::to_string(wrong) + " values disagree with GELU then the binarizer");
  }
  // beta + alpha / 2 below 0: part of the falling branch is left unmarked, so no cut on h
  float cut = 0.f;
  expect(!gelu_two_set_cut(kt, 0.2f, -0.15f, &cut) && std::isnan(cut), std::string("gelu_two_set_cut without a cut on ") + kt.isa);
}

// The fused two-set attention weights (KernelTable::two_set_attention) against the path's own
// element-wise steps (scores, softmax_rows, the two-set cut): the same bits, on head dimensions
// with one to three chunks of levels, rows that are not whole vectors, padded keys (the highest
// dots among them), scales small and large and cuts from keep-all to keep-none; false for a row
// whose keys are all padded.
void test_two_set_attention(const KernelTable& kt) {
  if (!kt.two_set_attention) return;
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint64_t> random_word;
  for (int64_t d : {7, 32, 64}) {
    const float root = static_cast<float>(std::sqrt(static_cast<double>(d)));
    for (int64_t n : {128, 37, 200}) {
      const int64_t rows = 9, words = words_per_row(n);
      std::vector<int32_t> dots(static_cast<size_t>(rows * n));
      const uint64_t low = d == 64 ? ~uint64_t{0} : (uint64_t{1} << d) - 1;
      std::vector<uint64_t> keys(static_cast<size_t>(n));
      for (auto& k : keys) k = random_word(rng) & low;
      for (int64_t i = 0; i < rows; ++i) {
        const uint64_t q = random_word(rng) & low;
        for (int64_t j = 0; j < n; ++j) dots[i * n + j] = static_cast<int32_t>(d - 2 * __builtin_popcountll(q ^ keys[j]));
      }
      dots[3] = static_cast<int32_t>(d);  // a key with every bit matching: the highest level
      std::vector<int32_t> mask(static_cast<size_t>(n), 1);
      for (int64_t j = 0; j < n; j += 3) mask[j] = 0;  // key 3, the highest, among the padded
      for (const int32_t* m : {static_cast<const int32_t*>(nullptr), static_cast<const int32_t*>(mask.data())})
        for (float alphas : {0.05f, 0.7f, 3.f}) {
          std::vector<float> p(static_cast<size_t>(rows * n));
          for (int64_t t = 0; t < rows * n; ++t) p[t] = static_cast<float>(dots[t]) * alphas / root;
          kt.softmax_rows(p.data(), rows, n, 1.f, m);
          std::vector<float> sorted = p;
          std::sort(sorted.begin(), sorted.end());
          for (float cut : {1e-30f, sorted[sorted.size() * 3 / 10], sorted[sorted.size() * 7 / 10],
                            sorted[sorted.size() * 95 / 100], 2.f}) {
            std::vector<uint64_t> want(static_cast<size_t>(rows * words), 0), got(want.size(), ~uint64_t{0});
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < n; ++j)
                if (!below_cut(p[i * n + j], cut, true)) want[i * words + j / 64] |= uint64_t{1} << (j % 64);
            const bool ran = kt.two_set_attention(dots.data(), rows, n, d, alphas, root, m, cut, got.data());
            expect(ran && got == want, std::string("two_set_attention on ") + kt.isa + ", d " + std::to_string(d) + ", n " +
                                           std::to_string(n) + (m ? ", padded" : "") + ", alphas " + std::to_string(alphas) +
                                           ", cut " + std::to_string(cut));
          }
        }
      std::vector<int32_t> none(static_cast<size_t>(n), 0);
      std::vector<uint64_t> bits(static_cast<size_t>(rows * words));
      expect(!kt.two_set_attention(dots.data(), rows, n, d, 0.7f, root, none.data(), 0.01f, bits.data()),
             std::string("two_set_attention with every key padded on ") + kt.isa);
    }
  }
}

// KernelTable::panel_from_rows and panel_from_columns against gemm_panels.h's loops (their
// definitions), where the path has them: every column count from 1 to 16 (the columns past
// `columns` zero), k inside one block of 16 and across several with a partial last one, a stride
// wider than the rows, and a start column j > 0. The floats are only moved: the same bits.
void test_panels(const KernelTable& kt) {
  std::mt19937 rng(11);
  for (int64_t k : {1, 5, 16, 37, 64, 130})
    for (int columns = 1; columns <= 16; ++columns) {
      const int64_t j = 2, ldb = std::max<int64_t>(k, j + 16) + 3;
      const auto b = random_floats(rng, (j + 16 + k) * ldb);
      const std::string where = std::string(" on ") + kt.isa + ", k " + std::to_string(k) + ", columns " + std::to_string(columns);
      std::vector<float> want(static_cast<size_t>(k * 16), -1.f), got(want.size(), -2.f);
      if (kt.panel_from_rows) {
        panel_from_rows(b.data(), ldb, j, columns, k, want.data());
        kt.panel_from_rows(b.data(), ldb, j, columns, k, got.data());
        expect(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0, "panel_from_rows" + where);
      }
      if (kt.panel_from_columns) {
        panel_from_columns(b.data(), ldb, j, columns, k, want.data());
        kt.panel_from_columns(b.data(), ldb, j, columns, k, got.data());
        expect(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0, "panel_from_columns" + where);
      }
    }
}

// KernelTable::pack_gelu_signs against its definition, where the path has it: the path's gelu on
// a copy of the rows, then its pack_signs; the same bits and the same means bit for bit, on rows
// with a partial last word and a row stride wider than k (values around 0, where GELU's sign
// and rounding matter, and large ones).
void test_pack_gelu_signs(const KernelTable& kt) {
  if (!kt.pack_gelu_signs) return;
  std::mt19937 rng(13);
  for (int64_t k : {1, 20, 64, 70, 130, 1536}) {
    const int64_t rows = 5, ldx = k + 7, words = words_per_row(k);
    auto x = random_floats(rng, rows * ldx);
    for (int64_t t = 0; t < rows * ldx; t += 5) x[t] *= 1e-20f;
    for (int64_t t = 1; t < rows * ldx; t += 7) x[t] *= 30.f;
    std::vector<float> activated(static_cast<size_t>(rows * k));
    for (int64_t r = 0; r < rows; ++r) std::copy(x.begin() + r * ldx, x.begin() + r * ldx + k, activated.begin() + r * k);
    kt.gelu(activated.data(), rows * k);
    std::vector<uint64_t> want(static_cast<size_t>(rows * words)), got(want.size(), ~uint64_t{0});
    std::vector<float> want_mean(static_cast<size_t>(rows)), got_mean(want_mean.size(), -1.f);
    kt.pack_signs(activated.data(), rows, k, k, want.data(), want_mean.data());
    kt.pack_gelu_signs(x.data(), rows, k, ldx, got.data(), got_mean.data());
    expect(got == want && std::memcmp(got_mean.data(), want_mean.data(), sizeof(float) * rows) == 0,
           std::string("pack_gelu_signs == gelu then pack_signs on ") + kt.isa + ", k " + std::to_string(k));
  }
}

// KernelTable::transpose_bits against the definition, where the path has it: every word written
// (a stale buffer), rows not a whole word, d in one or both lane widths; several-word rows
// either refused or right.
void test_transpose_bits(const KernelTable& kt) {
  if (!kt.transpose_bits) return;
  std::mt19937 rng(9);
  std::uniform_int_distribution<uint64_t> random_word;
  for (int64_t d : {1, 7, 32, 33, 64, 100})
    for (int64_t n : {1, 37, 64, 128, 200}) {
      const int64_t words = words_per_row(d), key_words = words_per_row(n);
      std::vector<uint64_t> rows(static_cast<size_t>(n * words));
      for (int64_t j = 0; j < n; ++j)
        for (int64_t w = 0; w < words; ++w) {
          const int64_t bits = std::min<int64_t>(64, d - 64 * w);
          rows[j * words + w] = random_word(rng) & (bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1);
        }
      std::vector<uint64_t> want(static_cast<size_t>(d * key_words), 0), got(want.size(), ~uint64_t{0});
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < d; ++c)
          if ((rows[j * words + c / 64] >> (c % 64)) & 1) want[c * key_words + j / 64] |= uint64_t{1} << (j % 64);
      const bool ran = kt.transpose_bits(rows.data(), n, words, d, got.data());
      expect(ran ? got == want : words > 1, std::string("transpose_bits on ") + kt.isa + ", d " + std::to_string(d) +
                                                ", n " + std::to_string(n) + (ran ? "" : ": refused one-word rows"));
    }
}

// KernelTable::bit_row_sums (or the portable copy the encoder falls back to) against sums in
// double: widths in and out of the register specialisations (32, 64), keys not a whole group or
// word, an odd number of rows; every output value written, nothing past d in a row.
void test_bit_row_sums(const KernelTable& kt) {
  const auto sums = kt.bit_row_sums ? kt.bit_row_sums : bit_row_sums_portable;
  std::mt19937 rng(11);
  std::uniform_int_distribution<uint64_t> random_word;
  for (int64_t d : {1, 8, 32, 40, 64, 160})
    for (int64_t n : {1, 3, 37, 64, 130})
      for (int64_t rows : {1, 5, 128}) {
        const int64_t key_words = words_per_row(n), ldv = d + 3, ldo = d + 5;
        const std::vector<float> v = random_floats(rng, n * ldv);
        std::vector<uint64_t> bits(static_cast<size_t>(rows * key_words));
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t w = 0; w < key_words; ++w) {
            const int64_t keys = std::min<int64_t>(64, n - 64 * w);
            bits[i * key_words + w] = random_word(rng) & (keys == 64 ? ~uint64_t{0} : (uint64_t{1} << keys) - 1);
          }
        std::vector<float> out(static_cast<size_t>(rows * ldo), NAN), table(static_cast<size_t>(bit_row_sums_scratch(n, d)));
        sums(bits.data(), rows, key_words, v.data(), ldv, n, d, out.data(), ldo, table.data());
        bool ok = true;
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t c = 0; c < ldo; ++c) {
            if (c >= d) {
              ok &= std::isnan(out[i * ldo + c]);
              continue;
            }
            double want = 0.0, scale = 0.0;
            for (int64_t j = 0; j < n; ++j)
              if ((bits[i * key_words + j / 64] >> (j % 64)) & 1) want += v[j * ldv + c], scale += std::fabs(v[j * ldv + c]);
            ok &= std::fabs(out[i * ldo + c] - want) <= 1e-5 * (1.0 + scale);
          }
        expect(ok, std::string("bit_row_sums on ") + kt.isa + ", d " + std::to_string(d) + ", n " + std::to_string(n) +
                       ", rows " + std::to_string(rows));
      }
}

// KernelTable::pack_negative against its definition (kernels.h pack_negative_rows), which is
// checked here too: rows not a whole word or vector, zeros and the extremes; every word written.
void test_pack_negative(const KernelTable& kt) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int32_t> small(-3, 3);
  for (int64_t n : {1, 7, 8, 37, 64, 100, 130})
    for (int64_t rows : {1, 3}) {
      std::vector<int32_t> x(static_cast<size_t>(rows * n));
      for (auto& v : x) v = small(rng);
      x[0] = INT32_MIN, x.back() = INT32_MAX;
      const int64_t words = words_per_row(n);
      std::vector<uint64_t> want(static_cast<size_t>(rows * words), 0), got(want.size(), ~uint64_t{0}), defined(want.size(), ~uint64_t{0});
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < n; ++j)
          if (x[r * n + j] < 0) want[r * words + j / 64] |= uint64_t{1} << (j % 64);
      pack_negative_rows(x.data(), rows, n, defined.data());
      expect(defined == want, "pack_negative_rows, n " + std::to_string(n));
      if (!kt.pack_negative) continue;
      kt.pack_negative(x.data(), rows, n, got.data());
      expect(got == want, std::string("pack_negative on ") + kt.isa + ", n " + std::to_string(n));
    }
}

}  // namespace

#if defined(BITMAPS_HAVE_AVX512)
// test_float_avx512.cpp, compiled with the AVX-512 flags
int64_t avx512_softmax_loop_mismatches();
#endif

// The derived weight layouts and the layers' scratch start on a cache line (aligned.h): from
// malloc's 16-byte alignment every 512-bit load of the octets spanned two lines, and a W1A1 layer
// at one row ran slower or not depending on where its allocation fell.
void test_layout_alignment(const KernelTable& kt) {
  std::mt19937 rng(5);
  const int64_t m = 3, k = 200, n = 40;
  auto x = random_floats(rng, m * k), w = random_floats(rng, 2 * n * k), scale = random_floats(rng, n);
  for (auto& s : scale) s = std::fabs(s) + 0.1f;
  auto wb = pack(w, 2 * n, k);
  auto on_line = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; };
  std::vector<float> y(static_cast<size_t>(m * n));
  for (Scheme scheme : {Scheme::kW1A1, Scheme::kW1A8, Scheme::kW1A32, Scheme::kW158A8}) {
    LinearWeights layer;
    layer.scheme = scheme, layer.in = k, layer.out = n, layer.words = wb.data(), layer.scale = scale.data();
    const char* error = nullptr;
    expect(layer.prepare(&error, kt), "prepare for the alignment test");
    const std::string name = std::string(kt.isa) + " scheme " + std::to_string(static_cast<int>(scheme));
    for (const void* p : {static_cast<const void*>(layer.octets.data()), static_cast<const void*>(layer.nibbles.data()),
                          static_cast<const void*>(layer.lut.data()), static_cast<const void*>(layer.panel_bits.data()),
                          static_cast<const void*>(layer.epilogue_scale.data())})
      expect(p == nullptr || on_line(p), name + ": a derived weight layout does not start on a cache line");
    LinearScratch scratch;
    run_linear(kt, layer, x.data(), m, y.data(), 1, scratch);
    for (const void* p : {static_cast<const void*>(scratch.bits.data()), static_cast<const void*>(scratch.xnor_luts.data()),
                          static_cast<const void*>(scratch.q.data()), static_cast<const void*>(scratch.luts.data())})
      expect(p == nullptr || on_line(p), name + ": a scratch buffer does not start on a cache line");
  }
}

// The x86 SIMD paths' GELU give the same bits (float_avx512.h's gelu16 is float_avx2.h's gelu8 in
// 512-bit registers), at every count, so tails and lone values too.
void test_gelu_same_bits() {
  const KernelTable* avx2 = nullptr;
  for (const KernelTable* table : available_kernels())
    if (std::string(table->isa) == "avx2") avx2 = table;
  if (avx2 == nullptr) return;
  std::mt19937 rng(17);
  std::vector<float> x = random_floats(rng, 1001);
  for (size_t i = 0; i < x.size(); i += 3) x[i] *= 4.f;  // into the clamped tails
  for (const KernelTable* table : available_kernels()) {
    const std::string isa = table->isa;
    if (isa != "avx512" && isa != "avx512_vnni" && isa != "avx512_vbmi") continue;
    for (int64_t count : {1, 7, 16, 17, 1001}) {
      std::vector<float> want(x.begin(), x.begin() + count), got = want;
      avx2->gelu(want.data(), count);
      table->gelu(got.data(), count);
      expect(std::memcmp(want.data(), got.data(), count * sizeof(float)) == 0,
             isa + " gelu: the same bits as avx2's at count " + std::to_string(count));
    }
  }
}

int main() {
  test_gelu_same_bits();
#if defined(BITMAPS_HAVE_AVX512)
  if (__builtin_cpu_supports("avx512f")) {
    const int64_t mismatches = avx512_softmax_loop_mismatches();
    expect(mismatches == 0, "float_avx512.h: " + std::to_string(mismatches) +
                                " exponentials or maxima differ from exp8 or a loop");
  }
#endif
  test_elastic_cut();
  const char* forced = std::getenv("BITMAPS_KERNELS");
  int tested = 0;
  for (const KernelTable* table : available_kernels()) {
    if (forced && *forced && std::string(forced) != "auto" && std::string(forced) != table->isa) continue;
    test_table(*table);
    test_float_kernels(*table);
    test_sgemm_panel(*table);
    test_unpack_panel(*table);
    test_schemes(*table);
    test_w1a8_inputs_activated(*table);
    test_run_by_rows(*table);
    test_gelu_cut(*table);
    test_two_set_attention(*table);
    test_transpose_bits(*table);
    test_panels(*table);
    test_pack_gelu_signs(*table);
    test_bit_row_sums(*table);
    test_pack_negative(*table);
    test_layout_alignment(*table);
    ++tested;
    std::printf("kernel path %s: tested\n", table->isa);
  }
  expect(tested > 0, "no kernel path matched BITMAPS_KERNELS");
  // BITMAPS_EXPECT_PATHS=scalar,neon: the paths this CPU must offer, in order (feature detection)
  if (const char* want = std::getenv("BITMAPS_EXPECT_PATHS")) {
    std::string offered;
    for (const KernelTable* table : available_kernels()) offered += (offered.empty() ? "" : ",") + std::string(table->isa);
    expect(offered == want, "kernel paths offered: " + offered + ", expected " + want);
  }
  if (failures) std::fprintf(stderr, "%d failures\n", failures);
  else std::printf("all kernel tests passed\n");
  return failures ? 1 : 0;
}
