// Affine quantization r = s * (q - z): choosing (s, z) from a range, and quantize / dequantize
// per tensor, per channel (any axis) and per group of k elements, on raw arrays + shapes.
//
// These are THE quantize/dequantize functions of qforge: runtime ops (QuantizeLinear /
// DequantizeLinear), the int8 path and QAT fake-quantization all call QuantizeValue /
// DequantizeValue (or the array functions below, which call them), so every path rounds the
// same way. The math is written out in docs/numerics.md.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "qforge/numerics/dtypes.h"

namespace qforge::numerics {

// r = scale * (q - zero_point). Valid: scale finite and > 0; zero_point in the format's range.
struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;

  friend bool operator==(const QuantParams&, const QuantParams&) = default;
};

// How ChooseQuantParams maps a real range onto the integer range.
struct RangeOptions {
  // Asymmetric (false): the range [min(lo,0), max(hi,0)] maps onto [qmin, qmax]; z may be any
  // integer in [qmin, qmax]. Symmetric (true): [-a, a] with a = max(|lo|, |hi|) maps onto the
  // codes around the center c = (qmin + qmax + 1) / 2 (0 for signed, 2^(b-1) for unsigned),
  // and z = c.
  bool symmetric = false;
  // Symmetric only: use [2c - qmax, qmax] (int8: [-127, 127]) so that +a and -a are both
  // codes; s = a / (qmax - c). Without it s = 2a / (qmax - qmin) (int8: a / 127.5; +a then
  // saturates to 127, -a is -128). Quantize with restricted_range=true to clamp to it too.
  bool restricted_range = false;
};

// Every chosen scale is at least this (FLT_MIN = 2^-126): a range narrower than
// kMinScale * (qmax - qmin) is quantized with step kMinScale instead of a subnormal or zero
// scale (r / s would overflow or divide by zero).
inline constexpr float kMinScale = 1.17549435e-38f;

// Chooses (s, z) for the real range [lo, hi] (lo <= hi not required: the range used is
// [min(lo, hi, 0), max(lo, hi, 0)], always extended to contain 0 so that real 0 quantizes to
// z exactly and dequantizes to exactly 0 — zero padding and ReLU zeros stay exact).
//   asymmetric: s = (max - min) / (qmax - qmin),  z = saturate(qmin - round_half_even(min / s))
//   symmetric : see RangeOptions.
// s is computed in double and rounded to float; z is computed from that float s.
// A zero-width range (lo == hi == 0) gives s = 1 and z = center (0 for signed, 2^(b-1) for
// unsigned symmetric, 0 for unsigned asymmetric); no division by zero happens.
// Throws NumericsError if lo or hi is NaN or infinite, or if fmt is invalid.
QuantParams ChooseQuantParams(float lo, float hi, IntFormat fmt, RangeOptions opt = {});

// The clamp range used when quantizing with fmt: [qmin, qmax], or [restricted_qmin, qmax].
int32_t QuantMin(IntFormat fmt, bool restricted_range);

// Throws NumericsError unless p.scale is finite and > 0 and zero_point is in [qmin, qmax].
void CheckQuantParams(QuantParams p, IntFormat fmt);

// ONNX QuantizeLinear: q = saturate(round_half_even(x / s) + z) into [qmin, qmax].
// The division x / s is done in float, exactly as ONNX specifies ("x / y_scale") — NOT a
// multiplication by a precomputed 1/s, which differs in the last bit for some x and can flip a
// rounding tie. NaN quantizes to z (real 0); +-Inf saturate. p is not validated here (hot path).
inline int32_t QuantizeValue(float x, QuantParams p, int32_t qmin, int32_t qmax) {
  const float v = RoundHalfEven(x / p.scale);  // float division, as ONNX QuantizeLinear
  if (v != v) return p.zero_point < qmin ? qmin : p.zero_point > qmax ? qmax : p.zero_point;
  const double t = double(v) + double(p.zero_point);  // exact: v is an integer-valued float
  return static_cast<int32_t>(std::min(std::max(t, double(qmin)), double(qmax)));
}
inline int32_t QuantizeValue(float x, QuantParams p, IntFormat fmt) {
  return QuantizeValue(x, p, fmt.qmin(), fmt.qmax());
}

// q[i] = QuantizeValue(x[i], p, qmin, qmax) for i < n: the same result, vectorized (the array
// functions below use it). Q is int8_t, uint8_t, int16_t, uint16_t or int32_t.
template <typename Q>
void QuantizeRun(const float* x, int64_t n, QuantParams p, int32_t qmin, int32_t qmax, Q* q);

// ONNX DequantizeLinear: r = float(q - z) * s (q - z exact in 64-bit, then one float multiply).
inline float DequantizeValue(int32_t q, QuantParams p) {
  return static_cast<float>(int64_t{q} - int64_t{p.zero_point}) * p.scale;
}

