// Pass: constant folding — evaluate nodes whose inputs are all constants.
#include <set>

#include "qforge/passes/passes.h"
#include "qforge/runtime/session.h"

namespace qforge::passes {

namespace {
constexpr size_t kMaxFoldedBytes = size_t{64} << 20;

bool Foldable(const ir::Graph& g, const ir::Node& n) {
  // Q/DQ pairs on weights are the quantized model's representation: never fold them away.
  static const std::set<std::string> kKeep = {
      "QuantizeLinear",    "DequantizeLinear", "DynamicQuantizeLinear",
      "RandomNormal",      "RandomUniform",    "RandomNormalLike",
      "RandomUniformLike", "Multinomial",      "Bernoulli"};
  if (n.domain != "" || kKeep.count(n.op_type)) return false;
  for (const auto& in : n.inputs)
    if (!in.empty() && !g.is_initializer(in)) return false;
  for (const auto& out : n.outputs)
    if (out.empty()) return false;
  return true;
}
}  // namespace

int FoldConstants(ir::Graph& g) {
  int folded = 0;
  for (size_t i = 0; i < g.nodes.size();) {
    const ir::Node& n = g.nodes[i];
    if (!Foldable(g, n)) {
      ++i;
      continue;
    }
    // Evaluate the node alone: a one-node graph whose inputs are its constants.
    ir::Graph one;
    one.opset_imports = g.opset_imports;
    one.nodes.push_back(n);
    for (const auto& in : n.inputs)
      if (!in.empty()) one.initializers[in] = g.initializers.at(in);
    for (const auto& out : n.outputs) one.outputs.push_back({out, DType::kUndefined, false, {}});
    std::map<std::string, Tensor> results;
    try {
      runtime::Session s(std::move(one), runtime::SessionOptions{1});
      results = s.Run({});
    } catch (const Error&) {
      ++i;  // unsupported or failing here: leave it for the runtime to report
      continue;
    }
    bool small = true;
    for (const auto& [name, t] : results) small &= t.nbytes() <= kMaxFoldedBytes;
    if (!small) {
      ++i;
      continue;
    }
    for (auto& [name, t] : results) {
      g.initializers[name] = t;
      g.value_info.erase(name);
    }
    g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
    ++folded;
  }
  if (folded) ir::RemoveUnusedValues(g);
  return folded;
}

}  // namespace qforge::passes
