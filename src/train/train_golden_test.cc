// Golden test against PyTorch (fixture from scripts/make_train_golden.py): one training step
// of a conv-bn-relu-pool-gemm model — logits, loss, every gradient, BatchNorm running
// statistics, and the weights after one SGD step and after one AdamW step.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "qforge/data/npy.h"
#include "qforge/onnx/onnx.h"
#include "qforge/train/autograd.h"
#include "qforge/train/loss.h"
#include "qforge/train/optimizer.h"

namespace qforge::train {
namespace {

const std::string kDir = "tests/data/train_golden/";

Tensor Golden(const std::string& name) { return data::ReadNpy(kDir + name + ".npy"); }
std::string Safe(const std::string& n) {
  return std::regex_replace(n, std::regex("[^A-Za-z0-9_]"), "_");
}

// mask (optional): only elements where mask[i] != 0 are compared.
void ExpectClose(const Tensor& got, const Tensor& want, double tol, const std::string& what,
                 const std::vector<bool>& mask = {}) {
  ASSERT_EQ(got.numel(), want.numel()) << what;
  double max_err = 0;
  for (int64_t i = 0; i < got.numel(); ++i)
    if (mask.empty() || mask[i])
      max_err = std::max(max_err, std::fabs(got.GetAsDouble(i) - want.GetAsDouble(i)) /
                                      std::max(1.0, std::fabs(want.GetAsDouble(i))));
  EXPECT_LE(max_err, tol) << what;
}

struct Step {
  Autograd ag;
  LossResult loss;
  Tensor logits;
};

Step ForwardBackward() {
  ir::Graph g = onnx_io::LoadModel(kDir + "model.onnx");
  Step s{Autograd(g, DefaultTrainable(g)), {}, {}};
  s.logits = s.ag.Forward({{"input", Golden("x")}}, /*training=*/true).at("logits");
  s.loss = CrossEntropy(s.logits, Golden("labels"));
  s.ag.Backward({{"logits", s.loss.grad}});
  return s;
}

TEST(TrainGolden, LogitsLossGradientsAndRunningStatistics) {
  Step s = ForwardBackward();
  EXPECT_EQ(s.ag.trainable(), (std::set<std::string>{"conv.weight", "conv.bias", "bn.weight",
                                                     "bn.bias", "fc.weight", "fc.bias"}));
  ExpectClose(s.logits, Golden("logits"), 1e-5, "logits");
  EXPECT_NEAR(s.loss.loss, Golden("loss").GetAsDouble(0), 1e-5);
  for (const auto& [name, g] : s.ag.grads())
    ExpectClose(g, Golden("grad__" + Safe(name)), 1e-4, name);
  for (const char* name : {"bn.running_mean", "bn.running_var"})
    ExpectClose(s.ag.graph().initializers.at(name), Golden("running__" + Safe(name)), 1e-5, name);
}

TEST(TrainGolden, OneSgdAndOneAdamWStep) {
  for (const char* kind : {"sgd", "adamw"}) {
    Step s = ForwardBackward();
    OptimizerOptions o;
    o.kind = ParseOptimizerKind(kind);
    o.momentum = 0.9f;
    o.weight_decay = o.kind == OptimizerOptions::Kind::kSgd ? 1e-3f : 0.1f;
    Optimizer opt(o);
    opt.Step(s.ag.graph().initializers, s.ag.grads(),
             o.kind == OptimizerOptions::Kind::kSgd ? 0.1f : 0.01f);
    for (const auto& [name, g] : s.ag.grads()) {
      // Adam's first step moves every weight by about lr * sign(gradient); the conv bias
      // (followed by BatchNorm) has a gradient that is zero up to rounding noise (~1e-9), whose
      // sign differs between implementations, so such elements are not compared.
      std::vector<bool> mask;
      if (o.kind == OptimizerOptions::Kind::kAdamW) {
        const Tensor tg = Golden("grad__" + Safe(name));
        for (int64_t i = 0; i < tg.numel(); ++i)
          mask.push_back(std::fabs(tg.GetAsDouble(i)) > 1e-6);
      }
      ExpectClose(s.ag.graph().initializers.at(name), Golden(std::string(kind) + "__" + Safe(name)),
                  1e-4, std::string(kind) + " " + name, mask);
    }
  }
}

}  // namespace
}  // namespace qforge::train
