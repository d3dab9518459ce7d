// Raw-pointer 1-bit kernels. No Python, no torch: callers pass pointers and sizes.
//
// Bit layout (bitmaps_allennlp/quantization/bit_packing.py): bit 1 means -1, bit 0 means +1; value k
// of a row sits at bit k % 64 of word k / 64; rows are padded with zero bits to whole words.
// Padding bits are equal in both operands, so an XNOR dot product is k - 2 * popcount(a ^ b)
// with the true k.
//
// Every compute kernel works on a tile of output rows [m0, m1) x columns [n0, n1) of an output
// with n columns, so the threading layer can split the work without the kernels knowing.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace bitmaps {

// How a path stores the W1A8 lookup tables (int8_lut.h defines the entries and both layouts).
enum class LutFormat : int32_t {
  kNone = 0,    // no tables: the path multiplies the int8 rows directly
  kPlanes = 1,  // each entry's low bytes, then its high bytes
  kSplit6 = 2,  // u = entry + 508: u & 63, then u >> 6 (added as bytes, widened rarely)
};

// KernelTable::w1a8_row_tile on paths that do not set it
constexpr int64_t kW1a8RowTile = 16;

struct KernelTable {
  const char* isa;
  // Fused binarize-and-pack of fp32 rows (row stride ldx): bits into out (rows x words);
  // when mean_abs is not null, also mean(|x|) of each row (the XNOR-Net activation scale).
  void (*pack_signs)(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out,
                     float* mean_abs);
  // out[i * n + j] = k - 2 * popcount(a_i ^ b_j)
  void (*xnor_gemm)(const uint64_t* a, const uint64_t* b, int32_t* out, int64_t m0,
                    int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k);
  // y[i * n + j] = beta[i] * alpha[j] * (k - 2 * popcount(a_i ^ b_j)) + bias[j] (bias nullable)
  void (*xnor_linear)(const uint64_t* a, const uint64_t* b, const float* beta,
                      const float* alpha, const float* bias, float* y, int64_t m0, int64_t m1,
                      int64_t n0, int64_t n1, int64_t n, int64_t words, int64_t k);
  // Binary weights, real activations: y[i * n + j] = alpha[j] * sum_k x[i, k] * s_jk + bias[j]
  void (*binary_weight_linear)(const float* x, int64_t ldx, const uint64_t* w,
                               const float* alpha, const float* bias, float* y, int64_t m0,
                               int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t words,
                               int64_t k);
  // Absmax int8 quantization of fp32 rows, as quantize_rows_int8 in int8_lut.h specifies.
  void (*quantize_rows_int8)(const float* x, int64_t rows, int64_t k, int64_t ldx, int8_t* q,
                             float* inv_scale, int32_t* rowsum);
  // Binary weights, int8 activations (W1A8), exact (see int8_lut.h for the layouts):
  // y[i * n + j] = (rowsum[i] - 2 * sum_k q[i, k] * bit_jk) * inv_scale[i] * alpha[j] + bias[j].
  // The table-lookup paths read the per-row tables `luts` (built by the caller only when
  // w1a8_tables is not kNone, in that format); the VNNI path multiplies the int8 rows `q` directly.
  void (*w1a8_linear)(const uint8_t* luts, const int8_t* q, const int32_t* rowsum,
                      const float* inv_scale, const uint8_t* wlut, const float* alpha,
                      const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1,
                      int64_t n, int64_t groups);
  LutFormat w1a8_tables;
  // Float work of the encoder (float_avx2.h; the portable versions in kernels_scalar.cpp).
  // C[i * ldc + j] = sum_t A[i * lda + t] * B[j * ldb + t] on rows [m0, m1) x columns [n0, n1)
  void (*sgemm_nt)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0,
                   int64_t m1, int64_t n0, int64_t n1, int64_t k);
  // C[i * ldc + j] = sum_t A[i * lda + t] * B[t * ldb + j] on rows [m0, m1), all n columns
  void (*sgemm_nn)(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, int64_t m0,
                   int64_t m1, int64_t n, int64_t k);
  // C[i * ldc + j] = sum_t A[i * lda + t] * panel[t * 16 + j] (+ bias[j]) on rows [m0, m1), columns
  // j < `columns` (<= sgemm_panel_columns): the GEMM micro-kernel on caller-built panels of 16
  // columns, column 16 p + j in panel p, which starts at panel + p * k * 16 (W1A32 unpacks its
  // signs into them). `bias` (nullable) is added as each sum is stored: the same bits as adding it
  // afterwards, without a second pass over C (a scalar pass had been 2-3% of a W1A32 forward).
  void (*sgemm_panel)(const float* a, int64_t lda, const float* panel, float* c, int64_t ldc, int64_t m0, int64_t m1,
                      int64_t k, int columns, const float* bias);
  // panel[t * 16 + j] = bit j of masks[t] ? -alpha[j] : alpha[j] for j < columns, else 0: binary
  // weights in their panel layout (panel_bits in linear.h) expanded for sgemm_panel
  void (*unpack_panel)(const uint16_t* masks, int64_t k, const float* alpha, int columns, float* panel);
  // x[i] = x[i] * 0.5 * (1 + erf(x[i] / sqrt(2))), each value's result independent of its place
  // in the call and of count (the encoder activates in blocks or row by row and gets the same bits)
  void (*gelu)(float* x, int64_t count);
  // Attention weights (softmax_rows.h): rows x n scores divided by `divisor`, then softmax over
  // each row; mask (nullable, n entries) marks padded keys with 0
  void (*softmax_rows)(float* x, int64_t rows, int64_t n, float divisor, const int32_t* mask);
  // xnor_gemm with b in column quads (`column_quads` below), for attention's products on packed
  // operands; null on paths without it, where callers use xnor_gemm on the plain layout.
  void (*xnor_gemm_quads)(const uint64_t* a, const uint64_t* b4, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k);
  // pack_signs for BiT's elastic binarizer, by its cut (elastic_cut below): bit set where
  // below_cut(x, cut, two_set), which is elastic_negative(x, alpha, beta, two_set) for
  // cut = elastic_cut(alpha, beta, two_set); one compare per value, no division
  void (*pack_elastic)(const float* x, int64_t rows, int64_t k, int64_t ldx, float cut, bool two_set, uint64_t* out);
  // The tables w1a8_linear reads, as int8_lut.h's build_luts defines them (null where
  // w1a8_tables is kNone): per instruction set, since building them had cost a third of a
  // W1A8 layer's lookups at k = 1536.
  void (*build_luts)(const int8_t* q, int64_t rows, int64_t groups, uint8_t* luts);
  // W1A1 by table lookup (xnor_lut.h): the tables of packed rows `a`, then xnor_gemm and
  // xnor_linear on them with the weights in the nibble layout, for k < 32768; null on paths
  // without them, where callers use xnor_gemm / xnor_linear.
  void (*build_xnor_luts)(const uint64_t* a, int64_t rows, int64_t words, uint8_t* luts);
  void (*xnor_lut_gemm)(const uint8_t* luts, const uint8_t* nibbles, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                        int64_t n1, int64_t n, int64_t words, int64_t k);
  void (*xnor_lut_linear)(const uint8_t* luts, const uint8_t* nibbles, const float* beta, const float* alpha,
                          const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                          int64_t words, int64_t k);
  // LayerNorm of rows x h in place (layer_norm_rows.h: the same bits on every path)
  void (*layer_norm_rows)(float* x, int64_t rows, int64_t h, const float* weight, const float* bias, float eps);
  // xnor_gemm and xnor_linear with the weights in column octets (`to_column_groups` below, 8
  // columns): null on paths without them, where callers use the row layout (or the nibble one).
  void (*xnor_octets_gemm)(const uint64_t* a, const uint64_t* b8, int32_t* out, int64_t m0, int64_t m1, int64_t n0,
                           int64_t n1, int64_t n, int64_t words, int64_t k);
  void (*xnor_octets_linear)(const uint64_t* a, const uint64_t* b8, const float* beta, const float* alpha,
                             const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n,
                             int64_t words, int64_t k);
  // Ternary weights (two sign planes u, v in the W1A8 weight layout), int8 inputs, in one product:
  // y[i * n + j] = (2 rowsum[i] - 2 sum_k q[i, k] (bit_u + bit_v)) * inv_scale[i] * half_gamma[j]
  // + bias[j], the two planes' dots summed as integers. It reads what w1a8_linear reads (the
  // tables `luts` in w1a8_tables' format, or `q` where that is kNone). Null on paths that run the
  // planes as two w1a8_linear products and sum them in float.
  void (*w158a8_linear)(const uint8_t* luts, const int8_t* q, const int32_t* rowsum, const float* inv_scale,
                        const uint8_t* wlut_u, const uint8_t* wlut_v, const float* half_gamma, const float* bias,
                        float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n, int64_t groups);
  // BiT's two-set attention weights straight from 1-bit scores (two_set_attention_avx512.h,
  // two_set_attention_avx2.h): for rows x n integer dots of 1-bit Q and K rows of d bits, the bits
  // b = 1 of the two-set binarizer (its cut) on softmax(dot * alphas / root) over the keys (mask:
  // nullable, 0 = padded key), words_per_row(n) words a row, bit for bit what this path's element-wise steps give
  // (the scores, softmax_rows, pack_elastic). False, with the bits unspecified, where it does not
  // apply (d >= kMaxTwoSetHeadDim, a row whose keys are all padded): the caller runs those steps.
  // Null on paths without it (the element-wise steps stay the reference).
  bool (*two_set_attention)(const int32_t* dots, int64_t rows, int64_t n, int64_t d, float alphas, float root,
                            const int32_t* mask, float cut, uint64_t* bits);
  // The W1A1 linears' epilogue (scale_dots.h) at this path's width; null where the portable
  // core's own copy is as wide (scalar, NEON).
  void (*scale_dots)(const int32_t* dots, const int32_t* add, float factor, const float* scale, const float* bias,
                     float* y, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t n);
  // A bit matrix turned: for n rows of `words` words holding d bits, bit j of out row c
  // (words_per_row(n) words a row, every word written) = bit c of row j. False where the path's
  // kernel does not take the shape (bits_avx512.h: one word a row); null on paths without one.
  // Either way the caller's portable loop (encoder.cpp transpose_bits) does it.
  bool (*transpose_bits)(const uint64_t* rows, int64_t n, int64_t words, int64_t d, uint64_t* out);
  // Rows of 0/1 weights (bits, key_words words a row) against n rows of d floats: out row i = the
  // sum of the rows its bits select (bit_row_sums.h, at this path's width; `table`:
  // bit_row_sums_scratch(n, d) floats). Null where the portable core's copy is as wide (scalar, NEON).
  void (*bit_row_sums)(const uint64_t* bits, int64_t rows, int64_t key_words, const float* v, int64_t ldv, int64_t n,
                       int64_t d, float* out, int64_t ldo, float* table);
  // pack_signs' bits for integers: bit j of out row r (words_per_row(n) words a row, the bits past
  // n 0) set where x[r * n + j] < 0 (pack_negative_rows below is the definition and the fallback
  // of paths without one)
  void (*pack_negative)(const int32_t* x, int64_t rows, int64_t n, uint64_t* out);
  // The table-lookup W1A1 product with scale_dots' epilogue in its tiles (BiT's elastic and
  // two-set inputs): y[i * n + j] = float(dot + add[j]) * factor * scale[j] (+ bias[j]), the same
  // floats as xnor_lut_gemm then scale_dots, without the int32 dots stored and read again. Null
  // on paths without it (the two calls stay).
  void (*xnor_lut_scaled)(const uint8_t* luts, const uint8_t* nibbles, const int32_t* add, float factor,
                          const float* scale, const float* bias, float* y, int64_t m0, int64_t m1, int64_t n0,
                          int64_t n1, int64_t n, int64_t words, int64_t k);
  // The most rows a call of w1a8_linear / w158a8_linear gets (tiles of this many rows x 64
  // columns, linear.cpp): 16, or more on a path whose kernel expands each column block's weight
  // bits once per call and reads them back for every row.
  int64_t w1a8_row_tile = kW1a8RowTile;
  // The most columns a call of sgemm_panel takes (16: one panel; 32 on the AVX-512 paths, whose
  // micro-kernel reads two panels a step, float_avx512.h); callers give it that many a call.
  int sgemm_panel_columns = 16;
  // panel[t * 16 + jj] = b[(j + jj) * ldb + t] for jj < columns, else 0: B's rows turned into a
  // panel of sgemm_panel (gemm_panels.h's panel_from_rows is the definition and the fallback of the
  // paths without one; null there). Attention turns each head's keys this way; the portable loop
  // reads one float per key row a step.
  void (*panel_from_rows)(const float* b, int64_t ldb, int64_t j, int columns, int64_t k, float* panel) = nullptr;
  // panel[t * 16 + jj] = b[t * ldb + j + jj] for jj < columns, else 0 (gemm_panels.h's
  // panel_from_columns likewise): attention's values per head. The portable core's loop runs at
  // its base flags' width, 4 floats a step.
  void (*panel_from_columns)(const float* b, int64_t ldb, int64_t j, int columns, int64_t k, float* panel) = nullptr;
  // pack_signs of gelu(x) (this path's `gelu` above), the same bits and means as gelu on a copy of
  // the rows and then pack_signs, without the copy: XNOR-Net's FFN-down inputs. Null on paths
  // without it (the caller activates a copy of each row).
  void (*pack_gelu_signs)(const float* x, int64_t rows, int64_t k, int64_t ldx, uint64_t* out, float* mean_abs) = nullptr;
  // x = LayerNorm(x + residual) on rows x h, the add stored into x: the same bits as adding first
  // and then layer_norm_rows (layer_norm_rows.h's add_layer_norm_rows_with), in one pass fewer over
  // x. Null on paths without it (the encoder adds in a loop of its own, at its base flags' width).
  void (*add_layer_norm_rows)(float* x, const float* residual, int64_t rows, int64_t h, const float* weight,
                              const float* bias, float eps) = nullptr;
  // w158a8_linear reads the int8 rows `q` alone, on a path whose w1a8_linear reads tables
  // (avx512_vbmi: ternary stays on vpdpbusd, where two sign planes add as bytes before one
  // multiply): ternary layers' inputs then get no tables (w1a8_tables_for below).
  bool w158a8_reads_rows = false;
  // Where the tables are built per block of rows (linear.cpp, inputs of more than 512 KB of
  // tables), blocks of as many rows as 512 KB of tables hold rather than 16: for a kernel with
  // work per call and column block (avx512_vbmi builds its lookup indices), spread over the
  // rows. The AVX2 lookups ran 6-13% slower so (Zen 4, BERT-base layers).
  bool w1a8_wide_table_blocks = false;
};

