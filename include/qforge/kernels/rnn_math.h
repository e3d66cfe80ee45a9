// Vectorized fp32 math of recurrent cells (runtime/ops/rnn_ops.cc): sigmoid, tanh, the fused
// LSTM cell update and the GRU output blend. Each has a plain reference (isa = kScalar:
// std::exp / std::tanh, the formulas as written) and an AVX2 path within the stated tolerance.
//
// Accuracy of the AVX2 path (dense sweeps in rnn_math_test.cc):
// - Sigmoid: 1 / (1 + exp(-x)) with the element-wise kernels' exp (x86/vecmath_avx2_inl.h:
//   relative error <= 3e-7 on [-87, 88], NaN in -> NaN out); absolute error vs the
//   double-precision value <= 2e-7.
// - Tanh: the rational approximation x P(x^2) / Q(x^2) on x clamped to +-7.905 (Eigen's, as
//   ONNX Runtime's MLAS uses); absolute error <= 4e-7. NaN inputs give unspecified values.
#pragma once

#include <cstdint>

#include "qforge/kernels/isa.h"

namespace qforge::kernels {

// y[i] = 1 / (1 + exp(-x[i])), i < n; x and y may alias.
void SigmoidF32(const float* x, float* y, int64_t n, Isa isa = ActiveIsa());
// y[i] = tanh(x[i]), i < n; x and y may alias.
void TanhF32(const float* x, float* y, int64_t n, Isa isa = ActiveIsa());

// One LSTM row with the default activations (f = sigmoid, g = h = tanh), no peepholes and
// input_forget = 0: g holds the 4n pre-activations in ONNX gate order i, o, f, c (already
// clipped if the node clips); c: c_{t-1} in, C_t out; h: H_t out.
//   i = sig(g[j]), o = sig(g[n + j]), f = sig(g[2n + j]), c~ = tanh(g[3n + j])
//   C = f * c + i * c~ (two products, then the sum), H = o * tanh(C)
void LstmCellF32(int64_t n, const float* g, float* c, float* h, Isa isa = ActiveIsa());

// GRU output with g = tanh: h[j] = (1 - z[j]) * tanh(pre_h[j]) + z[j] * h[j], i < n.
void GruOutputF32(int64_t n, const float* z, const float* pre_h, float* h, Isa isa = ActiveIsa());

}  // namespace qforge::kernels
