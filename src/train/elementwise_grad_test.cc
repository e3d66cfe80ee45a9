// Gradient checks of the elementwise ops and reductions (elementwise_grad.cc).
#include "train/test_util.h"

namespace qforge::train {
namespace {

using testing::ExpectGradOk;
using testing::MakeOneNode;
using testing::Random;
using testing::RandomAwayFromZero;

void CheckUnary(const std::string& op, Tensor x, std::map<std::string, ir::AttrValue> attrs = {}) {
  ExpectGradOk(MakeOneNode(op, {"x"}, {{"x", x}}, {"x"}, std::move(attrs)));
}

TEST(ElementwiseGrad, Activations) {
  CheckUnary("Relu", RandomAwayFromZero({2, 3, 4}, 1));
  CheckUnary("LeakyRelu", RandomAwayFromZero({2, 3, 4}, 2), {{"alpha", 0.1f}});
  CheckUnary("Sigmoid", Random({3, 5}, 3, -3, 3));
  CheckUnary("Tanh", Random({3, 5}, 4, -2, 2));
  CheckUnary("Erf", Random({3, 5}, 5, -2, 2));
  CheckUnary("Gelu", Random({3, 5}, 6, -3, 3));
  CheckUnary("Gelu", Random({3, 5}, 7, -3, 3), {{"approximate", std::string("tanh")}});
  CheckUnary("Sqrt", Random({3, 5}, 8, 0.5f, 3));
  CheckUnary("Exp", Random({3, 5}, 9, -1, 1));
  CheckUnary("Neg", Random({3, 5}, 10));
  CheckUnary("HardSwish", Random({4, 5}, 11, -2.5f, 2.5f));
  CheckUnary("HardSigmoid", Random({4, 5}, 12, -2, 2));
}

TEST(ElementwiseGrad, ClipInputsAndAttributes) {
  // Values away from the bounds 0 and 0.5 (kinks).
  Tensor x = Random({4, 6}, 13, -1, 1);
  for (float& v : x.span<float>())
    if (std::fabs(v) < 0.05f || std::fabs(v - 0.5f) < 0.05f) v += 0.12f;
  auto m =
      MakeOneNode("Clip", {"x", "lo", "hi"},
                  {{"x", x}, {"lo", Tensor::Scalar(0.0f)}, {"hi", Tensor::Scalar(0.5f)}}, {"x"});
  ExpectGradOk(m, {"lo", "hi"});
  ExpectGradOk(MakeOneNode("Clip", {"x"}, {{"x", x}}, {"x"}, {{"min", 0.0f}, {"max", 0.5f}}, 1,
                           /*opset=*/6));
}

TEST(ElementwiseGrad, BinaryWithBroadcasting) {
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    SCOPED_TRACE(op);
    Tensor b = Random({3, 1, 5}, 21, 0.5f, 2.0f);  // away from 0 for Div
    auto m = MakeOneNode(op, {"a", "b"}, {{"a", Random({2, 3, 4, 5}, 20)}, {"b", b}}, {"a"});
    ExpectGradOk(m);
    // Scalar and same-shape operands.
    ExpectGradOk(MakeOneNode(
        op, {"a", "s"}, {{"a", Random({4, 3}, 22)}, {"s", Tensor::FromVector<float>({1}, {1.5f})}},
        {"a"}));
    ExpectGradOk(MakeOneNode(op, {"a", "c"},
                             {{"a", Random({4, 3}, 23)}, {"c", Random({4, 3}, 24, 0.5f, 1.5f)}},
                             {"a", "c"}));
  }
}

TEST(ElementwiseGrad, SameInputTwice) {
  // y = x * x: both uses of x accumulate (dy/dx = 2x).
  ExpectGradOk(MakeOneNode("Mul", {"x", "x"}, {{"x", Random({3, 4}, 30)}}, {"x"}));
}

TEST(ElementwiseGrad, Reductions) {
  ExpectGradOk(MakeOneNode("ReduceMean", {"x"}, {{"x", Random({2, 3, 4}, 40)}}, {"x"},
                           {{"axes", std::vector<int64_t>{1}}, {"keepdims", int64_t{0}}}));
  ExpectGradOk(MakeOneNode("ReduceMean", {"x"}, {{"x", Random({2, 3, 4}, 41)}}, {"x"},
                           {{"axes", std::vector<int64_t>{-1, 0}}}));
  ExpectGradOk(MakeOneNode("ReduceMean", {"x"}, {{"x", Random({2, 3, 4}, 42)}}, {"x"}));
  ExpectGradOk(MakeOneNode(
      "ReduceSum", {"x", "axes"},
      {{"x", Random({2, 3, 4}, 43)}, {"axes", Tensor::FromVector<int64_t>({1}, {2})}}, {"x"}));
}

}  // namespace
}  // namespace qforge::train
