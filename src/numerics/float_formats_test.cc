// Exhaustive tests of the fp16 / bf16 / fp8 conversions against independent ldexp formulas.
#include "qforge/numerics/float_formats.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace qforge::numerics {
namespace {

// Independent description of each format, written from the spec rather than the implementation.
struct Spec {
  const char* name;
  int ebits;
  int mbits;
  bool ieee;          // all-ones exponent = Inf/NaN; else (E4M3FN) only S.1111.111 is NaN
  double max_finite;  // from the spec tables
  float (*decode)(uint32_t);
  uint32_t (*encode)(float, bool saturate);
  bool has_saturate;  // fp8 conversions take ONNX's saturate flag; fp16/bf16 are plain IEEE
};

const Spec kSpecs[] = {
    {"fp16", 5, 10, true, 65504.0, [](uint32_t b) { return Fp16ToFloat(uint16_t(b)); },
     [](float x, bool) -> uint32_t { return FloatToFp16(x); }, false},
    {"bf16", 8, 7, true, 3.3895313892515355e38, [](uint32_t b) { return Bf16ToFloat(uint16_t(b)); },
     [](float x, bool) -> uint32_t { return FloatToBf16(x); }, false},
    {"e4m3fn", 4, 3, false, 448.0, [](uint32_t b) { return Fp8E4M3ToFloat(uint8_t(b)); },
     [](float x, bool s) -> uint32_t { return FloatToFp8E4M3(x, s); }, true},
    {"e5m2", 5, 2, true, 57344.0, [](uint32_t b) { return Fp8E5M2ToFloat(uint8_t(b)); },
     [](float x, bool s) -> uint32_t { return FloatToFp8E5M2(x, s); }, true},
};

int Bits(const Spec& s) { return 1 + s.ebits + s.mbits; }
uint32_t SignBit(const Spec& s) { return 1u << (s.ebits + s.mbits); }

enum class Kind { kFinite, kInf, kNaN };

Kind Classify(const Spec& s, uint32_t b) {
  const uint32_t mag = b & (SignBit(s) - 1);
  const uint32_t e = mag >> s.mbits, m = mag & ((1u << s.mbits) - 1);
  const uint32_t emax_field = (1u << s.ebits) - 1;
  if (s.ieee && e == emax_field) return m == 0 ? Kind::kInf : Kind::kNaN;
  if (!s.ieee && e == emax_field && m == (1u << s.mbits) - 1) return Kind::kNaN;
  return Kind::kFinite;
}

// (-1)^s * 2^(e-bias) * (1 + m/2^M) for normals, (-1)^s * 2^(1-bias) * m/2^M for subnormals.
double ReferenceDecode(const Spec& s, uint32_t b) {
  const int bias = (1 << (s.ebits - 1)) - 1;
  const uint32_t mag = b & (SignBit(s) - 1);
  const int e = int(mag >> s.mbits);
  const double m = double(mag & ((1u << s.mbits) - 1));
  const double v = e == 0 ? std::ldexp(m, 1 - bias - s.mbits)
                          : std::ldexp(1.0 + std::ldexp(m, -s.mbits), e - bias);
  return (b & SignBit(s)) ? -v : v;
}

TEST(FloatFormats, DecodeEveryPatternMatchesLdexpFormula) {
  for (const Spec& s : kSpecs) {
    SCOPED_TRACE(s.name);
    double max_seen = 0;
    for (uint32_t b = 0; b < (1u << Bits(s)); ++b) {
      const float v = s.decode(b);
      switch (Classify(s, b)) {
        case Kind::kNaN:
          ASSERT_TRUE(std::isnan(v)) << b;
          break;
        case Kind::kInf:
          ASSERT_TRUE(std::isinf(v)) << b;
          ASSERT_EQ(std::signbit(v), (b & SignBit(s)) != 0) << b;
          break;
        case Kind::kFinite:
          ASSERT_EQ(double(v), ReferenceDecode(s, b)) << b;
          ASSERT_EQ(std::signbit(v), (b & SignBit(s)) != 0) << b;  // includes -0
          max_seen = std::max(max_seen, double(v));
          break;
      }
    }
    EXPECT_EQ(max_seen, s.max_finite);
  }
}

TEST(FloatFormats, EveryPatternRoundTrips) {
  for (const Spec& s : kSpecs) {
    SCOPED_TRACE(s.name);
    for (bool sat : {false, true}) {
      for (uint32_t b = 0; b < (1u << Bits(s)); ++b) {
        const uint32_t back = s.encode(s.decode(b), sat);
        if (Classify(s, b) == Kind::kNaN) {
          ASSERT_EQ(Classify(s, back), Kind::kNaN) << b;
          ASSERT_EQ(back & SignBit(s), b & SignBit(s)) << b;
        } else if (Classify(s, b) == Kind::kInf && s.has_saturate && sat) {
          // Saturating fp8 conversion clamps Inf to the largest finite value.
          ASSERT_EQ(double(s.decode(back)), (b & SignBit(s)) ? -s.max_finite : s.max_finite);
        } else {
          ASSERT_EQ(back, b) << b;
        }
      }
    }
  }
}

// A slow, obviously-correct encoder: nearest finite value by binary search over the sorted
// table of all non-negative finite values; ties pick the even bit pattern. One virtual value
// one quantum above max stands for "rounded past max" (overflow).
class ReferenceEncoder {
 public:
  explicit ReferenceEncoder(const Spec& s) : s_(s) {
    for (uint32_t b = 0; b < SignBit(s); ++b) {
      if (Classify(s, b) == Kind::kFinite) entries_.push_back({ReferenceDecode(s, b), b});
    }
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry& a, const Entry& b) { return a.value < b.value; });
    const Entry top = entries_.back();
    const double quantum = top.value - entries_[entries_.size() - 2].value;
    entries_.push_back({top.value + quantum, top.bits + 1});  // virtual; bits parity continues
  }

  uint32_t Encode(float x, bool saturate) const {
    const uint32_t sign = std::signbit(x) ? SignBit(s_) : 0;
    const uint32_t max_bits = entries_[entries_.size() - 2].bits;
    const uint32_t mag_bits = (SignBit(s_) - 1);
    uint32_t overflow;
    if (saturate && s_.has_saturate) {
      overflow = max_bits;
    } else if (s_.ieee) {
      overflow = ((1u << s_.ebits) - 1) << s_.mbits;  // Inf
    } else {
      overflow = mag_bits;  // E4M3FN NaN
    }
    if (std::isinf(x)) return sign | overflow;
    const double a = std::fabs(double(x));
    if (a >= entries_.back().value) return sign | overflow;
    auto hi = std::upper_bound(entries_.begin(), entries_.end(), a,
                               [](double v, const Entry& e) { return v < e.value; });
    auto lo = hi - 1;
    const double dlo = a - lo->value, dhi = hi->value - a;
    const Entry& pick = dlo < dhi ? *lo : dhi < dlo ? *hi : ((lo->bits & 1) == 0 ? *lo : *hi);
    if (&pick == &entries_.back()) return sign | overflow;
    return sign | pick.bits;
  }

 private:
  struct Entry {
    double value;
    uint32_t bits;
  };
  const Spec& s_;
  std::vector<Entry> entries_;
};

