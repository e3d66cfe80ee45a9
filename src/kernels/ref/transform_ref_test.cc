// Tests for the data-movement kernels (fast against reference, hand-checked values) and Cast.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>

#include "qforge/kernels/transform.h"

namespace qforge::kernels {
namespace {

Tensor Iota(DType t, const Shape& shape) {
  Tensor f(DType::kF32, shape);
  std::iota(f.span<float>().begin(), f.span<float>().end(), 0.0f);
  return Cast(f, t);
}

void ExpectSameBits(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
}

TEST(Transpose, AllPermutationsOfRank4MatchReference) {
  for (DType t : {DType::kF32, DType::kU8, DType::kI64, DType::kF16}) {
    Tensor x = Iota(t, {2, 3, 4, 5});
    std::vector<int64_t> perm = {0, 1, 2, 3};
    do {
      ExpectSameBits(Transpose(x, perm), TransposeRef(x, perm));
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
}

TEST(Transpose, ValuesAndErrors) {
  Tensor x = Iota(DType::kF32, {2, 3});
  Tensor y = TransposeRef(x, std::vector<int64_t>{1, 0});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(y.ToFloatVector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_THROW(Transpose(x, std::vector<int64_t>{0, 0}), Error);
  EXPECT_THROW(Transpose(x, std::vector<int64_t>{0}), Error);
  Tensor big = Iota(DType::kF32, {300, 257});  // parallel path
  ExpectSameBits(Transpose(big, std::vector<int64_t>{1, 0}),
                 TransposeRef(big, std::vector<int64_t>{1, 0}));
}

TEST(ConcatSplit, RoundTripOnEveryAxis) {
  Tensor x = Iota(DType::kI32, {4, 6, 2});
  for (int64_t axis = 0; axis < 3; ++axis) {
    const int64_t n = x.shape()[axis];
    std::vector<int64_t> sizes = {1, n - 1 - n / 2, n / 2};
    std::vector<Tensor> parts = Split(x, axis, sizes);
    ASSERT_EQ(parts.size(), 3u);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(parts[i].shape()[axis], sizes[i]);
    ExpectSameBits(Concat(parts, axis), x);
  }
  // Hand-checked values along axis 1.
  Tensor a = Tensor::FromVector<float>({2, 1}, {1, 2});
  Tensor b = Tensor::FromVector<float>({2, 2}, {3, 4, 5, 6});
  EXPECT_EQ(Concat(std::vector<Tensor>{a, b}, 1).ToFloatVector(),
            (std::vector<float>{1, 3, 4, 2, 5, 6}));
  EXPECT_THROW(Concat(std::vector<Tensor>{a, Iota(DType::kF32, {3, 1})}, 1), Error);
  EXPECT_THROW(Concat(std::vector<Tensor>{a, Iota(DType::kI32, {2, 1})}, 1), Error);
  EXPECT_THROW(Split(x, 0, std::vector<int64_t>{1, 1}), Error);
}

TEST(Slice, FastMatchesReferenceWithNegativeSteps) {
  Tensor x = Iota(DType::kF32, {5, 6, 7});
  struct Case {
    std::vector<int64_t> starts, steps;
    Shape out;
  };
  const std::vector<Case> cases = {
      {{0, 0, 0}, {1, 1, 1}, {5, 6, 7}},    {{1, 2, 0}, {1, 1, 1}, {3, 2, 7}},
      {{4, 5, 6}, {-1, -1, -1}, {5, 6, 7}}, {{0, 5, 1}, {2, -2, 3}, {3, 3, 2}},
      {{2, 0, 0}, {1, 1, 1}, {0, 6, 7}},
  };
  for (const Case& c : cases)
    ExpectSameBits(Slice(x, c.starts, c.steps, c.out), SliceRef(x, c.starts, c.steps, c.out));
  Tensor r =
      SliceRef(Iota(DType::kF32, {6}), std::vector<int64_t>{5}, std::vector<int64_t>{-2}, {3});
  EXPECT_EQ(r.ToFloatVector(), (std::vector<float>{5, 3, 1}));
  // Reading past the end is an error, not a crash.
  EXPECT_THROW(Slice(x, std::vector<int64_t>{0, 0, 0}, std::vector<int64_t>{1, 1, 1}, {6, 6, 7}),
               Error);
  EXPECT_THROW(Slice(x, std::vector<int64_t>{0, 0, 0}, std::vector<int64_t>{1, 0, 1}, {1, 1, 1}),
               Error);
}

TEST(Gather, AnyAxisAndNegativeIndices) {
  Tensor x = Iota(DType::kF32, {3, 4});
  Tensor idx = Tensor::FromVector<int64_t>({2}, {-1, 0});
  Tensor g0 = Gather(x, idx, 0);
  EXPECT_EQ(g0.shape(), (Shape{2, 4}));
  EXPECT_EQ(g0.ToFloatVector(), (std::vector<float>{8, 9, 10, 11, 0, 1, 2, 3}));
  Tensor idx2 = Tensor::FromVector<int32_t>({2, 2}, {3, 1, 0, -4});
  Tensor g1 = Gather(x, idx2, 1);
  EXPECT_EQ(g1.shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(g1.ToFloatVector(), (std::vector<float>{3, 1, 0, 0, 7, 5, 4, 4, 11, 9, 8, 8}));
  Tensor scalar_idx = Tensor::Scalar<int64_t>(2);
  EXPECT_EQ(Gather(x, scalar_idx, 0).shape(), (Shape{4}));
  EXPECT_THROW(Gather(x, Tensor::FromVector<int64_t>({1}, {4}), 1), Error);
  EXPECT_THROW(Gather(x, Tensor::FromVector<int64_t>({1}, {-4}), 0), Error);
  EXPECT_THROW(Gather(x, Tensor::FromVector<float>({1}, {0}), 0), Error);
}

TEST(Cast, FloatToIntegerTruncatesSaturatesAndMapsNaNToZero) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::FromVector<float>({6}, {2.7f, -2.7f, 300.0f, -300.0f, nan, 1e30f});
  EXPECT_EQ(Cast(x, DType::kI8).ToInt64Vector(), (std::vector<int64_t>{2, -2, 127, -128, 0, 127}));
  EXPECT_EQ(Cast(x, DType::kU8).ToInt64Vector(), (std::vector<int64_t>{2, 0, 255, 0, 0, 255}));
  EXPECT_EQ(Cast(x, DType::kI64).ToInt64Vector()[5], std::numeric_limits<int64_t>::max());
  Tensor b = Cast(x, DType::kBool);
  EXPECT_EQ(b.ToInt64Vector(), (std::vector<int64_t>{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(Cast(Tensor::FromVector<float>({2}, {0.0f, -0.0f}), DType::kBool).ToInt64Vector(),
            (std::vector<int64_t>{0, 0}));
}

TEST(Cast, IntegerWrapsBoolAndSameTypeSharesStorage) {
  Tensor x = Tensor::FromVector<int32_t>({3}, {300, -1, 5});
  EXPECT_EQ(Cast(x, DType::kU8).ToInt64Vector(), (std::vector<int64_t>{44, 255, 5}));
  EXPECT_EQ(Cast(x, DType::kF64).GetAsDouble(0), 300.0);
  Tensor b = Tensor::FromVector<bool>({2}, {true, false});
  EXPECT_EQ(Cast(b, DType::kF32).ToFloatVector(), (std::vector<float>{1, 0}));
  EXPECT_EQ(Cast(x, DType::kI32).raw(), x.raw());
  EXPECT_THROW(Cast(x, DType::kString), Error);
}

TEST(Cast, NarrowFloatsRoundTrip) {
  Tensor x = Tensor::FromVector<float>({4}, {1.0f, -2.5f, 65504.0f, 1e6f});
  Tensor h = Cast(x, DType::kF16);
  std::vector<float> back = Cast(h, DType::kF32).ToFloatVector();
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_EQ(back[2], 65504.0f);
  EXPECT_TRUE(std::isinf(back[3]));  // fp16 overflows to Inf
  EXPECT_EQ(Cast(Cast(x, DType::kBF16), DType::kF32).ToFloatVector()[1], -2.5f);
  // fp8 E4M3 saturates to 448 by default, NaN without saturation.
  EXPECT_EQ(Cast(Cast(x, DType::kF8E4M3), DType::kF32).ToFloatVector()[3], 448.0f);
  EXPECT_TRUE(std::isnan(Cast(Cast(x, DType::kF8E4M3, false), DType::kF32).ToFloatVector()[3]));
  // Narrow -> integer goes through f32.
  EXPECT_EQ(Cast(h, DType::kI32).ToInt64Vector()[1], -2);
}

}  // namespace
}  // namespace qforge::kernels
