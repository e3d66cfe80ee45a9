// Tests of fake quantization: forward bit-exact with the runtime's quantize -> dequantize, STE
// analytically, LSQ's step-size gradient against finite differences, soft (DSQ) against finite
// differences and its annealing into the hard forward.
#include "qforge/train/fake_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "qforge/tensor/tensor.h"

namespace qforge::train {
namespace {

namespace nq = qforge::numerics;

std::vector<float> RandomVector(int64_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool BitEqual(float a, float b) { return std::memcmp(&a, &b, sizeof(float)) == 0; }

// The runtime path: numerics::Quantize into Q then numerics::Dequantize, with the integer
// parameters the fake quantizer uses.
template <typename Q>
std::vector<float> RuntimeQdq(const std::vector<float>& x, const std::vector<int64_t>& shape,
                              const FakeQuantConfig& c, const std::vector<float>& scale,
                              const std::vector<float>& zero) {
  std::vector<nq::QuantParams> params;
  for (size_t i = 0; i < scale.size(); ++i) params.push_back(EffectiveParams(scale[i], zero[i], c));
  std::vector<Q> q(x.size());
  nq::Quantize<Q>(x.data(), shape, c.granularity, params, c.format, q.data(), c.restricted_range);
  std::vector<float> y(x.size());
  nq::Dequantize<Q>(q.data(), shape, c.granularity, params, y.data());
  return y;
}

TEST(FakeQuant, ConfigsFromBits) {
  const FakeQuantConfig w8 = WeightConfig(8, 0);
  EXPECT_EQ(w8.qmin(), -127);
  EXPECT_EQ(w8.qmax(), 127);
  const FakeQuantConfig w4 = WeightConfig(4, 1);
  EXPECT_EQ(w4.qmin(), -7);
  EXPECT_EQ(w4.qmax(), 7);
  EXPECT_EQ(w4.granularity.axis, 1);
  const FakeQuantConfig w2 = WeightConfig(2, 0);
  EXPECT_EQ(w2.qmin(), -1);
  EXPECT_EQ(w2.qmax(), 1);
  const FakeQuantConfig a8 = ActivationConfig(8);
  EXPECT_EQ(a8.qmin(), 0);
  EXPECT_EQ(a8.qmax(), 255);
  EXPECT_EQ(ActivationConfig(4).qmax(), 15);
  EXPECT_THROW(FormatFromBits(3, true), Error);
  EXPECT_THROW(FormatFromBits(16, false), Error);
  EXPECT_EQ(ParseEstimator("lsq"), Estimator::kLsq);
  EXPECT_STREQ(EstimatorName(ParseEstimator("soft")), "soft");
  EXPECT_THROW(ParseEstimator("hard"), Error);
}

TEST(FakeQuant, EffectiveParamsRoundAndClamp) {
  const FakeQuantConfig a8 = ActivationConfig(8);
  EXPECT_EQ(EffectiveZeroPoint(2.5f, a8), 2);  // half to even
  EXPECT_EQ(EffectiveZeroPoint(3.5f, a8), 4);
  EXPECT_EQ(EffectiveZeroPoint(-4.0f, a8), 0);
  EXPECT_EQ(EffectiveZeroPoint(300.0f, a8), 255);
  EXPECT_EQ(EffectiveScale(-1.0f), nq::kMinScale);
  EXPECT_EQ(EffectiveScale(0.25f), 0.25f);
}

// Per tensor uint8 asymmetric, with rounding ties, saturation on both sides, NaN and +-Inf.
TEST(FakeQuant, ForwardEqualsRuntimePerTensor) {
  const FakeQuantConfig c = ActivationConfig(8);
  const std::vector<float> scale = {0.05f}, zero = {37.0f};
  std::vector<float> x = RandomVector(1000, -4.0f, 12.0f, 1);
  for (int k = -40; k < 300; ++k) x.push_back((k + 0.5f) * 0.05f);  // near / at ties
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(std::numeric_limits<float>::infinity());
  x.push_back(-std::numeric_limits<float>::infinity());
  const std::vector<int64_t> shape = {static_cast<int64_t>(x.size())};
  std::vector<float> y(x.size());
  FakeQuantForward(x.data(), shape, c, scale, zero, y.data());
  const std::vector<float> ref = RuntimeQdq<uint8_t>(x, shape, c, scale, zero);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(BitEqual(y[i], ref[i])) << i << " x=" << x[i];
  EXPECT_EQ(y[y.size() - 3], 0.0f);                // NaN -> real 0
  EXPECT_EQ(y[y.size() - 2], (255 - 37) * 0.05f);  // +Inf saturates
  EXPECT_EQ(y[y.size() - 1], (0 - 37) * 0.05f);    // -Inf saturates
}

// Per channel int8 / int4 / int2 restricted along axis 0, 1 and the last axis.
TEST(FakeQuant, ForwardEqualsRuntimePerChannelAnyAxis) {
  const std::vector<int64_t> shape = {4, 3, 5, 2};
  const int64_t n = 4 * 3 * 5 * 2;
  for (int bits : {8, 4, 2}) {
    for (int axis : {0, 1, 3, -1}) {
      const FakeQuantConfig c = WeightConfig(bits, axis);
      const int64_t channels = shape[axis < 0 ? axis + 4 : axis];
      std::vector<float> scale, zero(channels, 0.0f);
      for (int64_t j = 0; j < channels; ++j) scale.push_back(0.5f / (1 << (bits - 1)) * (j + 1));
      const std::vector<float> x = RandomVector(n, -2.0f, 2.0f, 10 + bits + axis);
      std::vector<float> y(n);
      FakeQuantForward(x.data(), shape, c, scale, zero, y.data());
      const std::vector<float> ref = RuntimeQdq<int8_t>(x, shape, c, scale, zero);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_TRUE(BitEqual(y[i], ref[i])) << bits << " bits, axis " << axis << " i=" << i;
      }
      // In place gives the same.
      std::vector<float> z = x;
      FakeQuantForward(z.data(), shape, c, scale, zero, z.data());
      EXPECT_EQ(z, y);
    }
  }
}

TEST(FakeQuant, BadArgumentsThrow) {
  const FakeQuantConfig c = WeightConfig(8, 0);
  const std::vector<float> two = {1.0f, 1.0f}, three = {1.0f, 1.0f, 1.0f};
  EXPECT_NO_THROW(CheckFakeQuantArgs({3, 4}, c, three, three, "w"));
  EXPECT_THROW(CheckFakeQuantArgs({3, 4}, c, two, two, "w"), Error);
  EXPECT_THROW(CheckFakeQuantArgs({3, 4}, WeightConfig(8, 2), three, three, "w"), Error);
  const std::vector<float> nan = {1.0f, std::nanf(""), 1.0f};
  EXPECT_THROW(CheckFakeQuantArgs({3, 4}, c, nan, three, "w"), Error);
  std::vector<float> x(4);
  EXPECT_THROW(SoftFakeQuantForward(x.data(), {4}, ActivationConfig(8), {two.data(), 1},
                                    {two.data(), 1}, 0.0, x.data()),
               Error);
}

TEST(FakeQuant, SteGradientIsMaskedIdentity) {
  const FakeQuantConfig c = ActivationConfig(8);
  const std::vector<float> scale = {0.1f}, zero = {10.0f};
  // codes before clamp: -1.04/0.1 -> -10 + 10 = 0 (inside), -1.06 -> -11 + 10 = -1 (outside),
  // 24.5 -> 245 + 10 = 255 (inside; 24.5/0.1 rounds to 245), 24.56 -> 256 (outside), NaN.
  const std::vector<float> x = {0.3f, -1.04f, -1.06f, 24.5f, 24.56f, 100.0f, std::nanf("")};
  const std::vector<float> dy = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f};
  std::vector<float> dx(x.size());
  FakeQuantBackwardSte(x.data(), {7}, c, scale, zero, dy.data(), dx.data());
  EXPECT_EQ(dx, (std::vector<float>{1.0f, 2.0f, 0.0f, 4.0f, 0.0f, 0.0f, 0.0f}));
}

// LSQ's scale gradient = (exact derivative of the hard forward in s, rounding held fixed — a
// finite difference, valid away from rounding ties) + the straight-through term -x/s inside.
TEST(FakeQuant, LsqScaleGradientMatchesFiniteDifference) {
  for (int bits : {8, 4}) {
    for (bool weights : {true, false}) {
      const std::vector<int64_t> shape = {3, 40};
      const FakeQuantConfig c = weights ? WeightConfig(bits, 0) : ActivationConfig(bits);
      const int64_t np = weights ? 3 : 1;
      std::vector<float> scale, zero;
      for (int64_t j = 0; j < np; ++j) {
        scale.push_back((weights ? 1.0f : 2.0f) / c.qmax() * (1.0f + 0.1f * j));
        zero.push_back(weights ? 0.0f : float(c.qmax() / 4));
      }
      // Values away from ties: code fraction in [0.1, 0.4] or [0.6, 0.9]; some clipped.
      std::vector<float> x = RandomVector(120, -1.6f, 2.4f, 7 + bits);
      nq::ForEachParamRun(shape, c.granularity, [&](int64_t b, int64_t cnt, int64_t pi) {
        for (int64_t i = b; i < b + cnt; ++i) {
          const float s = scale[pi];
          const float r = x[i] / s, fl = std::floor(r), fr = r - fl;
          if (fr > 0.4f && fr < 0.6f) x[i] = (fl + 0.25f) * s;
          if (fr < 0.1f || fr > 0.9f) x[i] = (fl + 0.25f) * s;
        }
      });
      const std::vector<float> dy = RandomVector(120, -1.0f, 1.0f, 99);
      std::vector<float> dx(120), ds(np), dz(np);
      FakeQuantBackwardLsq(x.data(), shape, c, scale, zero, dy.data(), dx.data(), ds, dz);
      const double g = LsqGradScale(shape, c);
      EXPECT_NEAR(g, 1.0 / std::sqrt(120.0 / np * c.qmax()), 1e-12);
      std::vector<float> y(120);
      for (int64_t j = 0; j < np; ++j) {
        const double h = scale[j] * 1e-4;
        auto loss = [&](double sj) {
          std::vector<float> s2 = scale;
          s2[j] = float(sj);
          FakeQuantForward(x.data(), shape, c, s2, zero, y.data());
          double l = 0;
          for (int i = 0; i < 120; ++i) l += double(dy[i]) * y[i];
          return l;
        };
        const double fd = (loss(scale[j] + h) - loss(scale[j] - h)) / (2 * h);
        double ste_term = 0;
        nq::ForEachParamRun(shape, c.granularity, [&](int64_t b, int64_t cnt, int64_t pi) {
          if (pi != j) return;
          for (int64_t i = b; i < b + cnt; ++i) {
            const double v = std::nearbyint(x[i] / scale[j]) + EffectiveZeroPoint(zero[j], c);
            if (v >= c.qmin() && v <= c.qmax()) ste_term -= double(dy[i]) * x[i] / scale[j];
          }
        });
        EXPECT_NEAR(ds[j] / g, fd + ste_term, 2e-3 * (1 + std::abs(fd)))
            << bits << " bits, weights=" << weights << ", slice " << j;
      }
    }
  }
}

TEST(FakeQuant, LsqZeroPointGradientAndMask) {
  const FakeQuantConfig c = ActivationConfig(8);
  const std::vector<float> scale = {0.5f}, zero = {100.0f};
  // inside, below (code -1), above (code 256), inside.
  const std::vector<float> x = {1.3f, -50.6f, 78.2f, -3.1f};
  const std::vector<float> dy = {1.0f, 2.0f, -1.0f, 0.5f};
  std::vector<float> dx(4), ds(1), dz(1);
  FakeQuantBackwardLsq(x.data(), {4}, c, scale, zero, dy.data(), dx.data(), ds, dz);
  EXPECT_EQ(dx, (std::vector<float>{1.0f, 0.0f, 0.0f, 0.5f}));
  const double g = 1.0 / std::sqrt(4.0 * 255.0);
  const double ds_ref = 1.0 * (3.0 - 2.6) + 2.0 * (0 - 100) + -1.0 * (255 - 100) + 0.5 * (-6 + 6.2);
  EXPECT_NEAR(ds[0], g * ds_ref, 1e-5);
  EXPECT_NEAR(dz[0], g * (-(2.0 * 0.5) - (-1.0 * 0.5)), 1e-6);
  // Empty spans skip the parameter gradients.
  std::vector<float> dx2(4);
  FakeQuantBackwardLsq(x.data(), {4}, c, scale, zero, dy.data(), dx2.data(), {}, {});
  EXPECT_EQ(dx2, dx);
}

// Gradient descent on s alone with LSQ gradients lowers the quantization error of a Gaussian
// from a badly chosen (6x too large) initial step.
TEST(FakeQuant, LsqLearnsAStepSize) {
  const FakeQuantConfig c = WeightConfig(4, 0);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(2000);
  for (float& v : x) v = nd(rng);
  std::vector<float> scale = {2.0f}, zero = {0.0f};
  auto mse = [&]() {
    std::vector<float> y(x.size());
    FakeQuantForward(x.data(), {1, 2000}, c, scale, zero, y.data());
    double e = 0;
    for (size_t i = 0; i < x.size(); ++i) e += (y[i] - x[i]) * double(y[i] - x[i]);
    return e / x.size();
  };
  const double before = mse();
  for (int it = 0; it < 300; ++it) {
    std::vector<float> y(x.size()), dy(x.size()), dx(x.size()), ds(1), dz(1);
    FakeQuantForward(x.data(), {1, 2000}, c, scale, zero, y.data());
    for (size_t i = 0; i < x.size(); ++i) dy[i] = 2.0f * (y[i] - x[i]) / x.size();
    FakeQuantBackwardLsq(x.data(), {1, 2000}, c, scale, zero, dy.data(), dx.data(), ds, dz);
    scale[0] -= 20.0f * ds[0];
  }
  const double after = mse();
  EXPECT_LT(after, 0.5 * before) << "before " << before << " after " << after;
  EXPECT_GT(scale[0], 0.2f) << scale[0];  // the MSE-optimal 4-bit step of N(0,1) is about 0.34
  EXPECT_LT(scale[0], 0.5f);
}

TEST(FakeQuant, SoftGradientMatchesFiniteDifference) {
  for (double k : {1.0, 2.0, 5.0, 20.0}) {
    const FakeQuantConfig c = ActivationConfig(4);
    const std::vector<float> scale = {0.25f}, zero = {3.0f};
    std::vector<float> x = RandomVector(200, -1.5f, 3.8f, 5);
    for (float& v : x) {  // keep away from cell edges (kinks of soft) and the clip points
      const double t = v / 0.25 + 3.0, fr = t - std::floor(t);
      if (fr < 0.05 || fr > 0.95) v = float((std::floor(t) + 0.3 - 3.0) * 0.25);
    }
    const std::vector<float> dy = RandomVector(200, -1.0f, 1.0f, 6);
    std::vector<float> dx(200);
    SoftFakeQuantBackward(x.data(), {200}, c, scale, zero, k, dy.data(), dx.data());
    for (int i = 0; i < 200; ++i) {
      const float h = 1e-3f * 0.25f;
      float xp = x[i] + h, xm = x[i] - h, yp, ym;
      SoftFakeQuantForward(&xp, {1}, c, scale, zero, k, &yp);
      SoftFakeQuantForward(&xm, {1}, c, scale, zero, k, &ym);
      const double fd = (double(yp) - ym) / (double(xp) - xm) * dy[i];
      EXPECT_NEAR(dx[i], fd, 2e-3 * (1 + std::abs(fd)) * (k > 10 ? 5 : 1))
          << "k=" << k << " x=" << x[i];
    }
  }
}

TEST(FakeQuant, SoftIsContinuousAndTendsToRounding) {
  const FakeQuantConfig c = WeightConfig(8, 0);
  const std::vector<float> scale = {0.01f}, zero = {0.0f};
  // At cell edges soft(t) = t for every k (continuity of the staircase).
  for (double k : {0.5, 3.0, 40.0}) {
    for (int code : {-127, -5, 0, 1, 126, 127}) {
      float x = code * 0.01f, y;
      SoftFakeQuantForward(&x, {1}, c, scale, zero, k, &y);
      EXPECT_NEAR(y, x, 1e-6) << code;
    }
  }
  // Large k: equal to the hard forward away from rounding thresholds.
  std::vector<float> x = RandomVector(500, -1.5f, 1.5f, 8);
  std::vector<float> soft(500), hard(500);
  SoftFakeQuantForward(x.data(), {1, 500}, c, scale, zero, 400.0, soft.data());
  FakeQuantForward(x.data(), {1, 500}, c, scale, zero, hard.data());
  for (int i = 0; i < 500; ++i) {
    const double fr = x[i] / 0.01 - std::floor(x[i] / 0.01);
    if (std::abs(fr - 0.5) > 0.05) {
      EXPECT_NEAR(soft[i], hard[i], 1e-6) << x[i];
    }
  }
  // Clipped values have no gradient.
  float xc = 5.0f, dy = 1.0f, dx = 7.0f;
  SoftFakeQuantBackward(&xc, {1}, c, scale, zero, 3.0, &dy, &dx);
  EXPECT_EQ(dx, 0.0f);
}

TEST(FakeQuant, SoftScheduleEndsHardExactly) {
  SoftSchedule sched;
  sched.k_start = 2;
  sched.k_end = 50;
  sched.anneal_steps = 100;
  EXPECT_DOUBLE_EQ(sched.Temperature(0), 2.0);
  EXPECT_NEAR(sched.Temperature(50), 10.0, 1e-9);  // geometric midpoint
  EXPECT_LT(sched.Temperature(99), 50.0);
  EXPECT_GT(sched.Temperature(99), sched.Temperature(98));
  EXPECT_TRUE(sched.Hard(100));
  EXPECT_TRUE(std::isinf(sched.Temperature(100)));
  // At the hard end the soft forward is the runtime fake quantization, bit for bit (ties too),
  // and the backward is the STE.
  const FakeQuantConfig c = ActivationConfig(8);
  const std::vector<float> scale = {0.1f}, zero = {20.0f};
  std::vector<float> x = RandomVector(300, -3.0f, 25.0f, 9);
  for (int k = -25; k < 240; ++k) x.push_back((k + 0.5f) * 0.1f);
  const std::vector<int64_t> shape = {static_cast<int64_t>(x.size())};
  std::vector<float> y(x.size()), dy(x.size(), 1.0f), dx(x.size()), dx_ste(x.size());
  SoftFakeQuantForward(x.data(), shape, c, scale, zero, sched.Temperature(100), y.data());
  const std::vector<float> ref = RuntimeQdq<uint8_t>(x, shape, c, scale, zero);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(BitEqual(y[i], ref[i])) << x[i];
  SoftFakeQuantBackward(x.data(), shape, c, scale, zero, sched.Temperature(100), dy.data(),
                        dx.data());
  FakeQuantBackwardSte(x.data(), shape, c, scale, zero, dy.data(), dx_ste.data());
  EXPECT_EQ(dx, dx_ste);
}

}  // namespace
}  // namespace qforge::train
