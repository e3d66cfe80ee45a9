// Internal: per-ISA depthwise 2-D plane kernels over a zero-padded input plane.
#pragma once

#include <cstdint>

namespace qforge::kernels::detail {

// xp: the input plane already zero-padded so that every tap of every output position is
// in range: element (r, c) at xp[r * xp_stride + c], output (oy, ox) tap (ky, kx) reads row
// oy*sh + ky*dh, column ox*sw + kx*dw. Each padded row must have at least
// out_w * sw + 16 readable floats past the column `kx*dw` (vector over-read; those lanes are
// discarded). Writes y[oy * out_w + ox] = clamp(bias + sum w * x).
struct PaddedDepthwise {
  const float* xp;
  int64_t xp_stride;
  int64_t out_h, out_w;
  int kh, kw, sh, sw, dh, dw;
  const float* w;  // kh * kw
  float bias;
  bool clamp;
  float lo, hi;
  float* y;
};

void DepthwisePaddedPlane__avx2(const PaddedDepthwise& p);
void DepthwisePaddedPlaneScalar(const PaddedDepthwise& p);

}  // namespace qforge::kernels::detail
