// Pass: remove Identity and inference-mode Dropout nodes.
#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {
bool IsRemovable(const ir::Graph& g, const ir::Node& n) {
  if (n.domain != "" || n.inputs.empty() || n.inputs[0].empty() || n.outputs.empty()) return false;
  if (n.op_type == "Identity") return true;
  if (n.op_type != "Dropout") return false;
  // Dropout is an identity at inference unless a mask output is read.
  if (n.outputs.size() > 1 && !n.outputs[1].empty() &&
      (!ir::Consumers(g, n.outputs[1]).empty() || ir::IsGraphOutput(g, n.outputs[1])))
    return false;
  // Opset >= 12 may pass training_mode as input 2; a constant false (or absent) is inference.
  if (n.has_input(2)) {
    auto it = g.initializers.find(n.inputs[2]);
    if (it == g.initializers.end() || it->second.GetAsDouble(0) != 0.0) return false;
  }
  return true;
}
}  // namespace

int RemoveIdentity(ir::Graph& g) {
  int removed = 0;
  for (size_t i = 0; i < g.nodes.size();) {
    const ir::Node& n = g.nodes[i];
    if (!IsRemovable(g, n)) {
      ++i;
      continue;
    }
    std::string in = n.inputs[0], out = n.outputs[0];
    bool in_is_external =
        g.is_initializer(in) || g.FindProducer(in) < 0 || ir::IsGraphOutput(g, in);
    if (ir::IsGraphOutput(g, out) && in_is_external) {
      // The output name must survive and cannot be given to the producer: keep this node.
      ++i;
      continue;
    }
    g.nodes.erase(g.nodes.begin() + static_cast<long>(i));
    if (ir::IsGraphOutput(g, out)) {
      // Keep the public name: the producer of `in` now writes `out` directly.
      for (auto& p : g.nodes)
        for (auto& o : p.outputs)
          if (o == in) o = out;
      ir::ReplaceAllUses(g, in, out);
    } else {
      ir::ReplaceAllUses(g, out, in);
    }
    ++removed;
  }
  if (removed) ir::RemoveUnusedValues(g);
  return removed;
}

}  // namespace qforge::passes
