// Forward and backward of the elementwise ops (activations, broadcasting arithmetic) and the
// Sum/Mean reductions. Every forward is the runtime's kernel (RuntimeForward); the backward
// functions below take dy (the output's shape) to dx.
#include <omp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <numbers>

#include "qforge/kernels/elementwise.h"
#include "qforge/train/autograd.h"
#include "train/tensor_math.h"

namespace qforge::train {

namespace {

// dx[i] = dy[i] * f(x[i], y[i]) over same-shaped x, y, dy (OpenMP over large tensors).
template <typename F>
std::vector<Tensor> UnaryGrad(const BackwardArgs& a, F&& df) {
  if (!a.needs_grad[0]) return {};
  const Tensor& x = a.inputs[0];
  RequireF32(a.node.Describe(), x, "X");
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const Tensor& y = a.outputs[0];
  Tensor dx = Tensor::Uninitialized(DType::kF32, x.shape());
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for num_threads( \
    a.threads > 0 ? a.threads : omp_get_max_threads()) if (n > 65536) schedule(static)
  for (int64_t i = 0; i < n; ++i) pdx[i] = pdy[i] * df(px[i], py[i]);
  std::vector<Tensor> out(a.inputs.size());
  out[0] = dx;
  return out;
}

}  // namespace

// y = max(x, 0).  x, y, dy, dx: [*].  dx = dy * (x > 0) (0 at the kink, as PyTorch).
std::vector<Tensor> ReluBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float x, float) { return x > 0.0f ? 1.0f : 0.0f; });
}

// y = x >= 0 ? x : alpha * x.  dx = dy * (x > 0 ? 1 : alpha).
std::vector<Tensor> LeakyReluBackward(const BackwardArgs& a) {
  const float alpha = a.node.attr_float("alpha", 0.01f);
  return UnaryGrad(a, [alpha](float x, float) { return x > 0.0f ? 1.0f : alpha; });
}

// y = min(max(x, lo), hi); lo/hi are attributes (opset < 11) or optional scalar inputs 1, 2.
// dx = dy where lo < x < hi, else 0 (PyTorch's hardtanh rule). The bounds get no gradient.
std::vector<Tensor> ClipBackward(const BackwardArgs& a) {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  if (a.opset > 0 && a.opset < 11) {
    lo = a.node.attr_float("min", std::numeric_limits<float>::lowest());
    hi = a.node.attr_float("max", std::numeric_limits<float>::max());
  } else {
    if (a.inputs.size() > 1 && a.inputs[1].defined())
      lo = static_cast<float>(a.inputs[1].GetAsDouble(0));
    if (a.inputs.size() > 2 && a.inputs[2].defined())
      hi = static_cast<float>(a.inputs[2].GetAsDouble(0));
  }
  return UnaryGrad(a, [lo, hi](float x, float) { return x > lo && x < hi ? 1.0f : 0.0f; });
}

// y = 1 / (1 + exp(-x)).  dx = dy * y * (1 - y).
std::vector<Tensor> SigmoidBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float, float y) { return y * (1.0f - y); });
}

// y = max(0, min(1, alpha x + beta)).  dx = dy * alpha inside (0, 1), else 0.
std::vector<Tensor> HardSigmoidBackward(const BackwardArgs& a) {
  const float alpha = a.node.attr_float("alpha", 0.2f);
  const float beta = a.node.attr_float("beta", 0.5f);
  return UnaryGrad(a, [alpha, beta](float x, float) {
    const float v = alpha * x + beta;
    return v > 0.0f && v < 1.0f ? alpha : 0.0f;
  });
}

// y = x * clamp(x / 6 + 1/2, 0, 1).  dx = dy * (0 for x < -3, 1 for x > 3, x / 3 + 1/2 else).
std::vector<Tensor> HardSwishBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float x, float) {
    if (x < -3.0f) return 0.0f;
    if (x > 3.0f) return 1.0f;
    return x / 3.0f + 0.5f;
  });
}

// y = tanh(x).  dx = dy * (1 - y^2).
std::vector<Tensor> TanhBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float, float y) { return 1.0f - y * y; });
}

// y = erf(x).  dx = dy * 2 / sqrt(pi) * exp(-x^2).
std::vector<Tensor> ErfBackward(const BackwardArgs& a) {
  const float k = static_cast<float>(2.0 / std::sqrt(std::numbers::pi));
  return UnaryGrad(a, [k](float x, float) { return k * std::exp(-x * x); });
}

// approximate="none": y = x/2 (1 + erf(x/sqrt2)), dy/dx = Phi(x) + x phi(x).
// approximate="tanh": y = x/2 (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3),
//   dy/dx = (1 + t)/2 + x/2 (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(u).
std::vector<Tensor> GeluBackward(const BackwardArgs& a) {
  if (a.node.attr_string("approximate", "none") == "tanh") {
    const float c = static_cast<float>(std::sqrt(2.0 / std::numbers::pi));
    return UnaryGrad(a, [c](float x, float) {
      const float t = std::tanh(c * (x + 0.044715f * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * x * x);
    });
  }
  const float inv_sqrt2 = static_cast<float>(1.0 / std::numbers::sqrt2);
  const float inv_sqrt2pi = static_cast<float>(1.0 / std::sqrt(2.0 * std::numbers::pi));
  return UnaryGrad(a, [=](float x, float) {
    return 0.5f * (1.0f + std::erf(x * inv_sqrt2)) + x * inv_sqrt2pi * std::exp(-0.5f * x * x);
  });
}

// y = sqrt(x).  dx = dy / (2 y).
std::vector<Tensor> SqrtBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float, float y) { return 0.5f / y; });
}

