// Tests for Tensor storage, shapes and element access.
#include "qforge/tensor/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace qforge {
namespace {

TEST(Shape, NumElementsAndStrides) {
  EXPECT_EQ(NumElements({}), 1);
  EXPECT_EQ(NumElements({2, 3, 4}), 24);
  EXPECT_EQ(NumElements({2, 0, 4}), 0);
  EXPECT_THROW(NumElements({2, -1}), Error);
  EXPECT_THROW(NumElements({int64_t{1} << 40, int64_t{1} << 40}), Error);
  EXPECT_EQ(RowMajorStrides({2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(ShapeToString({1, 28}), "[1, 28]");
}

TEST(Tensor, ZeroInitializedAndAligned) {
  Tensor t(DType::kF32, {3, 5});
  EXPECT_EQ(t.numel(), 15);
  EXPECT_EQ(t.nbytes(), 60u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw()) % 64, 0u);
  for (float v : t.span<float>()) EXPECT_EQ(v, 0.0f);
  Tensor empty(DType::kI8, {0});
  EXPECT_NE(empty.raw(), nullptr);
}

TEST(Tensor, CopySharesCloneCopies) {
  Tensor a = Tensor::FromVector<float>({2}, {1, 2});
  Tensor b = a;
  Tensor c = a.Clone();
  a.data<float>()[0] = 7;
  EXPECT_EQ(b.data<float>()[0], 7);
  EXPECT_EQ(c.data<float>()[0], 1);
}

TEST(Tensor, TypeMismatchThrows) {
  Tensor t(DType::kI8, {4});
  EXPECT_THROW(t.data<float>(), Error);
  EXPECT_NO_THROW(t.data<int8_t>());
  Tensor h(DType::kF16, {4});
  EXPECT_NO_THROW(h.data<uint16_t>());  // narrow floats are accessed as bit patterns
  EXPECT_THROW(Tensor(DType::kString, {1}), Error);
}

TEST(Tensor, ReshapeSharesStorageAndChecksCount) {
  Tensor t = Tensor::FromVector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.Reshaped({3, 2});
  EXPECT_EQ(r.raw(), t.raw());
  EXPECT_EQ(r.dim(-1), 2);
  EXPECT_THROW(t.Reshaped({4}), Error);
  EXPECT_THROW(t.dim(2), Error);
}

TEST(Tensor, ConversionsToInt64AndFloat) {
  Tensor t = Tensor::FromVector<int64_t>({3}, {-1, 0, 5});
  EXPECT_EQ(t.ToInt64Vector(), (std::vector<int64_t>{-1, 0, 5}));
  EXPECT_EQ(t.ToFloatVector(), (std::vector<float>{-1, 0, 5}));
  Tensor u = Tensor::FromVector<uint8_t>({2}, {255, 3});
  EXPECT_EQ(u.GetAsDouble(0), 255.0);
  EXPECT_THROW(u.GetAsDouble(2), Error);
  EXPECT_THROW(Tensor::FromVector<float>({3}, {1, 2}), Error);
}

}  // namespace
}  // namespace qforge