// Dequantize(Quantize(x)): the value the integer path represents x by. QAT fake-quant uses it.
inline float FakeQuantizeValue(float x, QuantParams p, IntFormat fmt,
                               bool restricted_range = false) {
  return DequantizeValue(QuantizeValue(x, p, QuantMin(fmt, restricted_range), fmt.qmax()), p);
}

// Which parameters apply to which element of a row-major tensor of shape `shape`.
//   per tensor : one parameter set; param shape [] (a scalar).
//   per channel: one per index along `axis`; param shape [shape[axis]] (ONNX per-axis).
//   per group  : one per k consecutive elements along `axis` (block quantization); the param
//                tensor has the input's rank with shape[axis] replaced by ceil(shape[axis] / k),
//                and element (..., j, ...) uses param (..., j / k, ...) — ONNX's blocked layout
//                (QuantizeLinear with block_size). The last group may be shorter than k.
// A negative axis counts from the end (-1 = last).
struct Granularity {
  enum class Kind { kPerTensor, kPerChannel, kPerGroup };
  Kind kind = Kind::kPerTensor;
  int axis = 0;
  int64_t group_size = 0;

  static Granularity PerTensor() { return {Kind::kPerTensor, 0, 0}; }
  static Granularity PerChannel(int axis) { return {Kind::kPerChannel, axis, 0}; }
  static Granularity PerGroup(int axis, int64_t k) { return {Kind::kPerGroup, axis, k}; }
};

// Shape of the parameter tensor (see Granularity). Throws NumericsError on a bad axis, group
// size < 1 or a negative dimension.
std::vector<int64_t> ParamShape(const std::vector<int64_t>& shape, const Granularity& g);
int64_t NumParams(const std::vector<int64_t>& shape, const Granularity& g);

// Calls fn(begin, count, param_index) for runs of consecutive elements sharing one parameter
// set, in element order. Used by the array functions below; exposed for kernels and observers.
template <typename Fn>
void ForEachParamRun(const std::vector<int64_t>& shape, const Granularity& g, Fn&& fn);

// Chooses one parameter set per slice from the data's min / max (extended to contain 0).
// x has the number of elements of `shape`. Throws NumericsError on non-finite data.
std::vector<QuantParams> ChooseQuantParams(const float* x, const std::vector<int64_t>& shape,
                                           const Granularity& g, IntFormat fmt,
                                           RangeOptions opt = {});

// q[i] = QuantizeValue(x[i], params[slice(i)], ...). Q is int8_t, uint8_t, int16_t, uint16_t
// or int32_t and must hold fmt's range (sub-byte formats are stored one value per int8/uint8).
// Throws NumericsError if params.size() != NumParams, a parameter set is invalid, or Q cannot
// hold fmt.
template <typename Q>
void Quantize(const float* x, const std::vector<int64_t>& shape, const Granularity& g,
              std::span<const QuantParams> params, IntFormat fmt, Q* q,
              bool restricted_range = false);

// x[i] = DequantizeValue(q[i], params[slice(i)]).
template <typename Q>
void Dequantize(const Q* q, const std::vector<int64_t>& shape, const Granularity& g,
                std::span<const QuantParams> params, float* x);

// ---- implementation of the template above ----

namespace detail {
struct RunLayout {
  int64_t outer, dim, inner, group;  // group = 0: per tensor
  bool per_channel;
};
RunLayout MakeRunLayout(const std::vector<int64_t>& shape, const Granularity& g);
}  // namespace detail

template <typename Fn>
void ForEachParamRun(const std::vector<int64_t>& shape, const Granularity& g, Fn&& fn) {
  const detail::RunLayout l = detail::MakeRunLayout(shape, g);
  if (l.group == 0) {
    fn(int64_t{0}, l.outer * l.dim * l.inner, int64_t{0});
    return;
  }
  int64_t begin = 0;
  if (l.per_channel) {
    for (int64_t o = 0; o < l.outer; ++o) {
      for (int64_t j = 0; j < l.dim; ++j, begin += l.inner) fn(begin, l.inner, j);
    }
    return;
  }
  const int64_t blocks = (l.dim + l.group - 1) / l.group;
  if (l.inner == 1) {  // groups along the innermost axis are contiguous runs
    for (int64_t o = 0; o < l.outer; ++o) {
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t len = std::min(l.group, l.dim - b * l.group);
        fn(begin, len, o * blocks + b);
        begin += len;
      }
    }
    return;
  }
  for (int64_t o = 0; o < l.outer; ++o) {
    for (int64_t j = 0; j < l.dim; ++j) {
      const int64_t p = (o * blocks + j / l.group) * l.inner;
      for (int64_t i = 0; i < l.inner; ++i) fn(begin + i, int64_t{1}, p + i);
      begin += l.inner;
    }
  }
}

}  // namespace qforge::numerics
