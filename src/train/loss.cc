// Cross-entropy, MSE and KL-divergence losses with their gradients.
#include "qforge/train/loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace qforge::train {

namespace {

void CheckLogits(const Tensor& t, const char* who) {
  if (t.dtype() != DType::kF32 || t.rank() != 2)
    throw Error(std::string(who) + ": logits must be f32 [batch, classes], got " +
                std::string(DTypeName(t.dtype())) + " " + ShapeToString(t.shape()));
}

// Row-wise log-softmax of x / T in double.
void LogSoftmaxRow(const float* x, int64_t c, double inv_t, std::vector<double>& out) {
  out.resize(c);
  double m = -INFINITY;
  for (int64_t j = 0; j < c; ++j) m = std::max(m, x[j] * inv_t);
  double s = 0;
  for (int64_t j = 0; j < c; ++j) s += std::exp(x[j] * inv_t - m);
  const double lse = m + std::log(s);
  for (int64_t j = 0; j < c; ++j) out[j] = x[j] * inv_t - lse;
}

int64_t ArgMax(const float* x, int64_t c) { return std::max_element(x, x + c) - x; }

}  // namespace

LossResult CrossEntropy(const Tensor& logits, const Tensor& labels) {
  CheckLogits(logits, "cross-entropy");
  const int64_t b = logits.dim(0), c = logits.dim(1);
  if (labels.rank() != 1 || labels.dim(0) != b)
    throw Error("cross-entropy: labels have shape " + ShapeToString(labels.shape()) +
                ", expected [" + std::to_string(b) + "]");
  const std::vector<int64_t> y = labels.ToInt64Vector();
  LossResult r;
  r.grad = Tensor::Uninitialized(DType::kF32, logits.shape());
  const float* px = logits.data<float>();
  float* pg = r.grad.data<float>();
  std::vector<double> ls;
  double total = 0;
  for (int64_t i = 0; i < b; ++i) {
    if (y[i] < 0 || y[i] >= c)
      throw Error("cross-entropy: label " + std::to_string(y[i]) + " outside [0, " +
                  std::to_string(c) + ")");
    LogSoftmaxRow(px + i * c, c, 1.0, ls);
    total -= ls[y[i]];
    for (int64_t j = 0; j < c; ++j)
      pg[i * c + j] = static_cast<float>((std::exp(ls[j]) - (j == y[i] ? 1.0 : 0.0)) / b);
    r.correct += ArgMax(px + i * c, c) == y[i];
  }
  r.loss = b ? total / b : 0.0;
  return r;
}

LossResult MeanSquaredError(const Tensor& pred, const Tensor& target) {
  if (pred.dtype() != DType::kF32 || target.dtype() != DType::kF32 ||
      pred.shape() != target.shape())
    throw Error("mse: prediction " + ShapeToString(pred.shape()) + " and target " +
                ShapeToString(target.shape()) + " must be f32 of the same shape");
  LossResult r;
  r.grad = Tensor::Uninitialized(DType::kF32, pred.shape());
  const float* p = pred.data<float>();
  const float* t = target.data<float>();
  float* g = r.grad.data<float>();
  const int64_t n = pred.numel();
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = double(p[i]) - t[i];
    total += d * d;
    g[i] = static_cast<float>(2.0 * d / n);
  }
  r.loss = n ? total / n : 0.0;
  if (pred.rank() == 2)
    for (int64_t i = 0; i < pred.dim(0); ++i)
      r.correct +=
          ArgMax(p + i * pred.dim(1), pred.dim(1)) == ArgMax(t + i * pred.dim(1), pred.dim(1));
  return r;
}

LossResult KlDivergence(const Tensor& student_logits, const Tensor& teacher_logits,
                        float temperature) {
  CheckLogits(student_logits, "kl-divergence");
  CheckLogits(teacher_logits, "kl-divergence");
  if (student_logits.shape() != teacher_logits.shape())
    throw Error("kl-divergence: student " + ShapeToString(student_logits.shape()) +
                " and teacher " + ShapeToString(teacher_logits.shape()) + " logits differ");
  if (!(temperature > 0.0f)) throw Error("kl-divergence: temperature must be > 0");
  const int64_t b = student_logits.dim(0), c = student_logits.dim(1);
  const double t = temperature, inv_t = 1.0 / t;
  LossResult r;
  r.grad = Tensor::Uninitialized(DType::kF32, student_logits.shape());
  const float* ps = student_logits.data<float>();
  const float* pt = teacher_logits.data<float>();
  float* g = r.grad.data<float>();
  std::vector<double> lq, lp;
  double total = 0;
  for (int64_t i = 0; i < b; ++i) {
    LogSoftmaxRow(ps + i * c, c, inv_t, lq);
    LogSoftmaxRow(pt + i * c, c, inv_t, lp);
    for (int64_t j = 0; j < c; ++j) {
      const double p = std::exp(lp[j]);
      total += p * (lp[j] - lq[j]);
      g[i * c + j] = static_cast<float>(t * (std::exp(lq[j]) - p) / b);
    }
    r.correct += ArgMax(ps + i * c, c) == ArgMax(pt + i * c, c);
  }
  r.loss = b ? t * t * total / b : 0.0;
  return r;
}

}  // namespace qforge::train
