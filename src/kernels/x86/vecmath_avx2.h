// AVX2 fp32 math for the element-wise, softmax and layer-norm fast paths (elementwise__avx2.cc)
// and the recurrent cells (rnn_math__avx2.cc).
//
// Accuracy contracts (measured by the dense sweeps in x86/vecmath_avx2_test.cc):
// - Erf: rational approximation x * P(x^2) / Q(x^2) on x clamped to [-4, 4] (erf is +-1 in
//   float beyond); max absolute error vs std::erf(double) 5e-7 (the worst case is near |x| = 3.9),
//   relative error <= 5e-7 for |x| >= 1e-35 (below, the result is subnormal-level and only the
//   absolute bound holds). NaN in -> NaN out.
// - Exp: Cephes-style range reduction x = n ln2 + r and a degree-6 polynomial; relative error
//   <= 3e-7 for x in [-87, 88]; above 88.72 it overflows to +Inf as std::exp does, below -87.3
//   results are subnormal (less precise), below -104 they are 0 or the smallest subnormal.
// Callers check kernels::IsaSupported(Isa::kAvx2) first.
#pragma once

#include <cstdint>

namespace qforge::kernels::detail {

// y[i] = erf(x[i]) for i < n; x and y may alias.
void ErfF32__avx2(const float* x, float* y, int64_t n);
// y[i] = x / 2 * (1 + erf(x / sqrt 2)); x and y may alias.
void GeluF32__avx2(const float* x, float* y, int64_t n);
// y[i] = exp(x[i]); x and y may alias.
void ExpF32__avx2(const float* x, float* y, int64_t n);

// Recurrent-cell math (rnn_math__avx2.cc; contracts in include/qforge/kernels/rnn_math.h).
void SigmoidF32__avx2(const float* x, float* y, int64_t n);
void TanhF32__avx2(const float* x, float* y, int64_t n);
void LstmCellF32__avx2(int64_t n, const float* g, float* c, float* h);
void GruOutputF32__avx2(int64_t n, const float* z, const float* pre_h, float* h);

// Softmax (or log-softmax) of each of `rows` contiguous rows of length len >= 1:
// 3 passes per row (max; exp and sum, storing exp; scale by 1/sum).
void SoftmaxRowsF32__avx2(int64_t rows, int64_t len, const float* x, float* y, bool log);

// LayerNormalization of `rows` contiguous rows of length cols >= 1 in float: mean (pass 1),
// population variance of x - mean (pass 2), y = (x - mean) * inv_std * scale[j] + bias[j]
// (pass 3). bias, mean, inv_std_dev may be null.
void LayerNormRowsF32__avx2(int64_t rows, int64_t cols, const float* x, const float* scale,
                            const float* bias, float epsilon, float* y, float* mean,
                            float* inv_std_dev);

}  // namespace qforge::kernels::detail
