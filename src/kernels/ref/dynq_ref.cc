// Reference dynamic-quantization and int4 kernels (see dynq.h for the contracts).
#include "kernels/ref/dynq_ref.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels::ref {

using numerics::QuantParams;

void DynamicQuantizeRows(int64_t M, int64_t K, const float* x, int64_t ldx, numerics::IntFormat fmt,
                         numerics::RangeOptions opt, void* q, int64_t ldq, QuantParams* params) {
  const int32_t qmin = numerics::QuantMin(fmt, opt.restricted_range), qmax = fmt.qmax();
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      if (!std::isfinite(row[k])) {
        throw Error("DynamicQuantizeRows: row " + std::to_string(m) + " element " +
                    std::to_string(k) + " is " + (std::isnan(row[k]) ? "NaN" : "infinite") +
                    "; a dynamic range needs finite values");
      }
      if (k == 0 || row[k] < lo) lo = row[k];
      if (k == 0 || row[k] > hi) hi = row[k];
    }
    const QuantParams p = numerics::ChooseQuantParams(lo, hi, fmt, opt);
    params[m] = p;
    for (int64_t k = 0; k < K; ++k) {
      const int32_t v = numerics::QuantizeValue(row[k], p, qmin, qmax);
      if (fmt.is_signed) {
        static_cast<int8_t*>(q)[m * ldq + k] = static_cast<int8_t>(v);
      } else {
        static_cast<uint8_t*>(q)[m * ldq + k] = static_cast<uint8_t>(v);
      }
    }
  }
}

void DynamicQGemm(int64_t M, int64_t N, int64_t K, const void* a, int64_t lda, bool a_signed,
                  const QuantParams* a_params, const int8_t* b, int64_t ldb, const int32_t* zb,
                  const float* w_scales, const float* bias, float* y, int64_t ldy) {
  for (int64_t m = 0; m < M; ++m) {
    const int32_t za = a_params[m].zero_point;
    for (int64_t n = 0; n < N; ++n) {
      const int32_t zbn = zb ? zb[n] : 0;
      int64_t acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int32_t av = a_signed ? static_cast<const int8_t*>(a)[m * lda + k]
                                    : static_cast<const uint8_t*>(a)[m * lda + k];
        acc += int64_t{av - za} * int64_t{b[k * ldb + n] - zbn};
      }
      const float s = a_params[m].scale * w_scales[n];
      float v = static_cast<float>(static_cast<int32_t>(acc)) * s;
      if (bias) v = v + bias[n];
      y[m * ldy + n] = v;
    }
  }
}

void Int4Gemm(int64_t M, const float* x, int64_t ldx, const Int4Weights& w, const float* bias,
              float* y, int64_t ldy) {
  const int64_t K = w.K, N = w.N, G = w.groups(), gs = w.group_size;
  std::vector<int8_t> xq(static_cast<size_t>(K));
  for (int64_t m = 0; m < M; ++m) {
    QuantParams px;
    DynamicQuantizeRows(1, K, x + m * ldx, ldx, numerics::IntFormat{8, true},
                        numerics::RangeOptions{true, true}, xq.data(), K, &px);
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t g = 0; g < G; ++g) {
        const int32_t z = w.zero_point(g, n);
        int32_t isum = 0;
        for (int64_t k = g * gs; k < (g + 1) * gs; ++k) isum += int32_t{xq[k]} * (w.code(n, k) - z);
        acc = acc + static_cast<float>(isum) * w.scale(g, n);
      }
      float v = acc * px.scale;
      if (bias) v = v + bias[n];
      y[m * ldy + n] = v;
    }
  }
}

}  // namespace qforge::kernels::ref
