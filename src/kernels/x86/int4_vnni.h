// AVX-512 VNNI int4 weight-only GEMM core (int4gemm__avx512.cc), called by dynq.cc.
#pragma once

#include <cstdint>

#include "qforge/kernels/dynq.h"

namespace qforge::kernels::detail {

// Rows of outputs per tile of the interleaved layout (one zmm of int32 / fp32 lanes).
inline constexpr int64_t kInt4VnniRows = 16;

// True when this CPU runs the VNNI kernel (AVX-512 F/BW/DQ/VL + VNNI).
bool Int4VnniSupported();

// Int4Gemm's core on w.vnni (PrepackInt4Weights' layout), for all M rows: xq (M x K int8 in
// natural k order, row stride ldxq), sx[m], xsum[m * G + g] = sum of xq[m,k] over group g.
void Int4Gemm__avx512vnni(int64_t M, const int8_t* xq, int64_t ldxq, const float* sx,
                          const int32_t* xsum, const Int4Weights& w, const float* bias, float* y,
                          int64_t ldy);

}  // namespace qforge::kernels::detail