TEST(FloatFormats, EncodeMatchesReferenceOnMidpointsAndNeighbours) {
  // For every adjacent pair of representable values (and the virtual one past max): the exact
  // midpoint, the fp32 values just below and just above it, and the pair's values themselves.
  for (const Spec& s : kSpecs) {
    SCOPED_TRACE(s.name);
    ReferenceEncoder ref(s);
    std::vector<double> values;
    for (uint32_t b = 0; b < SignBit(s); ++b) {
      if (Classify(s, b) == Kind::kFinite) values.push_back(ReferenceDecode(s, b));
    }
    std::sort(values.begin(), values.end());
    values.push_back(values.back() + (values.back() - values[values.size() - 2]));
    int ties_checked = 0;
    for (size_t i = 0; i + 1 < values.size(); ++i) {
      const float mid = float((values[i] + values[i + 1]) / 2);
      ASSERT_EQ(double(mid), (values[i] + values[i + 1]) / 2);  // midpoints are exact in fp32
      const float probes[] = {float(values[i]), mid, std::nextafter(mid, 0.0f),
                              std::nextafter(mid, INFINITY)};
      for (float p : probes) {
        for (float x : {p, -p}) {
          for (bool sat : {false, true}) {
            ASSERT_EQ(s.encode(x, sat), ref.Encode(x, sat)) << "x=" << x << " sat=" << sat;
          }
        }
      }
      ++ties_checked;
    }
    // One pair per non-negative finite value (the last pairs max with the virtual value).
    EXPECT_EQ(ties_checked, int(values.size()) - 1);
    EXPECT_GE(ties_checked, s.ieee ? (((1 << s.ebits) - 1) << s.mbits) : 127);
  }
}

