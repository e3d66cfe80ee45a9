// Tests of affine quantization: parameter choice, ONNX QuantizeLinear rounding, granularities.
#include "qforge/numerics/quant_params.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace qforge::numerics {
namespace {

TEST(ChooseQuantParams, AsymmetricHandComputed) {
  // uint8 [-1, 3]: s = 4/255, z = 0 - round(-1 / s) = round(63.75) = 64.
  QuantParams p = ChooseQuantParams(-1.0f, 3.0f, kUInt8);
  EXPECT_EQ(p.scale, float(4.0 / 255.0));
  EXPECT_EQ(p.zero_point, 64);
  // int8 same range: z = -128 + 64 = -64.
  p = ChooseQuantParams(-1.0f, 3.0f, kInt8);
  EXPECT_EQ(p.scale, float(4.0 / 255.0));
  EXPECT_EQ(p.zero_point, -64);
  // All-positive range is extended down to 0: z = qmin.
  p = ChooseQuantParams(2.0f, 10.0f, kInt8);
  EXPECT_EQ(p.scale, float(10.0 / 255.0));
  EXPECT_EQ(p.zero_point, -128);
  // All-negative range is extended up to 0: z = qmax.
  p = ChooseQuantParams(-6.0f, -1.0f, kUInt8);
  EXPECT_EQ(p.scale, float(6.0 / 255.0));
  EXPECT_EQ(p.zero_point, 255);
  // lo > hi is accepted (same range).
  EXPECT_EQ(ChooseQuantParams(3.0f, -1.0f, kUInt8), ChooseQuantParams(-1.0f, 3.0f, kUInt8));
  // min == max != 0 is a real range [0, 5].
  p = ChooseQuantParams(5.0f, 5.0f, kUInt8);
  EXPECT_EQ(p.scale, float(5.0 / 255.0));
  EXPECT_EQ(p.zero_point, 0);
  // int4 [-1, 1]: s = float(2/15) = 0.13333334 (rounded up), so -1 / s = -7.4999997 (not the
  // tie -7.5) rounds to -7 and z = -8 + 7 = -1: z is computed from the float scale.
  p = ChooseQuantParams(-1.0f, 1.0f, kInt4);
  EXPECT_EQ(p.scale, float(2.0 / 15.0));
  EXPECT_EQ(p.zero_point, -1);
  // An exact tie: int4 [-1, 3] gives s = 4/15 and -1/s = -3.75 -> z = -8 + 4 = -4; int2
  // [-1, 2] gives s = 1, -1/s = -1 -> z = -2 + 1 = -1.
  EXPECT_EQ(ChooseQuantParams(-1.0f, 3.0f, kInt4).zero_point, -4);
  EXPECT_EQ(ChooseQuantParams(-1.0f, 2.0f, kInt2), (QuantParams{1.0f, -1}));
  // uint2 ({2, false}: 0..3) on [-1.25, 2.5]: s = 1.25, -min/s = 1 -> z = 1.
  EXPECT_EQ(ChooseQuantParams(-1.25f, 2.5f, IntFormat{2, false}), (QuantParams{1.25f, 1}));
  // A true tie in the zero point: int4 [-0.625, 3.125]: s = 0.25, min/s = -2.5 -> rounds to
  // even -2, z = -8 + 2 = -6 (half away from zero would give -5).
  EXPECT_EQ(ChooseQuantParams(-0.625f, 3.125f, kInt4), (QuantParams{0.25f, -6}));
}

TEST(ChooseQuantParams, SymmetricHandComputed) {
  QuantParams p = ChooseQuantParams(-3.0f, 5.0f, kInt8, {.symmetric = true});
  EXPECT_EQ(p.scale, float(5.0 / 127.5));
  EXPECT_EQ(p.zero_point, 0);
  p = ChooseQuantParams(-3.0f, 5.0f, kInt8, {.symmetric = true, .restricted_range = true});
  EXPECT_EQ(p.scale, float(5.0 / 127.0));
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(QuantizeValue(5.0f, p, QuantMin(kInt8, true), 127), 127);
  EXPECT_EQ(QuantizeValue(-5.0f, p, QuantMin(kInt8, true), 127), -127);
  EXPECT_EQ(QuantizeValue(-6.0f, p, QuantMin(kInt8, true), 127), -127);  // restricted clamp
  EXPECT_EQ(QuantizeValue(-6.0f, p, kInt8), -128);                       // full clamp
  p = ChooseQuantParams(-3.0f, 5.0f, kUInt8, {.symmetric = true});
  EXPECT_EQ(p.zero_point, 128);
  EXPECT_EQ(p.scale, float(5.0 / 127.5));
  p = ChooseQuantParams(-3.0f, 5.0f, kUInt8, {.symmetric = true, .restricted_range = true});
  EXPECT_EQ(p.zero_point, 128);
  EXPECT_EQ(p.scale, float(5.0 / 127.0));
  EXPECT_EQ(QuantMin(kUInt8, true), 1);
  p = ChooseQuantParams(-1.0f, 0.5f, kInt4, {.symmetric = true, .restricted_range = true});
  EXPECT_EQ(p.scale, float(1.0 / 7.0));
}

TEST(ChooseQuantParams, ZeroWidthAndDegenerateRanges) {
  EXPECT_EQ(ChooseQuantParams(0.0f, 0.0f, kInt8), (QuantParams{1.0f, 0}));
  EXPECT_EQ(ChooseQuantParams(0.0f, -0.0f, kUInt8), (QuantParams{1.0f, 0}));
  EXPECT_EQ(ChooseQuantParams(0.0f, 0.0f, kInt8, {.symmetric = true}), (QuantParams{1.0f, 0}));
  EXPECT_EQ(ChooseQuantParams(0.0f, 0.0f, kUInt8, {.symmetric = true}), (QuantParams{1.0f, 128}));
  // A range too narrow for a normal float scale gets kMinScale.
  QuantParams p = ChooseQuantParams(0.0f, 1e-42f, kUInt8);
  EXPECT_EQ(p.scale, kMinScale);
  EXPECT_EQ(p.zero_point, 0);
  // Huge finite ranges do not overflow.
  p = ChooseQuantParams(-3e38f, 3e38f, kInt8);
  EXPECT_TRUE(std::isfinite(p.scale));
  EXPECT_EQ(QuantizeValue(0.0f, p, kInt8), p.zero_point);
}

TEST(ChooseQuantParams, NonFiniteOrBadFormatThrows) {
  EXPECT_THROW(ChooseQuantParams(NAN, 1.0f, kInt8), NumericsError);
  EXPECT_THROW(ChooseQuantParams(0.0f, INFINITY, kInt8), NumericsError);
  EXPECT_THROW(ChooseQuantParams(-INFINITY, 0.0f, kInt8, {.symmetric = true}), NumericsError);
  EXPECT_THROW(ChooseQuantParams(0.0f, 1.0f, IntFormat{40, true}), NumericsError);
}

TEST(ChooseQuantParams, ZeroIsExactAndRangeIsCoveredForRandomRanges) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mag(-8, 8);
  const IntFormat formats[] = {kInt2, kInt4, kInt8, kInt16, kUInt4, kUInt8, kUInt16, {3, false}};
  for (int t = 0; t < 3000; ++t) {
    const float lo = -std::exp2(mag(rng)) * (t % 5 == 0 ? 0.0f : 1.0f);
    const float hi = std::exp2(mag(rng)) * (t % 7 == 0 ? 0.0f : 1.0f);
    for (const IntFormat& f : formats) {
      for (int mode = 0; mode < 3; ++mode) {
        const RangeOptions opt{.symmetric = mode > 0, .restricted_range = mode == 2};
        const QuantParams p = ChooseQuantParams(lo, hi, f, opt);
        ASSERT_NO_THROW(CheckQuantParams(p, f));
        ASSERT_EQ(QuantizeValue(0.0f, p, f), p.zero_point);
        ASSERT_EQ(DequantizeValue(p.zero_point, p), 0.0f);
        // Every value of the range is represented within one step (half a step of rounding
        // plus at most half a step lost to rounding z).
        const int32_t qmin = QuantMin(f, opt.restricted_range);
        for (float x : {lo, hi, 0.5f * lo, 0.5f * hi}) {
          const float back = DequantizeValue(QuantizeValue(x, p, qmin, f.qmax()), p);
          ASSERT_LE(std::fabs(back - x), p.scale * 1.0001f)
              << f.name() << " mode " << mode << " [" << lo << "," << hi << "] x=" << x;
        }
      }
    }
  }
}