// The tables a W1A8 product (ternary: a W1.58A8 one in w158a8_linear) reads on this path.
inline LutFormat w1a8_tables_for(const KernelTable& kernels, bool ternary) {
  return ternary && kernels.w158a8_reads_rows ? LutFormat::kNone : kernels.w1a8_tables;
}
constexpr int64_t kMaxTwoSetHeadDim = 127;

// Whether the path reads W1A1 weights in the nibble layout: LinearWeights::prepare builds that
// layout (2 bits per weight beside the 1-bit words) only for such a path, so the paths without
// table-lookup W1A1 kernels (NEON, AVX-512, scalar) do not carry it.
inline bool reads_nibble_layout(const KernelTable& kernels) { return kernels.xnor_lut_linear != nullptr; }
// Whether the path reads W1A1 weights in column octets (1 more bit per weight, built likewise).
inline bool reads_octet_layout(const KernelTable& kernels) { return kernels.xnor_octets_linear != nullptr; }
// Whether a model prepared for path a holds the weight layouts path b reads (and no others).
inline bool same_weight_layouts(const KernelTable& a, const KernelTable& b) {
  return reads_nibble_layout(a) == reads_nibble_layout(b) && reads_octet_layout(a) == reads_octet_layout(b);
}

extern const KernelTable kScalarKernels;
#if defined(BITMAPS_HAVE_AVX2)
extern const KernelTable kAvx2Kernels;
#endif
#if defined(BITMAPS_HAVE_AVX512)
extern const KernelTable kAvx512Kernels;
#endif
#if defined(BITMAPS_HAVE_AVX512_VNNI)
// Its own popcount and W1A8 kernels with the AVX2 table's activation packing and W1A32; built
// on first call (not a static initializer reading another file's table).
const KernelTable& avx512_vnni_kernels(const KernelTable& avx2);
#endif
#if defined(BITMAPS_HAVE_AVX512_VBMI)
// The avx512_vnni table with W1A8 by vpermb table lookup (kernels_avx512_vbmi.cpp); built on
// first call from it.
const KernelTable& avx512_vbmi_kernels(const KernelTable& vnni);
#endif

