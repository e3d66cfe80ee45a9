// Reference quantized 2-D convolution (NCHW, groups, pads, strides, dilations): plain loops,
// the oracle for the fast int8 convolution.
#pragma once

#include <cstdint>

#include "qforge/kernels/qconv.h"

namespace qforge::kernels::ref {

// The contract of qconv.h computed directly: for each output element, the exact int64 sum over
// in-bounds taps of (x - zx)(w - zw[m]) (padding contributes 0), + bias[m] wrapped to int32,
// then the output stage (numerics::Requantize for 8-bit outputs) with channel m's parameters.
// w: [M, C/group, kH, kW]; zw: [M] or null (all 0).
void QConv(const QConvShape& shape, const QConvInput& x, const int8_t* w, const int32_t* zw,
           const QGemmOutput& out, void* y);

}  // namespace qforge::kernels::ref
