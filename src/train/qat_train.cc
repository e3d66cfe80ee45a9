// The QAT training loop (TrainQat: shuffled batches, cross-entropy or label-free distillation,
// AdamW with cosine decay) and the fake-quantized model's predictions; see train/qat.h.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "qforge/passes/passes.h"
#include "qforge/runtime/session.h"
#include "qforge/train/autograd.h"
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

// Row-wise softmax of logits / T in double. z: [B, C].
std::vector<double> Softmax(const float* z, int64_t b, int64_t c, double t) {
  std::vector<double> p(static_cast<size_t>(b * c));
  for (int64_t i = 0; i < b; ++i) {
    double m = -INFINITY;
    for (int64_t j = 0; j < c; ++j) m = std::max(m, double(z[i * c + j]) / t);
    double sum = 0;
    for (int64_t j = 0; j < c; ++j) sum += p[i * c + j] = std::exp(double(z[i * c + j]) / t - m);
    for (int64_t j = 0; j < c; ++j) p[i * c + j] /= sum;
  }
  return p;
}

// Mean cross-entropy over the batch and its gradient dL/dz = (softmax(z) - onehot) / B.
double CrossEntropy(const Tensor& logits, const int64_t* labels, Tensor& grad) {
  const int64_t b = logits.dim(0), c = logits.dim(1);
  const std::vector<double> p = Softmax(logits.data<float>(), b, c, 1.0);
  double loss = 0;
  float* g = grad.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t y = labels[i];
    if (y < 0 || y >= c) throw Error("QAT: label " + std::to_string(y) + " outside the classes");
    loss -= std::log(std::max(p[i * c + y], 1e-300));
    for (int64_t j = 0; j < c; ++j)
      g[i * c + j] = static_cast<float>((p[i * c + j] - (j == y ? 1.0 : 0.0)) / double(b));
  }
  return loss / double(b);
}

// Distillation: L = T^2 / B * sum_i KL(softmax(t_i / T) || softmax(s_i / T)),
// dL/ds = T / B * (softmax(s / T) - softmax(t / T)).
double Distill(const Tensor& student, const Tensor& teacher, double temp, Tensor& grad) {
  const int64_t b = student.dim(0), c = student.dim(1);
  const std::vector<double> ps = Softmax(student.data<float>(), b, c, temp);
  const std::vector<double> pt = Softmax(teacher.data<float>(), b, c, temp);
  double loss = 0;
  float* g = grad.data<float>();
  for (int64_t i = 0; i < b * c; ++i) {
    if (pt[i] > 0) loss += pt[i] * (std::log(pt[i]) - std::log(std::max(ps[i], 1e-300)));
    g[i] = static_cast<float>(temp / double(b) * (ps[i] - pt[i]));
  }
  return loss * temp * temp / double(b);
}

int64_t ArgMaxRow(const float* z, int64_t c) { return std::max_element(z, z + c) - z; }

// AdamW state of one parameter.
struct AdamState {
  std::vector<float> m, v;
};

}  // namespace

