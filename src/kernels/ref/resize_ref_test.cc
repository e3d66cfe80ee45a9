// Tests for the Resize kernel: hand-computed 1-D cases per mode, and separable N-d linear
// against a direct (non-separable) bilinear formula.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "qforge/kernels/resize.h"

namespace qforge::kernels {
namespace {

std::vector<float> Resize1d(std::vector<float> x, int64_t out, ResizeParams p, double scale = 0) {
  const int64_t in = static_cast<int64_t>(x.size());
  p.scales = {scale > 0 ? scale : static_cast<double>(out) / in};
  Tensor t = Tensor::FromVector<float>({in}, x);
  Tensor y = ResizeRef(t, {out}, p);
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

TEST(ResizeRef, NearestAsymmetricUpsample) {
  ResizeParams p;
  p.coord = ResizeCoord::kAsymmetric;
  p.nearest = NearestMode::kFloor;
  EXPECT_EQ(Resize1d({1, 2}, 4, p), (std::vector<float>{1, 1, 2, 2}));
}

TEST(ResizeRef, NearestModes) {
  // half_pixel, 4 -> 8 (scale 2): source coords -0.25, 0.25, 0.75, 1.25, ...
  ResizeParams p;
  std::vector<float> x = {10, 20, 30, 40};
  p.nearest = NearestMode::kRoundPreferFloor;
  EXPECT_EQ(Resize1d(x, 8, p), (std::vector<float>{10, 10, 20, 20, 30, 30, 40, 40}));
  p.nearest = NearestMode::kFloor;
  EXPECT_EQ(Resize1d(x, 8, p), (std::vector<float>{10, 10, 10, 20, 20, 30, 30, 40}));
  p.nearest = NearestMode::kCeil;
  EXPECT_EQ(Resize1d(x, 8, p), (std::vector<float>{10, 20, 20, 30, 30, 40, 40, 40}));
  // Ties: asymmetric, 2 -> 4 with scale 4/3... use align_corners 3 -> 5: coords 0, .5, 1, 1.5, 2.
  p.coord = ResizeCoord::kAlignCorners;
  p.nearest = NearestMode::kRoundPreferFloor;
  EXPECT_EQ(Resize1d({1, 2, 3}, 5, p), (std::vector<float>{1, 1, 2, 2, 3}));
  p.nearest = NearestMode::kRoundPreferCeil;
  EXPECT_EQ(Resize1d({1, 2, 3}, 5, p), (std::vector<float>{1, 2, 2, 3, 3}));
}

TEST(ResizeRef, LinearCoordinateModes) {
  ResizeParams p;
  p.mode = ResizeMode::kLinear;
  p.coord = ResizeCoord::kHalfPixel;  // PyTorch align_corners=False
  EXPECT_EQ(Resize1d({1, 2}, 4, p), (std::vector<float>{1, 1.25f, 1.75f, 2}));
  p.coord = ResizeCoord::kAlignCorners;
  EXPECT_EQ(Resize1d({1, 2}, 3, p), (std::vector<float>{1, 1.5f, 2}));
  p.coord = ResizeCoord::kAsymmetric;
  EXPECT_EQ(Resize1d({1, 2}, 4, p), (std::vector<float>{1, 1.5f, 2, 2}));
  p.coord = ResizeCoord::kPytorchHalfPixel;  // output length 1 maps to coordinate 0
  EXPECT_EQ(Resize1d({1, 2, 3, 4}, 1, p), (std::vector<float>{1}));
  p.coord = ResizeCoord::kHalfPixel;  // ... where half_pixel averages the middle
  EXPECT_EQ(Resize1d({1, 2, 3, 4}, 1, p), (std::vector<float>{2.5f}));
  p.coord = ResizeCoord::kTfHalfPixelForNearest;  // (o + 0.5) / 2: 0.25, 0.75, 1.25, 1.75
  EXPECT_EQ(Resize1d({1, 2}, 4, p), (std::vector<float>{1.25f, 1.75f, 2, 2}));
}

TEST(ResizeRef, TfCropAndResizeExtrapolates) {
  ResizeParams p;
  p.mode = ResizeMode::kLinear;
  p.coord = ResizeCoord::kTfCropAndResize;
  p.roi_start = {0.5};
  p.roi_end = {1.5};  // coordinates 1.5 .. 4.5 of a length-4 axis: the last two are outside
  p.extrapolation_value = -7;
  EXPECT_EQ(Resize1d({0, 10, 20, 30}, 4, p), (std::vector<float>{15, 25, -7, -7}));
}

TEST(ResizeRef, CubicIdentityAndSymmetry) {
  ResizeParams p;
  p.mode = ResizeMode::kCubic;
  p.coord = ResizeCoord::kAlignCorners;
  // Scale 1: identity. Linear data stays linear inside (Keys' cubic reproduces lines).
  EXPECT_EQ(Resize1d({1, 5, 2, 8}, 4, p), (std::vector<float>{1, 5, 2, 8}));
  std::vector<float> y = Resize1d({0, 1, 2, 3, 4, 5, 6}, 13, p);
  for (int i = 2; i < 11; ++i) EXPECT_NEAR(y[i], 0.5f * i, 1e-6f) << i;
}

TEST(ResizeRef, BilinearMatchesDirectFormula) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int64_t n = 2, c = 3, h = 5, w = 7, oh = 9, ow = 4;
  std::vector<float> xv(n * c * h * w);
  for (float& v : xv) v = dist(rng);
  Tensor x = Tensor::FromVector<float>({n, c, h, w}, xv);
  ResizeParams p;
  p.mode = ResizeMode::kLinear;
  p.coord = ResizeCoord::kHalfPixel;
  p.scales = {1.0, 1.0, static_cast<double>(oh) / h, static_cast<double>(ow) / w};
  Tensor y = ResizeRef(x, {n, c, oh, ow}, p);
  auto src = [](int64_t o, double scale, int64_t len, int64_t* i0, int64_t* i1, double* r) {
    double s = (o + 0.5) / scale - 0.5;
    s = std::clamp(s, 0.0, static_cast<double>(len - 1));
    *i0 = static_cast<int64_t>(std::floor(s));
    *i1 = std::min(*i0 + 1, len - 1);
    *r = s - *i0;
  };
  for (int64_t p0 = 0; p0 < n * c; ++p0)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        int64_t y0, y1, x0, x1;
        double ry, rx;
        src(i, p.scales[2], h, &y0, &y1, &ry);
        src(j, p.scales[3], w, &x0, &x1, &rx);
        auto at = [&](int64_t a, int64_t b) { return xv[(p0 * h + a) * w + b]; };
        const double want = (1 - ry) * ((1 - rx) * at(y0, x0) + rx * at(y0, x1)) +
                            ry * ((1 - rx) * at(y1, x0) + rx * at(y1, x1));
        ASSERT_NEAR(y.data<float>()[(p0 * oh + i) * ow + j], want, 1e-5) << i << "," << j;
      }
}

TEST(ResizeRef, RankMismatchThrows) {
  ResizeParams p;
  p.scales = {2.0};
  Tensor x = Tensor::FromVector<float>({2}, {1, 2});
  EXPECT_THROW(ResizeRef(x, {4, 1}, p), Error);
}

}  // namespace
}  // namespace qforge::kernels
