// Reference fp32 GEMM (see gemm_ref.h): deliberately simple, never optimized.
#include "kernels/ref/gemm_ref.h"

namespace qforge::kernels::ref {

void Gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, const float* C, int64_t c_rows, int64_t c_cols, float* Y) {
  for (int64_t row = 0; row < M; ++row) {
    for (int64_t col = 0; col < N; ++col) {
      double sum = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const float a = trans_a ? A[k * M + row] : A[row * K + k];
        const float b = trans_b ? B[col * K + k] : B[k * N + col];
        sum += static_cast<double>(a) * static_cast<double>(b);
      }
      double out = static_cast<double>(alpha) * sum;
      if (C != nullptr) {
        const int64_t c_row = c_rows == 1 ? 0 : row;
        const int64_t c_col = c_cols == 1 ? 0 : col;
        out += static_cast<double>(beta) * C[c_row * c_cols + c_col];
      }
      Y[row * N + col] = static_cast<float>(out);
    }
  }
}

}  // namespace qforge::kernels::ref