TEST(FloatFormats, EncodeMatchesReferenceOnSampledFloats) {
  // ~550k fp32 bit patterns spread over the whole range (a prime stride), both signs.
  for (const Spec& s : kSpecs) {
    SCOPED_TRACE(s.name);
    ReferenceEncoder ref(s);
    for (uint64_t u = 0; u < 0x7F800000u; u += 7919 * 3) {
      const float x = std::bit_cast<float>(uint32_t(u));
      for (bool sat : {false, true}) {
        ASSERT_EQ(s.encode(x, sat), ref.Encode(x, sat)) << "x=" << x << " sat=" << sat;
        ASSERT_EQ(s.encode(-x, sat), ref.Encode(-x, sat)) << "x=" << -x << " sat=" << sat;
      }
    }
  }
}

TEST(FloatFormats, Fp16EdgeCases) {
  EXPECT_EQ(FloatToFp16(0.0f), 0x0000);
  EXPECT_EQ(FloatToFp16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToFp16(1.0f), 0x3C00);
  EXPECT_EQ(FloatToFp16(65504.0f), 0x7BFF);
  EXPECT_EQ(FloatToFp16(65519.996f), 0x7BFF);  // just below the tie: stays at max
  EXPECT_EQ(FloatToFp16(65520.0f), 0x7C00);    // tie with odd max rounds up to overflow: Inf
  EXPECT_EQ(FloatToFp16(1e6f), 0x7C00);
  EXPECT_EQ(FloatToFp16(-1e6f), 0xFC00);
  EXPECT_EQ(FloatToFp16(INFINITY), 0x7C00);
  EXPECT_EQ(FloatToFp16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToFp16(std::ldexp(1.0f, -25)), 0x0000);  // half of it: tie to even (0)
  EXPECT_EQ(FloatToFp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(FloatToFp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 quanta: tie to even (2)
  EXPECT_EQ(FloatToFp16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(FloatToFp16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);  // tie: up
  EXPECT_EQ(FloatToFp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);                   // tie: down
  EXPECT_EQ(FloatToFp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);               // tie: up
  EXPECT_EQ(FloatToFp16(1e-30f), 0x0000);
  EXPECT_EQ(FloatToFp16(-1e-30f), 0x8000);
  EXPECT_EQ(FloatToFp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_TRUE(std::isnan(Fp16ToFloat(FloatToFp16(NAN))));
  EXPECT_EQ(FloatToFp16(-NAN) & 0x8000, 0x8000);
}

TEST(FloatFormats, Bf16EdgeCases) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3F80);
  EXPECT_EQ(FloatToBf16(-0.0f), 0x8000);
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3F808000u)), 0x3F80);  // tie, even stays
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3F818000u)), 0x3F82);  // tie, odd rounds up
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(FloatToBf16(std::numeric_limits<float>::max()), 0x7F80);  // rounds past max: Inf
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x7F7F7FFFu)), 0x7F7F);  // just below the tie
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x00010000u)), 0x0001);  // subnormal
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x00008000u)), 0x0000);  // tie to even: 0
  EXPECT_EQ(FloatToBf16(std::bit_cast<float>(0x00018000u)), 0x0002);  // tie to even: 2
  EXPECT_EQ(Bf16ToFloat(0x0001), std::bit_cast<float>(0x00010000u));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(NAN))));
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::bit_cast<float>(0x7F800001u)))));
}

