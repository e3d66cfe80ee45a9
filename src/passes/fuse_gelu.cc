// Pass: fuse the exact-GELU subgraph that PyTorch exports for nn.GELU() into one ONNX Gelu node
// (approximate = "none"), which the runtime evaluates in a single vectorized pass:
//
//   d = Div(x, sqrt(2))    or  Mul(x, 1 / sqrt(2))
//   e = Erf(d)
//   a = Add(e, 1)                                   (either operand order)
//   y = Mul(Mul(x, a), 0.5)  or  Mul(Mul(x, 0.5), a)  (either operand order everywhere)
//
// The constants must be f32 scalars within 1e-6 (relative) of the values above, and every
// intermediate value must be read only by the next node of the pattern (not a graph output).
// The fused result equals x / 2 * (1 + erf(x / sqrt 2)) up to float rounding (the unfused graph
// rounds after each of its five ops). Gelu is opset 20; the rewritten graph is for execution
// only, like the other Fuse* passes.
#include <cmath>
#include <optional>
#include <set>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

bool IsConstNear(const ir::Graph& g, const std::string& v, double want) {
  auto it = g.initializers.find(v);
  if (it == g.initializers.end() || it->second.dtype() != DType::kF32 || it->second.numel() != 1)
    return false;
  return std::fabs(it->second.data<float>()[0] - want) <= 1e-6 * std::fabs(want);
}

// The single plain-ONNX node of type `op` reading v (and v is not a graph output), else -1.
int OnlyConsumer(const ir::Graph& g, const std::string& v, const char* op) {
  const std::vector<int> c = ir::Consumers(g, v);
  if (c.size() != 1 || ir::IsGraphOutput(g, v)) return -1;
  const ir::Node& n = g.nodes[c[0]];
  return n.domain.empty() && n.op_type == op && n.num_inputs() == 2 && n.outputs.size() == 1 ? c[0]
                                                                                             : -1;
}

// For a binary node n with `v` as one operand: the other operand.
std::optional<std::string> Other(const ir::Node& n, const std::string& v) {
  if (n.inputs[0] == v) return n.inputs[1];
  if (n.inputs[1] == v) return n.inputs[0];
  return std::nullopt;
}

}  // namespace

int FuseGelu(ir::Graph& g) {
  constexpr double kSqrt2 = 1.41421356237309504880;
  std::set<int, std::greater<int>> dead;
  int fused = 0;
  for (size_t ei = 0; ei < g.nodes.size(); ++ei) {
    const ir::Node& e = g.nodes[ei];
    if (!e.domain.empty() || e.op_type != "Erf" || !e.has_input(0) || e.outputs.size() != 1)
      continue;
    // d = x / sqrt2 or x * (1 / sqrt2), read only by the Erf.
    const int di = g.FindProducer(e.inputs[0]);
    if (di < 0 || dead.count(di)) continue;
    const ir::Node& d = g.nodes[di];
    if (!d.domain.empty() || d.num_inputs() != 2 || ir::Consumers(g, d.outputs[0]).size() != 1 ||
        ir::IsGraphOutput(g, d.outputs[0]))
      continue;
    std::string x;
    if (d.op_type == "Div" && IsConstNear(g, d.inputs[1], kSqrt2)) {
      x = d.inputs[0];
    } else if (d.op_type == "Mul" && IsConstNear(g, d.inputs[1], 1 / kSqrt2)) {
      x = d.inputs[0];
    } else if (d.op_type == "Mul" && IsConstNear(g, d.inputs[0], 1 / kSqrt2)) {
      x = d.inputs[1];
    } else {
      continue;
    }
    // a = e + 1.
    const int ai = OnlyConsumer(g, e.outputs[0], "Add");
    if (ai < 0) continue;
    const std::optional<std::string> one = Other(g.nodes[ai], e.outputs[0]);
    if (!one || !IsConstNear(g, *one, 1.0)) continue;
    // m1 = Mul(a, p), p = x (then y = m1 * 0.5) or p = x * 0.5 (then y = m1).
    const std::string a_out = g.nodes[ai].outputs[0];
    const int m1i = OnlyConsumer(g, a_out, "Mul");
    if (m1i < 0) continue;
    const std::optional<std::string> p = Other(g.nodes[m1i], a_out);
    if (!p) continue;
    int last = -1, half_node = -1;
    if (*p == x) {
      const int m2i = OnlyConsumer(g, g.nodes[m1i].outputs[0], "Mul");
      if (m2i < 0) continue;
      const std::optional<std::string> h = Other(g.nodes[m2i], g.nodes[m1i].outputs[0]);
      if (!h || !IsConstNear(g, *h, 0.5)) continue;
      last = m2i;
    } else {
      const int hi = g.FindProducer(*p);
      if (hi < 0) continue;
      const ir::Node& h = g.nodes[hi];
      if (!h.domain.empty() || h.op_type != "Mul" || h.num_inputs() != 2 ||
          ir::Consumers(g, *p).size() != 1 || ir::IsGraphOutput(g, *p))
        continue;
      const std::optional<std::string> c = Other(h, x);
      if (!c || !IsConstNear(g, *c, 0.5)) continue;
      half_node = hi;
      last = m1i;
    }
    std::set<int> pattern = {di, static_cast<int>(ei), ai, m1i, last};
    if (half_node >= 0) pattern.insert(half_node);
    bool clash = false;
    for (int i : pattern) clash |= dead.count(i) > 0;
    if (clash) continue;
    // The Gelu takes the last node's place (x and everything it needs are computed before).
    ir::Node& y = g.nodes[last];
    y.op_type = "Gelu";
    y.domain.clear();
    y.inputs = {x};
    y.attrs.clear();
    for (int i : pattern)
      if (i != last) dead.insert(i);
    ++fused;
  }
  for (int i : dead) g.nodes.erase(g.nodes.begin() + i);  // descending order
  if (fused) ir::RemoveUnusedValues(g);
  return fused;
}

}  // namespace qforge::passes
