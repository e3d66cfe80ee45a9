// Tests of the QAT graph transform and export (train/qat.h) and of the FakeQuant training op, on
// the bundled Fashion-MNIST CNN with a small calibration on random images.
#include "qforge/train/qat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "qforge/calib/calibrator.h"
#include "qforge/onnx/onnx.h"
#include "qforge/passes/passes.h"
#include "qforge/passes/quantize.h"
#include "qforge/runtime/session.h"
#include "qforge/train/autograd.h"
#include "qforge/train/grad_check.h"

namespace qforge::train {
namespace {

Tensor RandomImages(int64_t n, uint64_t seed) {
  Tensor t(DType::kF32, {n, 1, 28, 28});
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (float& v : t.span<float>()) v = u(rng);
  return t;
}

struct Fixture {
  ir::Graph fp32;
  calib::CalibTable table;
};

const Fixture& Cnn() {
  static const Fixture f = [] {
    Fixture r;
    r.fp32 = onnx_io::LoadModel("models/fmnist_cnn.onnx");
    runtime::Session session(r.fp32);
    calib::Calibrator cal(session, calib::ObserverConfig{});
    for (uint64_t s = 0; s < 2; ++s) cal.Run({{"input", RandomImages(16, s)}}, 16);
    r.table = cal.Table();
    return r;
  }();
  return f;
}

bool SameTensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

int CountOps(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node& node : g.nodes) n += node.op_type == op;
  return n;
}

TEST(Qat, TrainingGraphReplacesQdqByFakeQuant) {
  QatModel m = PrepareQat(Cnn().fp32, Cnn().table, QatOptions{});
  EXPECT_EQ(CountOps(m.graph, "QuantizeLinear"), 0);
  EXPECT_EQ(CountOps(m.graph, "DequantizeLinear"), 0);
  EXPECT_EQ(CountOps(m.graph, "BatchNormalization"), 0);  // folded before QAT
  EXPECT_EQ(CountOps(m.graph, kFakeQuantOp), static_cast<int>(m.sites.size()));
  int weights = 0, acts = 0;
  for (const FakeQuantSite& s : m.sites) {
    weights += s.kind == FakeQuantSite::Kind::kWeight;
    acts += s.kind == FakeQuantSite::Kind::kActivation;
    EXPECT_EQ(m.graph.initializers.at(s.scale).dtype(), DType::kF32);
    EXPECT_EQ(m.graph.initializers.at(s.zero_point).dtype(), DType::kF32);
  }
  EXPECT_EQ(weights, 4);  // 2 Conv + 2 Gemm
  EXPECT_GE(acts, 4);
  EXPECT_EQ(m.biases.size(), 4u);
  EXPECT_EQ(m.weights.size(), 8u);
  EXPECT_TRUE(m.quant_params.empty());  // ste trains no quantizer parameter
  // The quantizers sit where the static quantizer put its Q/DQ: as many activation sites as
  // QuantizeLinear nodes in the template.
  EXPECT_EQ(acts, CountOps(m.qdq, "QuantizeLinear"));

  QatOptions lsq;
  lsq.estimator = Estimator::kLsq;
  const QatModel ml = PrepareQat(Cnn().fp32, Cnn().table, lsq);
  EXPECT_EQ(ml.quant_params.size(), static_cast<size_t>(weights + 2 * acts));
}

// Without training, the export is the static quantizer's graph, bit for bit.
TEST(Qat, UntrainedExportEqualsStaticPtq) {
  const QatModel m = PrepareQat(Cnn().fp32, Cnn().table, QatOptions{});
  const ir::Graph q = ExportQdq(m);
  const ir::Graph ptq = passes::QuantizeStatic(Cnn().fp32, Cnn().table).graph;
  ASSERT_EQ(q.initializers.size(), ptq.initializers.size());
  for (const auto& [name, t] : ptq.initializers) {
    ASSERT_TRUE(q.initializers.count(name)) << name;
    EXPECT_TRUE(SameTensor(q.initializers.at(name), t)) << name;
  }
  EXPECT_EQ(ir::ToText(q), ir::ToText(ptq));
}

TEST(Qat, Int4WeightsExportInRange) {
  QatOptions o;
  o.bits_w = 4;
  const QatModel m = PrepareQat(Cnn().fp32, Cnn().table, o);
  const ir::Graph q = ExportQdq(m);
  for (const FakeQuantSite& s : m.sites) {
    if (s.kind != FakeQuantSite::Kind::kWeight) continue;
    const Tensor& w = q.initializers.at(s.qdq_quantized);
    int lo = 0, hi = 0;
    for (int8_t v : w.span<int8_t>()) lo = std::min<int>(lo, v), hi = std::max<int>(hi, v);
    EXPECT_EQ(lo, -7) << s.input;  // max |W_c| / 7: some channel reaches both ends
    EXPECT_EQ(hi, 7) << s.input;
  }
}

TEST(Qat, BadOptionsThrow) {
  QatOptions o;
  o.bits_w = 3;
  EXPECT_THROW(PrepareQat(Cnn().fp32, Cnn().table, o), Error);
  o.bits_w = 8;
  o.bits_a = 2;
  EXPECT_THROW(PrepareQat(Cnn().fp32, Cnn().table, o), Error);
  EXPECT_THROW(PrepareQat(Cnn().fp32, calib::CalibTable{}, QatOptions{}), Error);
}

// Runs the training graph's evaluation forward (autograd engine) and the exported QDQ graph on
// the runtime (fp32 with QuantizeLinear / DequantizeLinear), and the lowered integer graph.
struct Outputs {
  std::vector<float> fake, qdq, integer;
};
Outputs RunAll(const QatModel& m, const Tensor& images) {
  Outputs o;
  Autograd ag(m.graph, {});
  o.fake = ag.Forward({{"input", images}}, /*training=*/false).at("logits").ToFloatVector();
  const ir::Graph q = ExportQdq(m);
  runtime::Session qs(q);
  o.qdq = qs.Run({{"input", images}}).at("logits").ToFloatVector();
  ir::Graph lowered = q;
  EXPECT_GT(passes::LowerQdqToInteger(lowered), 0);
  passes::RunExecutionPipeline(lowered);
  runtime::Session is(lowered);
  o.integer = is.Run({{"input", images}}).at("logits").ToFloatVector();
  return o;
}

// The fake-quantized forward equals the exported QDQ graph up to the int32 bias rounding (exactly,
// once the biases are snapped), and the integer runtime agrees on (almost) every prediction.
TEST(Qat, FakeQuantForwardMatchesExportAndIntegerRuntime) {
  for (int bits_a : {8, 4}) {
    QatOptions opt;
    opt.bits_a = bits_a;
    opt.bits_w = bits_a == 8 ? 8 : 4;
    QatModel m = PrepareQat(Cnn().fp32, Cnn().table, opt);
    const Tensor images = RandomImages(32, 7);
    const Outputs o = RunAll(m, images);
    ASSERT_EQ(o.fake.size(), 320u);
    // logits are dequantized uint8: equal, or one output step apart where a bias rounding (or
    // float summation order) moves a value across a rounding threshold.
    float step = 0;
    for (const FakeQuantSite& s : m.sites)
      if (s.output == "logits") step = m.graph.initializers.at(s.scale).data<float>()[0];
    ASSERT_GT(step, 0.0f);
    int differ = 0, agree = 0;
    for (size_t i = 0; i < o.fake.size(); ++i) {
      EXPECT_LE(std::abs(o.fake[i] - o.qdq[i]), step * 1.001f) << i;
      differ += o.fake[i] != o.qdq[i];
    }
    EXPECT_LE(differ, 64) << "bits_a " << bits_a;
    // With the biases snapped to their int32 grid the two are bit-identical: the fake
    // quantizers compute exactly what QuantizeLinear / DequantizeLinear compute.
    SnapBiases(m);
    const Outputs snapped = RunAll(m, images);
    for (size_t i = 0; i < snapped.fake.size(); ++i)
      ASSERT_EQ(snapped.fake[i], snapped.qdq[i]) << "bits_a " << bits_a << " logit " << i;
    for (int b = 0; b < 32; ++b) {
      auto argmax = [&](const std::vector<float>& v) {
        return std::max_element(v.begin() + b * 10, v.begin() + b * 10 + 10) - v.begin();
      };
      agree += argmax(o.fake) == argmax(o.integer);
    }
    EXPECT_GE(agree, 31) << "bits_a " << bits_a;
  }
}

// One FakeQuant node: soft is differentiable in x (finite differences away from cell edges); the
// lsq gradients flow to scale and zero point; ste observers move the range while training.
ir::Graph OneFakeQuant(const std::string& estimator, Tensor scale, Tensor zero, int bits,
                       bool is_signed, int64_t freeze_step = 10) {
  ir::Graph g;
  g.name = "fq";
  g.opset_imports[""] = 17;
  g.opset_imports[kFakeQuantDomain] = 1;
  ir::Node n;
  n.name = "fq";
  n.op_type = kFakeQuantOp;
  n.domain = kFakeQuantDomain;
  n.inputs = {"x", "s", "z"};
  n.outputs = {"y"};
  n.attrs["bits"] = int64_t{bits};
  n.attrs["signed"] = int64_t{is_signed};
  n.attrs["restricted"] = int64_t{is_signed};
  n.attrs["axis"] = int64_t{0};
  n.attrs["estimator"] = estimator;
  n.attrs["soft_k_start"] = 3.0f;
  n.attrs["soft_anneal_steps"] = int64_t{100};
  n.attrs["observer_freeze_step"] = freeze_step;
  n.attrs["observer_momentum"] = 0.5f;
  g.nodes.push_back(n);
  ir::ValueInfo x{"x", DType::kF32, true, {ir::Dim{3}, ir::Dim{8}}};
  g.inputs.push_back(x);
  g.outputs.push_back({"y", DType::kF32, false, {}});
  g.initializers["s"] = std::move(scale);
  g.initializers["z"] = std::move(zero);
  return g;
}

// TrainQat updates with the training module's AdamW in two parameter groups: after the first step
// (cosine factor 1, bias-corrected m / sqrt(v) = sign(g) for |g| >> epsilon) weights move by at
// most lr after their decoupled decay, lsq scales by at most lr_quant with no decay.
TEST(Qat, TrainQatFirstStepIsAdamWWithParameterGroups) {
  QatOptions qo;
  qo.estimator = Estimator::kLsq;
  const QatModel before = PrepareQat(Cnn().fp32, Cnn().table, qo);
  QatModel m = before;
  data::LabeledImages train;
  train.images = RandomImages(8, 7);
  train.labels = Tensor(DType::kI64, {8});
  for (int64_t i = 0; i < 8; ++i) train.labels.data<int64_t>()[i] = i % 10;
  QatTrainOptions to;
  to.batch = 8;
  to.lr = 1e-3;
  to.lr_quant = 1e-4;
  to.weight_decay = 0.5;
  to.threads = 1;
  const QatTrainResult r = TrainQat(m, Cnn().fp32, train, to);
  EXPECT_EQ(r.steps, 1);
  EXPECT_TRUE(std::isfinite(r.final_loss));

  // An AdamW first step moves each element by lr * |g| / (|g| + eps) <= lr after the decoupled
  // decay p *= 1 - lr * wd: returns the largest |change| / lr and the share of elements that
  // moved by lr (|g| >> eps; elements without gradient, e.g. behind a dead ReLU, stay).
  auto moved = [&](const std::string& name, double lr, double wd) {
    const Tensor& p0 = before.graph.initializers.at(name);
    const Tensor& p1 = m.graph.initializers.at(name);
    double max_ratio = 0;
    int64_t full = 0;
    for (int64_t i = 0; i < p0.numel(); ++i) {
      const double decayed = p0.data<float>()[i] * (1.0 - lr * wd);
      const double ratio = std::abs(p1.data<float>()[i] - decayed) / lr;
      max_ratio = std::max(max_ratio, ratio);
      full += std::abs(ratio - 1.0) < 0.02;
    }
    return std::pair<double, double>(max_ratio, double(full) / double(p0.numel()));
  };
  int checked_weights = 0, checked_scales = 0, full_scales = 0;
  for (const std::string& w : m.weights) {
    if (before.graph.initializers.at(w).rank() < 2) continue;  // biases are snapped afterwards
    const auto [max_ratio, full] = moved(w, 1e-3, 0.5);
    EXPECT_LT(max_ratio, 1.02) << w;
    EXPECT_GT(full, 0.2) << w;
    ++checked_weights;
  }
  for (const FakeQuantSite& site : m.sites) {
    if (!site.train_scale || site.kind != FakeQuantSite::Kind::kActivation) continue;
    const auto [max_ratio, full] = moved(site.scale, 1e-4, 0.0);
    EXPECT_LT(max_ratio, 1.02) << site.scale;  // lr_quant, not the weights' lr (10x)
    full_scales += full == 1.0;
    ++checked_scales;
  }
  EXPECT_GT(full_scales, 0);
  EXPECT_GT(checked_weights, 0);
  EXPECT_GT(checked_scales, 0);

  // The scale-change summary: the largest |s1 / s0 - 1| of the activation / weight scales.
  double act_max = 0, w_max = 0;
  for (const FakeQuantSite& site : m.sites) {
    if (site.kind == FakeQuantSite::Kind::kConstant) continue;
    const Tensor& s0 = before.graph.initializers.at(site.scale);
    const Tensor& s1 = m.graph.initializers.at(site.scale);
    double& mx = site.kind == FakeQuantSite::Kind::kWeight ? w_max : act_max;
    for (int64_t i = 0; i < s0.numel(); ++i)
      mx = std::max(mx, std::abs(double(s1.data<float>()[i]) / s0.data<float>()[i] - 1.0));
  }
  EXPECT_GT(act_max, 0.0);
  EXPECT_NEAR(r.act_scale_change_max, act_max, 1e-12);
  EXPECT_NEAR(r.weight_scale_change_max, w_max, 1e-12);
  EXPECT_GE(r.act_scale_change_median, 0.0);
  EXPECT_LE(r.act_scale_change_median, r.act_scale_change_max);

  // ste with frozen observers: no scale moves.
  QatOptions ste_options;
  QatModel ste = PrepareQat(Cnn().fp32, Cnn().table, ste_options);
  const QatTrainResult rs = TrainQat(ste, Cnn().fp32, train, to);
  EXPECT_EQ(rs.weight_scale_change_max, 0.0);
  EXPECT_EQ(rs.act_scale_change_max, 0.0);
}

// --freeze-bn-step: a BatchNormalization is back after each folded Conv (the CNN's two); in
// evaluation mode it is the identity, so the graph computes what the folded one does.
// FoldQatBatchNorms puts changed statistics into the layer: same function, no BN left.
TEST(Qat, BatchNormStatisticsPhaseAndFold) {
  QatOptions plain_options;
  const QatModel plain = PrepareQat(Cnn().fp32, Cnn().table, plain_options);
  QatOptions o;
  o.bn_freeze_step = 3;
  QatModel m = PrepareQat(Cnn().fp32, Cnn().table, o);
  ASSERT_EQ(m.batch_norms.size(), 2u);
  EXPECT_EQ(CountOps(m.graph, "BatchNormalization"), 2);
  EXPECT_EQ(m.weights.size(), plain.weights.size() + 4);  // + BN scale and bias, twice
  EXPECT_THROW(ExportQdq(m), Error);                      // not folded yet

  const Tensor images = RandomImages(16, 3);
  auto logits = [&](const ir::Graph& g) {
    Autograd ag(g, {});
    return ag.Forward({{"input", images}}, /*training=*/false).at("logits").ToFloatVector();
  };
  float step = 0;
  for (const FakeQuantSite& s : m.sites)
    if (s.output == "logits") step = m.graph.initializers.at(s.scale).data<float>()[0];
  ASSERT_GT(step, 0.0f);
  // Within one output step everywhere, equal nearly everywhere (an activation code can flip
  // where the BN's float rounding moves a value across a rounding threshold).
  auto expect_close = [&](const std::vector<float>& a, const std::vector<float>& b) {
    ASSERT_EQ(a.size(), b.size());
    int differ = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_LE(std::abs(a[i] - b[i]), step * 1.001f) << i;
      differ += a[i] != b[i];
    }
    EXPECT_LE(differ, 16);
  };
  expect_close(logits(m.graph), logits(plain.graph));

