// Quantized (int8) 2-D convolution, NCHW: uint8/int8 input with a zero point, int8 weights
// [M, C/group, kH, kW] with per-output-channel zero points (usually 0), groups (depthwise
// included), strides, pads, dilations; int32 accumulation and the QGemm output stages.
//
//   acc[n,m,oh,ow] = sum_{c,i,j} (X[n, g*C/group + c, ih, iw] - zx) * (W[m,c,i,j] - zw[m]) +
//   bias[m] with ih = oh*stride_h - pad_top + i*dil_h (same for w), g = m / (M/group).
// Padding positions hold the input zero point (real 0), so they add nothing (ONNX ConvInteger /
// QLinearConv). The output stage is QGemmOutput's, indexed by output channel m.
// The fast path is im2col (rows of C/group*kH*kW codes, padding = zx; or, with the VNNI kernel,
// pointers to those codes: QGemmGather) + QGemm per group, so the range and no-clipping
// arguments are QGemm's (C/group*kH*kW <= kMaxQGemmK).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "qforge/kernels/qgemm.h"

namespace qforge::kernels {

struct QConvShape {
  int64_t batch = 1, in_channels = 0, in_h = 0, in_w = 0;
  int64_t out_channels = 0, group = 1, kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;

  int64_t out_h() const {
    return (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1;
  }
  int64_t out_w() const {
    return (in_w + pad_left + pad_right - dilation_w * (kernel_w - 1) - 1) / stride_w + 1;
  }
  // K of each group's GEMM: (C / group) * kH * kW.
  int64_t reduction() const { return in_channels / group * kernel_h * kernel_w; }
  // Throws qforge::Error naming the problem (non-positive sizes, channels not divisible by
  // group, empty output, reduction > kMaxQGemmK).
  void Validate() const;
};

// The input: NCHW codes (uint8 or int8) with a per-tensor zero point.
struct QConvInput {
  const void* data = nullptr;
  bool is_signed = false;
  int32_t zero_point = 0;
};

// Weights [M, C/group, kH, kW] packed once: one PackedQGemmB per group (K = reduction(),
// N = M / group).
class PackedQConvWeights {
 public:
  PackedQConvWeights() = default;
  // zero_points: empty, 1 or M entries, each in [-128, 127].
  static PackedQConvWeights Pack(const QConvShape& shape, const int8_t* w,
                                 const std::vector<int32_t>& zero_points = {},
                                 Isa isa = ActiveIsa());
  // The same packed weights for another geometry (batch, input size, strides, pads,
  // dilations): out_channels, in_channels, group and the kernel size must match (packing
  // depends only on those). Shares the packed data. Throws qforge::Error on a mismatch.
  PackedQConvWeights WithGeometry(const QConvShape& shape) const;
  const QConvShape& shape() const { return shape_; }
  const PackedQGemmB& group(int64_t g) const { return groups_[g]; }

  // Row-run packing, for stems (group 1, C not a multiple of 4, the VNNI kernel, weights
  // without zero points; null otherwise): the weights again with K' = kH * run_len(), kernel
  // row i's kW * C codes (column, channel) followed by zero weights up to run_len() =
  // round_up(kW * C, 4). The drivers copy the input rows into a zero-point-padded buffer and
  // hand QGemmGather one run of run_len() codes per kernel row (dilation_w 1): the up to 3
  // codes past the kernel row belong to the next pixel and meet weight 0 with no zero point,
  // so they add exactly 0. No im2col copy, no padding pointers.
  const PackedQGemmB* row_runs() const { return row_runs_.get(); }
  int64_t run_len() const { return run_len_; }
  // The same weights without the row-run packing (the drivers then copy im2col rows): for
  // benchmarks comparing the two paths.
  PackedQConvWeights WithoutRowRuns() const {
    PackedQConvWeights p = *this;
    p.row_runs_.reset();
    p.run_len_ = 0;
    return p;
  }

 private:
  QConvShape shape_;
  std::vector<PackedQGemmB> groups_;
  std::shared_ptr<const PackedQGemmB> row_runs_;
  int64_t run_len_ = 0;
};

// y: NCHW [batch, M, out_h, out_w] of the output stage's type. threads as in QGemm.
void QConv(const QConvInput& x, const PackedQConvWeights& w, const QGemmOutput& out, void* y,
           int threads = 0);

// The same convolution with channels-last (NHWC) activations: x [batch, in_h, in_w, C] and
// y [batch, out_h, out_w, M], the same weights and output stage, bit-identical values (the
// integer sums are the same; only the memory order differs). No transposes: a pointwise
// convolution (1x1, stride 1, no padding, C/group a multiple of 4) is one QGemm on the input
// rows; with the VNNI kernel, uint8 input and C/group a multiple of 4, QGemmGather reads every
// kernel tap in place through pointers (a padding tap points at a row of zx codes); stems with
// row_runs() read each kernel row of a zero-point-padded copy of the input rows as one run;
// otherwise im2col rows are copied straight from the input pixels (padding = zx).
void QConvNhwc(const QConvInput& x, const PackedQConvWeights& w, const QGemmOutput& out, void* y,
               int threads = 0);

}  // namespace qforge::kernels
