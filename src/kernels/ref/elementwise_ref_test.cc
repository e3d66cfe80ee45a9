// Tests for the elementwise kernels: fast paths against the reference, and the reference
// against hand-computed values (C integer division, wrapping, NaN, f16 rounding, broadcasting).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/isa.h"
#include "qforge/kernels/transform.h"
#include "qforge/numerics/float_formats.h"

namespace qforge::kernels {
namespace {

Tensor RandomF32(const Shape& shape, std::mt19937& rng, float lo = -4.0f, float hi = 4.0f) {
  Tensor t(DType::kF32, shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t.span<float>()) v = d(rng);
  return t;
}

template <typename T>
Tensor RandomInt(const Shape& shape, std::mt19937& rng, int lo, int hi) {
  Tensor t(DTypeOf<T>::value, shape);
  std::uniform_int_distribution<int> d(lo, hi);
  for (T& v : t.span<T>()) v = static_cast<T>(d(rng));
  return t;
}

// Bitwise equality (NaN == NaN), same dtype and shape.
void ExpectSameBits(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
}

TEST(BroadcastShape, NumpyRules) {
  EXPECT_EQ(BroadcastShape({2, 3, 4}, {4}), (Shape{2, 3, 4}));
  EXPECT_EQ(BroadcastShape({2, 1, 4}, {3, 1}), (Shape{2, 3, 4}));
  EXPECT_EQ(BroadcastShape({}, {5}), (Shape{5}));
  EXPECT_EQ(BroadcastShape({0, 1}, {1, 3}), (Shape{0, 3}));
  EXPECT_THROW(BroadcastShape({2, 3}, {4}), Error);
}

TEST(Binary, FastMatchesReferenceOnBroadcastPatterns) {
  std::mt19937 rng(1);
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{7}, {7}},
      {{3, 4}, {}},
      {{}, {3, 4}},
      {{2, 3, 4}, {4}},
      {{2, 3, 4}, {3, 1}},
      {{2, 1, 4}, {1, 3, 1}},
      {{1, 5}, {6, 1}},
      {{2, 3, 1, 5}, {3, 4, 1}},
      {{0, 3}, {1, 3}},
      {{300, 257}, {257}},
      {{300, 257}, {300, 1}},
      {{1}, {1}},
  };
  for (auto op : {BinaryOp::kAdd, BinaryOp::kSub, BinaryOp::kMul, BinaryOp::kDiv, BinaryOp::kPow,
                  BinaryOp::kMin, BinaryOp::kMax, BinaryOp::kEqual}) {
    for (const auto& [sa, sb] : cases) {
      Tensor a = RandomF32(sa, rng, 0.5f, 3.0f), b = RandomF32(sb, rng, 0.5f, 3.0f);
      SCOPED_TRACE(std::string(BinaryOpName(op)) + " " + ShapeToString(sa) + " " +
                   ShapeToString(sb));
      ExpectSameBits(Binary(op, a, b), BinaryRef(op, a, b));
      Tensor ia = RandomInt<int32_t>(sa, rng, -50, 50), ib = RandomInt<int32_t>(sb, rng, 1, 5);
      ExpectSameBits(Binary(op, ia, ib), BinaryRef(op, ia, ib));
    }
  }
}