// y = exp(x).  dx = dy * y.
std::vector<Tensor> ExpBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float, float y) { return y; });
}

// y = -x.  dx = -dy.
std::vector<Tensor> NegBackward(const BackwardArgs& a) {
  return UnaryGrad(a, [](float, float) { return -1.0f; });
}

// Binary ops with numpy broadcasting: A: [a...], B: [b...], Y, dY: broadcast(a, b).
// Each input's gradient is computed at Y's shape, then summed back over broadcast dims.

// Y = A + B.  dA = sum_to(dY, A), dB = sum_to(dY, B).
std::vector<Tensor> AddBackward(const BackwardArgs& a) {
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  std::vector<Tensor> out(2);
  if (a.needs_grad[0]) out[0] = SumToShape(dy, a.inputs[0].shape());
  if (a.needs_grad[1]) out[1] = SumToShape(dy, a.inputs[1].shape());
  return out;
}

// Y = A - B.  dA = sum_to(dY, A), dB = -sum_to(dY, B).
std::vector<Tensor> SubBackward(const BackwardArgs& a) {
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  std::vector<Tensor> out(2);
  if (a.needs_grad[0]) out[0] = SumToShape(dy, a.inputs[0].shape());
  if (a.needs_grad[1]) {
    Tensor s = SumToShape(dy, a.inputs[1].shape());
    out[1] = kernels::Unary(kernels::UnaryOp::kNeg, {}, s);
  }
  return out;
}

// Y = A * B.  dA = sum_to(dY * B, A), dB = sum_to(dY * A, B).
std::vector<Tensor> MulBackward(const BackwardArgs& a) {
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  std::vector<Tensor> out(2);
  using kernels::BinaryOp;
  if (a.needs_grad[0])
    out[0] = SumToShape(kernels::Binary(BinaryOp::kMul, dy, a.inputs[1]), a.inputs[0].shape());
  if (a.needs_grad[1])
    out[1] = SumToShape(kernels::Binary(BinaryOp::kMul, dy, a.inputs[0]), a.inputs[1].shape());
  return out;
}

// Y = A / B.  dA = sum_to(dY / B, A), dB = sum_to(-dY * Y / B, B).
std::vector<Tensor> DivBackward(const BackwardArgs& a) {
  RequireF32(a.node.Describe(), a.inputs[0], "A");
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  std::vector<Tensor> out(2);
  using kernels::BinaryOp;
  const Tensor dy_over_b = kernels::Binary(BinaryOp::kDiv, dy, a.inputs[1]);
  if (a.needs_grad[0]) out[0] = SumToShape(dy_over_b, a.inputs[0].shape());
  if (a.needs_grad[1]) {
    Tensor t = kernels::Binary(BinaryOp::kMul, dy_over_b, a.outputs[0]);
    out[1] = kernels::Unary(kernels::UnaryOp::kNeg, {}, SumToShape(t, a.inputs[1].shape()));
  }
  return out;
}

namespace {

// The reduced axes of ReduceMean/ReduceSum (attribute or input 1 by opset, as the runtime),
// normalized; empty + noop_with_empty_axes means "nothing reduced".
std::vector<int64_t> ReducedAxes(const BackwardArgs& a, int axes_input_opset, bool& noop) {
  const int64_t rank = a.inputs[0].rank();
  std::vector<int64_t> axes = a.node.attr_ints("axes", {});
  const bool as_input = a.opset <= 0 || a.opset >= axes_input_opset;
  if (as_input && a.inputs.size() > 1 && a.inputs[1].defined()) axes = a.inputs[1].ToInt64Vector();
  noop = false;
  if (axes.empty()) {
    if (a.node.attr_int("noop_with_empty_axes", 0) != 0) {
      noop = true;
      return {};
    }
    for (int64_t d = 0; d < rank; ++d) axes.push_back(d);
  }
  for (int64_t& ax : axes) ax = NormalizeAxis(a.node.Describe(), ax, rank);
  return axes;
}

// X: [x...], Y: X with `axes` reduced (kept as 1 when keepdims). dX = broadcast(dY) * scale.
std::vector<Tensor> ReduceGrad(const BackwardArgs& a, int axes_input_opset, bool mean) {
  std::vector<Tensor> out(a.inputs.size());
  if (!a.needs_grad[0]) return out;
  const Tensor& x = a.inputs[0];
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  bool noop = false;
  const std::vector<int64_t> axes = ReducedAxes(a, axes_input_opset, noop);
  if (noop) {
    out[0] = dy;
    return out;
  }
  Shape kept = x.shape();
  int64_t count = 1;
  for (int64_t ax : axes) {
    count *= kept[ax];
    kept[ax] = 1;
  }
  Tensor g = kernels::Expand(dy.Reshaped(kept), x.shape());
  if (mean && count > 0) {
    const float inv = 1.0f / static_cast<float>(count);
    if (g.raw() == dy.raw()) g = g.Clone();
    for (float& v : g.span<float>()) v *= inv;
  }
  out[0] = g;
  return out;
}

}  // namespace

// Y = mean of X over axes.  dX[i] = dY[reduced i] / (number of reduced elements).
std::vector<Tensor> ReduceMeanBackward(const BackwardArgs& a) { return ReduceGrad(a, 18, true); }

// Y = sum of X over axes.  dX[i] = dY[reduced i].
std::vector<Tensor> ReduceSumBackward(const BackwardArgs& a) { return ReduceGrad(a, 13, false); }

}  // namespace qforge::train