#if defined(BITMAPS_HAVE_NEON)
// NEON kernels (every ARMv8-A core).
const KernelTable& neon_kernels();
#endif
#if defined(BITMAPS_HAVE_NEON_DOTPROD)
// The NEON table with W1A8 on sdot (ARMv8.2 dot product); built on first call from it.
const KernelTable& neon_dotprod_kernels(const KernelTable& neon);
#endif

inline int64_t words_per_row(int64_t k) { return (k + 63) / 64; }

// BiT's learned 1-bit levels, with the training quantizer's float operations (ElasticBinarizer),
// for linear inputs and attention's Q/K/V and probabilities alike: scaled = (x - beta) / alpha;
// elastic: -1 where scaled < 0; two-set: b = round_half_even(clip(scaled, 0, 1)) in {0, 1},
// s = 2b - 1, so -1 exactly where scaled <= 0.5 (0.5 rounds to even: 0). Compares instead of a
// libm rounding call per value, which had made these paths 4-6x slower than plain sign inputs.
// KernelTable::pack_elastic applies it to whole rows (the SIMD paths in the same float operations).
inline bool elastic_negative(float x, float alpha, float beta, bool two_set) {
  const float scaled = (x - beta) / alpha;
  return two_set ? scaled <= 0.5f : !(scaled >= 0.f);
}

