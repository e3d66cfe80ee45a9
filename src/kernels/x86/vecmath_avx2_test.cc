// Tests of the AVX2 fp32 math (vecmath_avx2.h) against std::erf / std::exp in double over dense
// sweeps of float bit patterns, and of LayerNormF32 against LayerNormRef.
#include "kernels/x86/vecmath_avx2.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "qforge/kernels/isa.h"
#include "qforge/kernels/norm.h"

namespace qforge::kernels::detail {
namespace {

// Every float whose bit pattern is a multiple of `stride` apart, from lo up to hi (both signs
// when lo < 0), plus the edge values.
std::vector<float> Sweep(float lo, float hi, uint32_t stride) {
  std::vector<float> v = {0.0f, -0.0f, lo, hi, 1e-30f, -1e-30f, 4.0f, -4.0f};
  for (float sign : {1.0f, -1.0f}) {
    const float top = sign > 0 ? hi : -lo;
    if (top <= 0) continue;
    uint32_t bits_top;
    std::memcpy(&bits_top, &top, 4);
    for (uint32_t b = 1; b <= bits_top; b += stride) {
      float f;
      std::memcpy(&f, &b, 4);
      v.push_back(sign * f);
    }
  }
  return v;
}

TEST(VecMathAvx2, ErfDenseSweepWithinStatedBound) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::vector<float> x = Sweep(-10.0f, 10.0f, 509);
  std::vector<float> y(x.size());
  ErfF32__avx2(x.data(), y.data(), static_cast<int64_t>(x.size()));
  double max_abs = 0, max_rel = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::erf(static_cast<double>(x[i]));
    const double err = std::fabs(y[i] - want);
    max_abs = std::max(max_abs, err);
    if (std::fabs(x[i]) >= 1e-35f) max_rel = std::max(max_rel, err / std::fabs(want));
    ASSERT_LE(err, 5e-7) << "x=" << x[i];
  }
  EXPECT_LE(max_rel, 5e-7);
  EXPECT_GT(max_abs, 0.0);  // it is an approximation: the sweep must see some error
  // Special values.
  const float sp[4] = {INFINITY, -INFINITY, NAN, 100.0f};
  float out[4];
  ErfF32__avx2(sp, out, 4);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -1.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], 1.0f);
}

TEST(VecMathAvx2, GeluMatchesFormula) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::vector<float> x = Sweep(-12.0f, 12.0f, 2039);
  std::vector<float> y(x.size());
  GeluF32__avx2(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    ASSERT_NEAR(y[i], want, 2.5e-7 * std::fabs(v) + 1.2e-7 * std::fabs(want) + 1e-37)
        << "x=" << x[i];
  }
}

TEST(VecMathAvx2, ExpDenseSweepWithinStatedBound) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::vector<float> x = Sweep(-87.0f, 88.0f, 509);
  std::vector<float> y(x.size());
  ExpF32__avx2(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = std::exp(static_cast<double>(x[i]));
    ASSERT_LE(std::fabs(y[i] - want), 3e-7 * want) << "x=" << x[i];
  }
  const float sp[6] = {-INFINITY, -1000.0f, NAN, 88.7f, 88.8f, INFINITY};
  float out[6];
  ExpF32__avx2(sp, out, 6);
  EXPECT_LE(out[0], 1.5e-45f);
  EXPECT_LE(out[1], 1.5e-45f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_NEAR(out[3], std::exp(double{88.7f}), 1e-6 * std::exp(double{88.7f}));
  EXPECT_EQ(out[4], INFINITY);
  EXPECT_EQ(out[5], INFINITY);
}

TEST(VecMathAvx2, LayerNormMatchesReference) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-3.0f, 5.0f);
  for (int64_t cols : {1, 5, 8, 13, 64, 100}) {
    const int64_t rows = 37;
    std::vector<float> x(rows * cols), s(cols), b(cols);
    for (float& v : x) v = dist(rng);
    for (float& v : s) v = dist(rng);
    for (float& v : b) v = dist(rng);
    for (bool with_bias : {true, false}) {
      std::vector<float> y0(x.size()), y1(x.size()), m0(rows), m1(rows), i0(rows), i1(rows);
      const float* bias = with_bias ? b.data() : nullptr;
      LayerNormRef(rows, cols, x.data(), s.data(), bias, 1e-5f, y0.data(), m0.data(), i0.data(), 1);
      LayerNormF32(rows, cols, x.data(), s.data(), bias, 1e-5f, y1.data(), m1.data(), i1.data(), 2);
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_NEAR(y1[i], y0[i], 1e-5 * (1 + std::fabs(y0[i]))) << "cols=" << cols << " i=" << i;
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_NEAR(m1[r], m0[r], 1e-5 * (1 + std::fabs(m0[r])));
        ASSERT_NEAR(i1[r], i0[r], 1e-5 * i0[r]);
      }
    }
  }
}

}  // namespace
}  // namespace qforge::kernels::detail
