// Tests for the Pad kernel: every mode by hand, negative pads, other dtypes, errors.
#include <gtest/gtest.h>

#include <vector>

#include "qforge/kernels/pad.h"

namespace qforge::kernels {
namespace {

std::vector<float> Pad1d(std::vector<float> x, int64_t b, int64_t e, PadMode mode, float v = 0) {
  Tensor t = Tensor::FromVector<float>({static_cast<int64_t>(x.size())}, x);
  Tensor y = PadRef(t, {b}, {e}, mode, &v);
  return std::vector<float>(y.data<float>(), y.data<float>() + y.numel());
}

TEST(PadRef, Modes1d) {
  EXPECT_EQ(Pad1d({1, 2, 3}, 2, 2, PadMode::kConstant, 9),
            (std::vector<float>{9, 9, 1, 2, 3, 9, 9}));
  EXPECT_EQ(Pad1d({1, 2, 3}, 2, 2, PadMode::kReflect), (std::vector<float>{3, 2, 1, 2, 3, 2, 1}));
  EXPECT_EQ(Pad1d({1, 2, 3}, 2, 2, PadMode::kEdge), (std::vector<float>{1, 1, 1, 2, 3, 3, 3}));
  EXPECT_EQ(Pad1d({1, 2, 3}, 2, 2, PadMode::kWrap), (std::vector<float>{2, 3, 1, 2, 3, 1, 2}));
  // numpy 'reflect' keeps bouncing when the pad exceeds the length.
  EXPECT_EQ(Pad1d({1, 2, 3}, 5, 0, PadMode::kReflect),
            (std::vector<float>{2, 1, 2, 3, 2, 1, 2, 3}));
  EXPECT_EQ(Pad1d({4}, 2, 1, PadMode::kReflect), (std::vector<float>{4, 4, 4, 4}));
}

TEST(PadRef, NegativePadsCropFirst) {
  EXPECT_EQ(Pad1d({1, 2, 3, 4}, -1, 0, PadMode::kConstant), (std::vector<float>{2, 3, 4}));
  EXPECT_EQ(Pad1d({1, 2, 3, 4}, -1, 2, PadMode::kReflect), (std::vector<float>{2, 3, 4, 3, 2}));
  EXPECT_EQ(Pad1d({1, 2, 3, 4}, 1, -3, PadMode::kEdge), (std::vector<float>{1, 1}));
  EXPECT_EQ(Pad1d({1, 2}, -1, -1, PadMode::kConstant), (std::vector<float>{}));
}

TEST(PadRef, TwoDimsInt32) {
  Tensor x = Tensor::FromVector<int32_t>({2, 2}, {1, 2, 3, 4});
  const int32_t v = -1;
  Tensor y = PadRef(x, {1, 0}, {0, 1}, PadMode::kConstant, &v);
  EXPECT_EQ(y.shape(), (Shape{3, 3}));
  const std::vector<int32_t> want = {-1, -1, -1, 1, 2, -1, 3, 4, -1};
  EXPECT_EQ(std::vector<int32_t>(y.data<int32_t>(), y.data<int32_t>() + 9), want);
  Tensor e = PadRef(x, {1, 1}, {1, 1}, PadMode::kEdge, nullptr);
  EXPECT_EQ(e.data<int32_t>()[0], 1);
  EXPECT_EQ(e.data<int32_t>()[15], 4);
}

TEST(PadRef, Errors) {
  Tensor x = Tensor::FromVector<float>({2}, {1, 2});
  EXPECT_THROW(PadRef(x, {-3}, {0}, PadMode::kConstant, nullptr), Error);
  EXPECT_THROW(PadRef(x, {-2}, {1}, PadMode::kEdge, nullptr), Error);  // nothing left to copy
  EXPECT_THROW(PadRef(x, {1, 1}, {1, 1}, PadMode::kConstant, nullptr), Error);
}

}  // namespace
}  // namespace qforge::kernels