QatTrainResult TrainQat(QatModel& model, const ir::Graph& teacher, const data::LabeledImages& train,
                        const QatTrainOptions& o) {
  if (o.epochs < 0 || o.batch < 1) throw Error("QAT: epochs must be >= 0 and batch >= 1");
  if (model.graph.inputs.size() != 1 || model.graph.outputs.empty())
    throw Error("QAT: the model must have one input and a logits output");
  const std::string input = model.graph.inputs[0].name;
  const std::string output = model.graph.outputs[0].name;
  const int64_t n = o.limit >= 0 ? std::min(o.limit, train.size()) : train.size();
  if (n == 0 && o.epochs > 0) throw Error("QAT: no training images");
  const int64_t steps_per_epoch = (n + o.batch - 1) / o.batch;
  const int64_t total = steps_per_epoch * o.epochs;

  std::set<std::string> trainable(model.weights.begin(), model.weights.end());
  const std::set<std::string> quant(model.quant_params.begin(), model.quant_params.end());
  trainable.insert(quant.begin(), quant.end());
  AutogradOptions ao;
  ao.threads = o.threads;
  Autograd ag(model.graph, trainable, ao);

  std::unique_ptr<runtime::Session> teacher_session;
  if (o.distill) {
    ir::Graph t = teacher;
    passes::RunExecutionPipeline(t);
    runtime::SessionOptions so;
    so.threads = o.threads;
    teacher_session = std::make_unique<runtime::Session>(std::move(t), so);
  }

  std::map<std::string, AdamState> adam;
  const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  const double lr_quant = o.lr_quant >= 0 ? o.lr_quant : o.lr;

  QatTrainResult result;
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0, steps_since = 0, step = 0;
  for (int epoch = 1; epoch <= o.epochs; ++epoch) {
    const std::vector<int64_t> order = Shuffle(train.size(), o.seed + uint64_t(epoch) * 7919);
    for (int64_t s = 0; s < steps_per_epoch; ++s, ++step) {
      const int64_t b0 = s * o.batch, b = std::min(o.batch, n - b0);
      const Tensor images = Gather(train.images, order.data() + b0, b);
      const Tensor labels = Gather(train.labels, order.data() + b0, b);
      const Tensor logits = ag.Forward({{input, images}}, true, o.seed, step).at(output);
      if (logits.rank() != 2 || logits.dim(0) != b)
        throw Error("QAT: output '" + output + "' is not [batch, classes] logits");
      Tensor grad(DType::kF32, logits.shape());
      double loss = 0;
      if (o.distill) {
        const Tensor t = teacher_session->Run({{input, images}}).begin()->second;
        loss = Distill(logits, t, o.temperature, grad);
      } else {
        loss = CrossEntropy(logits, labels.data<int64_t>(), grad);
      }
      if (!std::isfinite(loss)) throw Error("QAT: the loss became " + std::to_string(loss));
      const int64_t c = logits.dim(1);
      for (int64_t i = 0; i < b; ++i)
        correct += ArgMaxRow(logits.data<float>() + i * c, c) == labels.data<int64_t>()[i];
      seen += b;
      loss_sum += loss;
      ++steps_since;
      result.final_loss = loss;

      ag.ZeroGrad();
      ag.Backward({{output, grad}});
      // AdamW with bias correction; cosine decay of the learning rate over all steps.
      const double decay = 0.5 * (1.0 + std::cos(M_PI * double(step) / double(total)));
      const double bc1 = 1.0 - std::pow(beta1, double(step + 1));
      const double bc2 = 1.0 - std::pow(beta2, double(step + 1));
      for (const auto& [name, g] : ag.grads()) {
        Tensor& p = ag.graph().initializers.at(name);
        const bool is_quant = quant.count(name) != 0;
        const double lr = (is_quant ? lr_quant : o.lr) * decay;
        AdamState& st = adam[name];
        if (st.m.empty()) st.m.assign(p.numel(), 0.0f), st.v.assign(p.numel(), 0.0f);
        float* pv = p.data<float>();
        const float* gv = g.data<float>();
        for (int64_t i = 0; i < p.numel(); ++i) {
          st.m[i] = float(beta1 * st.m[i] + (1 - beta1) * gv[i]);
          st.v[i] = float(beta2 * st.v[i] + (1 - beta2) * double(gv[i]) * gv[i]);
          const double upd = (st.m[i] / bc1) / (std::sqrt(st.v[i] / bc2) + eps);
          if (!is_quant) pv[i] -= float(lr * o.weight_decay * pv[i]);
          pv[i] -= float(lr * upd);
        }
      }
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
    }
  }
  result.steps = step;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Trained weights, learned / observed quantizer parameters back into the model.
  model.graph.initializers = ag.graph().initializers;
  SnapBiases(model);
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
