// Resize (ONNX semantics): nearest, linear and cubic interpolation over any subset of axes.
//
// Interpolation is separable: the kernel resizes one axis at a time, so N-d linear is
// bilinear / trilinear / ... (the tensor product of 1-D linear interpolations), as in ONNX's
// reference. For output index o on an axis with input length L_in and output length L_out the
// source coordinate is (scale = the axis' scale, see ResizeParams::scales; L_rs = L_in * scale,
// the unrounded resized length, which ONNX's reference uses where a formula names the resized
// length — it equals L_out when the output size was given):
//   half_pixel            (o + 0.5) / scale - 0.5
//   half_pixel_symmetric  offset + (o + 0.5) / scale - 0.5, offset = L_in / 2 * (1 - adj),
//                         adj = L_out / L_rs
//   pytorch_half_pixel    L_rs > 1 ? (o + 0.5) / scale - 0.5 : 0
//   align_corners         L_rs > 1 ? o * (L_in - 1) / (L_rs - 1) : 0
//   asymmetric            o / scale
//   tf_half_pixel_for_nearest  (o + 0.5) / scale
//   tf_crop_and_resize    L_out > 1 ? start * (L_in - 1) + o * (end - start) * (L_in - 1) / (L_out
//   - 1)
//                                   : 0.5 * (start + end) * (L_in - 1);
//                         outside [0, L_in - 1] the output is extrapolation_value.
// Neighbours outside [0, L_in) are clamped to the edge (ONNX's edge padding), except that with
// exclude_outside the cubic weights of such taps are zeroed and the rest renormalized.
// Nearest: x = source coordinate, f = floor(x), r = x - f; round_prefer_floor picks f + 1 iff
// r > 0.5, round_prefer_ceil iff r >= 0.5, floor never, ceil iff r > 0.
// Cubic: taps f-1..f+2 with Keys' weights for coefficient a (cubic_coeff_a).
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

enum class ResizeMode { kNearest, kLinear, kCubic };
enum class ResizeCoord {
  kHalfPixel,
  kHalfPixelSymmetric,
  kPytorchHalfPixel,
  kAlignCorners,
  kAsymmetric,
  kTfHalfPixelForNearest,
  kTfCropAndResize,
};
enum class NearestMode { kRoundPreferFloor, kRoundPreferCeil, kFloor, kCeil };

struct ResizeParams {
  ResizeMode mode = ResizeMode::kNearest;
  ResizeCoord coord = ResizeCoord::kHalfPixel;
  NearestMode nearest = NearestMode::kRoundPreferFloor;
  // One entry per axis of X: the scale used in the coordinate formulas (the given scale, or
  // L_out / L_in when the output size was given).
  std::vector<double> scales;
  // One entry per axis, only for kTfCropAndResize: the normalized region [start, end].
  std::vector<double> roi_start, roi_end;
  float extrapolation_value = 0.0f;
  float cubic_coeff_a = -0.75f;
  bool exclude_outside = false;
};

// Resizes fp32 x to out_shape (same rank). Throws Error on a rank mismatch, a zero-size input
// axis that must produce output, or a missing roi for tf_crop_and_resize.
// Axes whose coordinate mapping is the identity are skipped (no copy, no rounding).
Tensor ResizeRef(const Tensor& x, const Shape& out_shape, const ResizeParams& p);

}  // namespace qforge::kernels
