// Tests of integer format ranges, round-half-even and fixed-point Qm.n quantization.
#include "qforge/numerics/dtypes.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

namespace qforge::numerics {
namespace {

TEST(RoundHalfEven, TiesGoToEven) {
  EXPECT_EQ(RoundHalfEven(0.5f), 0.0f);
  EXPECT_EQ(RoundHalfEven(1.5f), 2.0f);
  EXPECT_EQ(RoundHalfEven(2.5f), 2.0f);
  EXPECT_EQ(RoundHalfEven(-0.5f), 0.0f);
  EXPECT_EQ(RoundHalfEven(-1.5f), -2.0f);
  EXPECT_EQ(RoundHalfEven(-2.5f), -2.0f);
  EXPECT_EQ(RoundHalfEven(2.4999998f), 2.0f);
  EXPECT_EQ(RoundHalfEven(2.5000002f), 3.0f);
  EXPECT_EQ(RoundHalfEven(8388607.5f), 8388608.0f);
  EXPECT_EQ(RoundHalfEven(16777216.0f), 16777216.0f);
  EXPECT_TRUE(std::isnan(RoundHalfEven(NAN)));
  EXPECT_EQ(RoundHalfEven(INFINITY), INFINITY);
  EXPECT_EQ(RoundHalfEven(4503599627370495.5), 4503599627370496.0);
  EXPECT_EQ(RoundHalfEven(-3.5), -4.0);
  EXPECT_TRUE(std::signbit(RoundHalfEven(-0.3f)));
  EXPECT_TRUE(std::signbit(RoundHalfEven(-0.5)));
  // Agrees with the hardware's round-to-nearest-even (nearbyint in the default FE_TONEAREST
  // mode) on ~4M float bit patterns spread over every magnitude and on every double tie below.
  for (uint64_t u = 0; u < 0x100000000ull; u += 1021) {
    const float x = std::bit_cast<float>(uint32_t(u));
    if (std::isnan(x)) continue;
    ASSERT_EQ(std::bit_cast<uint32_t>(RoundHalfEven(x)), std::bit_cast<uint32_t>(std::nearbyint(x)))
        << x;
  }
  for (int i = -5000; i <= 5000; ++i) {
    ASSERT_EQ(RoundHalfEven(i + 0.5), std::nearbyint(i + 0.5)) << i;
    ASSERT_EQ(RoundHalfEven(i + 0.5f), std::nearbyint(i + 0.5f)) << i;
  }
  for (int i = -100000; i <= 100000; ++i) {
    const float x = i * 0.25f + 0.01f * (i % 3);
    ASSERT_EQ(RoundHalfEven(x), std::nearbyint(x)) << x;
  }
}

TEST(IntFormat, Ranges) {
  EXPECT_EQ(kInt8.qmin(), -128);
  EXPECT_EQ(kInt8.qmax(), 127);
  EXPECT_EQ(kInt8.restricted_qmin(), -127);
  EXPECT_EQ(kUInt8.qmin(), 0);
  EXPECT_EQ(kUInt8.qmax(), 255);
  EXPECT_EQ(kUInt8.restricted_qmin(), 1);
  EXPECT_EQ(kInt4.qmin(), -8);
  EXPECT_EQ(kInt4.qmax(), 7);
  EXPECT_EQ(kInt2.qmin(), -2);
  EXPECT_EQ(kInt2.qmax(), 1);
  EXPECT_EQ(kInt16.qmin(), -32768);
  EXPECT_EQ(kUInt16.qmax(), 65535);
  EXPECT_EQ(kInt32.qmin(), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(kInt32.qmax(), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(kInt32.levels(), 4294967296.0);
  EXPECT_EQ(kInt8.name(), "int8");
  EXPECT_EQ(kUInt8.name(), "uint8");
  EXPECT_EQ((IntFormat{3, true}).name(), "int3");
  for (int b = 2; b <= 16; ++b) {
    const IntFormat s{b, true}, u{b, false};
    EXPECT_EQ(s.levels(), std::ldexp(1.0, b));
    EXPECT_EQ(u.levels(), std::ldexp(1.0, b));
    EXPECT_EQ(s.qmin() + s.qmax(), -1);
  }
}

TEST(IntFormat, InvalidFormatsThrow) {
  EXPECT_THROW((IntFormat{1, true}).qmin(), NumericsError);
  EXPECT_THROW((IntFormat{33, true}).qmax(), NumericsError);
  EXPECT_THROW((IntFormat{17, false}).qmax(), NumericsError);
  EXPECT_THROW((IntFormat{0, false}).Check(), NumericsError);
  EXPECT_NO_THROW((IntFormat{1, false}).Check());
}

TEST(QFormat, RangeAndResolution) {
  const QFormat q15{0, 15, true};
  EXPECT_EQ(q15.total_bits(), 16);
  EXPECT_EQ(q15.min(), -1.0);
  EXPECT_EQ(q15.max(), 1.0 - std::ldexp(1.0, -15));
  EXPECT_EQ(q15.resolution(), std::ldexp(1.0, -15));
  EXPECT_EQ(q15.name(), "Q0.15");
  const QFormat q34{3, 4, true};
  EXPECT_EQ(q34.total_bits(), 8);
  EXPECT_EQ(q34.min(), -8.0);
  EXPECT_EQ(q34.max(), 7.9375);
  const QFormat uq80{8, 0, false};
  EXPECT_EQ(uq80.name(), "UQ8.0");
  EXPECT_EQ(uq80.raw_max(), 255);
  EXPECT_EQ(uq80.min(), 0.0);
  const QFormat q31{0, 31, true};
  EXPECT_EQ(q31.raw_min(), -2147483648LL);
  EXPECT_THROW((QFormat{20, 20, true}).Check(), NumericsError);
  EXPECT_THROW((QFormat{-1, 4, true}).raw_max(), NumericsError);
}

TEST(QFormat, QuantizeRoundsHalfEvenAndSaturates) {
  const QFormat q{3, 4, true};  // step 1/16
  EXPECT_EQ(q.Quantize(1.0f), 16);
  EXPECT_EQ(q.Quantize(1.0f / 32), 0);  // half step: tie to even 0
  EXPECT_EQ(q.Quantize(3.0f / 32), 2);  // 1.5 steps: tie to even 2
  EXPECT_EQ(q.Quantize(-3.0f / 32), -2);
  EXPECT_EQ(q.Quantize(5.0f / 32), 2);  // 2.5 steps -> 2
  EXPECT_EQ(q.Quantize(7.9375f), 127);
  EXPECT_EQ(q.Quantize(7.96875f), 127);  // tie beyond max: saturates
  EXPECT_EQ(q.Quantize(100.0f), 127);
  EXPECT_EQ(q.Quantize(-8.0f), -128);
  EXPECT_EQ(q.Quantize(-100.0f), -128);
  EXPECT_EQ(q.Quantize(INFINITY), 127);
  EXPECT_EQ(q.Quantize(-INFINITY), -128);
  EXPECT_EQ(q.Quantize(NAN), 0);
  EXPECT_EQ(q.Dequantize(-128), -8.0);
  EXPECT_EQ(q.Round(0.1f), 0.125f);  // 1.6 steps -> 2
  const QFormat u{1, 7, false};
  EXPECT_EQ(u.Quantize(-0.3f), 0);
  EXPECT_EQ(u.Quantize(1.5f), 192);
  // Every code round-trips, and rounding error is at most half a step inside the range.
  for (int64_t raw = q.raw_min(); raw <= q.raw_max(); ++raw) {
    ASSERT_EQ(q.Quantize(float(q.Dequantize(raw))), raw);
  }
  for (float x = -8.0f; x < 7.9375f; x += 0.001f) {
    ASSERT_LE(std::fabs(q.Round(x) - x), q.resolution() / 2) << x;
  }
}

}  // namespace
}  // namespace qforge::numerics
