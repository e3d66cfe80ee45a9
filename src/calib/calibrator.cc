// Calibrator: one observer per f32 tensor, fed from Session::Run's node-observer hook.
#include "qforge/calib/calibrator.h"

namespace qforge::calib {

Calibrator::Calibrator(runtime::Session& session, ObserverConfig config)
    : session_(session), config_(config) {
  config_.Check();
}

void Calibrator::ObserveTensor(const std::string& name, const Tensor& t) {
  if (name.empty() || !t.defined() || t.dtype() != DType::kF32) return;
  auto it = observers_.find(name);
  if (it == observers_.end()) {
    it = observers_.emplace(name, Observer(config_)).first;
    order_.push_back(name);
  }
  it->second.Observe(t.data<float>(), t.numel());
}

std::map<std::string, Tensor> Calibrator::Run(const std::map<std::string, Tensor>& inputs,
                                              int64_t batch_samples) {
  for (const ir::ValueInfo& vi : session_.graph().inputs) {
    auto it = inputs.find(vi.name);
    if (it != inputs.end()) ObserveTensor(vi.name, it->second);
  }
  auto result = session_.Run(inputs, [this](const ir::Node& node, const std::vector<Tensor>& outs) {
    for (size_t i = 0; i < outs.size() && i < node.outputs.size(); ++i)
      ObserveTensor(node.outputs[i], outs[i]);
  });
  samples_ += batch_samples;
  return result;
}

CalibTable Calibrator::Table() const {
  CalibTable t;
  t.method = MethodName(config_.method);
  t.samples = samples_;
  t.percentile = config_.percentile;
  t.momentum = config_.momentum;
  t.bins = config_.bins;
  for (const auto& [name, obs] : observers_) t.entries.emplace(name, obs.ToEntry(name));
  return t;
}

}  // namespace qforge::calib
