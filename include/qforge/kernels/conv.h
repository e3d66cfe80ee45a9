// Fast fp32 convolution (NCHW): im2col-free GEMM with prepacked weights for 1-D / 2-D convs,
// a dedicated depthwise kernel, and a fused output activation. Other ranks use the reference.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/kernels/gemm.h"

namespace qforge::kernels {

// Everything that fixes a convolution's shapes. Spatial vectors all have the same length
// (the spatial rank, >= 1). Used by Conv (x: [batch, in_channels, in_size...],
// y: [batch, out_channels, out_size...]) and ConvTranspose alike.
struct ConvGeometry {
  int64_t batch = 1;
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  int64_t group = 1;
  std::vector<int64_t> in_size, out_size, kernel, strides, dilations, pads_begin, pads_end;
  size_t rank() const { return kernel.size(); }
};

// Conv output length along one axis: floor((in + pb + pe - dilation * (k - 1) - 1) / s) + 1.
// May be <= 0 for impossible geometries (callers must reject that).
int64_t ConvOutputSize(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_begin,
                       int64_t pad_end);

// A convolution with constant weights, prepacked at construction for one ISA.
class ConvF32 {
 public:
  // weights: [out_channels, in_channels / group, kernel...]; bias: [out_channels] or null.
  // Copies / packs both, so the caller's buffers may be freed afterwards.
  ConvF32(int64_t out_channels, int64_t in_channels, int64_t group, std::vector<int64_t> kernel,
          const float* weights, const float* bias, Isa isa = ActiveIsa());

  // y = act(conv(x, w) + bias [+ sum]). g's channels, group and kernel must match the
  // constructor's (throws Error otherwise); g.out_size must be ConvOutputSize of the other
  // fields. sum (optional) has y's shape and is added before the activation (a fused residual
  // Add); it may be y itself. threads: 0 = OpenMP default.
  void Run(const ConvGeometry& g, const float* x, float* y, Activation act = {}, int threads = 0,
           const float* sum = nullptr) const;

  bool depthwise() const { return depthwise_; }
  Isa isa() const { return isa_; }

 private:
  int64_t out_channels_, in_channels_, group_;
  std::vector<int64_t> kernel_;
  Isa isa_;
  bool depthwise_;
  std::vector<float> weights_;  // original layout (depthwise and reference paths)
  std::vector<float> bias_;     // [out_channels], zeros when absent
  bool has_bias_;
  std::vector<PackedMatrix> packed_;  // per group: Mg x (Cg * prod(kernel)), GEMM path
};

// Transposed convolution with constant weights [in_channels, out_channels / group, kernel...]:
// per group a GEMM (W^T * x) into a column buffer, then col2im scatter-add. Semantics as
// ref::ConvTranspose (out_size computed by the caller).
class ConvTransposeF32 {
 public:
  ConvTransposeF32(int64_t in_channels, int64_t out_channels, int64_t group,
                   std::vector<int64_t> kernel, const float* weights, const float* bias,
                   Isa isa = ActiveIsa());
  void Run(const ConvGeometry& g, const float* x, float* y, Activation act = {},
           int threads = 0) const;

 private:
  int64_t in_channels_, out_channels_, group_;
  std::vector<int64_t> kernel_;
  std::vector<float> bias_;
  bool has_bias_;
  std::vector<PackedMatrix> packed_;  // per group: (Mg * prod(kernel)) x Cg, i.e. W_g^T
};

// Depthwise 2-D convolution of one channel plane (exposed for tests and benchmarks):
// y[oy][ox] = act(bias + sum_{ky,kx} w[ky][kx] * x[oy*sh - ph + ky*dh][ox*sw - pw + kx*dw]),
// out-of-range input positions count as zero. Uses the given ISA's kernel.
struct DepthwisePlane {
  int64_t in_h, in_w, out_h, out_w;
  int64_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
};
void DepthwiseConv2dPlane(Isa isa, const DepthwisePlane& p, const float* x, const float* w,
                          float bias, float* y, Activation act);

}  // namespace qforge::kernels
