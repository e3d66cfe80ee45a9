// SGD with momentum, AdamW and the learning-rate schedules.
#include "qforge/train/optimizer.h"

#include <cmath>
#include <numbers>

namespace qforge::train {

OptimizerOptions::Kind ParseOptimizerKind(const std::string& name) {
  if (name == "sgd") return OptimizerOptions::Kind::kSgd;
  if (name == "adamw") return OptimizerOptions::Kind::kAdamW;
  throw Error("unknown optimizer '" + name + "' (expected sgd or adamw)");
}

ScheduleOptions::Kind ParseScheduleKind(const std::string& name) {
  if (name == "constant") return ScheduleOptions::Kind::kConstant;
  if (name == "cosine") return ScheduleOptions::Kind::kCosine;
  if (name == "step") return ScheduleOptions::Kind::kStep;
  throw Error("unknown learning-rate schedule '" + name + "' (expected constant, cosine or step)");
}

void Optimizer::Step(std::map<std::string, Tensor>& params,
                     const std::map<std::string, Tensor>& grads, float lr) {
  ++steps_;
  const OptimizerOptions& o = options_;
  for (const auto& [name, g] : grads) {
    auto it = params.find(name);
    if (it == params.end() || !g.defined()) continue;
    Tensor& p = it->second;
    if (p.shape() != g.shape() || p.dtype() != DType::kF32)
      throw Error("optimizer: parameter '" + name + "' " + ShapeToString(p.shape()) +
                  " and its gradient " + ShapeToString(g.shape()) + " differ");
    float* pp = p.data<float>();
    const float* pg = g.data<float>();
    const int64_t n = p.numel();
    if (o.kind == OptimizerOptions::Kind::kSgd) {
      auto [bit, fresh] = buf1_.try_emplace(name, Tensor());
      if (fresh) bit->second = Tensor(DType::kF32, p.shape());
      float* buf = bit->second.data<float>();
      const bool first = fresh;
      for (int64_t i = 0; i < n; ++i) {
        const float gi = pg[i] + o.weight_decay * pp[i];
        float step = gi;
        if (o.momentum != 0.0f) {
          buf[i] = first ? gi : o.momentum * buf[i] + gi;
          step = o.nesterov ? gi + o.momentum * buf[i] : buf[i];
        }
        pp[i] -= lr * step;
      }
    } else {
      auto [mit, fresh] = buf1_.try_emplace(name, Tensor());
      if (fresh) mit->second = Tensor(DType::kF32, p.shape());
      auto [vit, fresh_v] = buf2_.try_emplace(name, Tensor());
      if (fresh_v) vit->second = Tensor(DType::kF32, p.shape());
      float* m = mit->second.data<float>();
      float* v = vit->second.data<float>();
      const double bc1 = 1.0 - std::pow(double(o.beta1), double(steps_));
      const double bc2 = 1.0 - std::pow(double(o.beta2), double(steps_));
      const float step_size = static_cast<float>(lr / bc1);
      const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
      for (int64_t i = 0; i < n; ++i) {
        pp[i] *= 1.0f - lr * o.weight_decay;
        m[i] = o.beta1 * m[i] + (1.0f - o.beta1) * pg[i];
        v[i] = o.beta2 * v[i] + (1.0f - o.beta2) * pg[i] * pg[i];
        pp[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_sqrt_bc2 + o.epsilon);
      }
    }
  }
}

std::map<std::string, Tensor> Optimizer::State() const {
  std::map<std::string, Tensor> s;
  const bool sgd = options_.kind == OptimizerOptions::Kind::kSgd;
  for (const auto& [name, t] : buf1_) s[name + (sgd ? "/momentum" : "/m")] = t;
  for (const auto& [name, t] : buf2_) s[name + "/v"] = t;
  return s;
}

void Optimizer::LoadState(const std::map<std::string, Tensor>& state, int64_t steps) {
  buf1_.clear();
  buf2_.clear();
  const bool sgd = options_.kind == OptimizerOptions::Kind::kSgd;
  for (const auto& [key, t] : state) {
    const size_t slash = key.rfind('/');
    if (slash == std::string::npos) throw Error("optimizer state: bad entry '" + key + "'");
    const std::string name = key.substr(0, slash), kind = key.substr(slash + 1);
    if (sgd && kind == "momentum")
      buf1_[name] = t.Clone();
    else if (!sgd && kind == "m")
      buf1_[name] = t.Clone();
    else if (!sgd && kind == "v")
      buf2_[name] = t.Clone();
    else
      throw Error("optimizer state: entry '" + key + "' does not belong to this optimizer");
  }
  steps_ = steps;
}

float LearningRate(const ScheduleOptions& s, float base, int64_t step, int64_t total_steps,
                   int64_t steps_per_epoch) {
  double lr = base;
  switch (s.kind) {
    case ScheduleOptions::Kind::kConstant:
      break;
    case ScheduleOptions::Kind::kCosine:
      if (total_steps > 0)
        lr = base * 0.5 * (1.0 + std::cos(std::numbers::pi * double(step) / double(total_steps)));
      break;
    case ScheduleOptions::Kind::kStep: {
      const int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
      lr = base * std::pow(double(s.gamma), double(epoch / std::max<int64_t>(1, s.step_size)));
      break;
    }
  }
  if (s.warmup_steps > 0 && step < s.warmup_steps) lr *= double(step + 1) / double(s.warmup_steps);
  return static_cast<float>(lr);
}

}  // namespace qforge::train
