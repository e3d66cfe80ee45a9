// Training losses with their gradients: cross-entropy, mean squared error and the
// KL-divergence distillation loss. Each returns the batch-mean loss and dL/d(prediction).
#pragma once

#include <cstdint>

#include "qforge/tensor/tensor.h"

namespace qforge::train {

struct LossResult {
  double loss = 0.0;    // mean over the batch (accumulated in double)
  Tensor grad;          // dL/d(prediction), the prediction's shape, f32
  int64_t correct = 0;  // rows whose argmax equals the label (classification losses)
};

// logits: f32 [B, C]; labels: i64 (or i32) [B] in [0, C).
// L = mean_b -log softmax(logits_b)[label_b];  dL/dlogits = (softmax - onehot) / B.
// Throws Error for a label out of range or mismatched shapes.
LossResult CrossEntropy(const Tensor& logits, const Tensor& labels);

// pred, target: f32, same shape [B, ...].  L = mean over all elements of (pred - target)^2;
// dL/dpred = 2 (pred - target) / numel.
LossResult MeanSquaredError(const Tensor& pred, const Tensor& target);

// Distillation toward a teacher: p = softmax(teacher / T), q = softmax(student / T),
// L = T^2 * mean_b KL(p_b || q_b) = T^2 / B * sum p (log p - log q);
// dL/dstudent = T * (q - p) / B  (Hinton et al.'s T^2 scaling keeps gradients comparable
// across temperatures). correct counts rows where student and teacher argmax agree.
LossResult KlDivergence(const Tensor& student_logits, const Tensor& teacher_logits,
                        float temperature = 1.0f);

}  // namespace qforge::train
