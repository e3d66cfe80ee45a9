// Reference fp32 GEMM with ONNX Gemm semantics: plain loops, the oracle for the fast kernels.
#pragma once

#include <cstdint>

namespace qforge::kernels::ref {

// Y[M x N] = alpha * op(A) * op(B) + beta * C.
//   A is stored row-major as M x K, or K x M when trans_a (op(A) = A^T).
//   B is stored row-major as K x N, or N x K when trans_b.
//   C (may be null: no term) has shape c_rows x c_cols and is broadcast to M x N, so c_rows is
//   1 or M and c_cols is 1 or N (a scalar, a row vector [N], a column [M x 1] or a full matrix).
// Products are accumulated in double, then rounded once to float.
void Gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          const float* B, float beta, const float* C, int64_t c_rows, int64_t c_cols, float* Y);

}  // namespace qforge::kernels::ref