// Floats in their numeric order as integers (-0 and +0 alike, -inf and +inf at the ends, NaN
// outside them), and back: for searching a monotone predicate over every float.
inline int64_t float_order(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u & 0x80000000u ? -static_cast<int64_t>(u & 0x7fffffffu) : static_cast<int64_t>(u);
}
inline float float_at_order(int64_t key) {
  const uint32_t u = key < 0 ? static_cast<uint32_t>(-key) | 0x80000000u : static_cast<uint32_t>(key);
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The smallest float in (from, to] where `below` is false, for a predicate that is true at `from`,
// false at `to` and monotone between them (true, then false): 32 halvings of the float order.
template <typename Below>
float lowest_above(Below below, float from, float to) {
  int64_t lo = float_order(from), hi = float_order(to);
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (below(float_at_order(mid))) lo = mid;
    else hi = mid;
  }
  return float_at_order(hi);
}

// x below a cut: two-set x < cut (false for NaN), elastic !(x >= cut) (true for NaN), the NaN
// cases of elastic_negative's two compares.
inline void pack_negative_rows(const int32_t* x, int64_t rows, int64_t n, uint64_t* out) {
  const int64_t words = words_per_row(n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t w = 0; w < words; ++w) {
      uint64_t bits = 0;
      for (int64_t j = 64 * w; j < n && j < 64 * w + 64; ++j) bits |= static_cast<uint64_t>(x[r * n + j] < 0) << (j & 63);
      out[r * words + w] = bits;
    }
}

