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
#include <vector>

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

// Depthwise weights [C, 1, kH, kW] (channel multiplier 1) with their zero points, packed once
// for the channels-last kernels: the codes as given, and (w - zw) per tap and channel in the
// AVX-512 kernel's layout (int32 lanes, C rounded up to 16) with the per-channel sums
// sum_t (w - zw) that fold the input zero point into the bias.
class PackedQDepthwiseNhwc {
 public:
  PackedQDepthwiseNhwc() = default;
  // zw: num_zw = 0 (all 0), 1 (shared) or C zero points in [-128, 127]. Throws qforge::Error on
  // non-positive sizes or a bad zero-point count.
  static PackedQDepthwiseNhwc Pack(int64_t channels, int64_t kernel_h, int64_t kernel_w,
                                   const int8_t* w, const int32_t* zw, int64_t num_zw);
  int64_t channels() const { return channels_; }
  int64_t kernel_h() const { return kernel_h_; }
  int64_t kernel_w() const { return kernel_w_; }
  int64_t padded_channels() const { return padded_; }
  const int8_t* codes() const { return codes_.data(); }      // [C][kH * kW]
  const int32_t* zero_points() const { return zw_.data(); }  // [C]
  const int32_t* taps() const { return taps_.data(); }       // [kH * kW][padded]: see above
  const int32_t* sums() const { return sums_.data(); }       // [padded]

 private:
  int64_t channels_ = 0, kernel_h_ = 0, kernel_w_ = 0, padded_ = 0;
  std::vector<int8_t> codes_;
  std::vector<int32_t> zw_, taps_, sums_;
};

// The same as above with prepacked weights (s.out_channels == s.group == s.in_channels ==
// w.channels(), the kernel size w's). With AVX-512 VNNI the kernel keeps a 16-channel block's
// tap weights in registers along an output row (x86/qdwconv_nhwc__avx512.cc); other ISAs run
// the per-pixel kernels above.
void QDepthwiseConvNhwc(const QConvShape& s, const QConvInput& x, const PackedQDepthwiseNhwc& w,
                        const QGemmOutput& out, void* y, int threads = 0, Isa isa = ActiveIsa());

}  // namespace qforge::kernels
