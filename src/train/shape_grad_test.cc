// Gradient checks of the data-movement ops (shape_grad.cc).
#include "train/test_util.h"

namespace qforge::train {
namespace {

using testing::ExpectGradOk;
using testing::MakeOneNode;
using testing::Random;
using I = std::vector<int64_t>;

Tensor Ints(std::vector<int64_t> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::FromVector<int64_t>({n}, v);
}

TEST(ShapeGrad, ReshapeFlattenSqueezeUnsqueeze) {
  ExpectGradOk(MakeOneNode("Reshape", {"x", "s"},
                           {{"x", Random({2, 3, 4}, 1)}, {"s", Ints({4, -1})}}, {"x"}));
  ExpectGradOk(
      MakeOneNode("Flatten", {"x"}, {{"x", Random({2, 3, 4}, 2)}}, {"x"}, {{"axis", int64_t{2}}}));
  ExpectGradOk(
      MakeOneNode("Squeeze", {"x", "a"}, {{"x", Random({2, 1, 4}, 3)}, {"a", Ints({1})}}, {"x"}));
  ExpectGradOk(
      MakeOneNode("Unsqueeze", {"x", "a"}, {{"x", Random({2, 4}, 4)}, {"a", Ints({0})}}, {"x"}));
  ExpectGradOk(MakeOneNode("Identity", {"x"}, {{"x", Random({3}, 5)}}, {"x"}));
}

TEST(ShapeGrad, TransposeConcatSplit) {
  ExpectGradOk(MakeOneNode("Transpose", {"x"}, {{"x", Random({2, 3, 4}, 6)}}, {"x"},
                           {{"perm", I{1, 2, 0}}}));
  ExpectGradOk(MakeOneNode("Transpose", {"x"}, {{"x", Random({2, 3}, 7)}}, {"x"}));
  ExpectGradOk(MakeOneNode(
      "Concat", {"a", "b", "c"},
      {{"a", Random({2, 1, 3}, 8)}, {"b", Random({2, 4, 3}, 9)}, {"c", Random({2, 2, 3}, 10)}},
      {"a", "b"}, {{"axis", int64_t{-2}}}));
  ExpectGradOk(MakeOneNode("Split", {"x", "sp"}, {{"x", Random({5, 3}, 11)}, {"sp", Ints({2, 3})}},
                           {"x"}, {{"axis", int64_t{0}}}, 2));
}

TEST(ShapeGrad, SliceGatherExpand) {
  ExpectGradOk(MakeOneNode("Slice", {"x", "st", "en", "ax", "sp"},
                           {{"x", Random({4, 6, 3}, 12)},
                            {"st", Ints({1, -1})},
                            {"en", Ints({100, 0})},
                            {"ax", Ints({0, 1})},
                            {"sp", Ints({2, -2})}},
                           {"x"}));
  ExpectGradOk(MakeOneNode(
      "Gather", {"x", "i"},
      {{"x", Random({3, 4, 2}, 13)}, {"i", Tensor::FromVector<int64_t>({2, 2}, {0, 2, -1, 0})}},
      {"x"}, {{"axis", int64_t{1}}}));
  ExpectGradOk(MakeOneNode("Gather", {"x", "i"},
                           {{"x", Random({3, 4}, 14)}, {"i", Tensor::Scalar<int64_t>(1)}}, {"x"}));
  ExpectGradOk(MakeOneNode("Expand", {"x", "s"},
                           {{"x", Random({3, 1}, 15)}, {"s", Ints({2, 3, 4})}}, {"x"}));
}

}  // namespace
}  // namespace qforge::train
