// The fast convolution backward (batched im2col + GEMM, identity windows, chunking, direct
// depthwise) against the plain-loop reference, for Conv-like and ConvTranspose-like use.
#include "train/conv_grad.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "train/test_util.h"

namespace qforge::train {
namespace {

struct Case {
  std::string name;
  Window win;
  int64_t n, groups, rows;
};

std::vector<float> Values(int64_t count, uint64_t seed) {
  const Tensor t = testing::Random({count}, seed);
  return std::vector<float>(t.data<float>(), t.data<float>() + count);
}

// Tolerance: fp32 sums of up to ~10^4 products of values in [-1, 1] against double sums.
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-4 * (1 + std::fabs(want[i]))) << what << " at " << i;
}

// Runs fast and reference on the same random data; Conv-like (dw, dimg) and ConvTranspose-like
// (dw, doth) gradients.
void Check(const Case& c, int threads = 1) {
  SCOPED_TRACE(c.name);
  const Window& w = c.win;
  const int64_t img_n = c.n * c.groups * w.c * w.ih * w.iw;
  const int64_t oth_n = c.n * c.groups * c.rows * w.cols();
  const int64_t w_n = c.groups * c.rows * w.rows();
  const std::vector<float> img = Values(img_n, 1), oth = Values(oth_n, 2), wt = Values(w_n, 3);
  const std::vector<float> dimg0 = Values(img_n, 4);  // dimg accumulates: start non-zero
  for (bool conv : {true, false}) {
    std::vector<float> dw_f(w_n), dw_r(w_n), dimg_f = dimg0, dimg_r = dimg0;
    std::vector<float> doth_f(oth_n, 7.0f), doth_r(oth_n);
    WindowedGrad p;
    p.win = w;
    p.n = c.n;
    p.groups = c.groups;
    p.rows = c.rows;
    p.img = img.data();
    p.oth = oth.data();
    p.w = wt.data();
    WindowedGrad f = p, r = p;
    f.dw = dw_f.data();
    r.dw = dw_r.data();
    if (conv) {
      f.dimg = dimg_f.data();
      r.dimg = dimg_r.data();
    } else {
      f.doth = doth_f.data();
      r.doth = doth_r.data();
    }
    WindowedBackward(f, threads);
    WindowedBackwardReference(r);
    ExpectClose(dw_f, dw_r, conv ? "conv dW" : "convT dW");
    if (conv) ExpectClose(dimg_f, dimg_r, "conv dX");
    if (!conv) ExpectClose(doth_f, doth_r, "convT dX");
  }
}

// Window over an image [c, ih, iw] with kernel k, stride s, pad p, dilation d (square).
Window Win(int64_t c, int64_t ih, int64_t iw, int64_t k, int64_t s, int64_t p, int64_t d = 1) {
  const int64_t span = d * (k - 1) + 1;
  return {c, ih, iw, (ih + 2 * p - span) / s + 1, (iw + 2 * p - span) / s + 1, k, k, s, s, d,
          d, p,  p};
}

TEST(ConvGrad, FastMatchesReference) {
  Check({"3x3 pad 1", Win(3, 7, 6, 3, 1, 1), 3, 1, 4});
  Check({"3x3 stride 2", Win(4, 9, 9, 3, 2, 1), 2, 1, 5});
  Check({"dilated", Win(2, 8, 8, 3, 1, 2, 2), 2, 1, 3});
  Check({"grouped", Win(2, 6, 6, 3, 1, 1), 3, 3, 2});
  Check({"1x1 identity, batched", Win(6, 5, 5, 1, 1, 0), 4, 1, 7});
  Check({"1x1 identity, one sample", Win(6, 5, 5, 1, 1, 0), 1, 1, 7});
  Check({"1x1 stride 2", Win(3, 6, 6, 1, 2, 0), 2, 1, 4});
  Check({"1-D", {2, 1, 11, 1, 5, 1, 3, 1, 2, 1, 1, 0, 1}, 2, 1, 3});
  Check({"non-square", {2, 5, 7, 4, 6, 2, 3, 1, 1, 1, 1, 0, 1}, 2, 2, 3});
}

TEST(ConvGrad, DepthwiseMatchesReference) {
  Check({"depthwise 3x3", Win(1, 8, 8, 3, 1, 1), 3, 5, 1});
  Check({"depthwise 3x3 stride 2", Win(1, 9, 7, 3, 2, 1), 2, 4, 1});
  Check({"depthwise 5x5 dilated", Win(1, 10, 10, 5, 1, 2, 2), 2, 3, 1});
  Check({"depthwise, two threads", Win(1, 8, 8, 3, 1, 1), 2, 5, 1}, 2);
}

TEST(ConvGrad, ChunksOfSamples) {
  // K * P = 288 * 2304 floats: the 2M-float scratch holds 3 samples, so 4 samples take two
  // chunks (the second accumulates into dW).
  Check({"chunked", Win(32, 48, 48, 3, 1, 1), 4, 1, 4});
}

TEST(ConvGrad, SameResultForAnyThreadCount) {
  const Window w = Win(8, 12, 12, 3, 1, 1);
  const int64_t n = 4, rows = 16;
  const std::vector<float> img = Values(n * w.c * w.ih * w.iw, 5);
  const std::vector<float> oth = Values(n * rows * w.cols(), 6), wt = Values(rows * w.rows(), 7);
  std::vector<float> dw1(wt.size()), dw2(wt.size()), dx1(img.size()), dx2(img.size());
  WindowedGrad p;
  p.win = w;
  p.n = n;
  p.rows = rows;
  p.img = img.data();
  p.oth = oth.data();
  p.w = wt.data();
  WindowedGrad a = p, b = p;
  a.dw = dw1.data();
  a.dimg = dx1.data();
  b.dw = dw2.data();
  b.dimg = dx2.data();
  WindowedBackward(a, 1);
  WindowedBackward(b, 2);
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(dx1, dx2);
}

TEST(ConvGrad, Im2ColAndCol2ImAreAdjoint) {
  // <im2col(x), c> == <x, col2im(c)> for random x, c: the backward's col2im is the exact adjoint.
  const Window w = Win(3, 7, 9, 3, 2, 1, 2);
  const std::vector<float> x = Values(w.c * w.ih * w.iw, 8), c = Values(w.rows() * w.cols(), 9);
  std::vector<float> col(c.size()), img(x.size(), 0.0f);
  Im2Col(w, x.data(), col.data(), w.cols());
  Col2ImAdd(w, c.data(), w.cols(), img.data());
  double lhs = 0, rhs = 0;
  for (size_t i = 0; i < c.size(); ++i) lhs += double(col[i]) * c[i];
  for (size_t i = 0; i < x.size(); ++i) rhs += double(x[i]) * img[i];
  EXPECT_NEAR(lhs, rhs, 1e-4 * (1 + std::fabs(lhs)));
}

}  // namespace
}  // namespace qforge::train
