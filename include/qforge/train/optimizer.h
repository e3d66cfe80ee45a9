// Optimizers (SGD with momentum, AdamW) over named parameters, and learning-rate schedules.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "qforge/tensor/tensor.h"

namespace qforge::train {

struct OptimizerOptions {
  enum class Kind { kSgd, kAdamW };
  Kind kind = Kind::kSgd;
  float momentum = 0.9f;      // SGD
  bool nesterov = false;      // SGD
  float weight_decay = 0.0f;  // SGD: added to the gradient (L2); AdamW: decoupled
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // AdamW
};

// Parses "sgd" / "adamw"; throws Error naming the value otherwise.
OptimizerOptions::Kind ParseOptimizerKind(const std::string& name);

// Updates parameters in place, PyTorch's formulas (so results match torch.optim):
//   SGD:   g = grad + wd * p;  buf = momentum * buf + g (buf = g at the first step);
//          p -= lr * (nesterov ? g + momentum * buf : buf)
//   AdamW: p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//          p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
class Optimizer {
 public:
  explicit Optimizer(OptimizerOptions options = {}) : options_(options) {}

  // One step over every parameter with a gradient (same shapes, f32). Parameters without a
  // gradient entry are left alone.
  void Step(std::map<std::string, Tensor>& params, const std::map<std::string, Tensor>& grads,
            float lr);

  int64_t steps() const { return steps_; }
  const OptimizerOptions& options() const { return options_; }
  // Per-parameter state for checkpoints: "<name>/momentum" (SGD) or "<name>/m", "<name>/v".
  std::map<std::string, Tensor> State() const;
  void LoadState(const std::map<std::string, Tensor>& state, int64_t steps);

 private:
  OptimizerOptions options_;
  int64_t steps_ = 0;
  std::map<std::string, Tensor> buf1_, buf2_;  // momentum or m; v
};

struct ScheduleOptions {
  enum class Kind { kConstant, kCosine, kStep };
  Kind kind = Kind::kCosine;
  int64_t step_size = 1;     // kStep: decay every step_size epochs
  float gamma = 0.1f;        // kStep: factor per decay
  int64_t warmup_steps = 0;  // linear warm-up from lr / warmup_steps (0: none)
};

// Parses "constant" / "cosine" / "step".
ScheduleOptions::Kind ParseScheduleKind(const std::string& name);

// The learning rate at optimizer step `step` (0-based) of `total_steps`, with
// `steps_per_epoch` steps an epoch:
//   constant: base;  cosine: base * (1 + cos(pi * step / total_steps)) / 2;
//   step: base * gamma^floor(epoch / step_size).  Warm-up multiplies by (step + 1) / warmup.
float LearningRate(const ScheduleOptions& s, float base, int64_t step, int64_t total_steps,
                   int64_t steps_per_epoch);

}  // namespace qforge::train
