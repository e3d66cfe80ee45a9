// AVX2 pieces of the dynamic-quantization and int4 kernels (dynq__avx2.cc), called by dynq.cc.
#pragma once

#include <cstdint>

#include "qforge/kernels/dynq.h"

namespace qforge::kernels::detail {

// min / max of x[0..K) into *lo / *hi (K >= 1); false if any element is NaN or +-Inf (then
// *lo / *hi are meaningless).
bool RowRange__avx2(const float* x, int64_t K, float* lo, float* hi);

// q[k] = QuantizeValue(x[k], p, qmin, qmax) for finite x; q is int8_t (is_signed) or uint8_t.
void QuantizeRow__avx2(const float* x, int64_t K, numerics::QuantParams p, int32_t qmin,
                       int32_t qmax, bool is_signed, void* q);

// q[k] = QuantizeValue(x[k], p, qmin, qmax) for every x (NaN included); q is int8_t (is_signed)
// or uint8_t.
void QuantizeWithParams__avx2(const float* x, int64_t n, numerics::QuantParams p, int32_t qmin,
                              int32_t qmax, bool is_signed, void* q);

// out[k] = float(QuantizeValue(x[k], p, qmin, qmax) - p.zero_point) for every x (NaN included).
void QuantizeCentered__avx2(const float* x, int64_t n, numerics::QuantParams p, int32_t qmin,
                            int32_t qmax, float* out);

// Rows [m0, m1) of DynamicQGemm's output stage: y holds int32 acc0[m,n] = sum_k A[m,k] *
// (B[k,n] - zb[n]) on entry; on exit y[m,n] = float(acc0 - za[m] * colb[n]) * (sa[m] * ws[n])
// [+ bias[n]], colb[n] = sum_k (B[k,n] - zb[n]).
void DynamicQGemmEpilogue__avx2(int64_t m0, int64_t m1, int64_t N,
                                const numerics::QuantParams* a_params, const int32_t* colb,
                                const float* w_scales, const float* bias, float* y, int64_t ldy);

// Int4Gemm's core for all M rows: xq (M x K int8, ldxq), sx[m], xsum[m * G + g] = sum of xq[m,k]
// over group g.
void Int4Gemm__avx2(int64_t M, const int8_t* xq, int64_t ldxq, const float* sx, const int32_t* xsum,
                    const Int4Weights& w, const float* bias, float* y, int64_t ldy);

}  // namespace qforge::kernels::detail
