// Internal: per-ISA depthwise 2-D plane kernels (one channel, NCHW plane, no padded copy).
#pragma once

#include <cstdint>

namespace qforge::kernels::detail {

// y[oy][ox] = clamp(bias + sum_{ky,kx} w[ky*kw + kx] * x[oy*sh - ph + ky*dh][ox*sw - pw + kx*dw])
// with out-of-range input positions counting as zero. x is in_h x in_w, y is out_h x out_w.
struct DepthwiseArgs {
  const float* x;
  int64_t in_h, in_w, out_h, out_w;
  int64_t kh, kw, sh, sw, dh, dw, ph, pw;
  const float* w;  // kh * kw
  float bias;
  bool clamp;
  float lo, hi;
  float* y;
};

void DepthwisePlane__avx2(const DepthwiseArgs& a);
// 3x3 dilation-1 stride-1/2 planes on AVX-512 (AVX-512VL masks); everything else via AVX2.
void DepthwisePlane__avx512(const DepthwiseArgs& a);
void DepthwisePlaneScalar(const DepthwiseArgs& a);

// One output element with full bounds checks (used for borders by every ISA).
inline float DepthwisePoint(const DepthwiseArgs& a, int64_t oy, int64_t ox) {
  float acc = a.bias;
  for (int64_t ky = 0; ky < a.kh; ++ky) {
    const int64_t iy = oy * a.sh - a.ph + ky * a.dh;
    if (iy < 0 || iy >= a.in_h) continue;
    for (int64_t kx = 0; kx < a.kw; ++kx) {
      const int64_t ix = ox * a.sw - a.pw + kx * a.dw;
      if (ix < 0 || ix >= a.in_w) continue;
      acc += a.x[iy * a.in_w + ix] * a.w[ky * a.kw + kx];
    }
  }
  if (a.clamp) acc = acc < a.lo ? a.lo : (acc > a.hi ? a.hi : acc);
  return acc;
}

// Output columns [lo, hi) for which every tap column of a block of `lanes` consecutive outputs
// starting there is inside the row (reading `extra` more floats past the last tap is also safe).
inline void DepthwiseInteriorColumns(const DepthwiseArgs& a, int64_t lanes, int64_t extra,
                                     int64_t* lo, int64_t* hi) {
  // ox*sw - pw >= 0  and  (ox + lanes - 1)*sw - pw + (kw - 1)*dw + extra <= in_w - 1.
  *lo = (a.pw + a.sw - 1) / a.sw;
  const int64_t last = a.in_w - 1 + a.pw - (a.kw - 1) * a.dw - extra;  // >= (ox+lanes-1)*sw
  *hi = last < 0 ? 0 : last / a.sw - (lanes - 1) + 1;                  // block starts in [lo, hi)
  if (*hi > a.out_w - lanes + 1) *hi = a.out_w - lanes + 1;
  if (*hi < *lo) *hi = *lo;
}

}  // namespace qforge::kernels::detail