  // Statistics and affine parameters as training would move them.
  for (const BnSite& b : m.batch_norms) {
    for (const std::string* name : {&b.scale, &b.bias, &b.mean, &b.var}) {
      Tensor t = m.graph.initializers.at(*name).Clone();
      float* p = t.data<float>();
      for (int64_t i = 0; i < t.numel(); ++i)
        p[i] = name == &b.var || name == &b.scale ? p[i] * (1.0f + 0.05f * float(i % 5))
                                                  : p[i] + 0.02f * float(i % 3);
      m.graph.initializers[*name] = t;
    }
  }
  const std::vector<float> before = logits(m.graph);
  const std::string w0 = m.batch_norms[0].weight;
  const Tensor w_before = m.graph.initializers.at(w0).Clone();
  FoldQatBatchNorms(m);
  EXPECT_TRUE(m.batch_norms.empty());
  EXPECT_EQ(CountOps(m.graph, "BatchNormalization"), 0);
  EXPECT_EQ(m.weights, plain.weights);
  EXPECT_FALSE(SameTensor(m.graph.initializers.at(w0), w_before));  // the fold changed W_f
  expect_close(logits(m.graph), before);
  // Folded, the model exports like any other: the hard forward equals the QDQ graph's.
  SnapBiases(m);
  const Outputs out = RunAll(m, images);
  for (size_t i = 0; i < out.fake.size(); ++i) ASSERT_EQ(out.fake[i], out.qdq[i]) << i;
}

