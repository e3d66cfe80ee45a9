// Test helpers for src/train: one-node graphs and random tensors for gradient checks.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "qforge/ir/graph.h"
#include "qforge/train/grad_check.h"

namespace qforge::train::testing {

// Uniform random f32 tensor in [lo, hi).
inline Tensor Random(Shape shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (float& v : t.span<float>()) v = u(rng);
  return t;
}

// Random values whose magnitude is at least `gap` (away from kinks at 0).
inline Tensor RandomAwayFromZero(Shape shape, uint64_t seed, float gap = 0.1f) {
  Tensor t = Random(std::move(shape), seed);
  for (float& v : t.span<float>()) v = v >= 0 ? v + gap : v - gap;
  return t;
}

// A graph with one node. Inputs named in `graph_inputs` become graph inputs (their values are
// returned through `feeds`); the rest of `values` become initializers. Outputs: node outputs.
struct OneNode {
  ir::Graph graph;
  std::map<std::string, Tensor> feeds;
};

inline OneNode MakeOneNode(const std::string& op, const std::vector<std::string>& inputs,
                           const std::map<std::string, Tensor>& values,
                           const std::set<std::string>& graph_inputs,
                           std::map<std::string, ir::AttrValue> attrs = {}, int num_outputs = 1,
                           int opset = 17, const std::string& domain = "") {
  OneNode r;
  ir::Graph& g = r.graph;
  g.name = op + "_test";
  g.opset_imports[""] = opset;
  if (!domain.empty()) g.opset_imports[domain] = 1;
  ir::Node n;
  n.name = "n0";
  n.op_type = op;
  n.domain = domain;
  n.inputs = inputs;
  n.attrs = std::move(attrs);
  for (int i = 0; i < num_outputs; ++i) n.outputs.push_back("y" + std::to_string(i));
  for (const std::string& in : inputs) {
    if (in.empty() || g.is_initializer(in) || r.feeds.count(in)) continue;
    const Tensor& t = values.at(in);
    if (graph_inputs.count(in)) {
      ir::ValueInfo vi;
      vi.name = in;
      vi.dtype = t.dtype();
      vi.has_shape = true;
      for (int64_t d : t.shape()) vi.dims.push_back(ir::Dim::Known(d));
      g.inputs.push_back(vi);
      r.feeds[in] = t;
    } else {
      g.initializers[in] = t;
    }
  }
  for (const std::string& o : n.outputs) {
    ir::ValueInfo vi;
    vi.name = o;
    vi.dtype = DType::kF32;
    g.outputs.push_back(vi);
  }
  g.nodes.push_back(std::move(n));
  return r;
}

// Gradient check of every f32 input of a one-node graph (graph inputs and initializers) except
// those in `skip`.
inline void ExpectGradOk(const OneNode& m, const std::set<std::string>& skip = {},
                         GradCheckOptions opt = {}) {
  std::set<std::string> wrt;
  for (const auto& [name, t] : m.feeds)
    if (t.dtype() == DType::kF32 && !skip.count(name)) wrt.insert(name);
  for (const auto& [name, t] : m.graph.initializers)
    if (t.dtype() == DType::kF32 && !skip.count(name)) wrt.insert(name);
  const GradCheckResult r = CheckGradients(m.graph, m.feeds, wrt, opt);
  EXPECT_TRUE(r.ok) << m.graph.nodes[0].op_type << ": max abs error " << r.max_abs_error << "\n"
                    << r.report;
  EXPECT_GT(r.checked, 0);
}

}  // namespace qforge::train::testing
