// Gradient checks of Conv (plain, strided/padded, grouped, depthwise, 1-D, SAME), ConvTranspose,
// Gemm (all transposes, broadcast C) and MatMul (batched, broadcast, 1-D) (linear_grad.cc).
#include "train/test_util.h"

namespace qforge::train {
namespace {

using testing::ExpectGradOk;
using testing::MakeOneNode;
using testing::Random;
using I = std::vector<int64_t>;

TEST(LinearGrad, Conv) {
  ExpectGradOk(MakeOneNode(
      "Conv", {"x", "w", "b"},
      {{"x", Random({2, 3, 6, 5}, 1)}, {"w", Random({4, 3, 3, 3}, 2)}, {"b", Random({4}, 3)}},
      {"x"}));
  // Stride, pads, dilation.
  ExpectGradOk(MakeOneNode(
      "Conv", {"x", "w"}, {{"x", Random({1, 2, 7, 7}, 4)}, {"w", Random({3, 2, 3, 2}, 5)}}, {"x"},
      {{"strides", I{2, 1}}, {"pads", I{1, 0, 1, 1}}, {"dilations", I{1, 2}}}));
}

TEST(LinearGrad, GroupedDepthwiseAndOneD) {
  ExpectGradOk(MakeOneNode(
      "Conv", {"x", "w", "b"},
      {{"x", Random({2, 4, 5, 5}, 6)}, {"w", Random({6, 2, 3, 3}, 7)}, {"b", Random({6}, 8)}},
      {"x"}, {{"group", int64_t{2}}, {"pads", I{1, 1, 1, 1}}}));
  ExpectGradOk(MakeOneNode(
      "Conv", {"x", "w", "b"},
      {{"x", Random({2, 3, 6, 6}, 9)}, {"w", Random({3, 1, 3, 3}, 10)}, {"b", Random({3}, 11)}},
      {"x"}, {{"group", int64_t{3}}, {"strides", I{2, 2}}, {"pads", I{1, 1, 1, 1}}}));
  ExpectGradOk(MakeOneNode("Conv", {"x", "w"},
                           {{"x", Random({2, 2, 9}, 12)}, {"w", Random({3, 2, 3}, 13)}}, {"x"},
                           {{"auto_pad", std::string("SAME_UPPER")}, {"strides", I{2}}}));
}

TEST(LinearGrad, ConvWithTwoThreads) {
  // The backward splits samples over threads with per-thread weight-gradient buffers.
  GradCheckOptions opt;
  opt.threads = 2;
  ExpectGradOk(MakeOneNode("Conv", {"x", "w", "b"},
                           {{"x", Random({3, 2, 5, 5}, 40)},
                            {"w", Random({4, 2, 3, 3}, 41)},
                            {"b", Random({4}, 42)}},
                           {"x"}, {{"pads", I{1, 1, 1, 1}}}),
               {}, opt);
}

TEST(LinearGrad, ConvTranspose) {
  ExpectGradOk(MakeOneNode(
      "ConvTranspose", {"x", "w", "b"},
      {{"x", Random({2, 3, 4, 3}, 14)}, {"w", Random({3, 2, 3, 3}, 15)}, {"b", Random({2}, 16)}},
      {"x"}, {{"strides", I{2, 2}}, {"pads", I{1, 0, 1, 1}}}));
  ExpectGradOk(
      MakeOneNode("ConvTranspose", {"x", "w"},
                  {{"x", Random({1, 4, 3, 3}, 17)}, {"w", Random({4, 1, 2, 2}, 18)}}, {"x"},
                  {{"group", int64_t{2}}, {"strides", I{2, 2}}, {"output_padding", I{1, 0}}}));
}

TEST(LinearGrad, Gemm) {
  for (int64_t ta : {0, 1})
    for (int64_t tb : {0, 1}) {
      SCOPED_TRACE(std::to_string(ta) + std::to_string(tb));
      const Shape as = ta ? Shape{5, 3} : Shape{3, 5};
      const Shape bs = tb ? Shape{4, 5} : Shape{5, 4};
      ExpectGradOk(
          MakeOneNode("Gemm", {"a", "b", "c"},
                      {{"a", Random(as, 20)}, {"b", Random(bs, 21)}, {"c", Random({4}, 22)}}, {"a"},
                      {{"transA", ta}, {"transB", tb}, {"alpha", 0.7f}, {"beta", 1.3f}}));
    }
  ExpectGradOk(MakeOneNode(
      "Gemm", {"a", "b", "c"},
      {{"a", Random({3, 5}, 23)}, {"b", Random({5, 4}, 24)}, {"c", Random({3, 4}, 25)}}, {"a"}));
}

TEST(LinearGrad, MatMul) {
  ExpectGradOk(MakeOneNode("MatMul", {"a", "b"},
                           {{"a", Random({2, 3, 4}, 30)}, {"b", Random({4, 5}, 31)}}, {"a"}));
  ExpectGradOk(MakeOneNode("MatMul", {"a", "b"},
                           {{"a", Random({2, 1, 3, 4}, 32)}, {"b", Random({3, 4, 2}, 33)}},
                           {"a", "b"}));
  ExpectGradOk(MakeOneNode("MatMul", {"a", "b"},
                           {{"a", Random({4}, 34)}, {"b", Random({2, 4, 3}, 35)}}, {"a", "b"}));
  ExpectGradOk(MakeOneNode("MatMul", {"a", "b"},
                           {{"a", Random({3, 4}, 36)}, {"b", Random({4}, 37)}}, {"a", "b"}));
}

}  // namespace
}  // namespace qforge::train
