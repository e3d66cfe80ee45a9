// Recurrent-cell math (include/qforge/kernels/rnn_math.h): the scalar references and the ISA
// dispatch to x86/rnn_math__avx2.cc.
#include "qforge/kernels/rnn_math.h"

#include <cmath>

#include "kernels/x86/vecmath_avx2.h"

namespace qforge::kernels {

namespace {

bool UseAvx2(Isa isa) { return isa != Isa::kScalar && IsaSupported(Isa::kAvx2); }

float SigmoidRef(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

void SigmoidF32(const float* x, float* y, int64_t n, Isa isa) {
  if (UseAvx2(isa)) return detail::SigmoidF32__avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = SigmoidRef(x[i]);
}

void TanhF32(const float* x, float* y, int64_t n, Isa isa) {
  if (UseAvx2(isa)) return detail::TanhF32__avx2(x, y, n);
  for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
}

void LstmCellF32(int64_t n, const float* g, float* c, float* h, Isa isa) {
  if (UseAvx2(isa)) return detail::LstmCellF32__avx2(n, g, c, h);
  for (int64_t j = 0; j < n; ++j) {
    const float i = SigmoidRef(g[j]), o = SigmoidRef(g[n + j]), f = SigmoidRef(g[2 * n + j]);
    const float cand = std::tanh(g[3 * n + j]);
    const float fc = f * c[j], ic = i * cand;
    c[j] = fc + ic;
    h[j] = o * std::tanh(c[j]);
  }
}

void GruOutputF32(int64_t n, const float* z, const float* pre_h, float* h, Isa isa) {
  if (UseAvx2(isa)) return detail::GruOutputF32__avx2(n, z, pre_h, h);
  for (int64_t j = 0; j < n; ++j) {
    const float fresh = (1.0f - z[j]) * std::tanh(pre_h[j]), old = z[j] * h[j];
    h[j] = fresh + old;
  }
}

}  // namespace qforge::kernels