TEST(QuantizeValue, MatchesOnnxFormulaTiesAndSaturation) {
  const QuantParams p{0.5f, 3};
  EXPECT_EQ(QuantizeValue(0.25f, p, kInt8), 3);   // 0.5 -> 0
  EXPECT_EQ(QuantizeValue(0.75f, p, kInt8), 5);   // 1.5 -> 2
  EXPECT_EQ(QuantizeValue(1.25f, p, kInt8), 5);   // 2.5 -> 2
  EXPECT_EQ(QuantizeValue(-0.25f, p, kInt8), 3);  // -0.5 -> 0
  EXPECT_EQ(QuantizeValue(-0.75f, p, kInt8), 1);  // -1.5 -> -2
  EXPECT_EQ(QuantizeValue(62.0f, p, kInt8), 127);
  EXPECT_EQ(QuantizeValue(62.5f, p, kInt8), 127);  // 125 + 3 = 128 -> saturates
  EXPECT_EQ(QuantizeValue(-65.5f, p, kInt8), -128);
  EXPECT_EQ(QuantizeValue(-1e30f, p, kInt8), -128);
  EXPECT_EQ(QuantizeValue(INFINITY, p, kInt8), 127);
  EXPECT_EQ(QuantizeValue(-INFINITY, p, kUInt8), 0);
  EXPECT_EQ(QuantizeValue(NAN, p, kInt8), 3);
  EXPECT_EQ(QuantizeValue(1e30f, {1e-30f, 0}, kInt32), 2147483647);
  EXPECT_EQ(DequantizeValue(-128, {0.5f, 3}), -65.5f);
  EXPECT_EQ(DequantizeValue(2147483647, {1.0f, -2147483647 - 1}), 4294967295.0f);
  // The same as the ONNX formula written with the hardware's rounding (nearbyint), over many
  // values and scales, including x / s computed as a float division.
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-300, 300), sc(-12, 2);
  for (int t = 0; t < 200000; ++t) {
    const QuantParams q{std::exp2(sc(rng)), int32_t(t % 11) - 5};
    const float x = (t % 4 == 0) ? q.scale * (std::floor(u(rng)) + 0.5f) : u(rng) * q.scale;
    const float expect =
        std::clamp(std::nearbyint(x / q.scale) + float(q.zero_point), -128.0f, 127.0f);
    ASSERT_EQ(QuantizeValue(x, q, kInt8), int32_t(expect)) << x << " " << q.scale;
  }
  // A scale where x * (1/s) rounds a different way than x / s (found by search): the
  // implementation must follow the division.
  const QuantParams odd{0.3f, 0};
  int found = 0;
  for (int k = -400; k <= 400 && !found; ++k) {
    for (float x = (k + 0.5f) * odd.scale, n = 0; n < 8; ++n, x = std::nextafter(x, 1e9f)) {
      if (std::nearbyint(x / odd.scale) != std::nearbyint(x * (1.0f / odd.scale))) {
        EXPECT_EQ(QuantizeValue(x, odd, kInt16), int32_t(std::nearbyint(x / odd.scale)));
        ++found;
        break;
      }
    }
  }
  EXPECT_EQ(found, 1);
}

