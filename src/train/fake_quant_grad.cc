// Forward and backward of the qforge::FakeQuant training op (train/qat.h) over fake_quant.h:
// hard or soft forward, STE / LSQ / DSQ backward, and the observers that move ste / soft ranges
// until they are frozen.
#include <algorithm>
#include <cmath>
#include <limits>

#include "qforge/train/autograd.h"
#include "qforge/train/fake_quant.h"
#include "qforge/train/qat.h"
#include "train/tensor_math.h"

namespace qforge::train {

namespace {

namespace nq = qforge::numerics;

struct FqNode {
  FakeQuantConfig config;
  Estimator estimator;
  SoftSchedule soft;
  int64_t freeze_step;  // observers move while step < freeze_step (ste / soft, training only)
  double momentum;
};

FqNode ReadNode(const ir::Node& node, std::span<const Tensor> inputs) {
  const std::string who = node.Describe();
  if (inputs.size() != 3 || !inputs[0].defined() || !inputs[1].defined() || !inputs[2].defined())
    throw Error(who + ": FakeQuant needs inputs X, scale and zero_point");
  for (size_t i = 0; i < 3; ++i)
    RequireF32(who, inputs[i], i == 0 ? "X" : i == 1 ? "scale" : "zero_point");
  if (inputs[1].shape() != inputs[2].shape())
    throw Error(who + ": scale and zero_point shapes differ");
  FqNode f;
  f.config = FakeQuantNodeConfig(node, inputs[1].rank());
  f.estimator = ParseEstimator(node.attr_string("estimator", "ste"));
  f.soft.k_start = node.attr_float("soft_k_start", 2.0f);
  f.soft.k_end = node.attr_float("soft_k_end", 50.0f);
  f.soft.anneal_steps = node.attr_int("soft_anneal_steps", 1000);
  f.freeze_step = node.attr_int("observer_freeze_step", 0);
  f.momentum = node.attr_float("observer_momentum", 0.01f);
  CheckFakeQuantArgs(inputs[0].shape(), f.config, inputs[1].span<float>(), inputs[2].span<float>(),
                     who);
  return f;
}

// Observer step for a symmetric weight quantizer: s_c = max |W_c| / qmax (minmax observer, the
// static quantizer's choice), z = 0.
Tensor WeightObserver(const Tensor& w, const FakeQuantConfig& c, const Tensor& scale) {
  nq::RangeOptions ro;
  ro.symmetric = ro.restricted_range = true;
  const std::vector<nq::QuantParams> p =
      nq::ChooseQuantParams(w.data<float>(), w.shape(), c.granularity, c.format, ro);
  Tensor s(DType::kF32, scale.shape());
  for (size_t i = 0; i < p.size(); ++i) s.data<float>()[i] = p[i].scale;
  return s;
}

// Observer step for an asymmetric activation quantizer: the represented range
// [lo, hi] = [(qmin - z) s, (qmax - z) s] moves toward the batch's [min, max] by `momentum`
// (exponential moving average), always containing 0; then s = (hi - lo) / (qmax - qmin) and
// z = qmin - lo / s, kept as an unrounded float (the forward rounds it) so the EMA does not
// drift by rounding.
std::pair<Tensor, Tensor> ActivationObserver(const Tensor& x, const FakeQuantConfig& c, float scale,
                                             float zero, double momentum) {
  double bmin = 0, bmax = 0;
  bool any = false;
  for (float v : x.span<float>()) {
    if (!std::isfinite(v)) continue;
    if (!any) bmin = bmax = v;
    any = true;
    bmin = std::min<double>(bmin, v);
    bmax = std::max<double>(bmax, v);
  }
  const double s0 = EffectiveScale(scale);
  double lo = (c.qmin() - double(zero)) * s0, hi = (c.qmax() - double(zero)) * s0;
  if (any) {
    lo += momentum * (bmin - lo);
    hi += momentum * (bmax - hi);
  }
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  double s = (hi - lo) / double(c.qmax() - c.qmin());
  if (!(s >= nq::kMinScale)) s = s0;
  const double z = c.qmin() - lo / s;
  return {Tensor::FromVector<float>(Shape{}, {float(s)}),
          Tensor::FromVector<float>(Shape{}, {float(z)})};
}

}  // namespace

// y = fake_quant(x; scale, zero_point).  x, y: [*]; scale, zero_point: [] or [C] (C = x's
// size along attribute `axis`). Hard forward (FakeQuantForward, bit-exact with the runtime's
// QuantizeLinear -> DequantizeLinear) in evaluation and for ste / lsq; the DSQ soft staircase at
// temperature k(step) for soft during training until its annealing ends. While training with
// ste / soft and step < observer_freeze_step, the observers first move scale (and zero point)
// to the current weights / an EMA of activation ranges and the forward uses the moved values.
// saved: {scale used, zero point used, k} (k = +inf: hard).
std::vector<Tensor> FakeQuantOpForward(ForwardArgs& a) {
  const FqNode f = ReadNode(a.node, a.inputs);
  const Tensor& x = a.inputs[0];
  Tensor scale = a.inputs[1], zero = a.inputs[2];
  const bool observe = a.training && f.estimator != Estimator::kLsq && a.step < f.freeze_step;
  if (observe) {
    if (f.config.format.is_signed) {
      scale = WeightObserver(x, f.config, scale);
      a.updates.push_back({1, scale});
    } else if (scale.numel() == 1) {
      auto [s, z] = ActivationObserver(x, f.config, scale.data<float>()[0], zero.data<float>()[0],
                                       f.momentum);
      scale = s;
      zero = z;
      a.updates.push_back({1, scale});
      a.updates.push_back({2, zero});
    }
  }
  double k = std::numeric_limits<double>::infinity();
  if (a.training && f.estimator == Estimator::kSoft) k = f.soft.Temperature(a.step);
  Tensor y = Tensor::Uninitialized(DType::kF32, x.shape());
  SoftFakeQuantForward(x.data<float>(), x.shape(), f.config, scale.span<float>(),
                       zero.span<float>(), k, y.data<float>());
  a.saved = {scale, zero, Tensor::Scalar<float>(static_cast<float>(k))};
  return {y};
}

// dx: [*] (x's shape); dscale, dzero_point: scale's shape.
//   ste : dx = dy inside the clipping range, 0 outside; no scale / zero point gradient.
//   soft: dx = dy * soft'(t) inside (STE once hard); no scale / zero point gradient.
//   lsq : dx as ste; dscale, dzero_point by FakeQuantBackwardLsq (LSQ gradient scale included).
std::vector<Tensor> FakeQuantOpBackward(const BackwardArgs& a) {
  const FqNode f = ReadNode(a.node, a.inputs);
  std::vector<Tensor> out(3);
  if (a.grad_outputs.empty() || !a.grad_outputs[0].defined()) return out;
  const Tensor& x = a.inputs[0];
  const Tensor& scale = a.saved[0];
  const Tensor& zero = a.saved[1];
  const double k = a.saved[2].data<float>()[0];
  const Tensor& dy = a.grad_outputs[0];
  Tensor dx = Tensor::Uninitialized(DType::kF32, x.shape());
  if (f.estimator == Estimator::kLsq) {
    Tensor ds(DType::kF32, scale.shape()), dz(DType::kF32, zero.shape());
    const bool want_s = a.needs_grad.size() > 1 && a.needs_grad[1];
    const bool want_z = a.needs_grad.size() > 2 && a.needs_grad[2];
    FakeQuantBackwardLsq(x.data<float>(), x.shape(), f.config, scale.span<float>(),
                         zero.span<float>(), dy.data<float>(), dx.data<float>(),
                         want_s ? ds.span<float>() : std::span<float>{},
                         want_z ? dz.span<float>() : std::span<float>{});
    if (want_s) out[1] = ds;
    if (want_z) out[2] = dz;
  } else {
    SoftFakeQuantBackward(x.data<float>(), x.shape(), f.config, scale.span<float>(),
                          zero.span<float>(), k, dy.data<float>(), dx.data<float>());
  }
  if (a.needs_grad[0]) out[0] = dx;
  return out;
}

}  // namespace qforge::train
