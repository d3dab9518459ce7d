// The coefficients of the vectorised exp and erf (float_avx2.h, kernels_neon.cpp), defined once:
// each ISA evaluates the same polynomials in its own registers.
//
// exp(x): Cephes' expf. x = n ln2 + r with n = round(x / ln2) and ln2 split in two for accuracy,
//   exp(r) = 1 + r + r^2 * P(r) (P by Horner from kExpP[0]), times 2^n; x clamped to
//   [kExpLow, kExpHigh] (about 1 ulp).
// erf(x): Eigen's rational approximation, x clamped to [-4, 4], erf(x) = x P(x^2) / Q(x^2) (a few ulp).
#pragma once

namespace bitmaps {
namespace approx {

constexpr float kExpLow = -87.3f, kExpHigh = 88.3f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                            4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

constexpr float kErfClamp = 4.f;
constexpr float kErfP[7] = {-2.72614225801306e-10f, 2.77068142495902e-08f, -2.10102402082508e-06f,
                            -5.69250639462346e-05f, -7.34990630326855e-04f, -2.95459980854025e-03f,
                            -1.60960333262415e-02f};
constexpr float kErfQ[5] = {-1.45660718464996e-05f, -2.13374055278905e-04f, -1.68282697438203e-03f,
                            -7.37332916720468e-03f, -1.42647390514189e-02f};
constexpr float kSqrtHalf = 0.70710678118654752f;

}  // namespace approx
}  // namespace bitmaps
