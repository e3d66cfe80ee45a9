// Tests for Softmax / LogSoftmax kernels: hand values, stability, fast path against reference.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qforge/kernels/softmax.h"

namespace qforge::kernels {
namespace {

TEST(SoftmaxRef, HandValues) {
  const float x[3] = {1, 2, 3};
  float y[3];
  SoftmaxRef(1, 3, 1, x, y, false);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  EXPECT_FLOAT_EQ(y[0], static_cast<float>(std::exp(1.0) / z));
  EXPECT_FLOAT_EQ(y[2], static_cast<float>(std::exp(3.0) / z));
  SoftmaxRef(1, 3, 1, x, y, true);
  EXPECT_FLOAT_EQ(y[1], static_cast<float>(2.0 - std::log(z)));
}

TEST(SoftmaxRef, InnerStrideAndLargeValues) {
  // [1, 2, 2]: softmax along the middle axis pairs x[0] with x[2] and x[1] with x[3].
  const float x[4] = {1000, 0, 1000, 0};
  float y[4];
  SoftmaxRef(1, 2, 2, x, y, false);
  for (float v : y) EXPECT_FLOAT_EQ(v, 0.5f);
}

TEST(SoftmaxFast, MatchesReference) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-20.0f, 20.0f);
  const int64_t shapes[][3] = {{1, 1, 1},    {1, 10, 1},   {64, 1000, 1}, {3, 4, 5},  {2, 7, 33},
                               {5000, 3, 1}, {1, 2, 4096}, {4096, 16, 1}, {9, 13, 1}, {3, 8, 1}};
  for (auto& sh : shapes) {
    const int64_t n = sh[0] * sh[1] * sh[2];
    std::vector<float> x(n), ref(n), fast(n);
    for (float& v : x) v = dist(rng);
    for (bool log : {false, true})
      for (int threads : {1, 2}) {
        SoftmaxRef(sh[0], sh[1], sh[2], x.data(), ref.data(), log);
        SoftmaxF32(sh[0], sh[1], sh[2], x.data(), fast.data(), log, threads);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_NEAR(ref[i], fast[i], 1e-5f * (1 + std::fabs(ref[i])))
              << sh[0] << "x" << sh[1] << "x" << sh[2] << " log=" << log << " i=" << i;
      }
  }
}

}  // namespace
}  // namespace qforge::kernels
