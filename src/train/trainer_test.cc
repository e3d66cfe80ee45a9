// Tests of the losses, optimizers, schedules and the training loop (determinism under a seed,
// resume == uninterrupted, learning a toy task, checkpoint errors).
#include "qforge/train/trainer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "qforge/train/loss.h"
#include "qforge/train/optimizer.h"
#include "train/test_util.h"

namespace qforge::train {
namespace {

using testing::Random;

// Finite-difference check of a loss gradient.
template <typename F>
void CheckLossGrad(const Tensor& x, F loss) {
  const LossResult r = loss(x);
  Tensor xp = x.Clone();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float x0 = xp.data<float>()[i];
    const double h = 1e-3;
    xp.data<float>()[i] = static_cast<float>(x0 + h);
    const double lp = loss(xp).loss;
    xp.data<float>()[i] = static_cast<float>(x0 - h);
    const double lm = loss(xp).loss;
    xp.data<float>()[i] = x0;
    EXPECT_NEAR((lp - lm) / (2 * h), r.grad.data<float>()[i], 2e-3) << i;
  }
}

TEST(Loss, GradientsMatchFiniteDifferences) {
  const Tensor logits = Random({3, 4}, 1, -2, 2);
  const Tensor labels = Tensor::FromVector<int64_t>({3}, {0, 3, 1});
  CheckLossGrad(logits, [&](const Tensor& x) { return CrossEntropy(x, labels); });
  const Tensor target = Random({3, 4}, 2);
  CheckLossGrad(logits, [&](const Tensor& x) { return MeanSquaredError(x, target); });
  CheckLossGrad(logits, [&](const Tensor& x) { return KlDivergence(x, target, 2.0f); });
  // Values: uniform logits give log(C); KL of identical distributions is 0.
  EXPECT_NEAR(
      CrossEntropy(Tensor(DType::kF32, {2, 4}), Tensor::FromVector<int64_t>({2}, {1, 2})).loss,
      std::log(4.0), 1e-9);
  EXPECT_NEAR(KlDivergence(target, target, 3.0f).loss, 0.0, 1e-9);
  EXPECT_THROW(CrossEntropy(logits, Tensor::FromVector<int64_t>({3}, {0, 4, 1})), Error);
}

TEST(Optimizer, SgdMomentumAndAdamWByHand) {
  std::map<std::string, Tensor> p = {{"w", Tensor::FromVector<float>({1}, {1.0f})}};
  const std::map<std::string, Tensor> g = {{"w", Tensor::FromVector<float>({1}, {0.5f})}};
  OptimizerOptions o;
  o.momentum = 0.9f;
  o.weight_decay = 0.1f;
  Optimizer sgd(o);
  sgd.Step(p, g, 0.1f);  // g' = 0.5 + 0.1 = 0.6, buf = 0.6, w = 1 - 0.06
  EXPECT_NEAR(p["w"].data<float>()[0], 0.94f, 1e-6);
  sgd.Step(p, g, 0.1f);  // g' = 0.5 + 0.094, buf = 0.54 + 0.594 = 1.134
  EXPECT_NEAR(p["w"].data<float>()[0], 0.94f - 0.1134f, 1e-6);
  o.kind = OptimizerOptions::Kind::kAdamW;
  Optimizer adam(o);
  p["w"] = Tensor::FromVector<float>({1}, {1.0f});
  adam.Step(p, g, 0.1f);  // w = 1 * (1 - 0.01) - 0.1 * 1 (m_hat / sqrt(v_hat) = 1)
  EXPECT_NEAR(p["w"].data<float>()[0], 0.89f, 1e-5);
}

TEST(Schedule, CosineStepWarmup) {
  ScheduleOptions s;
  EXPECT_FLOAT_EQ(LearningRate(s, 1.0f, 0, 100, 10), 1.0f);
  EXPECT_NEAR(LearningRate(s, 1.0f, 50, 100, 10), 0.5f, 1e-6);
  s.kind = ScheduleOptions::Kind::kStep;
  s.step_size = 2;
  s.gamma = 0.5f;
  EXPECT_FLOAT_EQ(LearningRate(s, 1.0f, 19, 100, 10), 1.0f);
  EXPECT_FLOAT_EQ(LearningRate(s, 1.0f, 20, 100, 10), 0.5f);
  EXPECT_FLOAT_EQ(LearningRate(s, 1.0f, 45, 100, 10), 0.25f);
  s.kind = ScheduleOptions::Kind::kConstant;
  s.warmup_steps = 4;
  EXPECT_FLOAT_EQ(LearningRate(s, 1.0f, 0, 100, 10), 0.25f);
  EXPECT_THROW(ParseScheduleKind("linear"), Error);
}

// Toy task: 3 classes of 1x6x6 images, class k has a bright 2x6 band at rows 2k..2k+1.
data::LabeledImages ToyData(int64_t n, uint64_t seed) {
  data::LabeledImages d;
  d.images = Random({n, 1, 6, 6}, seed, 0.0f, 0.3f);
  d.labels = Tensor(DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = i % 3;
    d.labels.data<int64_t>()[i] = k;
    for (int64_t r = 2 * k; r < 2 * k + 2; ++r)
      for (int64_t c = 0; c < 6; ++c) d.images.data<float>()[i * 36 + r * 6 + c] += 0.7f;
  }
  return d;
}

// Conv(1->4, 3x3, pad 1) -> BatchNorm -> Relu -> MaxPool 2 -> Flatten -> Gemm(36 -> 3).
ir::Graph ToyModel() {
  ir::Graph g;
  g.name = "toy";
  g.opset_imports[""] = 13;
  ir::ValueInfo in{
      "input",
      DType::kF32,
      true,
      {ir::Dim::Symbol("batch"), ir::Dim::Known(1), ir::Dim::Known(6), ir::Dim::Known(6)}};
  g.inputs.push_back(in);
  g.outputs.push_back({"logits", DType::kF32, false, {}});
  auto node = [&](std::string op, std::vector<std::string> ins, std::string out,
                  std::map<std::string, ir::AttrValue> attrs = {}) {
    ir::Node n;
    n.name = out;
    n.op_type = std::move(op);
    n.inputs = std::move(ins);
    n.outputs = {std::move(out)};
    n.attrs = std::move(attrs);
    g.nodes.push_back(std::move(n));
  };
  g.initializers["cw"] = Random({4, 1, 3, 3}, 11, -0.5f, 0.5f);
  g.initializers["cb"] = Tensor(DType::kF32, {4});
  g.initializers["s"] = Tensor::FromVector<float>({4}, {1, 1, 1, 1});
  g.initializers["b"] = Tensor(DType::kF32, {4});
  g.initializers["m"] = Tensor(DType::kF32, {4});
  g.initializers["v"] = Tensor::FromVector<float>({4}, {1, 1, 1, 1});
  g.initializers["fw"] = Random({3, 36}, 12, -0.2f, 0.2f);
  g.initializers["fb"] = Tensor(DType::kF32, {3});
  node("Conv", {"input", "cw", "cb"}, "c", {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  node("BatchNormalization", {"c", "s", "b", "m", "v"}, "bn");
  node("Relu", {"bn"}, "r");
  node("MaxPool", {"r"}, "p",
       {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}});
  node("Flatten", {"p"}, "f");
  node("Gemm", {"f", "fw", "fb"}, "logits", {{"transB", int64_t{1}}});
  return g;
}

TrainOptions ToyOptions() {
  TrainOptions o;
  o.epochs = 3;
  o.batch = 16;
  o.lr = 0.05f;
  o.augment.max_shift = 1;
  o.seed = 5;
  o.progress = false;
  o.threads = 1;
  return o;
}

std::vector<float> Weights(const ir::Graph& g) {
  std::vector<float> w;
  for (const auto& [name, t] : g.initializers)
    for (float v : t.span<float>()) w.push_back(v);
  return w;
}

TEST(Trainer, LearnsToyTaskDeterministically) {
  const auto train = ToyData(96, 1), test = ToyData(30, 2);
  const TrainResult a = Train(ToyModel(), train, test, ToyOptions());
  ASSERT_EQ(a.epochs.size(), 3u);
  EXPECT_LT(a.epochs.back().loss, a.epochs.front().loss);
  EXPECT_GE(a.epochs.back().test_accuracy, 0.9);
  EXPECT_NEAR(Evaluate(a.graph, test), a.epochs.back().test_accuracy, 1e-12);
  // Same seed, two threads: the same weights (the backward's reductions are ordered).
  TrainOptions o2 = ToyOptions();
  o2.threads = 2;
  const TrainResult b = Train(ToyModel(), train, test, o2);
  const std::vector<float> wa = Weights(a.graph), wb = Weights(b.graph);
  ASSERT_EQ(wa.size(), wb.size());
  double max_diff = 0;
  for (size_t i = 0; i < wa.size(); ++i)
    max_diff = std::max(max_diff, double(std::fabs(wa[i] - wb[i])));
  EXPECT_LT(max_diff, 1e-4);
  // Another seed: other weights.
  TrainOptions o3 = ToyOptions();
  o3.seed = 6;
  EXPECT_NE(Weights(Train(ToyModel(), train, test, o3).graph), wa);
}

TEST(Trainer, ResumeEqualsUninterruptedRun) {
  const auto train = ToyData(48, 3), test = ToyData(12, 4);
  const std::string dir = ::testing::TempDir() + "/qf_train_resume";
  std::filesystem::remove_all(dir);
  TrainOptions o = ToyOptions();
  o.optimizer.kind = OptimizerOptions::Kind::kAdamW;
  o.lr = 0.01f;
  TrainOptions first = o;
  first.checkpoint_dir = dir;
  first.epochs = 2;
  first.schedule.kind = ScheduleOptions::Kind::kConstant;  // resume needs the same schedule
  TrainOptions rest = first;
  rest.epochs = 3;
  rest.resume = true;
  TrainOptions whole = first;
  whole.epochs = 3;
  const TrainResult uninterrupted = Train(ToyModel(), train, test, whole);
  Train(ToyModel(), train, test, first);
  const TrainResult resumed = Train(ToyModel(), train, test, rest);
  EXPECT_EQ(resumed.first_epoch, 3);
  ASSERT_EQ(resumed.epochs.size(), 1u);
  EXPECT_EQ(Weights(resumed.graph), Weights(uninterrupted.graph));
  // A corrupt checkpoint is an error naming the file.
  { std::ofstream(dir + "/checkpoint.qfckpt", std::ios::trunc) << "garbage"; }
  try {
    Train(ToyModel(), train, test, rest);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.qfckpt"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Trainer, AugmentationIsPerSampleAndSeeded) {
  const auto d = ToyData(4, 5);
  AugmentOptions a = ParseAugment("shift1,flip");
  EXPECT_EQ(a.max_shift, 1);
  EXPECT_TRUE(a.hflip);
  const Tensor b1 = MakeBatch(d.images, {0, 1, 2, 3}, a, 9, 0);
  const Tensor b2 = MakeBatch(d.images, {2}, a, 9, 0);  // same sample, another batch
  for (int64_t i = 0; i < 36; ++i) EXPECT_EQ(b1.data<float>()[2 * 36 + i], b2.data<float>()[i]);
  const Tensor none = MakeBatch(d.images, {1}, ParseAugment("none"), 9, 0);
  for (int64_t i = 0; i < 36; ++i) EXPECT_EQ(none.data<float>()[i], d.images.data<float>()[36 + i]);
  EXPECT_THROW(ParseAugment("rotate"), Error);
}

TEST(Trainer, ReinitIsHeScaled) {
  // RMS of the Gemm weight (fan-in 36) over 20 seeds (2160 samples) is sqrt(2 / 36).
  double sq = 0;
  int64_t count = 0;
  ir::Graph g = ToyModel();
  for (uint64_t seed = 0; seed < 20; ++seed) {
    ReinitializeWeights(g, seed);
    const Tensor& w = g.initializers.at("fw");
    for (float v : w.span<float>()) sq += v * v;
    count += w.numel();
  }
  EXPECT_NEAR(std::sqrt(sq / count), std::sqrt(2.0 / 36), 0.015);
  for (float v : g.initializers.at("fb").span<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(g.initializers.at("v").data<float>()[0], 1.0f);
}

}  // namespace
}  // namespace qforge::train
