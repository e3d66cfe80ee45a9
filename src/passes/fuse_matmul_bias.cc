// Pass: fuse MatMul(A, W) + Add(bias) [+ Gelu] into one qforge::FusedMatMul(A, W, bias), so the
// bias is added in the GEMM epilogue and the GELU runs on the output while it is in cache
// (attribute activation = "Gelu"), instead of one or two extra passes over memory.
//
// Conditions: W is a constant f32 matrix [K, N]; bias is a constant f32 with N elements whose
// shape is [N] or [1, ..., 1, N] (so it broadcasts along the last axis only; a bias of rank
// r > 1 needs A's rank known to be >= r, else the Add would have added leading dims); the
// MatMul output is read only by the Add, and
// the Add output only by the Gelu when one is absorbed. Run after FuseGelu. For execution only
// (runtime op in runtime/ops/nn_ops.cc).
#include <algorithm>
#include <optional>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

const Tensor* ConstF32(const ir::Graph& g, const std::string& v) {
  auto it = g.initializers.find(v);
  return it != g.initializers.end() && it->second.dtype() == DType::kF32 ? &it->second : nullptr;
}

bool SoleReader(const ir::Graph& g, const std::string& v, int reader) {
  const std::vector<int> c = ir::Consumers(g, v);
  return c.size() == 1 && c[0] == reader && !ir::IsGraphOutput(g, v);
}

// True when the known rank of v is at least r.
bool RankAtLeast(const ir::Graph& g, const std::string& v, int64_t r) {
  const std::optional<ir::ValueInfo> vi = g.FindValueInfo(v);
  return vi && vi->has_shape && static_cast<int64_t>(vi->dims.size()) >= r;
}

}  // namespace

int FuseMatMulBias(ir::Graph& g) {
  int fused = 0;
  for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const ir::Node& add = g.nodes[ai];
    if (!add.domain.empty() || add.op_type != "Add" || add.num_inputs() != 2 ||
        add.outputs.size() != 1)
      continue;
    int mi = -1, k = -1;
    for (int c = 0; c < 2 && mi < 0; ++c) {
      const int p = g.FindProducer(add.inputs[c]);
      if (p < 0) continue;
      const ir::Node& mm = g.nodes[p];
      if (mm.domain.empty() && mm.op_type == "MatMul" && mm.num_inputs() == 2 &&
          mm.outputs.size() == 1 && SoleReader(g, mm.outputs[0], static_cast<int>(ai))) {
        mi = p;
        k = c;
      }
    }
    if (mi < 0) continue;
    const ir::Node& mm = g.nodes[mi];
    const Tensor* w = ConstF32(g, mm.inputs[1]);
    const Tensor* b = ConstF32(g, add.inputs[1 - k]);
    if (!w || w->rank() != 2 || !b || b->numel() != w->dim(1) || b->rank() < 1 ||
        b->shape().back() != w->dim(1) ||
        (b->rank() > 1 && !RankAtLeast(g, mm.inputs[0], b->rank())))
      continue;
    ir::Node f = mm;
    f.domain = "qforge";
    f.op_type = "FusedMatMul";
    f.inputs = {mm.inputs[0], mm.inputs[1], add.inputs[1 - k]};
    f.outputs = add.outputs;
    // Absorb a following exact Gelu that is the Add's only reader.
    int gi = -1;
    const std::vector<int> readers = ir::Consumers(g, add.outputs[0]);
    if (readers.size() == 1 && !ir::IsGraphOutput(g, add.outputs[0])) {
      const ir::Node& ge = g.nodes[readers[0]];
      if (ge.domain.empty() && ge.op_type == "Gelu" && ge.outputs.size() == 1 &&
          ge.attr_string("approximate", "none") == "none") {
        gi = readers[0];
        f.attrs["activation"] = std::string("Gelu");
        f.outputs = ge.outputs;
      }
    }
    // The fused node takes the place of the last node it replaces (its inputs come earlier).
    const int last = gi >= 0 ? gi : static_cast<int>(ai);
    g.nodes[last] = std::move(f);
    std::vector<int> erase = {mi};
    if (gi >= 0) erase.push_back(static_cast<int>(ai));
    std::sort(erase.rbegin(), erase.rend());
    for (int e : erase) g.nodes.erase(g.nodes.begin() + e);
    ++fused;
    ai = static_cast<size_t>(mi);  // continue at the first erased position
    if (ai == 0) continue;
    --ai;
  }
  if (fused) ir::RemoveUnusedValues(g);
  return fused;
}

}  // namespace qforge::passes
