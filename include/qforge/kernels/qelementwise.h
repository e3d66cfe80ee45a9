// int8 element-wise add / multiply with requantization (ORT QLinearAdd / QLinearMul) and int8
// average pooling (QLinearAveragePool / QLinearGlobalAveragePool), on uint8 or int8 codes.
//
// Every output goes through numerics::Requantize (round half up of acc * M', docs/numerics.md
// section 4) from an exact int32 accumulator:
//   add: acc = (a - za) * ka + (b - zb) * kb, M = s_max * 2^-kQAddShift / s_c,
//        with s_max = max(s_a, s_b), ka = round(s_a / s_max * 2^kQAddShift) (kb alike).
//        The ratios s_a / s_max, s_b / s_max are integers with 21 fractional bits, so the
//        real multipliers are represented to 2^-22 relative error.
//        Why no sum can clip: |a - za| <= 255, ka, kb <= 2^21, so
//        |acc| <= 2 * 255 * 2^21 = 1 069 547 520 < 2^31.
//   mul: acc = (a - za) * (b - zb), M = s_a * s_b / s_c.  |acc| <= 255 * 255 = 65025.
//   average pool: acc = sum over the window's counted taps of (x - zx),
//        M = s_x / (s_y * count).  |acc| <= 255 * count, count <= kMaxPoolWindow = 2^23, so
//        |acc| < 2^31.
// ONNX Runtime's CPU kernels compute these in float and round half to even; results differ by
// at most one step, and only when the exact value is within about 2^-21 of a half-integer.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/kernels/isa.h"
#include "qforge/numerics/quant_params.h"
#include "qforge/numerics/requantize.h"

namespace qforge::kernels {

inline constexpr int kQAddShift = 21;
inline constexpr int64_t kMaxPoolWindow = int64_t{1} << 23;

// c = Requantize((a - za) * ka + (b - zb) * kb, m, zc, qmin, qmax).
struct QAddParams {
  int32_t za = 0, zb = 0, zc = 0;
  int32_t ka = 0, kb = 0;
  numerics::FixedMultiplier m;
  int32_t qmin = 0, qmax = 255;
  // Throws qforge::Error unless the scales are finite and > 0.
  static QAddParams Make(float sa, int32_t za, float sb, int32_t zb, float sc, int32_t zc,
                         int32_t qmin, int32_t qmax);
};

// c = Requantize((a - za) * (b - zb), m, zc, qmin, qmax).
struct QMulParams {
  int32_t za = 0, zb = 0, zc = 0;
  numerics::FixedMultiplier m;
  int32_t qmin = 0, qmax = 255;
  static QMulParams Make(float sa, int32_t za, float sb, int32_t zb, float sc, int32_t zc,
                         int32_t qmin, int32_t qmax);
};

// n elements of one type (is_signed: int8, else uint8) for a, b and c. a_step / b_step are 1
// (a full array) or 0 (one value broadcast to all n). Chooses the kernel for `isa`; threads:
// 0 = OpenMP default (chunks of 16384 elements), 1 = calling thread only.
void QAdd(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QAddParams& p, Isa isa = ActiveIsa(), int threads = 0);
void QMul(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QMulParams& p, Isa isa = ActiveIsa(), int threads = 0);

// 2-D average pooling over NCHW planes. The window of output (oh, ow) starts at
// (oh * stride_h - pad_top, ow * stride_w - pad_left); taps outside the input add nothing.
// count_include_pad: the divisor counts taps inside the padded input
// [-pad_top, in_h + pad_bottom) x [-pad_left, in_w + pad_right) (ONNX / ORT), else only the
// taps inside the input. out_h / out_w are given (the caller applies ceil_mode).
struct QPoolShape {
  int64_t planes = 0;  // batch * channels
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  bool count_include_pad = false;
};
struct QPoolParams {
  float x_scale = 1, y_scale = 1;
  int32_t zx = 0, zy = 0, qmin = 0, qmax = 255;
};
// Throws qforge::Error on bad sizes, a window over kMaxPoolWindow taps, or an output whose
// window covers no input tap (it would have count 0).
void QAveragePool(bool is_signed, const QPoolShape& s, const QPoolParams& p, const void* x, void* y,
                  int threads = 0);
// y[plane] = Requantize(sum over the plane of (x - zx), s_x / (s_y * hw)).
void QGlobalAveragePool(bool is_signed, int64_t planes, int64_t hw, const QPoolParams& p,
                        const void* x, void* y, int threads = 0, Isa isa = ActiveIsa());
// The same on channels-last codes: x [batch, hw, channels], y [batch, channels]; y[n, c] is
// QGlobalAveragePool's value for plane (n, c) (bit-identical). Sums per channel over the pixels,
// vectorized over channels (int32 lanes: |sum| <= 255 hw < 2^31 for hw <= kMaxPoolWindow).
void QGlobalAveragePoolNhwc(bool is_signed, int64_t batch, int64_t hw, int64_t channels,
                            const QPoolParams& p, const void* x, void* y);

// Max pooling of channels-last 8-bit codes (ONNX MaxPool, 2-D, no dilation): x [s.planes =
// batch, in_h, in_w, channels], y [batch, out_h, out_w, channels]; taps outside the input are
// ignored, a window without an input tap gives the type's lowest code. Exact (max of codes).
void QMaxPoolNhwc(bool is_signed, const QPoolShape& s, int64_t channels, const void* x, void* y,
                  int threads = 0);

// ONNX QuantizeLinear (per tensor) of an NCHW float tensor, written channels-last:
// y[n, i, c] = numerics::QuantizeValue(x[n, c, i], p, qmin, qmax) for i < pixels (float division
// x / s, round half to even, saturate, NaN -> z), uint8 (is_signed false) or int8 codes.
// Bit-identical on every path (AVX2: 8 divisions at once, the same clamp and rounding steps as
// numerics::QuantizeRun).
void QuantizeToNhwc(const float* x, int64_t batch, int64_t channels, int64_t pixels,
                    numerics::QuantParams p, bool is_signed, void* y, Isa isa = ActiveIsa(),
                    int threads = 0);

namespace ref {
// Plain loops over the same contract (the oracles of the tests).
void QAdd(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QAddParams& p);
void QMul(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QMulParams& p);
void QGlobalAveragePool(bool is_signed, int64_t planes, int64_t hw, const QPoolParams& p,
                        const void* x, void* y);
}  // namespace ref

}  // namespace qforge::kernels
