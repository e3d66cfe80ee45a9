// AVX2 core of the 8-bit weight-only GEMM (weight_only__avx2.cc), called by weight_only.cc.
#pragma once

#include <cstdint>

#include "qforge/kernels/weight_only.h"

namespace qforge::kernels::detail {

// Int8WeightGemm's core for all M rows: xq (M x K int16, row stride ldxq, quantized as the
// contract says), sx[m], xsum[m * G + g] = sum of xq[m,k] over group g.
void Int8WeightGemm__avx2(int64_t M, const int16_t* xq, int64_t ldxq, const float* sx,
                          const int32_t* xsum, const Int8Weights& w, const float* bias, float* y,
                          int64_t ldy);

// The AVX-512 VNNI core (weight_only__avx512.cc): same contract and result (bit for bit), xq
// rows of even length (K is a multiple of 32), no xsum needed (zero points are folded into the
// packed weights). Needs AVX-512 F/BW and VNNI (detail::Int4VnniSupported()).
void Int8WeightGemm__avx512vnni(int64_t M, const int16_t* xq, int64_t ldxq, const float* sx,
                                const Int8Weights& w, const float* bias, float* y, int64_t ldy);

}  // namespace qforge::kernels::detail
