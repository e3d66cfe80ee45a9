// Tests of the fixed-point multiplier and Requantize: every int8 x int8 product, extremes, ties.
#include "qforge/numerics/requantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "qforge/numerics/dtypes.h"

namespace qforge::numerics {
namespace {

constexpr int32_t kI32Min = std::numeric_limits<int32_t>::min();
constexpr int32_t kI32Max = std::numeric_limits<int32_t>::max();

// The same rule written differently, in 128-bit integers: floor(p / 2^n + 1/2) computed as a
// floor division floor((2p + 2^n) / 2^(n+1)), then + zp and clamp.
int32_t WideReference(int32_t acc, FixedMultiplier m, int32_t zp, int32_t qmin, int32_t qmax) {
  const int n = 31 - m.shift;
  const __int128 p = static_cast<__int128>(acc) * m.mantissa;
  const __int128 num = 2 * p + (static_cast<__int128>(1) << n);
  const __int128 den = static_cast<__int128>(1) << (n + 1);
  __int128 q = num / den;  // truncates toward zero
  if (num % den != 0 && num < 0) q -= 1;
  q += zp;
  if (q < qmin) return qmin;
  if (q > qmax) return qmax;
  return static_cast<int32_t>(q);
}

// Checks Requantize against the wide reference (bit-exact) and against the double reference
// with the real multiplier within the documented bound.
void CheckOne(int32_t acc, double real_m, FixedMultiplier fm, int32_t zp, int32_t qmin,
              int32_t qmax) {
  const int32_t got = Requantize(acc, fm, zp, qmin, qmax);
  ASSERT_EQ(got, WideReference(acc, fm, zp, qmin, qmax))
      << "acc=" << acc << " M=" << real_m << " zp=" << zp;
  const int32_t ref = RequantizeReference(acc, real_m, zp, qmin, qmax);
  if (got != ref) {
    const double x = double(acc) * real_m;
    const double delta = std::fabs(double(acc)) * std::fabs(fm.ToDouble() - real_m);
    const double eps = std::ldexp(std::fabs(x), -52);
    ASSERT_LE(std::abs(int64_t{got} - ref), int64_t(std::floor(1 + delta + eps)))
        << "acc=" << acc << " M=" << real_m;
    // ... and only next to a rounding boundary.
    const double frac = x - std::floor(x);
    ASSERT_LE(std::fabs(frac - 0.5), delta + eps) << "acc=" << acc << " M=" << real_m;
  }
}

TEST(QuantizeMultiplier, Representation) {
  EXPECT_EQ(QuantizeMultiplier(1.0), (FixedMultiplier{1 << 30, 1}));
  EXPECT_EQ(QuantizeMultiplier(0.5), (FixedMultiplier{1 << 30, 0}));
  EXPECT_EQ(QuantizeMultiplier(0.75), (FixedMultiplier{3 << 29, 0}));
  EXPECT_EQ(QuantizeMultiplier(3.0), (FixedMultiplier{3 << 29, 2}));
  EXPECT_EQ(QuantizeMultiplier(0.0), (FixedMultiplier{0, 0}));
  EXPECT_EQ(QuantizeMultiplier(1.0 - std::ldexp(1.0, -33)), (FixedMultiplier{1 << 30, 1}));
  EXPECT_EQ(QuantizeMultiplier(std::ldexp(1.0, -32)), (FixedMultiplier{1 << 30, -31}));
  EXPECT_EQ(QuantizeMultiplier(std::ldexp(1.0, -33)), (FixedMultiplier{0, 0}));
  EXPECT_EQ(QuantizeMultiplier(1e-12), (FixedMultiplier{0, 0}));
  EXPECT_EQ(QuantizeMultiplier(std::ldexp(1.0, 31) - 1024), (FixedMultiplier{kI32Max - 1023, 31}));
  EXPECT_THROW(QuantizeMultiplier(std::ldexp(1.0, 31)), NumericsError);
  EXPECT_THROW(QuantizeMultiplier(std::ldexp(1.0, 31) - 0.25), NumericsError);  // rounds up
  EXPECT_THROW(QuantizeMultiplier(-0.5), NumericsError);
  EXPECT_THROW(QuantizeMultiplier(NAN), NumericsError);
  EXPECT_THROW(QuantizeMultiplier(INFINITY), NumericsError);
  EXPECT_THROW(MultiplierFromScales(0.1f, 0.0f, 0.2f), NumericsError);
  EXPECT_THROW(MultiplierFromScales(0.1f, 0.1f, NAN), NumericsError);
  EXPECT_EQ(MultiplierFromScales(0.5f, 0.25f, 0.125f), QuantizeMultiplier(1.0));
  // Relative error <= 2^-31 and validity over many magnitudes.
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> e(-32, 31);
  for (int t = 0; t < 100000; ++t) {
    const double m = std::exp2(e(rng));
    const FixedMultiplier fm = QuantizeMultiplier(m);
    ASSERT_TRUE(fm.valid()) << m;
    if (fm.mantissa != 0) {
      ASSERT_LE(std::fabs(fm.ToDouble() - m), std::ldexp(m, -31)) << m;
    } else {
      ASSERT_LT(m, std::ldexp(1.0, -32));
    }
  }
}

TEST(Requantize, TiesRoundHalfUp) {
  const FixedMultiplier half = QuantizeMultiplier(0.5);
  EXPECT_EQ(Requantize(3, half, 0, kI32Min, kI32Max), 2);    // 1.5 -> 2
  EXPECT_EQ(Requantize(-3, half, 0, kI32Min, kI32Max), -1);  // -1.5 -> -1
  EXPECT_EQ(Requantize(1, half, 0, kI32Min, kI32Max), 1);    // 0.5 -> 1
  EXPECT_EQ(Requantize(-1, half, 0, kI32Min, kI32Max), 0);   // -0.5 -> 0
  const FixedMultiplier quarter = QuantizeMultiplier(0.25);
  EXPECT_EQ(Requantize(2, quarter, 0, kI32Min, kI32Max), 1);
  EXPECT_EQ(Requantize(-2, quarter, 0, kI32Min, kI32Max), 0);
  EXPECT_EQ(Requantize(6, quarter, 0, kI32Min, kI32Max), 2);
  EXPECT_EQ(Requantize(-6, quarter, 0, kI32Min, kI32Max), -1);
  EXPECT_EQ(Requantize(-7, quarter, 0, kI32Min, kI32Max), -2);  // -1.75
  EXPECT_EQ(Requantize(5, quarter, 0, kI32Min, kI32Max), 1);    // 1.25
  EXPECT_EQ(Requantize(1, QuantizeMultiplier(std::ldexp(1.0, -32)), 0, kI32Min, kI32Max), 0);
  // INT32_MIN * 2^-32 = -0.5 exactly: a tie, rounds up to 0.
  EXPECT_EQ(Requantize(kI32Min, QuantizeMultiplier(std::ldexp(1.0, -32)), 0, kI32Min, kI32Max), 0);
  EXPECT_EQ(Requantize(kI32Min, QuantizeMultiplier(std::ldexp(1.0, -31)), 0, kI32Min, kI32Max), -1);
}

TEST(Requantize, ZeroPointAndSaturation) {
  const FixedMultiplier m = QuantizeMultiplier(0.01);
  EXPECT_EQ(Requantize(1000, m, 5, -128, 127), 15);
  EXPECT_EQ(Requantize(100000, m, 5, -128, 127), 127);
  EXPECT_EQ(Requantize(-100000, m, 5, -128, 127), -128);
  EXPECT_EQ(Requantize(-100000, m, 5, 0, 255), 0);
  EXPECT_EQ(Requantize(12300, m, 5, -128, 127), 127);  // 123 + 5 = 128 saturates
  EXPECT_EQ(Requantize(12200, m, 5, -128, 127), 127);
  EXPECT_EQ(Requantize(12100, m, 5, -128, 127), 126);
  // Multipliers > 1 saturate instead of wrapping, even for int32 output.
  const FixedMultiplier big = QuantizeMultiplier(1000.0);
  EXPECT_EQ(Requantize(kI32Max, big, 0, kI32Min, kI32Max), kI32Max);
  EXPECT_EQ(Requantize(kI32Min, big, 0, kI32Min, kI32Max), kI32Min);
  EXPECT_EQ(Requantize(kI32Max, QuantizeMultiplier(1.0), 10, kI32Min, kI32Max), kI32Max);
  EXPECT_EQ(Requantize(3, big, -1, kI32Min, kI32Max), 2999);
  // The zero multiplier maps everything to the zero point.
  EXPECT_EQ(Requantize(kI32Max, FixedMultiplier{}, 7, -128, 127), 7);
}

TEST(Requantize, EveryInt8PairMatchesWideReferenceAndDoubleBound) {
  const double multipliers[] = {std::ldexp(1.0, -32),
                                3.3e-10,
                                1.7e-7,
                                3.1e-5,
                                0.000734,
                                0.0123,
                                1.0 / 3.0,
                                0.5,
                                0.999999,
                                1.0,
                                1.0 + 3e-9,
                                1.5,
                                7.77,
                                1000.3,
                                12345.678,
                                std::ldexp(1.0, 30) + 7};
  std::mt19937 rng(17);
  std::uniform_int_distribution<int32_t> small_bias(-(1 << 16), 1 << 16);
  std::uniform_int_distribution<int32_t> any_bias(-(1 << 30), 1 << 30);
  struct Range {
    int32_t zp, qmin, qmax;
  };
  const Range ranges[] = {{0, -128, 127}, {-3, -128, 127}, {117, 0, 255}, {0, kI32Min, kI32Max}};
  int64_t checked = 0;
  for (double real_m : multipliers) {
    const FixedMultiplier fm = QuantizeMultiplier(real_m);
    ASSERT_TRUE(fm.valid());
    for (int a = -128; a <= 127; ++a) {
      for (int b = -128; b <= 127; ++b) {
        // Plain product, then the product plus a small and an arbitrary bias.
        const int32_t prod = a * b;
        const int32_t accs[] = {prod, prod + small_bias(rng), prod + any_bias(rng)};
        for (int32_t acc : accs) {
          for (const Range& r : ranges) {
            CheckOne(acc, real_m, fm, r.zp, r.qmin, r.qmax);
            if (testing::Test::HasFatalFailure()) return;
            ++checked;
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, int64_t{16} * 65536 * 3 * 4);
}

TEST(Requantize, ExtremeAccumulatorsAndMultipliers) {
  const int32_t accs[] = {kI32Min, kI32Min + 1, -65536, -3,          -1,     0,
                          1,       3,           65535,  kI32Max - 1, kI32Max};
  const double multipliers[] = {std::ldexp(1.0, -32),
                                std::ldexp(1.0, -31),
                                std::ldexp(1.5, -31),
                                std::ldexp(1.0, -20) * 0.7,
                                0.5,
                                1.0 - std::ldexp(1.0, -31),
                                1.0 - 1e-7,
                                1.0,
                                1.0 + 1e-7,
                                2.0,
                                3.7,
                                std::ldexp(1.0, 20),
                                std::ldexp(1.0, 31) - 1024};
  for (double real_m : multipliers) {
    const FixedMultiplier fm = QuantizeMultiplier(real_m);
    for (int32_t acc : accs) {
      for (int32_t zp : {0, -128, 255}) {
        CheckOne(acc, real_m, fm, zp, kI32Min, kI32Max);
        CheckOne(acc, real_m, fm, zp, -128, 127);
        CheckOne(acc, real_m, fm, zp, 0, 255);
        if (testing::Test::HasFatalFailure()) return;
      }
    }
  }
  // Random full-range accumulators and multipliers, unclamped.
  std::mt19937_64 rng(23);
  std::uniform_int_distribution<int32_t> acc_dist(kI32Min, kI32Max);
  std::uniform_real_distribution<double> e(-32, 30.9);
  for (int t = 0; t < 300000; ++t) {
    const double real_m = std::exp2(e(rng));
    CheckOne(acc_dist(rng), real_m, QuantizeMultiplier(real_m), 0, kI32Min, kI32Max);
    if (testing::Test::HasFatalFailure()) return;
  }
}

TEST(Requantize, DifferenceFromRealMultiplierIsRareAndAtMostOne) {
  // Typical conv/GEMM case: int8 x int8 sums of 64 products, M around 1e-3.
  std::mt19937 rng(29);
  std::uniform_int_distribution<int32_t> acc_dist(-64 * 16384, 64 * 16384);
  std::uniform_real_distribution<double> md(1e-4, 1e-2);
  int differ = 0;
  const int kTrials = 200000;
  for (int t = 0; t < kTrials; ++t) {
    const double m = md(rng);
    const int32_t acc = acc_dist(rng);
    const int32_t got = Requantize(acc, QuantizeMultiplier(m), 0, kI32Min, kI32Max);
    const int32_t ref = RequantizeReference(acc, m, 0, kI32Min, kI32Max);
    ASSERT_LE(std::abs(got - ref), 1);
    differ += got != ref;
  }
  // delta <= 2^20 * 1e-2 * 2^-31 ~ 5e-6: at most ~1e-5 of random cases can sit that close to
  // a tie.
  EXPECT_LE(differ, kTrials / 10000);
}

TEST(Requantize, SimdFriendlyFormulationsAreExact) {
  // docs/numerics.md, "SIMD note": AVX2 lacks a 64-bit arithmetic shift. (b) offset by 2^62 and
  // shift logically; (a) for n <= 32 a logical shift gives the right low 32 bits.
  std::mt19937_64 rng(31);
  std::uniform_int_distribution<int32_t> acc_dist(kI32Min, kI32Max);
  std::uniform_real_distribution<double> e(-32, 30.9);
  for (int t = 0; t < 200000; ++t) {
    const int32_t acc = t < 4 ? (t % 2 ? kI32Min : kI32Max) : acc_dist(rng);
    const FixedMultiplier m = QuantizeMultiplier(std::exp2(e(rng)));
    const int n = 31 - m.shift;
    if (n == 0) continue;
    const int64_t expect = MultiplyByFixed(acc, m);
    const int64_t p = int64_t{acc} * m.mantissa;
    const uint64_t u = uint64_t(p) + (uint64_t{1} << (n - 1)) + (uint64_t{1} << 62);
    ASSERT_EQ(int64_t((u >> n) - (uint64_t{1} << (62 - n))), expect) << acc << " n=" << n;
    if (n <= 32 && expect >= kI32Min && expect <= kI32Max) {
      const uint64_t v = uint64_t(p) + (uint64_t{1} << (n - 1));
      ASSERT_EQ(int32_t(uint32_t(v >> n)), int32_t(expect)) << acc << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace qforge::numerics