data::LabeledImages LabeledRandom(int64_t n, uint64_t seed) {
  data::LabeledImages set;
  set.images = RandomImages(n, seed);
  set.labels = Tensor(DType::kI64, {n});
  for (int64_t i = 0; i < n; ++i) set.labels.data<int64_t>()[i] = i % 10;
  return set;
}

// During the statistics phase the BN running statistics follow the batches: with a learning
// rate too small to move any weight, the folded result differs from the plain run's only by the
// statistics, and TrainQat folds at the freeze step (or at the end) so the export is exact.
TEST(Qat, TrainQatFoldsBatchNormsAtTheFreezeStep) {
  const data::LabeledImages train = LabeledRandom(32, 5);
  QatTrainOptions to;
  to.batch = 8;
  to.lr = 1e-20;
  to.threads = 1;
  QatModel plain = PrepareQat(Cnn().fp32, Cnn().table, QatOptions{});
  TrainQat(plain, Cnn().fp32, train, to);
  for (int64_t freeze : {2, 100}) {  // mid-training; after the last of the 4 steps
    QatOptions o;
    o.bn_freeze_step = freeze;
    QatModel m = PrepareQat(Cnn().fp32, Cnn().table, o);
    const QatTrainResult r = TrainQat(m, Cnn().fp32, train, to);
    EXPECT_EQ(r.steps, 4);
    EXPECT_TRUE(m.batch_norms.empty());
    EXPECT_EQ(CountOps(m.graph, "BatchNormalization"), 0);
    int changed = 0;
    for (const std::string& name : plain.weights)
      changed += !SameTensor(m.graph.initializers.at(name), plain.graph.initializers.at(name));
    EXPECT_GE(changed, 2) << "freeze " << freeze;  // the two folded convolutions (and biases)
    const Outputs out = RunAll(m, RandomImages(8, 9));
    for (size_t i = 0; i < out.fake.size(); ++i) ASSERT_EQ(out.fake[i], out.qdq[i]) << i;
  }
}

