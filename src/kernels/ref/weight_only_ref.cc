// Reference 8-bit weight-only GEMM (see weight_only_ref.h).
#include "kernels/ref/weight_only_ref.h"

#include <cmath>
#include <string>
#include <vector>

#include "qforge/numerics/quant_params.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels::ref {

void Int8WeightGemm(int64_t M, const float* x, int64_t ldx, const Int8Weights& w, const float* bias,
                    float* y, int64_t ldy) {
  const int64_t K = w.K, N = w.N, G = w.groups(), gs = w.group_size;
  const numerics::IntFormat fmt{16, true};
  const numerics::RangeOptions opt{/*symmetric=*/true, /*restricted_range=*/true};
  std::vector<int32_t> xq(static_cast<size_t>(K));
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      if (!std::isfinite(row[k]))
        throw Error("Int8WeightGemm: row " + std::to_string(m) + " element " + std::to_string(k) +
                    " is not finite");
      lo = std::min(lo, row[k]);
      hi = std::max(hi, row[k]);
    }
    const numerics::QuantParams px = numerics::ChooseQuantParams(lo, hi, fmt, opt);
    for (int64_t k = 0; k < K; ++k) xq[k] = numerics::QuantizeValue(row[k], px, -32767, 32767);
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t g = 0; g < G; ++g) {
        const int32_t z = w.zero_point(g, n);
        int64_t isum = 0;
        for (int64_t k = g * gs; k < (g + 1) * gs; ++k) isum += int64_t{xq[k]} * (w.code(n, k) - z);
        acc = acc + static_cast<float>(static_cast<int32_t>(isum)) * w.scale(g, n);
      }
      float v = acc * px.scale;
      if (bias) v = v + bias[n];
      y[m * ldy + n] = v;
    }
  }
}

}  // namespace qforge::kernels::ref
