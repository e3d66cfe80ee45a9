// Reference N-d convolution and transposed convolution (NCHW-style layouts): the oracle.
#pragma once

#include "qforge/kernels/conv.h"

namespace qforge::kernels::ref {

// Convolution with ONNX Conv semantics, any number of spatial dims (>= 1).
//   x: [batch, in_channels, in_size...]
//   w: [out_channels, in_channels / group, kernel...]
//   bias: [out_channels] or null
//   y: [batch, out_channels, out_size...] (geometry.out_size must be consistent; see
//      ConvOutputSize). Input positions outside the input (padding) count as zero.
// Accumulates in double, rounds once to float.
void Conv(const ConvGeometry& g, const float* x, const float* w, const float* bias, float* y);

// Transposed convolution with ONNX ConvTranspose semantics:
//   x: [batch, in_channels, in_size...]
//   w: [in_channels, out_channels / group, kernel...]
//   y: [batch, out_channels, out_size...]
// Every input position i and kernel tap k contribute to output position
//   o = i * stride - pads_begin + k * dilation   (dropped if outside [0, out_size)).
// (pads_end and output_padding only shape out_size, which the caller computes.)
void ConvTranspose(const ConvGeometry& g, const float* x, const float* w, const float* bias,
                   float* y);

}  // namespace qforge::kernels::ref