// Held-out checkpoint selection: with a learning rate that wrecks the model, the start (step 0,
// the static PTQ model) is kept; every evaluation is recorded.
TEST(Qat, HeldOutSelectionKeepsTheBestState) {
  // Labels: the fp32 model's own predictions, so the start is accurate on the held-out images.
  data::LabeledImages train = LabeledRandom(48, 11);
  {
    runtime::Session s(Cnn().fp32);
    const Tensor z = s.Run({{"input", train.images}}).at("logits");
    for (int64_t i = 0; i < 48; ++i)
      train.labels.data<int64_t>()[i] =
          std::max_element(z.data<float>() + i * 10, z.data<float>() + i * 10 + 10) -
          (z.data<float>() + i * 10);
  }
  QatTrainOptions to;
  to.batch = 8;
  to.lr = 0.5;
  to.threads = 1;
  to.val_images = 16;
  to.val_every = 1;
  QatModel start = PrepareQat(Cnn().fp32, Cnn().table, QatOptions{});
  QatModel m = start;
  const QatTrainResult r = TrainQat(m, Cnn().fp32, train, to);
  EXPECT_EQ(r.steps, 4);  // 32 training images left, batch 8
  ASSERT_EQ(r.val_history.size(), 5u);
  double best = 0;
  for (const auto& [step, acc] : r.val_history) best = std::max(best, acc);
  EXPECT_EQ(r.val_accuracy, best);
  EXPECT_GT(r.val_accuracy_start, 0.9);
  EXPECT_LT(r.val_history.back().second, r.val_accuracy_start);  // wrecked
  EXPECT_EQ(r.selected_step, 0);
  SnapBiases(start);
  for (const auto& [name, t] : start.graph.initializers)
    EXPECT_TRUE(SameTensor(m.graph.initializers.at(name), t)) << name;

  to.val_images = 48;
  EXPECT_THROW(TrainQat(m, Cnn().fp32, train, to), Error);
}

