// Tests of ErrorStats against hand-computed values, degenerate inputs and batch merging.
#include "qforge/numerics/error_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace qforge::numerics {
namespace {

TEST(ErrorStats, HandComputed) {
  // e = [0.5, 0, -1, 0.5]; sum e = 0; sum e^2 = 1.5; sum r^2 = 30; sum a^2 = 30.5;
  // sum r*a = 1.5 + 4 + 6 + 18 = 29.5.
  const float ref[] = {1, 2, 3, 4};
  const float approx[] = {1.5f, 2, 2, 4.5f};
  ErrorStats s;
  s.Add(ref, approx, 4);
  EXPECT_EQ(s.count(), 4);
  EXPECT_DOUBLE_EQ(s.bias(), 0.0);
  EXPECT_DOUBLE_EQ(s.mse(), 0.375);
  EXPECT_DOUBLE_EQ(s.std(), std::sqrt(0.375));
  EXPECT_DOUBLE_EQ(s.sqnr_db(), 10 * std::log10(20.0));  // 13.0103 dB
  EXPECT_NEAR(s.sqnr_db(), 13.0103, 1e-4);
  EXPECT_DOUBLE_EQ(s.cosine(), 29.5 / std::sqrt(30.0 * 30.5));
  EXPECT_DOUBLE_EQ(s.max_abs_error(), 1.0);
  EXPECT_DOUBLE_EQ(s.signal_power(), 7.5);

  // With a bias: e = [1, 2, 3] -> bias 2, variance 2/3, mse 14/3.
  const float r2[] = {1, 1, 1};
  const float a2[] = {2, 3, 4};
  ErrorStats t;
  t.Add(r2, a2, 3);
  EXPECT_DOUBLE_EQ(t.bias(), 2.0);
  EXPECT_DOUBLE_EQ(t.variance(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(t.mse(), 14.0 / 3.0);
  EXPECT_DOUBLE_EQ(t.mse(), t.bias() * t.bias() + t.variance());
  EXPECT_DOUBLE_EQ(t.sqnr_db(), 10 * std::log10(3.0 / 14.0));
  EXPECT_DOUBLE_EQ(t.cosine(), 9.0 / std::sqrt(3.0 * 29.0));
  EXPECT_DOUBLE_EQ(t.max_abs_error(), 3.0);
  // Scalar Add gives the same.
  ErrorStats u;
  for (int i = 0; i < 3; ++i) u.Add(r2[i], a2[i]);
  EXPECT_DOUBLE_EQ(u.bias(), 2.0);
  EXPECT_DOUBLE_EQ(u.variance(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(u.mse(), 14.0 / 3.0);
  // Opposite vectors: cosine -1.
  ErrorStats v;
  v.Add(1, -1);
  v.Add(-2, 2);
  EXPECT_DOUBLE_EQ(v.cosine(), -1.0);
}

TEST(ErrorStats, DegenerateInputs) {
  ErrorStats empty;
  EXPECT_EQ(empty.count(), 0);
  EXPECT_EQ(empty.bias(), 0);
  EXPECT_EQ(empty.std(), 0);
  EXPECT_EQ(empty.mse(), 0);
  EXPECT_EQ(empty.sqnr_db(), INFINITY);
  EXPECT_EQ(empty.cosine(), 1);
  EXPECT_EQ(empty.max_abs_error(), 0);

  ErrorStats exact;
  const float x[] = {1, -2, 3};
  exact.Add(x, x, 3);
  EXPECT_EQ(exact.sqnr_db(), INFINITY);
  EXPECT_DOUBLE_EQ(exact.cosine(), 1.0);
  EXPECT_EQ(exact.mse(), 0);

  ErrorStats zeros;
  const float z[] = {0, 0, 0};
  zeros.Add(z, z, 3);
  EXPECT_EQ(zeros.sqnr_db(), INFINITY);
  EXPECT_EQ(zeros.cosine(), 1.0);

  ErrorStats zero_signal;
  const float ones[] = {1, 1, 1};
  zero_signal.Add(z, ones, 3);
  EXPECT_EQ(zero_signal.sqnr_db(), -INFINITY);
  EXPECT_EQ(zero_signal.cosine(), 0.0);
  EXPECT_EQ(zero_signal.bias(), 1.0);
  EXPECT_EQ(zero_signal.std(), 0.0);

  ErrorStats zero_approx;
  zero_approx.Add(ones, z, 3);
  EXPECT_EQ(zero_approx.cosine(), 0.0);
  EXPECT_DOUBLE_EQ(zero_approx.sqnr_db(), 0.0);

  ErrorStats with_nan;
  const float n[] = {1, NAN, 3};
  with_nan.Add(x, n, 3);
  with_nan.Add(1.0, 100.0);  // a later, larger error does not hide the NaN
  EXPECT_TRUE(std::isnan(with_nan.max_abs_error()));
  EXPECT_TRUE(std::isnan(with_nan.mse()));
  EXPECT_TRUE(std::isnan(with_nan.sqnr_db()));
  EXPECT_TRUE(std::isnan(with_nan.cosine()));
}

TEST(ErrorStats, StdIsAccurateUnderLargeBias) {
  // e = 1e9 +- 1: the naive E[e^2] - E[e]^2 in double loses everything (ulp(1e18) = 128).
  ErrorStats s, batched;
  std::vector<float> r(1000, 0.0f), a(1000);
  for (int i = 0; i < 1000; ++i) {
    s.Add(0.0, 1e9 + (i % 2 ? 1.0 : -1.0));
    a[i] = 1e6f + (i % 2 ? 1.0f : -1.0f);  // exact in float
  }
  EXPECT_DOUBLE_EQ(s.bias(), 1e9);
  EXPECT_NEAR(s.std(), 1.0, 1e-6);
  for (int b = 0; b < 1000; b += 100) batched.Add(r.data() + b, a.data() + b, 100);
  EXPECT_DOUBLE_EQ(batched.bias(), 1e6);
  EXPECT_NEAR(batched.std(), 1.0, 1e-9);
}

TEST(ErrorStats, MergeEqualsOneBigAdd) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(3, 2), noise(0.1f, 0.05f);
  const int n = 10007;
  std::vector<float> r(n), a(n);
  for (int i = 0; i < n; ++i) {
    r[i] = nd(rng);
    a[i] = r[i] + noise(rng);
  }
  ErrorStats all;
  all.Add(r.data(), a.data(), n);
  ErrorStats merged, part;
  int begin = 0;
  for (int len : {1, 0, 17, 1000, 3000, 5989}) {
    ErrorStats b;
    b.Add(r.data() + begin, a.data() + begin, len);
    (len % 2 ? merged : part).Merge(b);
    begin += len;
  }
  ErrorStats tail;
  for (int i = begin; i < n; ++i) tail.Add(r[i], a[i]);  // scalar path
  merged.Merge(part);
  merged.Merge(tail);
  merged.Merge(ErrorStats{});
  EXPECT_EQ(merged.count(), n);
  EXPECT_NEAR(merged.bias(), all.bias(), 1e-12);
  EXPECT_NEAR(merged.std(), all.std(), 1e-12);
  EXPECT_NEAR(merged.mse(), all.mse(), 1e-12);
  EXPECT_NEAR(merged.sqnr_db(), all.sqnr_db(), 1e-9);
  EXPECT_NEAR(merged.cosine(), all.cosine(), 1e-12);
  EXPECT_EQ(merged.max_abs_error(), all.max_abs_error());
  // The noise is N(0.1, 0.05): the statistics land where they should.
  EXPECT_NEAR(all.bias(), 0.1, 0.003);
  EXPECT_NEAR(all.std(), 0.05, 0.003);
  const ErrorSummary sum = all.Summary();
  EXPECT_EQ(sum.count, n);
  EXPECT_EQ(sum.sqnr_db, all.sqnr_db());
}

}  // namespace
}  // namespace qforge::numerics
