// The QAT training loop (TrainQat: shuffled batches, cross-entropy or label-free distillation,
// AdamW or SGD with cosine decay) and the fake-quantized model's predictions; see train/qat.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <tuple>

#include "qforge/passes/passes.h"
#include "qforge/runtime/session.h"
#include "qforge/train/autograd.h"
#include "qforge/train/loss.h"
#include "qforge/train/optimizer.h"
#include "qforge/train/qat.h"

namespace qforge::train {

namespace {

// A seeded shuffle of 0..n-1 (Fisher-Yates on mt19937_64 with a 128-bit multiply for the
// bounded draw, so the order does not depend on the standard library).
std::vector<int64_t> Shuffle(int64_t n, uint64_t seed) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(
        (static_cast<unsigned __int128>(rng()) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(p[i], p[j]);
  }
  return p;
}

// Rows `idx` of images [N, ...] into a new [B, ...] tensor.
Tensor Gather(const Tensor& t, const int64_t* idx, int64_t b) {
  Shape shape = t.shape();
  shape[0] = b;
  const int64_t row = t.numel() / std::max<int64_t>(t.dim(0), 1);
  Tensor out = Tensor::Uninitialized(t.dtype(), shape);
  const size_t bytes = static_cast<size_t>(row) * DTypeSize(t.dtype());
  for (int64_t i = 0; i < b; ++i)
    std::memcpy(static_cast<char*>(out.raw()) + i * bytes,
                static_cast<const char*>(t.raw()) + idx[i] * bytes, bytes);
  return out;
}

int64_t ArgMaxRow(const float* z, int64_t c) { return std::max_element(z, z + c) - z; }

// A deep copy of a training state (the graph with its own initializer storage and the BnSites
// not yet folded), for checkpoint selection.
struct Snapshot {
  ir::Graph graph;
  std::vector<BnSite> batch_norms;
  std::vector<std::string> weights;
  int64_t step = -1;
  double accuracy = -1;
};

Snapshot TakeSnapshot(const ir::Graph& g, const QatModel& m, int64_t step, double accuracy) {
  Snapshot s{g, m.batch_norms, m.weights, step, accuracy};
  for (auto& [name, t] : s.graph.initializers) t = t.Clone();
  return s;
}

// Top-1 accuracy of the graph's evaluation forward (hard fake quantization, BN running
// statistics) on images[idx].
double HeldOutAccuracy(Autograd& ag, const std::string& input, const std::string& output,
                       const data::LabeledImages& set, const std::vector<int64_t>& idx) {
  constexpr int64_t kBatch = 100;
  int64_t correct = 0;
  for (size_t b0 = 0; b0 < idx.size(); b0 += kBatch) {
    const int64_t b = std::min<int64_t>(kBatch, static_cast<int64_t>(idx.size() - b0));
    const Tensor images = Gather(set.images, idx.data() + b0, b);
    const Tensor labels = Gather(set.labels, idx.data() + b0, b);
    const Tensor logits = ag.Forward({{input, images}}, false).at(output);
    const int64_t c = logits.dim(1);
    for (int64_t i = 0; i < b; ++i)
      correct += ArgMaxRow(logits.data<float>() + i * c, c) == labels.data<int64_t>()[i];
  }
  return idx.empty() ? 0.0 : double(correct) / double(idx.size());
}

// Median and maximum of |end / start - 1| over the elements of the named scale tensors of
// `start` and `end` (same names and shapes); {-1, -1} when there are none.
std::pair<double, double> ScaleChange(const std::map<std::string, Tensor>& start,
                                      const std::map<std::string, Tensor>& end) {
  std::vector<double> r;
  for (const auto& [name, s0] : start) {
    const Tensor& s1 = end.at(name);
    for (int64_t i = 0; i < s0.numel(); ++i) {
      const double a = s0.data<float>()[i], b = s1.data<float>()[i];
      if (a != 0) r.push_back(std::abs(b / a - 1.0));
    }
  }
  if (r.empty()) return {-1.0, -1.0};
  std::sort(r.begin(), r.end());
  return {r[r.size() / 2], r.back()};
}

}  // namespace

QatTrainResult TrainQat(QatModel& model, const ir::Graph& teacher, const data::LabeledImages& train,
                        const QatTrainOptions& o) {
  if (o.epochs < 0 || o.batch < 1) throw Error("QAT: epochs must be >= 0 and batch >= 1");
  if (!(o.distill_weight >= 0 && o.distill_weight <= 1))
    throw Error("QAT: the distillation weight must be in [0, 1]");
  if (o.val_images < 0 || o.val_images >= train.size())
    throw Error("QAT: held-out images must be >= 0 and fewer than the training images (" +
                std::to_string(train.size()) + ")");
  if (o.val_images > 0 && o.val_every < 1) throw Error("QAT: the validation interval must be >= 1");
  if (model.graph.inputs.size() != 1 || model.graph.outputs.empty())
    throw Error("QAT: the model must have one input and a logits output");
  const std::string input = model.graph.inputs[0].name;
  const std::string output = model.graph.outputs[0].name;
  // The weight / activation scales at the start, for QatTrainResult's scale-change summary.
  std::map<std::string, Tensor> w_scales0, a_scales0;
  for (const FakeQuantSite& site : model.sites) {
    if (site.kind == FakeQuantSite::Kind::kConstant) continue;
    auto& dst = site.kind == FakeQuantSite::Kind::kWeight ? w_scales0 : a_scales0;
    dst.emplace(site.scale, model.graph.initializers.at(site.scale).Clone());
  }
  // Training pool and held-out images: without val_images the pool is every image in file order
  // (so the epochs' shuffles are those of earlier versions); with it, the last val_images of a
  // seed-fixed shuffle are held out and the pool is the rest, in file order.
  std::vector<int64_t> pool, held_out;
  {
    std::vector<bool> out(static_cast<size_t>(train.size()), false);
    if (o.val_images > 0) {
      const std::vector<int64_t> p = Shuffle(train.size(), o.seed * 0x9E3779B97F4A7C15ull + 17);
      held_out.assign(p.end() - o.val_images, p.end());
      std::sort(held_out.begin(), held_out.end());
      for (int64_t i : held_out) out[i] = true;
    }
    for (int64_t i = 0; i < train.size(); ++i)
      if (!out[i]) pool.push_back(i);
  }
  const int64_t pool_size = static_cast<int64_t>(pool.size());
  const int64_t n = o.limit >= 0 ? std::min(o.limit, pool_size) : pool_size;
  if (n == 0 && o.epochs > 0) throw Error("QAT: no training images");
  const int64_t steps_per_epoch = (n + o.batch - 1) / o.batch;
  const int64_t total = steps_per_epoch * o.epochs;

  AutogradOptions ao;
  ao.threads = o.threads;
  const std::set<std::string> quant(model.quant_params.begin(), model.quant_params.end());
  auto make_autograd = [&] {
    std::set<std::string> trainable(model.weights.begin(), model.weights.end());
    trainable.insert(quant.begin(), quant.end());
    return std::make_unique<Autograd>(model.graph, trainable, ao);
  };
  std::unique_ptr<Autograd> ag = make_autograd();
  // BN statistics phase ends: fold the BatchNormalizations back (train/qat.h, BnSite) and go on
  // with the folded graph.
  auto freeze_batch_norms = [&] {
    if (model.batch_norms.empty()) return;
    model.graph.initializers = ag->graph().initializers;
    FoldQatBatchNorms(model);
    ag = make_autograd();
  };

  const bool use_teacher = o.distill_weight > 0;
  std::unique_ptr<runtime::Session> teacher_session;
  std::string teacher_output;  // the teacher's logits (its first output, like the student's)
  if (use_teacher) {
    if (teacher.inputs.size() != 1 || teacher.outputs.empty() || teacher.inputs[0].name != input)
      throw Error("QAT: the teacher must take the model's input '" + input + "' and give logits");
    teacher_output = teacher.outputs[0].name;
    ir::Graph t = teacher;
    passes::RunExecutionPipeline(t);
    runtime::SessionOptions so;
    so.threads = o.threads;
    teacher_session = std::make_unique<runtime::Session>(std::move(t), so);
  }

  // The training module's optimizer (train/optimizer.h), one instance per parameter group so the
  // quantizer parameters get their own learning rate and no weight decay (decaying a scale or
  // zero point toward 0 would shrink the quantization range, not regularize the model).
  OptimizerOptions weight_opt;
  weight_opt.kind = o.optimizer;
  weight_opt.momentum = static_cast<float>(o.momentum);
  weight_opt.weight_decay = static_cast<float>(o.weight_decay);
  OptimizerOptions quant_opt = weight_opt;
  quant_opt.weight_decay = 0.0f;
  Optimizer weight_optimizer(weight_opt), quant_optimizer(quant_opt);
  ScheduleOptions cosine;
  cosine.kind = ScheduleOptions::Kind::kCosine;
  const double lr_quant = o.lr_quant >= 0 ? o.lr_quant : o.lr;

  QatTrainResult result;
  // Checkpoint selection on the held-out images: the start is the first candidate.
  Snapshot best;
  auto validate = [&](int64_t at_step) {
    const double acc = HeldOutAccuracy(*ag, input, output, train, held_out);
    result.val_history.emplace_back(at_step, acc);
    if (at_step == 0) result.val_accuracy_start = acc;
    if (acc >= best.accuracy) best = TakeSnapshot(ag->graph(), model, at_step, acc);
  };
  if (o.val_images > 0) validate(0);

  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0, steps_since = 0, step = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const std::vector<int64_t> perm = Shuffle(pool_size, o.seed + uint64_t(epoch) * 7919);
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[i] = pool[perm[i]];
    for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
      if (step == model.options.bn_freeze_step) freeze_batch_norms();
      const int64_t b0 = s * o.batch, b = std::min(o.batch, n - b0);
      const Tensor images = Gather(train.images, order.data() + b0, b);
      const Tensor labels = Gather(train.labels, order.data() + b0, b);
      const Tensor logits = ag->Forward({{input, images}}, true, o.seed, step).at(output);
      if (logits.rank() != 2 || logits.dim(0) != b)
        throw Error("QAT: output '" + output + "' is not [batch, classes] logits");
      // Cross-entropy with the labels and / or distillation toward the fp32 model's logits: the
      // training module's losses (train/loss.h), mixed by distill_weight.
      LossResult lres;
      const double w = o.distill_weight;
      if (w < 1) lres = CrossEntropy(logits, labels);
      if (w > 0) {
        const LossResult kl =
            KlDivergence(logits, teacher_session->Run({{input, images}}).at(teacher_output),
                         static_cast<float>(o.temperature));
        if (w == 1) {
          lres = kl;
        } else {
          lres.loss = (1 - w) * lres.loss + w * kl.loss;
          float* g = lres.grad.data<float>();
          const float* gk = kl.grad.data<float>();
          for (int64_t i = 0; i < lres.grad.numel(); ++i)
            g[i] = static_cast<float>((1 - w) * g[i] + w * gk[i]);
        }
      }
      const double loss = lres.loss;
      if (!std::isfinite(loss)) throw Error("QAT: the loss became " + std::to_string(loss));
      const int64_t c = logits.dim(1);
      for (int64_t i = 0; i < b; ++i)
        correct += ArgMaxRow(logits.data<float>() + i * c, c) == labels.data<int64_t>()[i];
      seen += b;
      loss_sum += loss;
      ++steps_since;
      result.final_loss = loss;

      ag->ZeroGrad();
      ag->Backward({{output, lres.grad}});
      // One optimizer step per group; cosine decay of the learning rate over all steps.
      std::map<std::string, Tensor> weight_grads, quant_grads;
      for (const auto& [name, g] : ag->grads())
        (quant.count(name) ? quant_grads : weight_grads).emplace(name, g);
      auto& params = ag->graph().initializers;
      weight_optimizer.Step(
          params, weight_grads,
          LearningRate(cosine, static_cast<float>(o.lr), step, total, steps_per_epoch));
      quant_optimizer.Step(
          params, quant_grads,
          LearningRate(cosine, static_cast<float>(lr_quant), step, total, steps_per_epoch));
      const bool end = s + 1 == steps_per_epoch;
      if (o.progress && (end || (o.progress_every > 0 && (step + 1) % o.progress_every == 0))) {
        const auto now = std::chrono::steady_clock::now();
        QatProgress pr;
        pr.epoch = epoch;
        pr.step = step + 1;
        pr.steps_per_epoch = steps_per_epoch;
        pr.total_steps = total;
        pr.loss = loss_sum / double(steps_since);
        pr.accuracy = double(correct) / double(std::max<int64_t>(seen, 1));
        pr.samples_per_second =
            double(seen) / std::max(1e-9, std::chrono::duration<double>(now - last).count());
        pr.end_of_epoch = end;
        o.progress(pr);
        last = now;
        loss_sum = 0;
        correct = seen = steps_since = 0;
      }
      if (o.val_images > 0 && ((step + 1) % o.val_every == 0 || step + 1 == total))
        validate(step + 1);
    }
  }
  result.steps = step;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Trained (or selected) weights, learned / observed quantizer parameters back into the model;
  // BatchNorms still in the graph are folded now.
  if (o.val_images > 0) {
    model.graph = std::move(best.graph);
    model.batch_norms = std::move(best.batch_norms);
    model.weights = std::move(best.weights);
    result.selected_step = best.step;
    result.val_accuracy = best.accuracy;
  } else {
    model.graph.initializers = ag->graph().initializers;
  }
  FoldQatBatchNorms(model);
  SnapBiases(model);
  std::tie(result.weight_scale_change_median, result.weight_scale_change_max) =
      ScaleChange(w_scales0, model.graph.initializers);
  std::tie(result.act_scale_change_median, result.act_scale_change_max) =
      ScaleChange(a_scales0, model.graph.initializers);
  return result;
}

std::vector<int64_t> PredictFakeQuant(const QatModel& model, const data::LabeledImages& images,
                                      int64_t batch, int threads) {
  AutogradOptions ao;
  ao.threads = threads;
  Autograd ag(model.graph, {}, ao);
  const std::string input = model.graph.inputs.at(0).name;
  const std::string output = model.graph.outputs.at(0).name;
  std::vector<int64_t> pred;
  data::BatchIterator it(images, batch);
  for (data::Batch b; it.Next(b);) {
    const Tensor logits = ag.Forward({{input, b.images}}, false).at(output);
    const int64_t c = logits.dim(1);
    for (int64_t i = 0; i < logits.dim(0); ++i)
      pred.push_back(ArgMaxRow(logits.data<float>() + i * c, c));
  }
  return pred;
}

}  // namespace qforge::train