// distill_weight mixes the two losses: the first step's loss (computed before any update) is
// (1 - w) * cross-entropy + w * KL.
TEST(Qat, DistillWeightMixesTheLosses) {
  const data::LabeledImages train = LabeledRandom(8, 13);
  auto first_loss = [&](double w) {
    QatModel m = PrepareQat(Cnn().fp32, Cnn().table, QatOptions{});
    QatTrainOptions to;
    to.batch = 8;
    to.threads = 1;
    to.distill_weight = w;
    return TrainQat(m, Cnn().fp32, train, to).final_loss;
  };
  const double ce = first_loss(0), kl = first_loss(1), mix = first_loss(0.25);
  EXPECT_GT(ce, kl);  // random labels vs the teacher's own logits
  EXPECT_NEAR(mix, 0.75 * ce + 0.25 * kl, 1e-5 * ce);
  EXPECT_THROW(first_loss(1.5), Error);
}

TEST(Qat, FakeQuantOpSoftGradientCheck) {
  // Per channel along axis 0, step 1 per channel scale; x = code + fraction in [0.2, 0.8].
  const ir::Graph g = OneFakeQuant("soft", Tensor::FromVector<float>({3}, {1.0f, 0.5f, 2.0f}),
                                   Tensor::FromVector<float>({3}, {0, 0, 0}), 4, true,
                                   /*freeze_step=*/0);
  Tensor x(DType::kF32, {3, 8});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> frac(0.2f, 0.8f);
  const float sc[3] = {1.0f, 0.5f, 2.0f};
  for (int c = 0; c < 3; ++c)
    for (int j = 0; j < 8; ++j) x.data<float>()[c * 8 + j] = (j - 4 + frac(rng)) * sc[c];
  GradCheckOptions o;
  o.eps = 1e-3;
  const GradCheckResult r = CheckGradients(g, {{"x", x}}, {"x"}, o);
  EXPECT_TRUE(r.ok) << r.report;
  EXPECT_GT(r.checked, 0);
}

