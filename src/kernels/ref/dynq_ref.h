// Reference dynamic-quantization and int4 kernels: plain loops, the oracle for dynq__avx2.cc.
#pragma once

#include <cstdint>

#include "qforge/kernels/dynq.h"

namespace qforge::kernels::ref {

// The contract of DynamicQuantizeRows (dynq.h), element by element with numerics' functions.
void DynamicQuantizeRows(int64_t M, int64_t K, const float* x, int64_t ldx, numerics::IntFormat fmt,
                         numerics::RangeOptions opt, void* q, int64_t ldq,
                         numerics::QuantParams* params);

// The contract of DynamicQGemm from an unpacked B (row-major K x N int8, row stride ldb) and its
// zero points zb ([N], or null: all 0); acc summed exactly in int64.
void DynamicQGemm(int64_t M, int64_t N, int64_t K, const void* a, int64_t lda, bool a_signed,
                  const numerics::QuantParams* a_params, const int8_t* b, int64_t ldb,
                  const int32_t* zb, const float* w_scales, const float* bias, float* y,
                  int64_t ldy);

// The contract of Int4Gemm, reading codes with Int4Weights::code().
void Int4Gemm(int64_t M, const float* x, int64_t ldx, const Int4Weights& w, const float* bias,
              float* y, int64_t ldy);

}  // namespace qforge::kernels::ref