TEST(Binary, ReferenceValuesWithBroadcast) {
  Tensor a = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor b = Tensor::FromVector<float>({3}, {10, 20, 30});
  Tensor c = BinaryRef(BinaryOp::kAdd, a, b);
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  EXPECT_EQ(c.ToFloatVector(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
  Tensor col = Tensor::FromVector<float>({2, 1}, {1, 2});
  EXPECT_EQ(BinaryRef(BinaryOp::kMul, a, col).ToFloatVector(),
            (std::vector<float>{1, 2, 3, 8, 10, 12}));
  EXPECT_EQ(Binary(BinaryOp::kMul, a, col).ToFloatVector(),
            (std::vector<float>{1, 2, 3, 8, 10, 12}));
}

TEST(Binary, IntegerDivisionTruncatesAndChecksZero) {
  Tensor a = Tensor::FromVector<int32_t>({4}, {7, -7, 7, std::numeric_limits<int32_t>::min()});
  Tensor b = Tensor::FromVector<int32_t>({4}, {2, 2, -2, -1});
  Tensor c = Binary(BinaryOp::kDiv, a, b);
  EXPECT_EQ(c.ToInt64Vector(),
            (std::vector<int64_t>{3, -3, -3, std::numeric_limits<int32_t>::min()}));
  ExpectSameBits(c, BinaryRef(BinaryOp::kDiv, a, b));
  Tensor z = Tensor::FromVector<int32_t>({4}, {1, 0, 1, 1});
  EXPECT_THROW(Binary(BinaryOp::kDiv, a, z), Error);
  EXPECT_THROW(BinaryRef(BinaryOp::kDiv, a, z), Error);
  Tensor u = Tensor::FromVector<uint8_t>({2}, {200, 9});
  EXPECT_EQ(Binary(BinaryOp::kDiv, u, Tensor::Scalar<uint8_t>(4)).ToInt64Vector(),
            (std::vector<int64_t>{50, 2}));
}

TEST(Binary, IntegerOverflowWraps) {
  Tensor a = Tensor::FromVector<uint8_t>({2}, {250, 3});
  Tensor b = Tensor::FromVector<uint8_t>({2}, {10, 5});
  EXPECT_EQ(Binary(BinaryOp::kAdd, a, b).ToInt64Vector(), (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(Binary(BinaryOp::kSub, b, a).ToInt64Vector(), (std::vector<int64_t>{16, 2}));
  Tensor big = Tensor::FromVector<int64_t>({1}, {std::numeric_limits<int64_t>::max()});
  EXPECT_EQ(Binary(BinaryOp::kAdd, big, Tensor::Scalar<int64_t>(1)).ToInt64Vector()[0],
            std::numeric_limits<int64_t>::min());
}

TEST(Binary, PowIntegerAndMixedTypes) {
  Tensor a = Tensor::FromVector<int64_t>({4}, {2, 3, -2, 5});
  Tensor b = Tensor::FromVector<int64_t>({4}, {10, 0, 3, -1});
  EXPECT_EQ(Binary(BinaryOp::kPow, a, b).ToInt64Vector(), (std::vector<int64_t>{1024, 1, -8, 0}));
  // Base i32, exponent f32: result keeps the base's dtype.
  Tensor x = Tensor::FromVector<int32_t>({3}, {1, 2, 3});
  Tensor y = Tensor::FromVector<float>({3}, {4, 5, 6});
  Tensor r = Binary(BinaryOp::kPow, x, y);
  EXPECT_EQ(r.dtype(), DType::kI32);
  EXPECT_EQ(r.ToInt64Vector(), (std::vector<int64_t>{1, 32, 729}));
  Tensor fx = Tensor::FromVector<float>({2}, {2.0f, 0.5f});
  Tensor iy = Tensor::FromVector<int64_t>({2}, {3, 2});
  EXPECT_EQ(Binary(BinaryOp::kPow, fx, iy).ToFloatVector(), (std::vector<float>{8.0f, 0.25f}));
}

TEST(Binary, MinMaxPropagateNaNAndEqualGivesBool) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor a = Tensor::FromVector<float>({3}, {1, nan, 3});
  Tensor b = Tensor::FromVector<float>({3}, {2, 0, nan});
  std::vector<float> mn = Binary(BinaryOp::kMin, a, b).ToFloatVector();
  EXPECT_EQ(mn[0], 1);
  EXPECT_TRUE(std::isnan(mn[1]));
  EXPECT_TRUE(std::isnan(mn[2]));
  std::vector<float> mx = Binary(BinaryOp::kMax, a, b).ToFloatVector();
  EXPECT_EQ(mx[0], 2);
  EXPECT_TRUE(std::isnan(mx[1]) && std::isnan(mx[2]));
  Tensor e = Binary(BinaryOp::kEqual, Tensor::FromVector<int64_t>({3}, {1, 2, 3}),
                    Tensor::Scalar<int64_t>(2));
  EXPECT_EQ(e.dtype(), DType::kBool);
  EXPECT_EQ(e.ToInt64Vector(), (std::vector<int64_t>{0, 1, 0}));
}

TEST(Binary, RejectsMismatchedDtypesAndShapes) {
  Tensor f = Tensor::FromVector<float>({2}, {1, 2});
  Tensor i = Tensor::FromVector<int64_t>({2}, {1, 2});
  EXPECT_THROW(Binary(BinaryOp::kAdd, f, i), Error);
  EXPECT_THROW(Binary(BinaryOp::kAdd, f, Tensor::FromVector<float>({3}, {1, 2, 3})), Error);
  EXPECT_THROW(Binary(BinaryOp::kAdd, Tensor(DType::kBool, {2}), Tensor(DType::kBool, {2})), Error);
}

TEST(Binary, HalfPrecisionComputesInF32AndRoundsBack) {
  Tensor a = Cast(Tensor::FromVector<float>({2}, {1.0f, 2048.0f}), DType::kF16);
  Tensor b = Cast(Tensor::FromVector<float>({2}, {0.5f, 1.0f}), DType::kF16);
  Tensor c = Binary(BinaryOp::kAdd, a, b);
  ASSERT_EQ(c.dtype(), DType::kF16);
  // 2048 + 1 = 2049 is a tie between fp16 neighbours 2048 and 2050: rounds to even (2048).
  EXPECT_EQ(c.ToFloatVector(), (std::vector<float>{1.5f, 2048.0f}));
}

TEST(Binary, LargeTensorsTakeTheParallelPath) {
  std::mt19937 rng(2);
  Tensor a = RandomF32({257, 513}, rng), b = RandomF32({513}, rng), s = RandomF32({}, rng);
  ExpectSameBits(Binary(BinaryOp::kSub, a, b), BinaryRef(BinaryOp::kSub, a, b));
  ExpectSameBits(Binary(BinaryOp::kMul, s, a), BinaryRef(BinaryOp::kMul, s, a));
  ExpectSameBits(Binary(BinaryOp::kAdd, a, a), BinaryRef(BinaryOp::kAdd, a, a));
}

TEST(Unary, FastMatchesReferenceAndFormulas) {
  std::mt19937 rng(3);
  Tensor x = RandomF32({100003}, rng, -8.0f, 8.0f);
  UnaryParams p;
  p.alpha = 0.2;
  p.beta = 0.5;
  p.lo = -1.5;
  p.hi = 2.0;
  for (auto op :
       {UnaryOp::kRelu, UnaryOp::kLeakyRelu, UnaryOp::kClip, UnaryOp::kSigmoid,
        UnaryOp::kHardSigmoid, UnaryOp::kHardSwish, UnaryOp::kTanh, UnaryOp::kErf, UnaryOp::kGelu,
        UnaryOp::kGeluTanh, UnaryOp::kExp, UnaryOp::kNeg, UnaryOp::kAbs}) {
    SCOPED_TRACE(std::string(UnaryOpName(op)));
    Tensor fast = Unary(op, p, x);
    Tensor ref = UnaryRef(op, p, x);
    const bool approx = op == UnaryOp::kErf || op == UnaryOp::kGelu || op == UnaryOp::kExp;
    if (!approx || ActiveIsa() == Isa::kScalar) {
      ExpectSameBits(fast, ref);
    } else {
      // The vectorized polynomials (x86/vecmath_avx2.h): erf within 5e-7 absolute, GELU within
      // 5e-7 |x| / 2 + 1 ulp, exp within 3e-7 relative (+1 ulp).
      for (int64_t i = 0; i < x.numel(); ++i) {
        const float r = ref.data<float>()[i], f = fast.data<float>()[i];
        const float v = x.data<float>()[i];
        const double tol = op == UnaryOp::kErf    ? 5e-7
                           : op == UnaryOp::kGelu ? 2.5e-7 * std::fabs(v) + 1.2e-7 * std::fabs(r)
                                                  : 4e-7 * std::fabs(r);
        ASSERT_NEAR(f, r, tol) << "x=" << v;
      }
    }
    // Against an independent double-precision formula.
    const float* xs = x.data<float>();
    const float* ys = ref.data<float>();
    for (int64_t i = 0; i < x.numel(); i += 997) {
      const double v = xs[i];
      double want = 0;
      switch (op) {
        case UnaryOp::kRelu:
          want = std::max(v, 0.0);
          break;
        case UnaryOp::kLeakyRelu:
          want = v >= 0 ? v : 0.2 * v;
          break;
        case UnaryOp::kClip:
          want = std::min(std::max(v, -1.5), 2.0);
          break;
        case UnaryOp::kSigmoid:
          want = 1 / (1 + std::exp(-v));
          break;
        case UnaryOp::kHardSigmoid:
          want = std::clamp(0.2 * v + 0.5, 0.0, 1.0);
          break;
        case UnaryOp::kHardSwish:
          want = v * std::clamp(v / 6 + 0.5, 0.0, 1.0);
          break;
        case UnaryOp::kTanh:
          want = std::tanh(v);
          break;
        case UnaryOp::kErf:
          want = std::erf(v);
          break;
        case UnaryOp::kGelu:
          want = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
          break;
        case UnaryOp::kGeluTanh:
          want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
          break;
        case UnaryOp::kExp:
          want = std::exp(v);
          break;
        case UnaryOp::kNeg:
          want = -v;
          break;
        case UnaryOp::kAbs:
          want = std::fabs(v);
          break;
        default:
          break;
      }
      EXPECT_NEAR(ys[i], want, 1e-5 * std::max(1.0, std::fabs(want))) << "x=" << v;
    }
  }
}

TEST(Unary, IntegersAndUnsupportedDtypes) {
  Tensor x = Tensor::FromVector<int8_t>({4}, {-128, -3, 0, 7});
  EXPECT_EQ(Unary(UnaryOp::kRelu, {}, x).ToInt64Vector(), (std::vector<int64_t>{0, 0, 0, 7}));
  EXPECT_EQ(Unary(UnaryOp::kAbs, {}, x).ToInt64Vector(), (std::vector<int64_t>{-128, 3, 0, 7}));
  EXPECT_EQ(Unary(UnaryOp::kNeg, {}, x).ToInt64Vector(), (std::vector<int64_t>{-128, 3, 0, -7}));
  UnaryParams p;
  p.lo = -5;
  p.hi = 5;
  EXPECT_EQ(Unary(UnaryOp::kClip, p, x).ToInt64Vector(), (std::vector<int64_t>{-5, -3, 0, 5}));
  // lo > hi: ONNX's min(max(x, lo), hi) gives hi everywhere.
  p.lo = 3;
  p.hi = 1;
  EXPECT_EQ(Unary(UnaryOp::kClip, p, x).ToInt64Vector(), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_FALSE(UnarySupports(UnaryOp::kSigmoid, DType::kI32));
  EXPECT_FALSE(UnarySupports(UnaryOp::kNeg, DType::kU8));
  EXPECT_THROW(Unary(UnaryOp::kSigmoid, {}, Tensor(DType::kI32, {2})), Error);
  EXPECT_THROW(Unary(UnaryOp::kRelu, {}, Tensor(DType::kBool, {2})), Error);
}

TEST(Unary, SigmoidIsStableForLargeInputs) {
  Tensor x = Tensor::FromVector<float>({4}, {-1000.0f, -88.0f, 88.0f, 1000.0f});
  std::vector<float> y = Unary(UnaryOp::kSigmoid, {}, x).ToFloatVector();
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_GT(y[1], 0.0f);
  EXPECT_EQ(y[2], 1.0f);
  EXPECT_EQ(y[3], 1.0f);
}

TEST(Unary, F64AndF16) {
  Tensor d = Tensor::FromVector<double>({2}, {-1.0, 4.0});
  EXPECT_EQ(Unary(UnaryOp::kSqrt, {}, d).GetAsDouble(1), 2.0);
  Tensor h = Cast(Tensor::FromVector<float>({2}, {-1.0f, 0.5f}), DType::kF16);
  Tensor r = Unary(UnaryOp::kRelu, {}, h);
  EXPECT_EQ(r.dtype(), DType::kF16);
  EXPECT_EQ(r.ToFloatVector(), (std::vector<float>{0.0f, 0.5f}));
}

TEST(Where, FastMatchesReferenceWithThreeWayBroadcast) {
  std::mt19937 rng(4);
  Tensor cond(DType::kBool, {2, 1, 5});
  for (int64_t i = 0; i < cond.numel(); ++i) cond.data<bool>()[i] = rng() % 2;
  Tensor x = RandomF32({3, 1}, rng), y = RandomF32({2, 3, 5}, rng);
  Tensor w = Where(cond, x, y);
  EXPECT_EQ(w.shape(), (Shape{2, 3, 5}));
  ExpectSameBits(w, WhereRef(cond, x, y));
  Tensor xi = RandomInt<int64_t>({5}, rng, -9, 9), yi = RandomInt<int64_t>({}, rng, -9, 9);
  ExpectSameBits(Where(cond, xi, yi), WhereRef(cond, xi, yi));
  EXPECT_THROW(Where(x, x, y), Error);      // condition not bool
  EXPECT_THROW(Where(cond, x, yi), Error);  // dtype mismatch
}

TEST(Expand, BroadcastsBothWays) {
  Tensor x = Tensor::FromVector<float>({3, 1}, {1, 2, 3});
  Tensor e = Expand(x, {2, 1, 4});
  EXPECT_EQ(e.shape(), (Shape{2, 3, 4}));
  std::vector<float> v = e.ToFloatVector();
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(v[(b * 3 + i) * 4 + j], i + 1);
  // A target shape smaller than the input keeps the input's dims (numpy rules).
  EXPECT_EQ(Expand(x, {1}).shape(), (Shape{3, 1}));
  EXPECT_THROW(Expand(x, {2, 2}), Error);
}

TEST(Expand, LargeBroadcastMatchesReferenceAdd) {
  // Expand(x, s) equals x + zeros(s) under broadcasting (no -0 in x, so bits agree).
  std::mt19937 rng(7);
  Tensor x = RandomF32({64, 1, 33}, rng, 0.5f, 2.0f);
  Tensor zeros(DType::kF32, {8, 64, 70, 1});
  ExpectSameBits(Expand(x, zeros.shape()), BinaryRef(BinaryOp::kAdd, x, zeros));
  Tensor cond(DType::kBool, {70, 33});
  for (int64_t i = 0; i < cond.numel(); ++i) cond.data<bool>()[i] = (i * 7919) % 3 == 0;
  ExpectSameBits(Where(cond, x, zeros), WhereRef(cond, x, zeros));
}

}  // namespace
}  // namespace qforge::kernels
