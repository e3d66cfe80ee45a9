// Tests for the elementwise and reduction ops through ir::Graph + Session: attribute/input
// conventions per opset, broadcasting, dtypes and error messages. Kernel math is tested in
// kernels/ref/*_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "runtime/ops/node_test_util.h"

namespace qforge::runtime {
namespace {

using testing::F;
using testing::Fv;
using testing::I;
using testing::Iv;
using testing::NodeTest;

TEST(UnaryOps, EveryOpRunsWithItsDefaults) {
  const Tensor x = Fv({4}, {-2.0f, -0.5f, 0.5f, 3.0f});
  struct Case {
    const char* op;
    std::vector<float> want;
  };
  const float s = 1.0f / (1.0f + std::exp(-0.5f));
  const std::vector<Case> cases = {
      {"Relu", {0, 0, 0.5f, 3}},
      {"LeakyRelu", {-0.02f, -0.005f, 0.5f, 3}},  // alpha 0.01
      {"Sigmoid", {1 / (1 + std::exp(2.0f)), 1 - s, s, 1 / (1 + std::exp(-3.0f))}},
      {"HardSigmoid", {0.1f, 0.4f, 0.6f, 1.0f}},  // alpha 0.2, beta 0.5
      {"HardSwish", {-2 * (1.0f / 6), -0.5f * (0.5f - 0.5f / 6), 0.5f * (0.5f + 0.5f / 6), 3}},
      {"Tanh", {std::tanh(-2.0f), std::tanh(-0.5f), std::tanh(0.5f), std::tanh(3.0f)}},
      {"Erf", {std::erf(-2.0f), std::erf(-0.5f), std::erf(0.5f), std::erf(3.0f)}},
      {"Exp", {std::exp(-2.0f), std::exp(-0.5f), std::exp(0.5f), std::exp(3.0f)}},
      {"Neg", {2, 0.5f, -0.5f, -3}},
      {"Abs", {2, 0.5f, 0.5f, 3}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.op);
    std::vector<float> got = F(NodeTest(c.op, 17).In(x).Run1());
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], c.want[i], 1e-6f);
  }
  EXPECT_EQ(F(NodeTest("Sqrt", 17).In(Fv({2}, {4, 9})).Run1()), (std::vector<float>{2, 3}));
  EXPECT_EQ(F(NodeTest("LeakyRelu", 17).Attr("alpha", 0.5f).In(x).Run1())[0], -1.0f);
}

TEST(UnaryOps, GeluExactAndTanhApproximation) {
  const Tensor x = Fv({3}, {-1.0f, 0.0f, 1.0f});
  std::vector<float> exact = F(NodeTest("Gelu", 20).In(x).Run1());
  EXPECT_NEAR(exact[0], -0.15865525f, 1e-6f);
  EXPECT_EQ(exact[1], 0.0f);
  EXPECT_NEAR(exact[2], 0.84134475f, 1e-6f);
  std::vector<float> approx =
      F(NodeTest("Gelu", 20).Attr("approximate", std::string("tanh")).In(x).Run1());
  EXPECT_NEAR(approx[2], 0.84119199f, 1e-6f);
  EXPECT_NEAR(approx[0], -0.15880801f, 1e-6f);
  std::string err = NodeTest("Gelu", 20).Attr("approximate", std::string("erf")).In(x).Error();
  EXPECT_NE(err.find("Gelu 'node1'"), std::string::npos) << err;
  EXPECT_NE(err.find("approximate"), std::string::npos) << err;
}

TEST(UnaryOps, UnsupportedDtypeNamesTheNode) {
  std::string err = NodeTest("Sigmoid", 17).In(Iv({1, 2})).Error();
  EXPECT_NE(err.find("Sigmoid 'node1'"), std::string::npos) << err;
  EXPECT_NE(err.find("i64"), std::string::npos) << err;
  EXPECT_EQ(I(NodeTest("Relu", 17).In(Iv({-3, 4})).Run1()), (std::vector<int64_t>{0, 4}));
}

