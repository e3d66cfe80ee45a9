// Integer and fixed-point (Qm.n) format descriptions: ranges, names, Qm.n rounding.
#include "qforge/numerics/dtypes.h"

#include <cmath>

namespace qforge::numerics {

void IntFormat::ThrowInvalid() const {
  throw NumericsError("IntFormat: unsupported integer format " +
                      std::string(is_signed ? "int" : "uint") + std::to_string(bits) +
                      " (signed: 2..32 bits, unsigned: 1..16 bits)");
}

int32_t IntFormat::restricted_qmin() const { return is_signed ? -qmax() : 1; }

double IntFormat::levels() const { return double(qmax()) - double(qmin()) + 1.0; }

std::string IntFormat::name() const { return (is_signed ? "int" : "uint") + std::to_string(bits); }

bool QFormat::valid() const {
  return int_bits >= 0 && frac_bits >= 0 && total_bits() >= 1 && total_bits() <= 32;
}

void QFormat::Check() const {
  if (!valid()) {
    throw NumericsError("QFormat: invalid fixed-point format " + name() +
                        " (need m >= 0, n >= 0 and 1..32 bits in total)");
  }
}

int64_t QFormat::raw_min() const {
  Check();
  return is_signed ? -(int64_t{1} << (int_bits + frac_bits)) : 0;
}

int64_t QFormat::raw_max() const {
  Check();
  return (int64_t{1} << (int_bits + frac_bits)) - 1;
}

double QFormat::resolution() const { return std::ldexp(1.0, -frac_bits); }
double QFormat::min() const { return Dequantize(raw_min()); }
double QFormat::max() const { return Dequantize(raw_max()); }

int64_t QFormat::Quantize(float x) const {
  if (std::isnan(x)) return 0;
  const double lo = double(raw_min()), hi = double(raw_max());
  const double scaled = RoundHalfEven(std::ldexp(double(x), frac_bits));  // +-Inf stays Inf
  if (scaled <= lo) return raw_min();
  if (scaled >= hi) return raw_max();
  return static_cast<int64_t>(scaled);
}

double QFormat::Dequantize(int64_t raw) const { return std::ldexp(double(raw), -frac_bits); }

float QFormat::Round(float x) const { return static_cast<float>(Dequantize(Quantize(x))); }

std::string QFormat::name() const {
  return (is_signed ? "Q" : "UQ") + std::to_string(int_bits) + "." + std::to_string(frac_bits);
}

}  // namespace qforge::numerics
