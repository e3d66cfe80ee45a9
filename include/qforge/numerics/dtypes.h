// Integer formats (int2..int32, uint2..uint16) and fixed-point Qm.n formats, with their ranges.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace qforge::numerics {

// Thrown for invalid arguments to numerics functions (numerics depends on nothing, so it cannot
// use qforge::Error; both derive from std::runtime_error). The message names the function and
// the offending value.
class NumericsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Rounds to the nearest integer, ties to even ("banker's rounding", IEEE roundTiesToEven, the
// rounding of ONNX QuantizeLinear). Independent of the FPU rounding mode (it truncates with an
// integer conversion and corrects; no libm call, so it inlines into quantize loops). The sign
// of x is kept (-0.3 -> -0). NaN and Inf pass through.
inline float RoundHalfEven(float x) {
  // Every float with |x| >= 2^23 is already an integer (NaN and Inf fail the test too).
  if (!(std::fabs(x) < 8388608.0f)) return x;
  const int32_t i = static_cast<int32_t>(x);  // truncation toward zero, exact
  const float d = x - static_cast<float>(i);  // in (-1, 1), exact
  // Branch-free (random data would mispredict): +1 above the half, -1 below minus the half,
  // and at exactly +-0.5 away from zero only when i is odd.
  const int32_t odd = i & 1;
  const int32_t up = static_cast<int32_t>(d > 0.5f) | (static_cast<int32_t>(d == 0.5f) & odd);
  const int32_t down = static_cast<int32_t>(d < -0.5f) | (static_cast<int32_t>(d == -0.5f) & odd);
  return std::copysign(static_cast<float>(i + up - down), x);
}

inline double RoundHalfEven(double x) {
  if (!(std::fabs(x) < 4503599627370496.0)) return x;  // 2^52
  const int64_t i = static_cast<int64_t>(x);
  const double d = x - static_cast<double>(i);
  int64_t r = i;
  if (d > 0.5 || (d == 0.5 && (i & 1))) ++r;
  if (d < -0.5 || (d == -0.5 && (i & 1))) --r;
  return std::copysign(static_cast<double>(r), x);
}

// A two's-complement (is_signed) or unsigned integer of `bits` bits.
// Valid: signed 2..32 bits (32 is for int32 biases), unsigned 1..16 bits.
struct IntFormat {
  int bits = 8;
  bool is_signed = true;

  bool valid() const { return is_signed ? (bits >= 2 && bits <= 32) : (bits >= 1 && bits <= 16); }
  void Check() const {  // throws NumericsError unless valid()
    if (!valid()) ThrowInvalid();
  }
  // [qmin, qmax]: [-2^(b-1), 2^(b-1)-1] signed, [0, 2^b-1] unsigned.
  int32_t qmin() const {
    Check();
    return is_signed ? static_cast<int32_t>(-(int64_t{1} << (bits - 1))) : 0;
  }
  int32_t qmax() const {
    Check();
    return static_cast<int32_t>((int64_t{1} << (is_signed ? bits - 1 : bits)) - 1);
  }
  // The smallest value of the symmetric "restricted" range, which drops the most negative
  // code so the range is symmetric around its center: -qmax for signed (int8: -127), 1 for
  // unsigned (uint8 symmetric around 128: [1, 255]).
  int32_t restricted_qmin() const;
  // Number of codes, qmax - qmin + 1, as a double (2^32 does not fit in int32).
  double levels() const;
  std::string name() const;  // "int4", "uint8"

  friend bool operator==(const IntFormat&, const IntFormat&) = default;

 private:
  [[noreturn]] void ThrowInvalid() const;
};

inline constexpr IntFormat kInt2{2, true};
inline constexpr IntFormat kInt4{4, true};
inline constexpr IntFormat kInt8{8, true};
inline constexpr IntFormat kInt16{16, true};
inline constexpr IntFormat kInt32{32, true};
inline constexpr IntFormat kUInt4{4, false};
inline constexpr IntFormat kUInt8{8, false};
inline constexpr IntFormat kUInt16{16, false};

// Clamps v to [lo, hi] (saturation).
inline int64_t Saturate(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

// Fixed point Qm.n: a value is raw * 2^-n where raw is an integer of
// (is_signed ? 1 : 0) + m + n bits (the sign bit is NOT counted in m: signed Q0.15 is a 16-bit
// number in [-1, 1 - 2^-15], signed Q3.4 is 8 bits in [-8, 7.9375], unsigned Q8.0 is uint8).
// Valid: m >= 0, n >= 0, 1 <= total bits <= 32.
struct QFormat {
  int int_bits = 0;   // m
  int frac_bits = 7;  // n
  bool is_signed = true;

  bool valid() const;
  void Check() const;  // throws NumericsError unless valid()
  int total_bits() const { return (is_signed ? 1 : 0) + int_bits + frac_bits; }
  int64_t raw_min() const;    // -2^(m+n) signed, 0 unsigned
  int64_t raw_max() const;    // 2^(m+n) - 1
  double resolution() const;  // 2^-n, the step between neighbouring values
  double min() const;         // raw_min * 2^-n
  double max() const;         // raw_max * 2^-n
  // raw = saturate(round_half_even(x * 2^n)); NaN maps to 0. x * 2^n is exact (in double).
  int64_t Quantize(float x) const;
  double Dequantize(int64_t raw) const;  // raw * 2^-n, exact in double
  // Dequantize(Quantize(x)) as float (exact unless total_bits > 24).
  float Round(float x) const;
  std::string name() const;  // "Q3.4", "UQ8.0"

  friend bool operator==(const QFormat&, const QFormat&) = default;
};

}  // namespace qforge::numerics
