// Pass: fuse a Relu or Clip that follows a Conv or Gemm into qforge::FusedConv / FusedGemm, so
// the activation is applied in the GEMM epilogue instead of in a separate pass over memory.
#include <cmath>
#include <limits>
#include <optional>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

struct Bounds {
  float lo, hi;
};

// The constant scalar float feeding input i of n: nullopt when absent or not a constant scalar.
std::optional<float> ConstScalar(const ir::Graph& g, const ir::Node& n, size_t i) {
  auto it = g.initializers.find(n.inputs[i]);
  if (it == g.initializers.end() || it->second.dtype() != DType::kF32 || it->second.numel() != 1)
    return std::nullopt;
  return it->second.data<float>()[0];
}

// The activation's clamp bounds, or nullopt when it cannot be fused (non-constant bounds).
std::optional<Bounds> ActivationBounds(const ir::Graph& g, const ir::Node& a) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  if (a.op_type == "Relu") return Bounds{0.0f, kInf};
  if (a.op_type != "Clip") return std::nullopt;
  Bounds b{-kInf, kInf};
  if (a.num_inputs() <= 1 && (a.has_attr("min") || a.has_attr("max"))) {  // Clip-6
    b.lo = a.attr_float("min", -kInf);
    b.hi = a.attr_float("max", kInf);
  } else {  // Clip-11+: optional constant min / max inputs
    if (a.has_input(1)) {
      std::optional<float> lo = ConstScalar(g, a, 1);
      if (!lo) return std::nullopt;
      b.lo = *lo;
    }
    if (a.has_input(2)) {
      std::optional<float> hi = ConstScalar(g, a, 2);
      if (!hi) return std::nullopt;
      b.hi = *hi;
    }
  }
  if (std::isnan(b.lo) || std::isnan(b.hi) || b.lo > b.hi) return std::nullopt;
  return b;
}

}  // namespace

int FuseActivation(ir::Graph& g) {
  int fused = 0;
  for (size_t ai = 0; ai < g.nodes.size(); ++ai) {
    const ir::Node& a = g.nodes[ai];
    if (a.domain != "" || (a.op_type != "Relu" && a.op_type != "Clip") || !a.has_input(0) ||
        a.outputs.size() != 1)
      continue;
    const int pi = g.FindProducer(a.inputs[0]);
    if (pi < 0) continue;
    const ir::Node& p = g.nodes[pi];
    const bool plain = p.domain.empty() && (p.op_type == "Conv" || p.op_type == "Gemm");
    const bool prefused = p.domain == "qforge" &&
                          (p.op_type == "FusedConv" || p.op_type == "FusedGemm") &&
                          p.attr_string("activation", "").empty();
    if (!(plain || prefused) || p.outputs.size() != 1) continue;
    if (ir::Consumers(g, p.outputs[0]).size() != 1 || ir::IsGraphOutput(g, p.outputs[0])) continue;
    const std::optional<Bounds> b = ActivationBounds(g, a);
    if (!b) continue;

    ir::Node& q = g.nodes[pi];
    q.domain = "qforge";
    if (plain) q.op_type = q.op_type == "Conv" ? "FusedConv" : "FusedGemm";
    if (a.op_type == "Relu" && b->lo == 0.0f && std::isinf(b->hi)) {
      q.attrs["activation"] = std::string("Relu");
    } else {
      q.attrs["activation"] = std::string("Clip");
      q.attrs["activation_params"] = std::vector<float>{b->lo, b->hi};
    }
    q.outputs[0] = a.outputs[0];
    g.nodes.erase(g.nodes.begin() + static_cast<long>(ai));
    ++fused;
    --ai;
  }
  if (fused) ir::RemoveUnusedValues(g);
  return fused;
}

}  // namespace qforge::passes
