// Fast int8 depthwise convolution (NCHW, group == in_channels, out_channels = group *
// multiplier): the contract of QConv (qconv.h) computed directly per channel plane instead of
// through im2col + one tiny GEMM per group.
//
//   acc[n,m,oh,ow] = sum_{i,j} (X[n, m / mult, ih, iw] - zx) * (W[m,0,i,j] - zw[m]) + bias[m]
//
// Padding taps hold zx (add 0). Output kinds kUint8 / kInt8 (numerics::Requantize with channel
// m's multiplier) and kInt32. Why no sum can clip: every term is at most 255 * 255 < 2^16 and
// the window has kH * kW <= kMaxQGemmK = 2^15 taps (QConvShape::Validate), so the sum is below
// 2^31; the bias is added modulo 2^32 exactly like QGemm, so all paths give identical bits.
#pragma once

#include <cstdint>

#include "qforge/kernels/qconv.h"

namespace qforge::kernels {

// True for the shapes QDepthwiseConv handles: group == in_channels > 1.
bool QDepthwiseApplies(const QConvShape& s);

// w: [M, 1, kH, kW] int8 codes; zw: M zero points, 1 (shared) or null (all 0).
// y: [batch, M, out_h, out_w] of the output kind's type. threads as in QGemm.
// Throws qforge::Error on shapes it does not apply to or an unsupported output kind.
void QDepthwiseConv(const QConvShape& s, const QConvInput& x, const int8_t* w, const int32_t* zw,
                    int64_t num_zw, const QGemmOutput& out, void* y, int threads = 0,
                    Isa isa = ActiveIsa());

// The same with channels-last (NHWC) activations: x [batch, in_h, in_w, C], y [batch, out_h,
// out_w, M], bit-identical values. Direct kernel vectorized over channels (AVX2: 16 channels per
// step, two taps interleaved as int16 pairs into vpmaddwd; exact for the reasons above) when the
// channel multiplier is 1; other multipliers go through the NCHW kernel with transposes.
void QDepthwiseConvNhwc(const QConvShape& s, const QConvInput& x, const int8_t* w,
                        const int32_t* zw, int64_t num_zw, const QGemmOutput& out, void* y,
                        int threads = 0, Isa isa = ActiveIsa());

}  // namespace qforge::kernels