TEST(FloatFormats, E4M3EdgeCases) {
  EXPECT_EQ(FloatToFp8E4M3(448.0f), 0x7E);
  EXPECT_EQ(FloatToFp8E4M3(-448.0f), 0xFE);
  EXPECT_EQ(FloatToFp8E4M3(464.0f, false), 0x7E);  // tie between 448 (even) and 480: 448
  EXPECT_EQ(FloatToFp8E4M3(std::nextafter(464.0f, 1e9f), false), 0x7F);  // rounds past: NaN
  EXPECT_EQ(FloatToFp8E4M3(std::nextafter(464.0f, 1e9f), true), 0x7E);   // saturates
  EXPECT_EQ(FloatToFp8E4M3(1e9f, true), 0x7E);
  EXPECT_EQ(FloatToFp8E4M3(-1e9f, true), 0xFE);
  EXPECT_EQ(FloatToFp8E4M3(1e9f, false), 0x7F);
  EXPECT_EQ(FloatToFp8E4M3(INFINITY, true), 0x7E);
  EXPECT_EQ(FloatToFp8E4M3(-INFINITY, true), 0xFE);
  EXPECT_EQ(FloatToFp8E4M3(INFINITY, false), 0x7F);
  EXPECT_EQ(FloatToFp8E4M3(NAN, true), 0x7F);
  EXPECT_EQ(FloatToFp8E4M3(-NAN, true), 0xFF);
  EXPECT_EQ(FloatToFp8E4M3(-0.0f), 0x80);
  EXPECT_EQ(FloatToFp8E4M3(std::ldexp(1.0f, -9)), 0x01);   // smallest subnormal
  EXPECT_EQ(FloatToFp8E4M3(std::ldexp(1.0f, -10)), 0x00);  // tie to even: 0
  EXPECT_EQ(FloatToFp8E4M3(-std::ldexp(1.0f, -10)), 0x80);
  EXPECT_EQ(FloatToFp8E4M3(std::ldexp(1.5f, -10)), 0x01);
  EXPECT_EQ(FloatToFp8E4M3(std::ldexp(1.0f, -6)), 0x08);  // smallest normal
  EXPECT_EQ(FloatToFp8E4M3(1.0f), 0x38);
  EXPECT_EQ(FloatToFp8E4M3(1.0625f), 0x38);  // tie: 1.0 (even)
  EXPECT_EQ(FloatToFp8E4M3(1.1875f), 0x3A);  // tie: 1.25 (even)
  EXPECT_EQ(Fp8E4M3ToFloat(0x7E), 448.0f);
  EXPECT_EQ(Fp8E4M3ToFloat(0x78), 256.0f);  // exponent field 15 holds ordinary numbers
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0x7F)));
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0xFF)));
}

TEST(FloatFormats, E5M2EdgeCases) {
  EXPECT_EQ(FloatToFp8E5M2(57344.0f), 0x7B);
  EXPECT_EQ(FloatToFp8E5M2(61440.0f, true), 0x7B);   // tie with odd max: rounds up, saturates
  EXPECT_EQ(FloatToFp8E5M2(61440.0f, false), 0x7C);  // ... or overflows to Inf
  EXPECT_EQ(FloatToFp8E5M2(std::nextafter(61440.0f, 0.0f), false), 0x7B);
  EXPECT_EQ(FloatToFp8E5M2(INFINITY, true), 0x7B);
  EXPECT_EQ(FloatToFp8E5M2(-INFINITY, true), 0xFB);
  EXPECT_EQ(FloatToFp8E5M2(INFINITY, false), 0x7C);
  EXPECT_EQ(FloatToFp8E5M2(-INFINITY, false), 0xFC);
  EXPECT_EQ(FloatToFp8E5M2(-0.0f), 0x80);
  EXPECT_EQ(FloatToFp8E5M2(std::ldexp(1.0f, -16)), 0x01);  // smallest subnormal
  EXPECT_EQ(FloatToFp8E5M2(std::ldexp(1.0f, -17)), 0x00);  // tie to even
  EXPECT_EQ(FloatToFp8E5M2(std::ldexp(3.0f, -17)), 0x02);  // tie to even
  EXPECT_EQ(FloatToFp8E5M2(std::ldexp(1.0f, -14)), 0x04);  // smallest normal
  EXPECT_EQ(FloatToFp8E5M2(1.0f), 0x3C);
  EXPECT_TRUE(std::isnan(Fp8E5M2ToFloat(FloatToFp8E5M2(NAN))));
  EXPECT_TRUE(std::isinf(Fp8E5M2ToFloat(0x7C)));
  for (uint8_t b : {0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF}) {
    EXPECT_TRUE(std::isnan(Fp8E5M2ToFloat(b)));
  }
}

