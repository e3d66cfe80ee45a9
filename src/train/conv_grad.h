// The convolution backward kernels shared by Conv and ConvTranspose (internal to src/train):
// im2col / col2im, one batched im2col + GEMM backward core, a direct depthwise backward, and the
// slow readable reference all of them are tested against (conv_grad_test.cc).
#pragma once

#include <cstdint>

namespace qforge::train {

// 2-D sliding-window geometry (1-D convs use h = 1): an "image" [c, ih, iw] read by a window
// at every output position [oh, ow]: tap (ki, kj) of position (oy, ox) is image pixel
// (oy * sh - ph + ki * dh, ox * sw - pw + kj * dw), zero outside.
struct Window {
  int64_t c, ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
  int64_t rows() const { return c * kh * kw; }  // K: one im2col row per (channel, tap)
  int64_t cols() const { return oh * ow; }      // P: one im2col column per window position
};

// col[(ci * kh + ki) * kw + kj][p] = image tap of position p (zero outside), for the rows x
// cols matrix col whose rows are `ld` floats apart (ld >= cols()).
void Im2Col(const Window& w, const float* img, float* col, int64_t ld);
// The adjoint of Im2Col: img[tap] += col[...] (img initialized by the caller).
void Col2ImAdd(const Window& w, const float* col, int64_t ld, float* img);

// The backward of a convolution-like op. Per sample n and group g, a window `win` slides over
// the image img[n, g] (win.c channels) to P = win.cols() positions, paired with the "other
// side" oth[n, g] ([R, P]) and the group's weight matrix W_g ([R, K], K = win.rows()):
//   Conv:           img = X,  oth = dY,  W_g = W[g*Mg : (g+1)*Mg] as [Mg, Cg*kh*kw]
//                   (the forward is Y_g = W_g im2col(X_g))
//   ConvTranspose:  img = dY, oth = X,   W_g = W[g*Cg : (g+1)*Cg] as [Cg, Mg*kh*kw]
//                   (the forward is Y_g = col2im(W_g^T X_g), whose adjoint reads dY by im2col)
// and the gradients are
//   dW_g   = sum_n oth_g im2col(img_g)^T          (both; written, not accumulated)
//   dimg_g = col2im(W_g^T oth_g)                  (Conv's dX; accumulated into dimg)
//   doth_g = W_g im2col(img_g)                    (ConvTranspose's dX; written)
// Any of dw / dimg / doth may be null (not wanted). Layouts: img [N, G * win.c, ih, iw],
// oth / doth [N, G * R, P], w / dw [G * R, K], all row-major.
struct WindowedGrad {
  Window win;
  int64_t n = 0, groups = 1, rows = 0;  // N, G, R
  const float* img = nullptr;
  const float* oth = nullptr;
  const float* w = nullptr;
  float* dw = nullptr;
  float* dimg = nullptr;
  float* doth = nullptr;
};

// Fast path: samples batched (as many as fit a bounded scratch buffer) into one im2col matrix
// [K, nb * P] per group, then one kernels::Sgemm per gradient over the whole chunk; a window
// that is the identity (1x1, stride 1, no padding) skips im2col and col2im altogether.
// Depthwise groups (win.c == 1 and R == 1) take DepthwiseBackward. Scratch buffers are per
// thread and reused across calls (no allocation per batch once warm). fp32 accumulation; the
// result does not depend on `threads` (the GEMMs split over rows / columns only).
void WindowedBackward(const WindowedGrad& p, int threads);

// Depthwise (one image channel and one output row per group): direct per-channel loops,
// channels split over threads. dW written, dimg accumulated, doth written (as above).
void DepthwiseBackward(const WindowedGrad& p, int threads);

// The reference: the formulas above as plain loops over every (n, g, r, k, p), double
// accumulators. Slow; for tests.
void WindowedBackwardReference(const WindowedGrad& p);

}  // namespace qforge::train
