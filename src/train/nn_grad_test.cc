// Gradient checks of BatchNormalization (training and evaluation), pooling, Softmax,
// LogSoftmax, LayerNormalization and Dropout (nn_grad.cc), plus BatchNorm's running statistics.
#include "qforge/train/autograd.h"
#include "train/test_util.h"

namespace qforge::train {
namespace {

using testing::ExpectGradOk;
using testing::MakeOneNode;
using testing::Random;
using I = std::vector<int64_t>;

testing::OneNode BatchNorm(uint64_t seed) {
  return MakeOneNode("BatchNormalization", {"x", "s", "b", "m", "v"},
                     {{"x", Random({3, 4, 3, 2}, seed, -2, 2)},
                      {"s", Random({4}, seed + 1, 0.5f, 1.5f)},
                      {"b", Random({4}, seed + 2)},
                      {"m", Random({4}, seed + 3)},
                      {"v", Random({4}, seed + 4, 0.5f, 2.0f)}},
                     {"x"}, {{"epsilon", 1e-3f}, {"momentum", 0.8f}});
}

TEST(NnGrad, BatchNormTrainingAndEvaluation) {
  GradCheckOptions opt;
  ExpectGradOk(BatchNorm(1), {"m", "v"}, opt);
  opt.training = false;
  ExpectGradOk(BatchNorm(2), {"m", "v"}, opt);
}

TEST(NnGrad, BatchNormUpdatesRunningStatistics) {
  auto m = BatchNorm(3);
  const Tensor x = m.feeds.at("x");
  Autograd ag(m.graph, {"s", "b"});
  ag.Forward(m.feeds, /*training=*/true);
  // Channel 1: mean and unbiased variance of its 18 values.
  double sum = 0, sq = 0;
  std::vector<float> vals;
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t i = 0; i < 6; ++i) vals.push_back(x.data<float>()[(n * 4 + 1) * 6 + i]);
  for (float v : vals) sum += v;
  const double mean = sum / vals.size();
  for (float v : vals) sq += (v - mean) * (v - mean);
  const double var = sq / (vals.size() - 1);
  const float m0 = m.graph.initializers.at("m").data<float>()[1];
  const float v0 = m.graph.initializers.at("v").data<float>()[1];
  EXPECT_NEAR(ag.graph().initializers.at("m").data<float>()[1], 0.8 * m0 + 0.2 * mean, 1e-5);
  EXPECT_NEAR(ag.graph().initializers.at("v").data<float>()[1], 0.8 * v0 + 0.2 * var, 1e-5);
  // Evaluation leaves them alone.
  ag.Forward(m.feeds, /*training=*/false);
  EXPECT_NEAR(ag.graph().initializers.at("m").data<float>()[1], 0.8 * m0 + 0.2 * mean, 1e-5);
  // The caller's graph is untouched.
  EXPECT_EQ(m.graph.initializers.at("m").data<float>()[1], m0);
}

TEST(NnGrad, Pooling) {
  // Distinct values so the max is unique and stays so under the finite-difference step.
  Tensor x(DType::kF32, {2, 2, 5, 6});
  std::vector<float> perm(x.numel());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<float>((i * 37) % perm.size());
  // Spacing 0.05 > twice the finite-difference step (0.01 * max(1, |x|) <= 0.03).
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = (perm[i] - 60.0f) * 0.05f;
  ExpectGradOk(MakeOneNode("MaxPool", {"x"}, {{"x", x}}, {"x"},
                           {{"kernel_shape", I{2, 2}}, {"strides", I{2, 2}}}));
  ExpectGradOk(
      MakeOneNode("MaxPool", {"x"}, {{"x", x}}, {"x"},
                  {{"kernel_shape", I{3, 3}}, {"pads", I{1, 1, 1, 1}}, {"strides", I{2, 1}}}));
  ExpectGradOk(
      MakeOneNode("AveragePool", {"x"}, {{"x", Random({2, 2, 5, 6}, 1)}}, {"x"},
                  {{"kernel_shape", I{3, 2}}, {"pads", I{1, 1, 1, 0}}, {"strides", I{2, 2}}}));
  ExpectGradOk(MakeOneNode(
      "AveragePool", {"x"}, {{"x", Random({2, 2, 5, 6}, 2)}}, {"x"},
      {{"kernel_shape", I{3, 3}}, {"pads", I{1, 1, 1, 1}}, {"count_include_pad", int64_t{1}}}));
  ExpectGradOk(MakeOneNode("GlobalAveragePool", {"x"}, {{"x", Random({2, 3, 4, 5}, 3)}}, {"x"}));
}

TEST(NnGrad, SoftmaxAndLogSoftmax) {
  ExpectGradOk(MakeOneNode("Softmax", {"x"}, {{"x", Random({3, 5}, 4, -2, 2)}}, {"x"}));
  ExpectGradOk(MakeOneNode("Softmax", {"x"}, {{"x", Random({2, 4, 3}, 5, -2, 2)}}, {"x"},
                           {{"axis", int64_t{1}}}));
  ExpectGradOk(MakeOneNode("LogSoftmax", {"x"}, {{"x", Random({3, 5}, 6, -2, 2)}}, {"x"}));
  // Opset 11: coerced to 2-D at axis 1.
  ExpectGradOk(
      MakeOneNode("Softmax", {"x"}, {{"x", Random({2, 3, 2}, 7, -2, 2)}}, {"x"}, {}, 1, 11));
}

TEST(NnGrad, LayerNormalization) {
  ExpectGradOk(MakeOneNode("LayerNormalization", {"x", "s", "b"},
                           {{"x", Random({2, 3, 8}, 8, -2, 2)},
                            {"s", Random({8}, 9, 0.5f, 1.5f)},
                            {"b", Random({8}, 10)}},
                           {"x"}));
  ExpectGradOk(
      MakeOneNode("LayerNormalization", {"x", "s"},
                  {{"x", Random({3, 2, 4}, 11, -2, 2)}, {"s", Random({2, 4}, 12, 0.5f, 1.5f)}},
                  {"x"}, {{"axis", int64_t{1}}}));
}

TEST(NnGrad, Dropout) {
  auto m = MakeOneNode("Dropout", {"x", "r"},
                       {{"x", Random({4, 16}, 13)}, {"r", Tensor::Scalar(0.25f)}}, {"x"});
  ExpectGradOk(m, {"r"});
  // Training drops about a quarter and scales the rest by 4/3; evaluation is the identity.
  Autograd ag(m.graph, {});
  const Tensor y = ag.Forward(m.feeds, true, 7).at("y0");
  int zeros = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const float xv = m.feeds.at("x").data<float>()[i], yv = y.data<float>()[i];
    if (yv == 0.0f)
      ++zeros;
    else
      EXPECT_NEAR(yv, xv / 0.75f, 1e-6);
  }
  EXPECT_GT(zeros, 4);
  EXPECT_LT(zeros, 32);
  const Tensor e = ag.Forward(m.feeds, false).at("y0");
  for (int64_t i = 0; i < e.numel(); ++i)
    EXPECT_EQ(e.data<float>()[i], m.feeds.at("x").data<float>()[i]);
}

}  // namespace
}  // namespace qforge::train
