// Tests of the recurrent-cell math (qforge/kernels/rnn_math.h): the AVX2 sigmoid / tanh against
// double-precision values over dense sweeps, and the fused LSTM / GRU updates against the
// scalar references (within the bounds the header states).
#include "qforge/kernels/rnn_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace qforge::kernels {
namespace {

bool HaveAvx2() { return IsaSupported(Isa::kAvx2); }

// Every 1999th float bit pattern in [-lim, lim] (both signs, about 1.1 million values) and the
// edges.
std::vector<float> Sweep(float lim) {
  std::vector<float> v;
  for (uint32_t bits = 0; bits < 0x7f800000u; bits += 1999) {
    float f;
    std::memcpy(&f, &bits, 4);
    if (f > lim) break;
    v.push_back(f);
    v.push_back(-f);
  }
  for (float f : {lim, -lim, 0.0f, 1e-30f, -1e-30f}) v.push_back(f);
  return v;
}

TEST(RnnMath, SigmoidWithinBound) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2";
  const std::vector<float> x = Sweep(100.0f);
  std::vector<float> y(x.size());
  SigmoidF32(x.data(), y.data(), static_cast<int64_t>(x.size()), Isa::kAvx2);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])));
    worst = std::max(worst, std::fabs(y[i] - ref));
    ASSERT_GE(y[i], 0.0f) << x[i];
    ASSERT_LE(y[i], 1.0f) << x[i];
  }
  EXPECT_LE(worst, 2e-7);
}

TEST(RnnMath, TanhWithinBound) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2";
  const std::vector<float> x = Sweep(100.0f);
  std::vector<float> y(x.size());
  TanhF32(x.data(), y.data(), static_cast<int64_t>(x.size()), Isa::kAvx2);
  double worst = 0, worst_rel_small = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = std::tanh(static_cast<double>(x[i]));
    worst = std::max(worst, std::fabs(y[i] - ref));
    if (std::fabs(x[i]) < 0.5f && x[i] != 0)
      worst_rel_small = std::max(worst_rel_small, std::fabs(y[i] - ref) / std::fabs(ref));
    ASSERT_LE(std::fabs(y[i]), 1.0f) << x[i];
    ASSERT_EQ(std::signbit(y[i]), std::signbit(x[i])) << x[i];
  }
  EXPECT_LE(worst, 4e-7);
  EXPECT_LE(worst_rel_small, 1e-6);  // no cancellation near 0
}

// Lengths around the vector width: the masked tails compute what the full vectors do.
TEST(RnnMath, FusedCellsMatchReference) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-6, 6), u(0, 1);
  for (int64_t n : {1, 7, 8, 9, 16, 23, 128}) {
    SCOPED_TRACE(n);
    std::vector<float> g(4 * n), c(n), h(n), z(n), pre(n);
    for (float& v : g) v = d(rng);
    for (float& v : c) v = d(rng);
    for (float& v : h) v = d(rng) / 6;
    for (float& v : z) v = u(rng);
    for (float& v : pre) v = d(rng);
    std::vector<float> c_ref = c, h_ref(n), c_fast = c, h_fast(n);
    LstmCellF32(n, g.data(), c_ref.data(), h_ref.data(), Isa::kScalar);
    LstmCellF32(n, g.data(), c_fast.data(), h_fast.data(), Isa::kAvx2);
    for (int64_t j = 0; j < n; ++j) {
      EXPECT_NEAR(c_fast[j], c_ref[j], 1e-6f * (1 + std::fabs(c_ref[j]))) << j;
      EXPECT_NEAR(h_fast[j], h_ref[j], 1e-6f) << j;
    }
    std::vector<float> gr_ref = h, gr_fast = h;
    GruOutputF32(n, z.data(), pre.data(), gr_ref.data(), Isa::kScalar);
    GruOutputF32(n, z.data(), pre.data(), gr_fast.data(), Isa::kAvx2);
    for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(gr_fast[j], gr_ref[j], 1e-6f) << j;
    // In place, as the runtime calls them.
    std::vector<float> s(g.begin(), g.begin() + n), s_ref(n), t_ref(n);
    for (int64_t j = 0; j < n; ++j) {
      s_ref[j] = 1.0f / (1.0f + std::exp(-s[j]));
      t_ref[j] = std::tanh(s[j]);
    }
    std::vector<float> t = s;
    SigmoidF32(s.data(), s.data(), n, Isa::kAvx2);
    TanhF32(t.data(), t.data(), n, Isa::kAvx2);
    for (int64_t j = 0; j < n; ++j) {
      EXPECT_NEAR(s[j], s_ref[j], 3e-7f);
      EXPECT_NEAR(t[j], t_ref[j], 5e-7f);
    }
  }
}

}  // namespace
}  // namespace qforge::kernels
