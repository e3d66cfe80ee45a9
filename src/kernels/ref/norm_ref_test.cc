// Tests for BatchNormalization and LayerNormalization kernels (hand values; fast vs reference).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qforge/kernels/norm.h"

namespace qforge::kernels {
namespace {

TEST(NormRef, BatchNormHandValue) {
  // One channel: (x - 1) / sqrt(4 + 0) * 3 + 0.5
  const float x[2] = {5.0f, -1.0f}, scale = 3, bias = 0.5f, mean = 1, var = 4;
  float y[2];
  BatchNormRef(1, 1, 2, x, &scale, &bias, &mean, &var, 0.0f, y);
  EXPECT_FLOAT_EQ(y[0], 6.5f);
  EXPECT_FLOAT_EQ(y[1], -2.5f);
}

TEST(NormRef, FoldedScaleShiftMatchesReference) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f), pos(0.1f, 2.0f);
  const int64_t n = 2, c = 5, s = 37;
  std::vector<float> x(n * c * s), scale(c), bias(c), mean(c), var(c);
  for (float& v : x) v = dist(rng);
  for (int64_t i = 0; i < c; ++i) {
    scale[i] = dist(rng);
    bias[i] = dist(rng);
    mean[i] = dist(rng);
    var[i] = pos(rng);
  }
  std::vector<float> ref(x.size()), fast(x.size()), a(c), b(c);
  BatchNormRef(n, c, s, x.data(), scale.data(), bias.data(), mean.data(), var.data(), 1e-5f,
               ref.data());
  BatchNormFold(c, scale.data(), bias.data(), mean.data(), var.data(), 1e-5f, a.data(), b.data());
  for (int threads : {1, 2}) {
    ChannelScaleShiftF32(n, c, s, x.data(), a.data(), b.data(), fast.data(), threads);
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_NEAR(ref[i], fast[i], 1e-5f * (1 + std::fabs(ref[i]))) << i;
  }
}

TEST(NormRef, LayerNormHandValues) {
  // Row [1, 2, 3, 4]: mean 2.5, var 1.25.
  const float x[4] = {1, 2, 3, 4}, scale[4] = {1, 1, 2, 2}, bias[4] = {0, 1, 0, 1};
  float y[4], mean, inv_std;
  LayerNormRef(1, 4, x, scale, bias, 0.0f, y, &mean, &inv_std, 1);
  const float is = 1.0f / std::sqrt(1.25f);
  EXPECT_FLOAT_EQ(mean, 2.5f);
  EXPECT_FLOAT_EQ(inv_std, is);
  EXPECT_FLOAT_EQ(y[0], -1.5f * is);
  EXPECT_FLOAT_EQ(y[1], -0.5f * is + 1);
  EXPECT_FLOAT_EQ(y[2], 0.5f * is * 2);
  EXPECT_FLOAT_EQ(y[3], 1.5f * is * 2 + 1);
  // No bias.
  LayerNormRef(1, 4, x, scale, nullptr, 0.0f, y, nullptr, nullptr, 1);
  EXPECT_FLOAT_EQ(y[1], -0.5f * is);
}

TEST(NormRef, LayerNormIndependentOfThreads) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(-3.0f, 3.0f);
  const int64_t rows = 300, cols = 64;
  std::vector<float> x(rows * cols), scale(cols, 1.5f), y1(x.size()), y2(x.size());
  for (float& v : x) v = dist(rng);
  LayerNormRef(rows, cols, x.data(), scale.data(), nullptr, 1e-5f, y1.data(), nullptr, nullptr, 1);
  LayerNormRef(rows, cols, x.data(), scale.data(), nullptr, 1e-5f, y2.data(), nullptr, nullptr, 2);
  EXPECT_EQ(y1, y2);
}

}  // namespace
}  // namespace qforge::kernels
