// The fixed-point multiplier (int32 mantissa + shift) and THE requantization routine that every
// integer kernel uses to turn an int32 accumulator into an output code (see docs/numerics.md).
#pragma once

#include <cstdint>

namespace qforge::numerics {

// A non-negative real multiplier M represented as M' = mantissa * 2^(shift - 31), with
//   mantissa in [2^30, 2^31) and shift in [-31, 31]  (so M' in [2^-32, 2^31)), or
//   mantissa == 0 and shift == 0                       (M' = 0, used for M < 2^-32).
// Relative representation error: |M' - M| <= 2^-31 * M (round to nearest of a 31-bit
// mantissa; QuantizeMultiplier's contract).
struct FixedMultiplier {
  int32_t mantissa = 0;
  int shift = 0;

  bool valid() const;
  double ToDouble() const;  // M', exact

  friend bool operator==(const FixedMultiplier&, const FixedMultiplier&) = default;
};

// Represents M >= 0. M = f * 2^e with f in [0.5, 1): mantissa = round(f * 2^31) (ties away from
// zero; a carry to 2^31 renormalizes to 2^30 with e + 1), shift = e. M < 2^-32 gives the zero
// multiplier: then |acc * M| < 2^31 * 2^-32 = 1/2 for every int32 acc, so round(acc * M) = 0
// and nothing is lost. Throws NumericsError if M is negative, NaN, or rounds to >= 2^31.
FixedMultiplier QuantizeMultiplier(double m);

// The requantization multiplier of an integer GEMM/conv: M = s_in * s_w / s_out (in double).
// Throws NumericsError unless every scale is finite and > 0.
FixedMultiplier MultiplierFromScales(float s_in, float s_w, float s_out);

// THE rounding rule. With n = 31 - shift (0..62) and the exact 64-bit product p = acc * mantissa
// (|p| < 2^62):
//   MultiplyByFixed(acc, m) = (p + 2^(n-1)) >> n      (n > 0; arithmetic shift; = p when n = 0)
// i.e. acc * M' rounded to the nearest integer, ties toward +infinity ("round half up",
// one rounding step; TFLite's TFLITE_SINGLE_ROUNDING rule). p + 2^(n-1) < 2^62 + 2^61 cannot
// overflow. The result is exact for the represented M'.
inline int64_t MultiplyByFixed(int32_t acc, FixedMultiplier m) {
  const int n = 31 - m.shift;
  const int64_t p = static_cast<int64_t>(acc) * m.mantissa;
  if (n == 0) return p;
  return (p + (int64_t{1} << (n - 1))) >> n;
}

// out = clamp(MultiplyByFixed(acc, m) + out_zero_point, qmin, qmax). The sum and the clamp are
// done in 64 bits, so multipliers > 1 saturate instead of wrapping.
//
// Error bound (docs/numerics.md): with the real multiplier M, M' = m.ToDouble(),
// delta = |acc| * |M' - M| <= |acc| * M * 2^-31, this result differs from
// RequantizeReference(acc, M, ...) = clamp(round_half_up(acc * M) + zp) by at most
// floor(1 + delta + eps) (eps <= 2^-52 |acc * M| is the double reference's own error): by at
// most 1 whenever |acc * M| < 2^30, and by 0 unless acc * M lies within delta + eps of a
// rounding boundary k + 1/2.
inline int32_t Requantize(int32_t acc, FixedMultiplier m, int32_t out_zero_point, int32_t qmin,
                          int32_t qmax) {
  int64_t r = MultiplyByFixed(acc, m) + out_zero_point;
  r = r < qmin ? qmin : r;
  r = r > qmax ? qmax : r;
  return static_cast<int32_t>(r);
}

// Reference in double with the real multiplier: clamp(round_half_up(acc * M) + zp, qmin, qmax).
// For checking Requantize and measuring what the fixed-point multiplier costs; not for kernels.
int32_t RequantizeReference(int32_t acc, double real_multiplier, int32_t out_zero_point,
                            int32_t qmin, int32_t qmax);

}  // namespace qforge::numerics
