// QGemm / QGemmGather for callers that already validated the operands (kernels-internal).
#pragma once

#include "qforge/kernels/qgemm.h"

namespace qforge::kernels::detail {

// As QGemm / QGemmGather without the per-call ValidateQGemm pass (O(N) over the multipliers):
// for drivers that validated the whole operation once and then call the GEMM per block of rows,
// with operands derived from the validated ones (the conv drivers in qconv.cc). The O(1) checks
// (B packed, kernel supported by this CPU, gathered run lengths) still run.
void QGemmValidated(int64_t M, const QGemmA& a, const PackedQGemmB& b, const QGemmOutput& out,
                    void* c, int64_t ldc, int threads);
void QGemmGatherValidated(int64_t M, const QGemmGatherA& a, const PackedQGemmB& b,
                          const QGemmOutput& out, void* c, int64_t ldc, int threads);

}  // namespace qforge::kernels::detail