TEST(FloatFormats, FormatTableAndRoundTo) {
  EXPECT_EQ(FloatFormatMax(FloatFormat::kFp16), 65504.0f);
  EXPECT_EQ(FloatFormatMax(FloatFormat::kBf16), std::bit_cast<float>(0x7F7F0000u));
  EXPECT_EQ(FloatFormatMax(FloatFormat::kFp8E4M3), 448.0f);
  EXPECT_EQ(FloatFormatMax(FloatFormat::kFp8E5M2), 57344.0f);
  EXPECT_EQ(FloatFormatMinNormal(FloatFormat::kFp16), std::ldexp(1.0f, -14));
  EXPECT_EQ(FloatFormatMinNormal(FloatFormat::kBf16), std::ldexp(1.0f, -126));
  EXPECT_EQ(FloatFormatMinNormal(FloatFormat::kFp8E4M3), std::ldexp(1.0f, -6));
  EXPECT_EQ(FloatFormatMinNormal(FloatFormat::kFp8E5M2), std::ldexp(1.0f, -14));
  EXPECT_EQ(FloatFormatEpsilon(FloatFormat::kFp16), std::ldexp(1.0f, -10));
  EXPECT_EQ(FloatFormatEpsilon(FloatFormat::kBf16), std::ldexp(1.0f, -7));
  EXPECT_EQ(FloatFormatEpsilon(FloatFormat::kFp8E4M3), 0.125f);
  EXPECT_EQ(FloatFormatEpsilon(FloatFormat::kFp8E5M2), 0.25f);
  EXPECT_STREQ(FloatFormatName(FloatFormat::kFp8E4M3), "fp8_e4m3");
  EXPECT_STREQ(FloatFormatName(FloatFormat::kBf16), "bf16");
  EXPECT_EQ(RoundToFloatFormat(1e6f, FloatFormat::kFp16), INFINITY);  // IEEE, never saturates
  EXPECT_EQ(RoundToFloatFormat(1e6f, FloatFormat::kFp8E4M3), 448.0f);
  EXPECT_TRUE(std::isnan(RoundToFloatFormat(1e6f, FloatFormat::kFp8E4M3, false)));
  EXPECT_EQ(RoundToFloatFormat(1e6f, FloatFormat::kFp8E5M2, false), INFINITY);
  const float x[] = {0.1f, -3.3f, 1000.0f, 1.0f / 3};
  float y[4];
  for (FloatFormat f :
       {FloatFormat::kFp16, FloatFormat::kBf16, FloatFormat::kFp8E4M3, FloatFormat::kFp8E5M2}) {
    RoundToFloatFormat(x, 4, f, y);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(y[i], RoundToFloatFormat(x[i], f));
      // Relative rounding error <= epsilon / 2 in the normal range below max.
      if (std::fabs(x[i]) <= FloatFormatMax(f) && std::fabs(x[i]) >= FloatFormatMinNormal(f)) {
        EXPECT_LE(std::fabs(y[i] - x[i]), std::fabs(x[i]) * FloatFormatEpsilon(f) / 2);
      }
    }
  }
  EXPECT_EQ(RoundToFloatFormat(0.1f, FloatFormat::kFp8E4M3), 0.1015625f);  // 13 * 2^-7
}

}  // namespace
}  // namespace qforge::numerics
