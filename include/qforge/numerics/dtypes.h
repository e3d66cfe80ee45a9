// Integer formats (int2..int32, uint2..uint16) and fixed-point Qm.n formats, with their ranges.
#pragma once

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
// rounding of ONNX QuantizeLinear). Independent of the FPU rounding mode. NaN/Inf pass through.
float RoundHalfEven(float x);
double RoundHalfEven(double x);

// A two's-complement (is_signed) or unsigned integer of `bits` bits.
// Valid: signed 2..32 bits (32 is for int32 biases), unsigned 1..16 bits.
struct IntFormat {
  int bits = 8;
  bool is_signed = true;

  bool valid() const;
  void Check() const;  // throws NumericsError unless valid()
  // [qmin, qmax]: [-2^(b-1), 2^(b-1)-1] signed, [0, 2^b-1] unsigned.
  int32_t qmin() const;
  int32_t qmax() const;
  // The smallest value of the symmetric "restricted" range, which drops the most negative
  // code so the range is symmetric around its center: -qmax for signed (int8: -127), 1 for
  // unsigned (uint8 symmetric around 128: [1, 255]).
  int32_t restricted_qmin() const;
  // Number of codes, qmax - qmin + 1, as a double (2^32 does not fit in int32).
  double levels() const;
  std::string name() const;  // "int4", "uint8"

  friend bool operator==(const IntFormat&, const IntFormat&) = default;
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
