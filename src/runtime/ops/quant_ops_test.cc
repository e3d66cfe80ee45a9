// Tests for QuantizeLinear / DequantizeLinear through ir::Graph + Session: ONNX semantics
// (round half to even, saturation, default uint8), per-tensor / per-axis / blocked, errors.
#include <gtest/gtest.h>

#include "runtime/ops/node_test_util.h"

namespace qforge::runtime {
namespace {

using testing::F;
using testing::Fv;
using testing::I;
using testing::NodeTest;

TEST(QuantizeLinearOp, RoundsHalfToEvenAndSaturates) {
  // x / 2 = 0, 0.5, 1.5, 2.5, -0.5, -1.5, 500, -500
  Tensor x = Fv({8}, {0, 1, 3, 5, -1, -3, 1000, -1000});
  Tensor q = NodeTest("QuantizeLinear", 13)
                 .In(x)
                 .In(Tensor::Scalar(2.0f))
                 .In(Tensor::Scalar<uint8_t>(128))
                 .Run1();
  EXPECT_EQ(q.dtype(), DType::kU8);
  EXPECT_EQ(I(q), (std::vector<int64_t>{128, 128, 130, 130, 128, 126, 255, 0}));
  Tensor s = NodeTest("QuantizeLinear", 13)
                 .In(x)
                 .In(Tensor::Scalar(2.0f))
                 .In(Tensor::Scalar<int8_t>(-1))
                 .Run1();
  EXPECT_EQ(s.dtype(), DType::kI8);
  EXPECT_EQ(I(s), (std::vector<int64_t>{-1, -1, 1, 1, -1, -3, 127, -128}));
  // No zero point: uint8 with zero point 0.
  Tensor d = NodeTest("QuantizeLinear", 13).In(x).In(Tensor::Scalar(2.0f)).Run1();
  EXPECT_EQ(d.dtype(), DType::kU8);
  EXPECT_EQ(I(d), (std::vector<int64_t>{0, 0, 2, 2, 0, 0, 255, 0}));
}

TEST(QuantizeLinearOp, PerAxisAndBlocked) {
  Tensor x = Fv({2, 3}, {1, 2, 4, -1, -2, -4});
  Tensor q = NodeTest("QuantizeLinear", 13)
                 .Attr("axis", int64_t{1})
                 .In(x)
                 .In(Fv({3}, {1, 2, 4}), true)
                 .In(Tensor::FromVector<int8_t>({3}, {0, 1, -1}), true)
                 .Run1();
  EXPECT_EQ(I(q), (std::vector<int64_t>{1, 2, 0, -1, 0, -2}));
  // Per axis 0 with a negative axis spelling.
  Tensor q0 = NodeTest("QuantizeLinear", 13)
                  .Attr("axis", int64_t{-2})
                  .In(x)
                  .In(Fv({2}, {1, 2}))
                  .In(Tensor::FromVector<int8_t>({2}, {0, 0}))
                  .Run1();
  EXPECT_EQ(I(q0), (std::vector<int64_t>{1, 2, 4, 0, -1, -2}));  // -0.5 -> -0 -> 0
  // Blocks of 2 along axis 1: scale shape [2, 2] (ceil(3 / 2) = 2).
  Tensor qb = NodeTest("QuantizeLinear", 21)
                  .Attr("axis", int64_t{1})
                  .Attr("block_size", int64_t{2})
                  .In(x)
                  .In(Fv({2, 2}, {1, 4, 2, 1}))
                  .In(Tensor::FromVector<int8_t>({2, 2}, {0, 0, 0, 0}))
                  .Run1();
  EXPECT_EQ(I(qb), (std::vector<int64_t>{1, 2, 1, 0, -1, -4}));
  std::string err =
      NodeTest("QuantizeLinear", 13).Attr("axis", int64_t{1}).In(x).In(Fv({2}, {1, 2})).Error();
  EXPECT_NE(err.find("QuantizeLinear 'node1'"), std::string::npos) << err;
}

TEST(DequantizeLinearOp, PerTensorPerAxisAndInt32) {
  Tensor q = Tensor::FromVector<uint8_t>({4}, {0, 128, 130, 255});
  Tensor y = NodeTest("DequantizeLinear", 13)
                 .In(q)
                 .In(Tensor::Scalar(0.5f))
                 .In(Tensor::Scalar<uint8_t>(128))
                 .Run1();
  EXPECT_EQ(y.dtype(), DType::kF32);
  EXPECT_EQ(F(y), (std::vector<float>{-64, 0, 1, 63.5f}));
  Tensor qi = Tensor::FromVector<int8_t>({2, 2}, {-128, 1, 127, -1});
  Tensor ya = NodeTest("DequantizeLinear", 13)
                  .Attr("axis", int64_t{0})
                  .In(qi)
                  .In(Fv({2}, {1, 2}))
                  .In(Tensor::FromVector<int8_t>({2}, {0, -1}))
                  .Run1();
  EXPECT_EQ(F(ya), (std::vector<float>{-128, 1, 256, 0}));
  Tensor b = Tensor::FromVector<int32_t>({2}, {-1000, 7});
  EXPECT_EQ(F(NodeTest("DequantizeLinear", 13).In(b).In(Tensor::Scalar(0.25f)).Run1()),
            (std::vector<float>{-250, 1.75f}));
}

TEST(DequantizeLinearOp, Errors) {
  Tensor q = Tensor::FromVector<uint8_t>({2}, {1, 2});
  std::string err = NodeTest("DequantizeLinear", 13)
                        .In(q)
                        .In(Tensor::Scalar(1.0f))
                        .In(Tensor::Scalar<int8_t>(0))
                        .Error();
  EXPECT_NE(err.find("DequantizeLinear 'node1'"), std::string::npos) << err;
  EXPECT_NE(err.find("zero point"), std::string::npos) << err;
  err = NodeTest("DequantizeLinear", 13)
            .In(Tensor::FromVector<int32_t>({1}, {1}))
            .In(Tensor::Scalar(1.0f))
            .In(Tensor::Scalar<int32_t>(3))
            .Error();
  EXPECT_NE(err.find("int32"), std::string::npos) << err;
  err = NodeTest("DequantizeLinear", 13).In(q).In(Tensor::Scalar(-1.0f)).Error();
  EXPECT_NE(err.find("DequantizeLinear 'node1'"), std::string::npos) << err;
  err = NodeTest("DequantizeLinear", 13).In(Fv({1}, {1})).In(Tensor::Scalar(1.0f)).Error();
  EXPECT_NE(err.find("f32"), std::string::npos) << err;
}

}  // namespace
}  // namespace qforge::runtime