TEST(ClipOp, AttributesBeforeOpset11) {
  const Tensor x = Fv({4}, {-5, -1, 1, 5});
  EXPECT_EQ(F(NodeTest("Clip", 6).Attr("min", -2.0f).Attr("max", 2.0f).In(x).Run1()),
            (std::vector<float>{-2, -1, 1, 2}));
  EXPECT_EQ(F(NodeTest("Clip", 6).In(x).Run1()), F(x));
}

TEST(ClipOp, OptionalInputsFromOpset11) {
  const Tensor x = Fv({4}, {-5, -1, 1, 5});
  EXPECT_EQ(F(NodeTest("Clip", 13).In(x).In(Tensor::Scalar(-2.0f)).In(Tensor::Scalar(2.0f)).Run1()),
            (std::vector<float>{-2, -1, 1, 2}));
  EXPECT_EQ(F(NodeTest("Clip", 13).In(x).Skip().In(Tensor::Scalar(0.0f), true).Run1()),
            (std::vector<float>{-5, -1, 0, 0}));
  EXPECT_EQ(F(NodeTest("Clip", 13).In(x).In(Tensor::Scalar(0.0f)).Run1()),
            (std::vector<float>{0, 0, 1, 5}));
  // Integer Clip (opset 12+).
  Tensor xi = Tensor::FromVector<int8_t>({3}, {-100, 0, 100});
  EXPECT_EQ(I(NodeTest("Clip", 13)
                  .In(xi)
                  .In(Tensor::Scalar<int8_t>(-10))
                  .In(Tensor::Scalar<int8_t>(10))
                  .Run1()),
            (std::vector<int64_t>{-10, 0, 10}));
  std::string err = NodeTest("Clip", 13).In(x).In(Tensor::Scalar<int64_t>(0)).Error();
  EXPECT_NE(err.find("Clip 'node1'"), std::string::npos) << err;
  err = NodeTest("Clip", 13).In(x).In(Fv({2}, {0, 1})).Error();
  EXPECT_NE(err.find("scalar"), std::string::npos) << err;
}

