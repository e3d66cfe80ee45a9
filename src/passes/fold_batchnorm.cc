// Pass: fold inference BatchNormalization into the preceding Conv / ConvTranspose / Gemm.
#include <cmath>

#include "qforge/passes/passes.h"

namespace qforge::passes {

namespace {

// The constant float tensor feeding input i of n, or nullptr.
const Tensor* ConstF32(const ir::Graph& g, const ir::Node& n, size_t i) {
  if (!n.has_input(i)) return nullptr;
  auto it = g.initializers.find(n.inputs[i]);
  if (it == g.initializers.end() || it->second.dtype() != DType::kF32) return nullptr;
  return &it->second;
}

// Output channel of weight element with leading index `row` and inner block index `j`,
// for each producer's weight layout. Returns -1 for unsupported layouts.
struct Layout {
  int64_t out_channels = 0;
  // channel(i) for flat weight index i
  int64_t outer = 0, inner = 0;  // weight viewed as [outer, inner]
};

bool FoldInto(ir::Graph& g, size_t pi, size_t bi) {
  ir::Node& p = g.nodes[pi];
  const ir::Node& bn = g.nodes[bi];
  const Tensor* gamma = ConstF32(g, bn, 1);
  const Tensor* beta = ConstF32(g, bn, 2);
  const Tensor* mean = ConstF32(g, bn, 3);
  const Tensor* var = ConstF32(g, bn, 4);
  const Tensor* w = ConstF32(g, p, 1);
  if (!gamma || !beta || !mean || !var || !w) return false;
  if (bn.attr_int("training_mode", 0) != 0) return false;
  if (bn.outputs.size() > 1 && bn.num_inputs() > 0) {
    for (size_t o = 1; o < bn.outputs.size(); ++o)
      if (!bn.outputs[o].empty()) return false;
  }
  const int64_t M = gamma->numel();
  if (beta->numel() != M || mean->numel() != M || var->numel() != M) return false;
  const float eps = bn.attr_float("epsilon", 1e-5f);

  // Per-output-channel scale and shift.
  std::vector<float> scale(M), shift(M);
  for (int64_t m = 0; m < M; ++m) {
    scale[m] = gamma->data<float>()[m] / std::sqrt(var->data<float>()[m] + eps);
    shift[m] = beta->data<float>()[m] - mean->data<float>()[m] * scale[m];
  }

  Tensor nw = w->Clone();
  float* W = nw.data<float>();
  const Shape& ws = nw.shape();
  float gemm_alpha = 1.0f, gemm_beta = 1.0f;
  if (p.op_type == "Conv") {
    // W: [M, C/group, k...]
    if (ws.empty() || ws[0] != M) return false;
    int64_t inner = nw.numel() / M;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t i = 0; i < inner; ++i) W[m * inner + i] *= scale[m];
  } else if (p.op_type == "ConvTranspose") {
    // W: [C, M/group, k...]; output channel of (c, j) is (c / (C/group)) * (M/group) + j.
    int64_t group = p.attr_int("group", 1);
    if (ws.size() < 2 || ws[1] * group != M || ws[0] % group != 0) return false;
    int64_t C = ws[0], mg = ws[1], cg = C / group, k = nw.numel() / (C * mg);
    for (int64_t c = 0; c < C; ++c)
      for (int64_t j = 0; j < mg; ++j) {
        int64_t m = (c / cg) * mg + j;
        for (int64_t i = 0; i < k; ++i) W[(c * mg + j) * k + i] *= scale[m];
      }
  } else if (p.op_type == "Gemm") {
    // Y = alpha * A' B' + beta * C, B' = B or B^T; output features = N = BN channels.
    if (ws.size() != 2 || p.attr_int("transA", 0) != 0) return false;
    bool tb = p.attr_int("transB", 0) != 0;
    int64_t N = tb ? ws[0] : ws[1], K = tb ? ws[1] : ws[0];
    if (N != M) return false;
    gemm_alpha = p.attr_float("alpha", 1.0f);
    gemm_beta = p.attr_float("beta", 1.0f);
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) (tb ? W[n * K + k] : W[k * N + n]) *= gemm_alpha * scale[n];
  } else {
    return false;
  }

  // Bias: b' = beta_gemm * b * s + shift (b = 0 when absent). It must be per channel.
  Tensor nb(DType::kF32, {M});
  float* B = nb.data<float>();
  const Tensor* b = ConstF32(g, p, 2);
  if (p.has_input(2) && !b) return false;
  if (b && b->numel() != M && b->numel() != 1) return false;
  if (b && p.op_type == "Gemm" && b->rank() == 2 && b->dim(0) != 1) return false;
  for (int64_t m = 0; m < M; ++m) {
    float bv = b ? b->data<float>()[b->numel() == 1 ? 0 : m] * gemm_beta : 0.0f;
    B[m] = bv * scale[m] + shift[m];
  }

  std::string wname = ir::UniqueValueName(g, p.inputs[1] + "_bnfold");
  g.initializers[wname] = nw;
  std::string bname =
      ir::UniqueValueName(g, (p.name.empty() ? p.outputs[0] : p.name) + "_bias_bnfold");
  g.initializers[bname] = nb;
  p.inputs[1] = wname;
  if (p.inputs.size() < 3) p.inputs.resize(3);
  p.inputs[2] = bname;
  if (p.op_type == "Gemm") {
    p.attrs["alpha"] = 1.0f;
    p.attrs["beta"] = 1.0f;
  }
  // The producer now writes BN's output.
  std::string bn_out = bn.outputs[0];
  p.outputs[0] = bn_out;
  g.nodes.erase(g.nodes.begin() + static_cast<long>(bi));
  return true;
}

}  // namespace

int FoldBatchNorm(ir::Graph& g) {
  int folded = 0;
  for (size_t bi = 0; bi < g.nodes.size(); ++bi) {
    const ir::Node& bn = g.nodes[bi];
    if (bn.op_type != "BatchNormalization" || bn.domain != "" || !bn.has_input(0)) continue;
    int pi = g.FindProducer(bn.inputs[0]);
    if (pi < 0) continue;
    const ir::Node& p = g.nodes[pi];
    if (p.domain != "" || p.outputs.size() != 1) continue;
    if (ir::Consumers(g, p.outputs[0]).size() != 1 || ir::IsGraphOutput(g, p.outputs[0])) continue;
    if (FoldInto(g, static_cast<size_t>(pi), bi)) {
      ++folded;
      --bi;
    }
  }
  if (folded) ir::RemoveUnusedValues(g);
  return folded;
}

}  // namespace qforge::passes
