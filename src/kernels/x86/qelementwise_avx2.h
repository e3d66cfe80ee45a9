// Internal: the AVX2 (and AVX-512) int8 element-wise and pooling kernels behind
// qforge/kernels/qelementwise.h (defined in qelementwise__avx2.cc, chosen by qelementwise.cc).
#pragma once

#include <cstdint>

#include "qforge/kernels/qelementwise.h"

namespace qforge::kernels::detail {

void QAdd__avx2(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                void* c, int64_t n, const QAddParams& p);
void QMul__avx2(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                void* c, int64_t n, const QMulParams& p);
// The same with AVX-512 (16 elements per step, qelementwise__avx512.cc).
void QAdd__avx512(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                  void* c, int64_t n, const QAddParams& p);
void QMul__avx512(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                  void* c, int64_t n, const QMulParams& p);
// sum of the n codes at x (uint8 or int8), exact in 64 bits.
int64_t QSum__avx2(bool is_signed, const void* x, int64_t n);
// q[i] = numerics::QuantizeValue(x[i], p, qmin, qmax) for i < n, as bytes (8-bit qmin / qmax),
// the steps of numerics::QuantizeRun on 8 lanes.
void QuantizeRow8__avx2(const float* x, int64_t n, numerics::QuantParams p, int32_t qmin,
                        int32_t qmax, uint8_t* q);
// One image of QuantizeToNhwc for 1..4 channels, pixels [p0, p1): x the image's [channels,
// pixels] floats, y its [pixels, channels] codes (AVX-512: 16 pixels per step, the channels'
// codes combined into one dword per pixel and stored interleaved).
void QuantizeToNhwc__avx512(const float* x, int64_t channels, int64_t pixels, int64_t p0,
                            int64_t p1, numerics::QuantParams p, int32_t qmin, int32_t qmax,
                            uint8_t* y);

}  // namespace qforge::kernels::detail