inline bool below_cut(float x, float cut, bool two_set) { return two_set ? x < cut : !(x >= cut); }

// The cut of BiT's binarizer, so that below_cut(x, elastic_cut(alpha, beta, t), t) ==
// elastic_negative(x, alpha, beta, t) for every float x: with alpha > 0 and alpha, beta finite
// (the model builder checks), (x - beta) / alpha is two correctly rounded operations, each
// monotone in x, so the values it marks are every float below the smallest one it does not mark
// (-inf is marked, +inf is not). Packing then compares instead of dividing per value; with the
// FFN-down's GELU cut (encoder.h) this took BiT stage 2's quantizers on a MiniLM from 4.63 to 3.86 ms
// a forward on Zen 4, avx512_vnni (7.23 to 6.47 ms on avx2), 1 thread
// (benchmarks/results/archive_revisions_zen4_*cuts_bit_stage2_knobs_1t.json).
inline float elastic_cut(float alpha, float beta, bool two_set) {
  return lowest_above([&](float x) { return elastic_negative(x, alpha, beta, two_set); }, -INFINITY, INFINITY);
}


// The int32 lanes of a SIMD vector `dots` (any vector type) as columns j0.. of `row`, keeping only
// those inside [n0, n1): the stores of the SIMD tiles, whose edge vectors reach past the tile.
template <typename Vector>
inline void store_dots(int32_t* row, int64_t j0, int64_t n0, int64_t n1, Vector dots) {
  constexpr int lanes = sizeof(Vector) / sizeof(int32_t);
  if (j0 >= n0 && j0 + lanes <= n1) return static_cast<void>(std::memcpy(row + j0, &dots, sizeof dots));
  int32_t d[lanes];
  std::memcpy(d, &dots, sizeof dots);
  for (int t = 0; t < lanes; ++t)
    if (j0 + t >= n0 && j0 + t < n1) row[j0 + t] = d[t];
}

// Column groups of g: word w of columns g*q..g*q+g-1 side by side, bg[(q * words + w) * g + t] =
// word w of column g*q + t (zero past n), so that one load of g words holds one word of g columns
// and the per-64-bit-lane popcount sums are the g columns' counts, with no horizontal reduction.
// Quads (g = 4, one 256-bit vector) for attention's products, octets (g = 8, one 512-bit vector)
// for the AVX-512 W1A1 linears.
inline int64_t column_groups(int64_t n, int64_t g) { return (n + g - 1) / g; }
inline void to_column_groups(const uint64_t* w, int64_t n, int64_t words, int64_t g, uint64_t* bg) {
  for (int64_t q = 0; q < column_groups(n, g); ++q)
    for (int64_t v = 0; v < words; ++v)
      for (int64_t t = 0; t < g; ++t)
        bg[(q * words + v) * g + t] = g * q + t < n ? w[(g * q + t) * words + v] : 0;
}
inline int64_t column_quads(int64_t n) { return column_groups(n, 4); }
inline void to_column_quads(const uint64_t* w, int64_t n, int64_t words, uint64_t* b4) { to_column_groups(w, n, words, 4, b4); }

}  // namespace bitmaps
