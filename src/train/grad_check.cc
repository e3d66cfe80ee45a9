// Finite-difference gradient check: analytic gradients from Autograd vs central differences.
#include "qforge/train/grad_check.h"

#include <cmath>
#include <random>
#include <sstream>

#include "qforge/train/autograd.h"

namespace qforge::train {

GradCheckResult CheckGradients(const ir::Graph& g, const std::map<std::string, Tensor>& inputs,
                               const std::set<std::string>& wrt, const GradCheckOptions& options) {
  constexpr uint64_t kForwardSeed = 12345;
  std::map<std::string, Tensor> ins;
  for (const auto& [name, t] : inputs) ins[name] = t.Clone();
  AutogradOptions ag_options;
  ag_options.threads = options.threads;
  Autograd ag(g, wrt, ag_options);  // clones float initializers: g itself is never perturbed

  // Random output weights r, one tensor per graph output, fixed across evaluations.
  std::mt19937_64 rng(options.seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::map<std::string, Tensor> r;
  {
    auto outs = ag.Forward(ins, options.training, kForwardSeed);
    for (const auto& [name, y] : outs) {
      Tensor w(DType::kF32, y.shape());
      for (float& v : w.span<float>()) v = uni(rng);
      r[name] = w;
    }
    ag.Backward(r);
  }
  std::map<std::string, Tensor> analytic;
  for (const auto& [name, t] : ag.grads()) analytic[name] = t.Clone();

  auto loss = [&]() {
    auto outs = ag.Forward(ins, options.training, kForwardSeed);
    double l = 0.0;
    for (const auto& [name, y] : outs) {
      const float* py = y.data<float>();
      const float* pr = r.at(name).data<float>();
      for (int64_t i = 0; i < y.numel(); ++i) l += static_cast<double>(pr[i]) * py[i];
    }
    return l;
  };

  GradCheckResult res;
  std::ostringstream rep;
  int failures = 0;
  for (const std::string& name : wrt) {
    Tensor x = g.is_initializer(name) ? ag.graph().initializers.at(name) : ins.at(name);
    auto ait = analytic.find(name);
    if (ait == analytic.end()) {
      res.ok = false;
      rep << name << ": no analytic gradient\n";
      continue;
    }
    const float* pa = ait->second.data<float>();
    float* px = x.data<float>();
    const int64_t n = x.numel();
    const int64_t count =
        options.max_per_tensor > 0 ? std::min<int64_t>(n, options.max_per_tensor) : n;
    for (int64_t c = 0; c < count; ++c) {
      const int64_t i = count == n ? c : c * n / count;
      const float x0 = px[i];
      const double h = options.eps * std::max(1.0, std::fabs(static_cast<double>(x0)));
      px[i] = static_cast<float>(x0 + h);
      const double lp = loss();
      px[i] = static_cast<float>(x0 - h);
      const double lm = loss();
      px[i] = x0;
      const double numeric = (lp - lm) / (2.0 * h);
      const double err = std::fabs(numeric - pa[i]);
      res.max_abs_error = std::max(res.max_abs_error, err);
      ++res.checked;
      if (!(err <=
            options.atol + options.rtol * std::max(std::fabs(numeric), std::fabs(double(pa[i]))))) {
        res.ok = false;
        if (++failures <= 10)
          rep << name << "[" << i << "]: numeric " << numeric << " analytic " << pa[i] << "\n";
      }
    }
  }
  res.report = rep.str();
  return res;
}

}  // namespace qforge::train
