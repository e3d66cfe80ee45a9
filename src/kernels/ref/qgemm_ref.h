// Reference quantized GEMM: plain loops with named indices, the oracle for the fast int8 kernels.
#pragma once

#include <cstdint>

#include "qforge/kernels/qgemm.h"

namespace qforge::kernels::ref {

// The contract of qgemm.h computed directly from an unpacked B:
//   acc[m,n] = wrap32( sum_k (A[m,k] - za) * (B[k,n] - zb[n])  (exact, int64)  + bias[n] )
//   then out.kind's output stage (numerics::Requantize for kUint8/kInt8).
// b: row-major K x N int8 with row stride ldb; zb: [N] zero points, or null (all 0).
// Validates with ValidateQGemm (throws qforge::Error).
void QGemm(int64_t M, int64_t N, int64_t K, const QGemmA& a, const int8_t* b, int64_t ldb,
           const int32_t* zb, const QGemmOutput& out, void* c, int64_t ldc);

}  // namespace qforge::kernels::ref
