// Per-layer quantization error of activations: the fp32 graph against the QDQ graph on data.
#include <set>

#include "qforge/passes/quantize.h"
#include "qforge/runtime/session.h"

namespace qforge::passes {

void MeasureActivationErrors(const ir::Graph& reference, QuantizeResult& result,
                             const std::vector<std::map<std::string, Tensor>>& batches,
                             int threads) {
  // fp32 tensor name -> index into result.tensors, and dequantized name -> the same.
  std::map<std::string, size_t> by_ref, by_dq;
  for (size_t i = 0; i < result.tensors.size(); ++i) {
    const QuantizedTensorInfo& t = result.tensors[i];
    if (t.kind != QuantizedTensorInfo::Kind::kActivation) continue;
    by_ref[t.tensor] = i;
    by_dq[t.dequantized] = i;
  }
  std::vector<numerics::ErrorStats> stats(result.tensors.size());
  runtime::SessionOptions so;
  so.threads = threads;
  runtime::Session fp32(reference, so), qdq(result.graph, so);
  for (const auto& feeds : batches) {
    // One batch of fp32 values is kept at a time (memory does not grow with the batch count).
    std::map<size_t, Tensor> ref;
    for (const auto& [name, t] : feeds)
      if (auto it = by_ref.find(name); it != by_ref.end()) ref[it->second] = t;
    auto keep_ref = [&](const ir::Node& n, const std::vector<Tensor>& outs) {
      for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
        if (auto it = by_ref.find(n.outputs[k]); it != by_ref.end()) ref[it->second] = outs[k];
    };
    auto ref_outputs = fp32.Run(feeds, keep_ref);
    for (const auto& [name, t] : ref_outputs)  // graph outputs may not pass the observer
      if (auto it = by_ref.find(name); it != by_ref.end() && !ref.count(it->second))
        ref[it->second] = t;
    auto compare = [&](const std::string& name, const Tensor& approx) {
      auto it = by_dq.find(name);
      if (it == by_dq.end()) return;
      auto r = ref.find(it->second);
      if (r == ref.end() || r->second.dtype() != DType::kF32 || approx.dtype() != DType::kF32 ||
          r->second.numel() != approx.numel())
        return;
      stats[it->second].Add(r->second.data<float>(), approx.data<float>(), approx.numel());
    };
    std::set<std::string> seen;
    auto q_outputs = qdq.Run(feeds, [&](const ir::Node& n, const std::vector<Tensor>& outs) {
      for (size_t k = 0; k < n.outputs.size() && k < outs.size(); ++k)
        if (seen.insert(n.outputs[k]).second) compare(n.outputs[k], outs[k]);
    });
    for (const auto& [name, t] : q_outputs)
      if (seen.insert(name).second) compare(name, t);
  }
  for (size_t i = 0; i < result.tensors.size(); ++i)
    if (result.tensors[i].kind == QuantizedTensorInfo::Kind::kActivation)
      result.tensors[i].error = stats[i].Summary();
}

}  // namespace qforge::passes