TEST(FakeQuantizeValue, IsDequantizeOfQuantize) {
  const QuantParams p{0.1f, -5};
  for (float x = -20; x < 20; x += 0.037f) {
    ASSERT_EQ(FakeQuantizeValue(x, p, kInt8), DequantizeValue(QuantizeValue(x, p, kInt8), p));
  }
  EXPECT_EQ(FakeQuantizeValue(-200.0f, {1.0f, 0}, kInt8, true), -127.0f);
  EXPECT_EQ(FakeQuantizeValue(-200.0f, {1.0f, 0}, kInt8), -128.0f);
}

// The vectorized run quantizer equals QuantizeValue everywhere: ties at every integer and
// half-integer of the range, saturation, NaN/Inf, huge and tiny values, random floats, for
// 8- and 16-bit formats and zero points at and beyond the ends.
TEST(QuantizeRun, MatchesQuantizeValueEverywhere) {
  std::vector<float> x;
  for (int k = -70000 * 2; k <= 70000 * 2; ++k) x.push_back(0.5f * static_cast<float>(k));
  for (float v : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max(),
                  std::numeric_limits<float>::lowest(), std::numeric_limits<float>::denorm_min(),
                  -0.0f, 8388607.5f, 4194303.5f, -4194304.5f, 12582912.0f})
    x.push_back(v);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1e6f, 1e6f);
  for (int i = 0; i < 200000; ++i) x.push_back(u(rng) * (i % 3 == 0 ? 1e-6f : 1.0f));
  struct Case {
    int32_t qmin, qmax, z;
    float s;
  };
  for (const Case c :
       {Case{-128, 127, 0, 1.0f}, Case{0, 255, 128, 0.5f}, Case{0, 255, 0, 3.0f},
        Case{-127, 127, -3, 0.1f}, Case{-32768, 32767, 100, 1.0f}, Case{0, 65535, 65535, 0.25f},
        Case{-8, 7, 7, 1.0f}, Case{-128, 127, 300, 1.0f}}) {
    const QuantParams p{c.s, c.z};
    std::vector<int32_t> fast(x.size());
    QuantizeRun<int32_t>(x.data(), static_cast<int64_t>(x.size()), p, c.qmin, c.qmax, fast.data());
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(fast[i], QuantizeValue(x[i], p, c.qmin, c.qmax))
          << "x=" << x[i] << " s=" << c.s << " z=" << c.z << " [" << c.qmin << ", " << c.qmax
          << "]";
  }
}

