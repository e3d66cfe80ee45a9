// Fake quantization for QAT: forward y = dequantize(quantize(x)) and its backward under three
// gradient estimators (straight-through, learned step size, differentiable soft quantization).
//
// The forward calls numerics::QuantizeRun / DequantizeValue — the functions the integer runtime's
// QuantizeLinear / DequantizeLinear call — so a hard fake-quantized tensor is bit-for-bit the
// value the integer path represents it by (docs/numerics.md, "Fake quantization").
//
// Parameters are trainable floats: one scale and one zero point per parameter slice
// (numerics::Granularity: per tensor, or per channel along any axis). The forward quantizes
// with numerics::QuantParams{EffectiveScale(s), EffectiveZeroPoint(z)}: the scale floored at
// numerics::kMinScale, the zero point rounded half to even and clamped to [qmin, qmax] — exactly
// the integer (s, z) the exported model will carry.
//
// Notation (per element, with its slice's s and integer z):
//   v  = RoundHalfEven(x / s) + z     the code before saturation (x / s a float division)
//   q  = clamp(v, qmin, qmax)         QuantizeValue(x, {s, z}, qmin, qmax)
//   y  = (q - z) * s                  DequantizeValue(q, {s, z})
//   "inside" = qmin <= v <= qmax      (the clipping test of PyTorch's fake_quantize_* ops)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/quant_params.h"

namespace qforge::train {

// How the backward pass gets a gradient through the rounding.
//   kSte : straight-through: dx = dy inside, 0 outside. Scale / zero point are not trained.
//   kLsq : learned step size (Esser et al. 2020, "Learned Step Size Quantization") with a
//          learned zero point for asymmetric formats (LSQ+, Bhalgat et al. 2020); dx as ste.
//   kSoft: Differentiable Soft Quantization (Gong et al. 2019): a tanh staircase whose
//          temperature k is annealed (SoftSchedule); the forward becomes hard at the end.
enum class Estimator { kSte, kLsq, kSoft };

// "ste" / "lsq" / "soft"; ParseEstimator throws qforge::Error naming the bad value.
Estimator ParseEstimator(const std::string& name);
const char* EstimatorName(Estimator e);

// What one fake-quantizer simulates.
struct FakeQuantConfig {
  numerics::IntFormat format = numerics::kUInt8;
  // Clamp to [format.restricted_qmin(), qmax] (int8 weights: [-127, 127], qforge's weight
  // scheme, passes/quantize.h) instead of [qmin, qmax].
  bool restricted_range = false;
  numerics::Granularity granularity = numerics::Granularity::PerTensor();

