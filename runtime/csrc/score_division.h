// Attention's scores / divisor as the training module rounds them (torch divides by the float32
// sqrt(d)), defined once for every path's softmax (softmax_rows.h) and its exponentials.
// x / 2^e and x * 2^-e are the same float (each is the exact quotient rounded once), so a
// power-of-two divisor (sqrt(d) for d = 16, 64, 256: BERT-base's heads) multiplies, where a
// division costs several times a multiply's throughput; 1 does nothing; any other divides, as
// torch does (MiniLM's sqrt(32)).
#pragma once
#include <cmath>

namespace bitmaps {

struct ScoreDivision {
  enum Mode { kNone, kMultiply, kDivide };
  Mode mode = kNone;
  float divisor = 1.f, reciprocal = 1.f;

  ScoreDivision() = default;
  explicit ScoreDivision(float by) : divisor(by), reciprocal(1.f / by) {
    int exponent = 0;
    const bool power_of_two = std::frexp(by, &exponent) == 0.5f && exponent > -100 && exponent < 100;
    mode = by == 1.f ? kNone : power_of_two ? kMultiply : kDivide;
  }
  float operator()(float x) const { return mode == kDivide ? x / divisor : mode == kMultiply ? x * reciprocal : x; }
  // x / divisor rounds monotonically for a positive divisor, so the largest quotient is the
  // largest score's, divided: the softmax finds the maximum before dividing and divides inside
  // its exponentials' pass (a pass of its own had left the exponentials' multiply-adds idle while
  // the divider worked)
  bool monotonic() const { return divisor > 0.f; }
};

}  // namespace bitmaps