TEST(Granularity, ParamShapes) {
  const std::vector<int64_t> s{2, 3, 5};
  EXPECT_EQ(ParamShape(s, Granularity::PerTensor()), std::vector<int64_t>{});
  EXPECT_EQ(NumParams(s, Granularity::PerTensor()), 1);
  EXPECT_EQ(ParamShape(s, Granularity::PerChannel(1)), std::vector<int64_t>{3});
  EXPECT_EQ(ParamShape(s, Granularity::PerChannel(-1)), std::vector<int64_t>{5});
  EXPECT_EQ(ParamShape(s, Granularity::PerGroup(2, 2)), (std::vector<int64_t>{2, 3, 3}));
  EXPECT_EQ(ParamShape(s, Granularity::PerGroup(0, 2)), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(NumParams(s, Granularity::PerGroup(-2, 3)), 10);
  EXPECT_EQ(NumParams({}, Granularity::PerTensor()), 1);
  EXPECT_THROW(ParamShape(s, Granularity::PerChannel(3)), NumericsError);
  EXPECT_THROW(ParamShape(s, Granularity::PerChannel(-4)), NumericsError);
  EXPECT_THROW(ParamShape(s, Granularity::PerGroup(0, 0)), NumericsError);
  EXPECT_THROW(ParamShape({}, Granularity::PerChannel(0)), NumericsError);
  EXPECT_THROW(ParamShape({2, -1}, Granularity::PerTensor()), NumericsError);
}

// Slow reference: the parameter index of flat element i, from its coordinates.
int64_t ReferenceParamIndex(int64_t i, const std::vector<int64_t>& shape, const Granularity& g) {
  if (g.kind == Granularity::Kind::kPerTensor) return 0;
  const int rank = int(shape.size());
  const int axis = g.axis < 0 ? g.axis + rank : g.axis;
  std::vector<int64_t> c(rank);
  for (int d = rank - 1; d >= 0; --d) {
    c[d] = i % shape[d];
    i /= shape[d];
  }
  if (g.kind == Granularity::Kind::kPerChannel) return c[axis];
  const std::vector<int64_t> ps = ParamShape(shape, g);
  c[axis] /= g.group_size;
  int64_t p = 0;
  for (int d = 0; d < rank; ++d) p = p * ps[d] + c[d];
  return p;
}

TEST(Granularity, QuantizeDequantizeMatchScalarReferenceForEveryLayout) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0, 2);
  const std::vector<std::vector<int64_t>> shapes = {{}, {7}, {2, 3, 5}, {4, 1, 6}, {3, 0, 2}};
  for (const auto& shape : shapes) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> x(n);
    for (float& v : x) v = nd(rng);
    std::vector<Granularity> layouts = {Granularity::PerTensor()};
    for (int a = 0; a < int(shape.size()); ++a) {
      layouts.push_back(Granularity::PerChannel(a));
      layouts.push_back(Granularity::PerChannel(a - int(shape.size())));
      for (int k = 1; k <= 7; ++k) layouts.push_back(Granularity::PerGroup(a, k));
    }
    for (const Granularity& g : layouts) {
      for (const IntFormat f : {kInt8, kUInt8, kInt4}) {
        const std::vector<QuantParams> params = ChooseQuantParams(x.data(), shape, g, f);
        ASSERT_EQ(int64_t(params.size()), NumParams(shape, g));
        // Each parameter set is the one chosen from its own slice's min/max.
        std::vector<float> lo(params.size(), 0), hi(params.size(), 0);
        for (int64_t i = 0; i < n; ++i) {
          const int64_t p = ReferenceParamIndex(i, shape, g);
          lo[p] = std::min(lo[p], x[i]);
          hi[p] = std::max(hi[p], x[i]);
        }
        for (size_t p = 0; p < params.size(); ++p) {
          ASSERT_EQ(params[p], ChooseQuantParams(lo[p], hi[p], f));
        }
        std::vector<int8_t> q8(n);
        std::vector<uint8_t> qu(n);
        std::vector<int32_t> q32(n);
        std::vector<float> back(n);
        Quantize<int32_t>(x.data(), shape, g, params, f, q32.data());
        if (f.is_signed) {
          Quantize<int8_t>(x.data(), shape, g, params, f, q8.data());
          Dequantize<int8_t>(q8.data(), shape, g, params, back.data());
        } else {
          Quantize<uint8_t>(x.data(), shape, g, params, f, qu.data());
          Dequantize<uint8_t>(qu.data(), shape, g, params, back.data());
        }
        for (int64_t i = 0; i < n; ++i) {
          const QuantParams p = params[ReferenceParamIndex(i, shape, g)];
          const int32_t q = QuantizeValue(x[i], p, f);
          ASSERT_EQ(q32[i], q) << i;
          ASSERT_EQ(f.is_signed ? int32_t(q8[i]) : int32_t(qu[i]), q) << i;
          ASSERT_EQ(back[i], DequantizeValue(q, p)) << i;
          ASSERT_LE(std::fabs(back[i] - x[i]), p.scale * 1.0001f);
        }
      }
    }
  }
}