  int32_t qmin() const { return numerics::QuantMin(format, restricted_range); }
  int32_t qmax() const { return format.qmax(); }
};

// Format from a bit width: signed int8/int4/int2 (is_signed) or uint8/uint4/uint2. Throws
// qforge::Error for widths other than 2, 4 and 8 (the widths the QAT command accepts).
numerics::IntFormat FormatFromBits(int bits, bool is_signed);

// Weight quantizer: symmetric, restricted range, per output channel along `axis`
// (Conv / Gemm weight: axis 0 = output channels; MatMul B [K, N]: axis 1).
FakeQuantConfig WeightConfig(int bits, int axis);
// Activation quantizer: unsigned, asymmetric, per tensor.
FakeQuantConfig ActivationConfig(int bits);

// The integer parameters the forward quantizes with (see the header comment).
float EffectiveScale(float scale);
int32_t EffectiveZeroPoint(float zero_point, const FakeQuantConfig& c);
numerics::QuantParams EffectiveParams(float scale, float zero_point, const FakeQuantConfig& c);

// Common argument checks: x has NumElements(shape) elements, scale / zero_point have
// NumParams(shape, granularity) entries, every scale is finite and every zero point finite.
// Throws qforge::Error naming `what` (the node) otherwise.
void CheckFakeQuantArgs(const std::vector<int64_t>& shape, const FakeQuantConfig& c,
                        std::span<const float> scale, std::span<const float> zero_point,
                        const std::string& what);

// y[i] = DequantizeValue(QuantizeValue(x[i], params(i))) — bit-exact with the runtime's
// QuantizeLinear -> DequantizeLinear. x and y may alias.
void FakeQuantForward(const float* x, const std::vector<int64_t>& shape, const FakeQuantConfig& c,
                      std::span<const float> scale, std::span<const float> zero_point, float* y);

// Straight-through estimator: dx[i] = inside(i) ? dy[i] : 0 (written, not accumulated).
void FakeQuantBackwardSte(const float* x, const std::vector<int64_t>& shape,
                          const FakeQuantConfig& c, std::span<const float> scale,
                          std::span<const float> zero_point, const float* dy, float* dx);

// LSQ's gradient scale for one scale parameter: g = 1 / sqrt(numel_per_scale * qmax), with
// numel_per_scale = NumElements(shape) / NumParams(shape, granularity) (Esser et al. eq. 4;
// qmax = Q_P, the number of positive levels).
double LsqGradScale(const std::vector<int64_t>& shape, const FakeQuantConfig& c);

// Learned step size backward. dx as FakeQuantBackwardSte; per parameter slice p (written, not
// accumulated; dscale / dzero_point have NumParams entries, either may be empty to skip):
//   dscale[p] = g * sum_i dy[i] * { round(x/s) - x/s   inside    (round: half to even)
//                                 { qmin - z           v < qmin
//                                 { qmax - z           v > qmax
//   dzero[p]  = g * sum_i dy[i] * { 0 inside, -s outside }
// (dy/dz of y = s * (clamp(round(x/s) + z) - z), the rounding of z passed straight through.)
void FakeQuantBackwardLsq(const float* x, const std::vector<int64_t>& shape,
                          const FakeQuantConfig& c, std::span<const float> scale,
                          std::span<const float> zero_point, const float* dy, float* dx,
                          std::span<float> dscale, std::span<float> dzero_point);

// Soft (DSQ) fake quantization at temperature k > 0, in code units (the step is 1 code):
//   t = clamp(x / s + z, qmin, qmax)            (real-valued code, z the integer zero point)
//   f = min(floor(t), qmax - 1),  c = f + 1/2   (the staircase cell [f, f+1] t lies in)
//   soft(t) = c + tanh(k (t - c)) / (2 tanh(k / 2))
//   y = (soft(t) - z) * s
// soft is continuous (soft(f) = f, soft(f+1) = f+1) and tends to round(t) as k -> inf;
// dy/dx = soft'(t) = k (1 - tanh^2(k (t - c))) / (2 tanh(k / 2)) inside (qmin < x/s + z < qmax),
// 0 outside. Computed in double, y rounded to float. k = +inf (or any k that SoftSchedule calls
// hard) means the hard forward, FakeQuantForward, exactly; its backward is then the STE.
void SoftFakeQuantForward(const float* x, const std::vector<int64_t>& shape,
                          const FakeQuantConfig& c, std::span<const float> scale,
                          std::span<const float> zero_point, double k, float* y);
void SoftFakeQuantBackward(const float* x, const std::vector<int64_t>& shape,
                           const FakeQuantConfig& c, std::span<const float> scale,
                           std::span<const float> zero_point, double k, const float* dy, float* dx);

// The DSQ temperature schedule: geometric from k_start to k_end over anneal_steps optimizer
// steps,
//   k(step) = k_start * (k_end / k_start)^(step / anneal_steps)   for step < anneal_steps,
// and from anneal_steps on the quantizer is hard (k = +inf: FakeQuantForward, STE backward), so
// the trained model's forward is exactly the integer runtime's fake quantization. Defaults: k
// from 2 (a gentle slope, soft(t) differs from t by at most ~0.12 codes) to 50 (within 1e-21 of
// round(t) except within 0.5 / 50 codes of a rounding threshold).
struct SoftSchedule {
  double k_start = 2.0;
  double k_end = 50.0;
  int64_t anneal_steps = 1000;

  // +infinity when hard.
  double Temperature(int64_t step) const;
  bool Hard(int64_t step) const { return step >= anneal_steps; }
};

}  // namespace qforge::train
