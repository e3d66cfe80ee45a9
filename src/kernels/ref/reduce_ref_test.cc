// Tests for the reduction kernels: fast path against the reference over all axis subsets,
// hand-checked values, empty reductions and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "qforge/kernels/reduce.h"

namespace qforge::kernels {
namespace {

void ExpectSameBits(const Tensor& a, const Tensor& b) {
  ASSERT_EQ(a.dtype(), b.dtype());
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.raw(), b.raw(), a.nbytes()));
}

TEST(Reduce, FastMatchesReferenceForEveryAxisSubset) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> d(-3, 3);
  Tensor x(DType::kF32, {3, 1, 4, 5});
  for (float& v : x.span<float>()) v = d(rng);
  Tensor xi(DType::kI32, {3, 1, 4, 5});
  for (int64_t i = 0; i < xi.numel(); ++i)
    xi.data<int32_t>()[i] = static_cast<int32_t>(i * 7 % 23) - 11;
  for (auto op : {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax}) {
    for (int mask = 0; mask < 16; ++mask) {
      std::vector<int64_t> axes;
      for (int a = 0; a < 4; ++a)
        if (mask & (1 << a)) axes.push_back(a);
      for (bool keep : {false, true}) {
        SCOPED_TRACE(std::string(ReduceOpName(op)) + " mask " + std::to_string(mask));
        ExpectSameBits(Reduce(op, x, axes, keep), ReduceRef(op, x, axes, keep));
        ExpectSameBits(Reduce(op, xi, axes, keep), ReduceRef(op, xi, axes, keep));
      }
    }
  }
}

TEST(Reduce, HandCheckedValues) {
  Tensor x = Tensor::FromVector<float>({2, 3}, {1, 2, 3, 4, 5, 6});
  std::vector<int64_t> ax1 = {1}, ax0 = {0}, all = {0, 1};
  Tensor s = Reduce(ReduceOp::kSum, x, ax1, true);
  EXPECT_EQ(s.shape(), (Shape{2, 1}));
  EXPECT_EQ(s.ToFloatVector(), (std::vector<float>{6, 15}));
  Tensor m = Reduce(ReduceOp::kMean, x, ax0, false);
  EXPECT_EQ(m.shape(), (Shape{3}));
  EXPECT_EQ(m.ToFloatVector(), (std::vector<float>{2.5f, 3.5f, 4.5f}));
  Tensor mx = Reduce(ReduceOp::kMax, x, all, false);
  EXPECT_EQ(mx.shape(), (Shape{}));
  EXPECT_EQ(mx.ToFloatVector()[0], 6.0f);
  // Integer mean truncates toward zero.
  Tensor xi = Tensor::FromVector<int64_t>({3}, {-1, -1, -3});
  EXPECT_EQ(Reduce(ReduceOp::kMean, xi, ax0, false).ToInt64Vector()[0], -1);
  // No axes: a copy in the same shape.
  EXPECT_EQ(Reduce(ReduceOp::kSum, x, {}, true).ToFloatVector(), x.ToFloatVector());
}

TEST(Reduce, EmptyReductionsAndErrors) {
  Tensor x(DType::kF32, {2, 0});
  std::vector<int64_t> ax1 = {1};
  EXPECT_EQ(Reduce(ReduceOp::kSum, x, ax1, false).ToFloatVector(), (std::vector<float>{0, 0}));
  EXPECT_TRUE(std::isnan(Reduce(ReduceOp::kMean, x, ax1, false).ToFloatVector()[0]));
  EXPECT_TRUE(std::isinf(Reduce(ReduceOp::kMax, x, ax1, false).ToFloatVector()[0]));
  EXPECT_THROW(Reduce(ReduceOp::kSum, x, std::vector<int64_t>{2}, false), Error);
  EXPECT_THROW(Reduce(ReduceOp::kSum, x, std::vector<int64_t>{1, 1}, false), Error);
}

TEST(Reduce, LargeInputUsesParallelRows) {
  std::mt19937 rng(6);
  std::uniform_real_distribution<float> d(-1, 1);
  Tensor x(DType::kF32, {64, 49, 128});  // GlobalAveragePool-like: reduce the middle axis
  for (float& v : x.span<float>()) v = d(rng);
  std::vector<int64_t> ax = {1};
  ExpectSameBits(Reduce(ReduceOp::kMean, x, ax, true), ReduceRef(ReduceOp::kMean, x, ax, true));
}

}  // namespace
}  // namespace qforge::kernels
