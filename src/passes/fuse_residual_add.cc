// Pass: fuse a residual Add into the Conv that produces one of its operands, giving a
// qforge::FusedConv with a 4th input Z (y = conv(x) + b + Z): the sum is formed in the GEMM
// epilogue instead of in a separate pass over memory. Run before FuseActivation, which then
// fuses a following Relu into the same node (ResNet's conv-add-relu).
#include <optional>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

// True when both values have fully described, identical shapes (known sizes or the same
// symbols): then Z needs no broadcasting and the Add's output has the Conv's shape.
bool SameShape(const ir::Graph& g, const std::string& a, const std::string& b) {
  const std::optional<ir::ValueInfo> va = g.FindValueInfo(a), vb = g.FindValueInfo(b);
  if (!va || !vb || !va->has_shape || !vb->has_shape || va->dims != vb->dims) return false;
  for (const ir::Dim& d : va->dims)
    if (!d.known() && d.symbol.empty()) return false;
  return true;
}

// A Conv whose output can absorb an Add: plain ONNX Conv, or a FusedConv without activation
// and without a residual yet; its output read only by the Add.
bool Absorbs(const ir::Graph& g, int pi) {
  if (pi < 0) return false;
  const ir::Node& p = g.nodes[pi];
  const bool conv = p.domain.empty() && p.op_type == "Conv";
  const bool fused = p.domain == "qforge" && p.op_type == "FusedConv" &&
                     p.attr_string("activation", "").empty() && !p.has_input(3);
  return (conv || fused) && p.outputs.size() == 1 && p.num_inputs() >= 2 &&
         ir::Consumers(g, p.outputs[0]).size() == 1 && !ir::IsGraphOutput(g, p.outputs[0]);
}

}  // namespace

int FuseResidualAdd(ir::Graph& g) {
  int fused = 0;
  for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const ir::Node& add = g.nodes[ai];
    if (!add.domain.empty() || add.op_type != "Add" || add.num_inputs() != 2 ||
        add.outputs.size() != 1 || add.inputs[0] == add.inputs[1])
      continue;
    // Prefer the operand computed last, so the other (Z) is usually ready earlier.
    int p0 = g.FindProducer(add.inputs[0]), p1 = g.FindProducer(add.inputs[1]);
    int k = -1;
    const int order[2] = {p0 > p1 ? 0 : 1, p0 > p1 ? 1 : 0};
    for (int cand : order)
      if (k < 0 && Absorbs(g, cand == 0 ? p0 : p1) &&
          SameShape(g, add.inputs[cand], add.inputs[1 - cand]))
        k = cand;
    if (k < 0) continue;
    const int pi = k == 0 ? p0 : p1;

    // The fused node takes the Add's place: the Conv's inputs and Z are all computed before it.
    ir::Node f = g.nodes[pi];
    f.domain = "qforge";
    f.op_type = "FusedConv";
    f.inputs.resize(4);
    f.inputs[3] = add.inputs[1 - k];
    f.outputs = add.outputs;
    g.nodes[ai] = std::move(f);
    g.nodes.erase(g.nodes.begin() + pi);
    ++fused;
    ai = static_cast<size_t>(pi);  // continue from the erased position (indices shifted)
    if (ai == 0) continue;
    --ai;
  }
  if (fused) ir::RemoveUnusedValues(g);
  return fused;
}

}  // namespace qforge::passes