TEST(Granularity, ArrayFunctionsRejectBadInput) {
  const std::vector<int64_t> shape{2, 3};
  const float x[6] = {0, 1, 2, 3, 4, 5};
  int8_t q[6];
  float y[6];
  const std::vector<QuantParams> two(2, QuantParams{0.1f, 0});
  EXPECT_THROW(Quantize<int8_t>(x, shape, Granularity::PerChannel(1), two, kInt8, q),
               NumericsError);  // 3 channels, 2 params
  EXPECT_NO_THROW(Quantize<int8_t>(x, shape, Granularity::PerChannel(0), two, kInt8, q));
  EXPECT_THROW(Quantize<int8_t>(x, shape, Granularity::PerChannel(0), two, kUInt8, q),
               NumericsError);  // uint8 does not fit int8_t storage
  EXPECT_THROW(Quantize<int8_t>(x, shape, Granularity::PerChannel(0), two, kInt16, q),
               NumericsError);
  const std::vector<QuantParams> bad = {{0.0f, 0}, {1.0f, 0}};
  EXPECT_THROW(Quantize<int8_t>(x, shape, Granularity::PerChannel(0), bad, kInt8, q),
               NumericsError);
  EXPECT_THROW(Dequantize<int8_t>(q, shape, Granularity::PerChannel(0), bad, y), NumericsError);
  const std::vector<QuantParams> bad_zp = {{1.0f, 200}, {1.0f, 0}};
  EXPECT_THROW(Quantize<int8_t>(x, shape, Granularity::PerChannel(0), bad_zp, kInt8, q),
               NumericsError);
  const float nan_data[6] = {0, 1, NAN, 3, 4, 5};
  EXPECT_THROW(ChooseQuantParams(nan_data, shape, Granularity::PerTensor(), kInt8), NumericsError);
}

}  // namespace
}  // namespace qforge::numerics