TEST(BinaryOps, BroadcastingAndDtypes) {
  Tensor a = Fv({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(F(NodeTest("Add", 14).In(a).In(Fv({3}, {1, 1, 1})).Run1()),
            (std::vector<float>{2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(F(NodeTest("Sub", 14).In(a).In(Fv({2, 1}, {1, 2})).Run1()),
            (std::vector<float>{0, 1, 2, 2, 3, 4}));
  EXPECT_EQ(F(NodeTest("Mul", 14).In(Tensor::Scalar(2.0f), true).In(a).Run1()),
            (std::vector<float>{2, 4, 6, 8, 10, 12}));
  EXPECT_EQ(F(NodeTest("Div", 14).In(a).In(Tensor::Scalar(2.0f)).Run1()),
            (std::vector<float>{0.5f, 1, 1.5f, 2, 2.5f, 3}));
  EXPECT_EQ(I(NodeTest("Div", 14).In(Iv({7, -7})).In(Iv({2, 2})).Run1()),
            (std::vector<int64_t>{3, -3}));
  EXPECT_EQ(F(NodeTest("Pow", 15).In(Fv({2}, {2, 3})).In(Iv({2, 3})).Run1()),
            (std::vector<float>{4, 27}));
  Tensor eq = NodeTest("Equal", 13).In(Iv({1, 2, 3})).In(Iv({1, 0, 3})).Run1();
  EXPECT_EQ(eq.dtype(), DType::kBool);
  EXPECT_EQ(I(eq), (std::vector<int64_t>{1, 0, 1}));
  Tensor u = Tensor::FromVector<uint8_t>({2}, {250, 7});
  EXPECT_EQ(I(NodeTest("Add", 14).In(u).In(u).Run1()), (std::vector<int64_t>{244, 14}));
}

TEST(BinaryOps, ErrorsNameTheNode) {
  std::string err = NodeTest("Add", 14).In(Fv({2}, {1, 2})).In(Iv({1, 2})).Error();
  EXPECT_NE(err.find("Add 'node1'"), std::string::npos) << err;
  EXPECT_NE(err.find("dtype"), std::string::npos) << err;
  err = NodeTest("Mul", 14).In(Fv({2}, {1, 2})).In(Fv({3}, {1, 2, 3})).Error();
  EXPECT_NE(err.find("Mul 'node1'"), std::string::npos) << err;
  EXPECT_NE(err.find("broadcast"), std::string::npos) << err;
  err = NodeTest("Div", 14).In(Iv({1})).In(Iv({0})).Error();
  EXPECT_NE(err.find("division by zero"), std::string::npos) << err;
  err = NodeTest("Add", 14).In(Fv({1}, {1})).Error();
  EXPECT_NE(err.find("Add 'node1'"), std::string::npos) << err;
}

TEST(VariadicOps, MinMaxFoldAnyNumberOfInputs) {
  Tensor a = Fv({3}, {1, 5, 3});
  Tensor b = Fv({1}, {2});
  Tensor c = Fv({2, 1}, {0, 4});
  EXPECT_EQ(F(NodeTest("Max", 13).In(a).In(b).In(c).Run1()),
            (std::vector<float>{2, 5, 3, 4, 5, 4}));
  EXPECT_EQ(F(NodeTest("Min", 13).In(a).In(b).In(c).Run1()),
            (std::vector<float>{0, 0, 0, 1, 2, 2}));
  EXPECT_EQ(F(NodeTest("Min", 13).In(a).Run1()), F(a));
}

TEST(WhereOp, SelectsWithBroadcast) {
  Tensor cond = Tensor::FromVector<bool>({2, 1}, {true, false});
  Tensor y = NodeTest("Where", 16).In(cond).In(Fv({2}, {1, 2})).In(Tensor::Scalar(9.0f)).Run1();
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(F(y), (std::vector<float>{1, 2, 9, 9}));
  std::string err =
      NodeTest("Where", 16).In(Fv({1}, {1})).In(Fv({1}, {1})).In(Fv({1}, {1})).Error();
  EXPECT_NE(err.find("Where 'node1'"), std::string::npos) << err;
}

TEST(ReduceOps, AxesAttributeBeforeTheirInputOpset) {
  Tensor x = Fv({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor s = NodeTest("ReduceSum", 11).Attr("axes", std::vector<int64_t>{1}).In(x).Run1();
  EXPECT_EQ(s.shape(), (Shape{2, 1}));
  EXPECT_EQ(F(s), (std::vector<float>{6, 15}));
  Tensor m = NodeTest("ReduceMean", 13)
                 .Attr("axes", std::vector<int64_t>{-2})
                 .Attr("keepdims", int64_t{0})
                 .In(x)
                 .Run1();
  EXPECT_EQ(m.shape(), (Shape{3}));
  EXPECT_EQ(F(m), (std::vector<float>{2.5f, 3.5f, 4.5f}));
  Tensor all = NodeTest("ReduceMax", 13).In(x).Run1();  // no axes: all, keepdims
  EXPECT_EQ(all.shape(), (Shape{1, 1}));
  EXPECT_EQ(F(all), (std::vector<float>{6}));
}

TEST(ReduceOps, AxesInputAndNoopWithEmptyAxes) {
  Tensor x = Fv({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(F(NodeTest("ReduceSum", 13).In(x).In(Iv({0}), true).Run1()),
            (std::vector<float>{5, 7, 9}));
  EXPECT_EQ(F(NodeTest("ReduceMean", 18).In(x).In(Iv({1})).Run1()), (std::vector<float>{2, 5}));
  EXPECT_EQ(F(NodeTest("ReduceMax", 18).In(x).In(Iv({-1})).Run1()), (std::vector<float>{3, 6}));
  // Empty axes: everything, unless noop_with_empty_axes.
  EXPECT_EQ(F(NodeTest("ReduceSum", 13).In(x).In(Iv({})).Run1()), (std::vector<float>{21}));
  Tensor same =
      NodeTest("ReduceSum", 13).Attr("noop_with_empty_axes", int64_t{1}).In(x).In(Iv({})).Run1();
  EXPECT_EQ(same.shape(), x.shape());
  EXPECT_EQ(F(same), F(x));
  std::string err = NodeTest("ReduceSum", 13).In(x).In(Iv({2})).Error();
  EXPECT_NE(err.find("ReduceSum 'node1'"), std::string::npos) << err;
  EXPECT_NE(err.find("out of range"), std::string::npos) << err;
}

}  // namespace
}  // namespace qforge::runtime
