// Reference 8-bit weight-only GEMM: plain loops, the oracle for x86/weight_only__avx2.cc.
#pragma once

#include <cstdint>

#include "qforge/kernels/weight_only.h"

namespace qforge::kernels::ref {

// The contract of Int8WeightGemm (weight_only.h), element by element: activations quantized
// with numerics::QuantizeValue, codes read with Int8Weights::code(), sums in int64 (checked to
// fit int32 by the contract's bound).
void Int8WeightGemm(int64_t M, const float* x, int64_t ldx, const Int8Weights& w, const float* bias,
                    float* y, int64_t ldy);

}  // namespace qforge::kernels::ref