TEST(Qat, FakeQuantOpLsqAndObservers) {
  const Tensor x = RandomImages(1, 3).Reshaped({28, 28});
  Tensor xin(DType::kF32, {3, 8});
  for (int i = 0; i < 24; ++i) xin.data<float>()[i] = x.data<float>()[i] * 4.0f - 1.0f;
  {  // lsq: gradients for scale and zero point, shapes of the parameters.
    Autograd ag(
        OneFakeQuant("lsq", Tensor::Scalar<float>(0.01f), Tensor::Scalar<float>(50.0f), 8, false),
        {"s", "z"});
    const Tensor y = ag.Forward({{"x", xin}}, true).at("y");
    Tensor dy(DType::kF32, y.shape());
    for (float& v : dy.span<float>()) v = 1.0f;
    ag.Backward({{"y", dy}});
    const float ds = ag.grads().at("s").data<float>()[0];
    const float dz = ag.grads().at("z").data<float>()[0];
    EXPECT_NE(ds, 0.0f);  // values up to 3 clip at (255 - 50) * 0.01 = 2.05
    EXPECT_LT(dz, 0.0f);  // clipped values: -s each
  }
  {  // ste: while step < observer_freeze_step the activation range moves toward the data.
    Autograd ag(
        OneFakeQuant("ste", Tensor::Scalar<float>(0.001f), Tensor::Scalar<float>(0.0f), 8, false),
        {});
    ag.Forward({{"x", xin}}, true, 0, /*step=*/0);
    const float s1 = ag.graph().initializers.at("s").data<float>()[0];
    EXPECT_GT(s1, 0.001f);
    ag.Forward({{"x", xin}}, true, 0, /*step=*/10);  // frozen
    EXPECT_EQ(ag.graph().initializers.at("s").data<float>()[0], s1);
    ag.Forward({{"x", xin}}, false, 0, 0);  // evaluation never observes
    EXPECT_EQ(ag.graph().initializers.at("s").data<float>()[0], s1);
  }
}

}  // namespace
}  // namespace qforge::train
