// Fixed-point multiplier construction and the double-precision requantization reference.
#include "qforge/numerics/requantize.h"

#include <cmath>
#include <string>

#include "qforge/numerics/dtypes.h"

namespace qforge::numerics {

bool FixedMultiplier::valid() const {
  if (mantissa == 0) return shift == 0;
  return mantissa >= (int32_t{1} << 30) && shift >= -31 && shift <= 31;
}

double FixedMultiplier::ToDouble() const { return std::ldexp(double(mantissa), shift - 31); }

FixedMultiplier QuantizeMultiplier(double m) {
  if (!(m >= 0) || std::isinf(m)) {
    throw NumericsError("QuantizeMultiplier: multiplier " + std::to_string(m) +
                        " is not a finite non-negative number");
  }
  if (m == 0) return {};
  int e = 0;
  const double f = std::frexp(m, &e);  // m = f * 2^e, f in [0.5, 1)
  int64_t mant = std::llround(std::ldexp(f, 31));
  if (mant == (int64_t{1} << 31)) {
    mant >>= 1;
    ++e;
  }
  if (e > 31) {
    throw NumericsError("QuantizeMultiplier: multiplier " + std::to_string(m) +
                        " is too large (must be < 2^31)");
  }
  if (e < -31) return {};  // m < 2^-32: every |acc * m| < 1/2 rounds to 0
  return {static_cast<int32_t>(mant), e};
}

FixedMultiplier MultiplierFromScales(float s_in, float s_w, float s_out) {
  for (float s : {s_in, s_w, s_out}) {
    if (!(std::isfinite(s) && s > 0)) {
      throw NumericsError("MultiplierFromScales: scale " + std::to_string(s) +
                          " is not a finite positive number");
    }
  }
  return QuantizeMultiplier(double(s_in) * double(s_w) / double(s_out));
}

int32_t RequantizeReference(int32_t acc, double real_multiplier, int32_t out_zero_point,
                            int32_t qmin, int32_t qmax) {
  const double x = double(acc) * real_multiplier;
  const double lo = std::floor(x);
  double r = (x - lo >= 0.5) ? lo + 1 : lo;  // round half up, like MultiplyByFixed
  r += out_zero_point;
  if (r <= qmin) return qmin;
  if (r >= qmax) return qmax;
  return static_cast<int32_t>(r);
}

}  // namespace qforge::numerics
