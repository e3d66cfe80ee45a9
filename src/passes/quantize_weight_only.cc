// Pass: weight-only low-bit quantization — MatMul / Gemm with constant weights -> MatMulNBits.
//
// How it works (docs/quantization.md, weight-only section):
//  1. RunInferencePipeline on a copy (folds constants, so e.g. a transposed weight is constant).
//  2. For each MatMul / Gemm, in order: the weight as an N x K fp32 matrix W (MatMul: B^T;
//     Gemm: B or B^T by transB, times alpha), zero-padded to whole groups along K, quantized
//     by the kernels' quantizer, converted to MatMulNBits' layout; Gemm's beta * C becomes the
//     bias input. The node keeps its name and output, so the graph's interface is unchanged.
//  3. fp16 scales are stored as an fp16 initializer read through a Cast to fp32: ONNX Runtime's
//     MatMulNBits wants scales of A's type, and a Cast of a constant is folded at load (by ONNX
//     Runtime and by qforge's FoldConstants), so the file keeps two bytes per scale.
#include "qforge/passes/quantize_weight_only.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/weight_only.h"

namespace qforge::passes {

namespace {

// The weight of one MatMul / Gemm as N x K fp32 (Linear orientation), its bias and its input.
struct LinearPlan {
  std::string a;       // activation input
  std::string weight;  // initializer name (for the report and new names)
  int64_t N = 0, K = 0;
  std::vector<float> w;     // N x K
  std::vector<float> bias;  // N, or empty
};

// The plan for `n`, or nullopt with *reason saying why it stays fp32.
std::optional<LinearPlan> PlanLinear(const ir::Graph& g, const ir::Node& n, std::string* reason) {
  if (n.num_inputs() < 2) {
    *reason = "fewer than 2 inputs";
    return std::nullopt;
  }
  const std::string& bname = n.inputs[1];
  if (!g.is_initializer(bname)) {
    *reason = "B is not a constant (activation x activation); weight-only needs constant weights";
    return std::nullopt;
  }
  const Tensor& b = g.initializers.at(bname);
  if (b.dtype() != DType::kF32 || b.rank() != 2) {
    *reason = "weight '" + bname + "' is " + std::string(DTypeName(b.dtype())) + " " +
              ShapeToString(b.shape()) + ", not a 2-D float32 matrix";
    return std::nullopt;
  }
  if (auto vi = g.FindValueInfo(n.inputs[0]);
      vi && vi->dtype != DType::kUndefined && vi->dtype != DType::kF32) {
    *reason = "input A is " + std::string(DTypeName(vi->dtype)) + ", not float32";
    return std::nullopt;
  }
  LinearPlan p;
  p.a = n.inputs[0];
  p.weight = bname;
  const float* bd = b.data<float>();
  bool trans = false;  // true: B is already N x K
  float alpha = 1.0f;
  if (n.op_type == "Gemm") {
    if (n.attr_int("transA", 0) != 0) {
      *reason = "transA = 1 is not supported";
      return std::nullopt;
    }
    trans = n.attr_int("transB", 0) != 0;
    alpha = n.attr_float("alpha", 1.0f);
  }
  p.K = trans ? b.dim(1) : b.dim(0);
  p.N = trans ? b.dim(0) : b.dim(1);
  if (p.K == 0 || p.N == 0) {
    *reason = "empty weight";
    return std::nullopt;
  }
  if (n.op_type == "Gemm" && n.has_input(2)) {
    const std::string& cname = n.inputs[2];
    if (!g.is_initializer(cname)) {
      *reason = "bias C is not a constant";
      return std::nullopt;
    }
    const Tensor& c = g.initializers.at(cname);
    const bool row = c.rank() <= 1 || (c.rank() == 2 && c.dim(0) == 1);
    if (c.dtype() != DType::kF32 || !row || (c.numel() != p.N && c.numel() != 1)) {
      *reason = "bias C " + ShapeToString(c.shape()) +
                " is not a float32 row of N=" + std::to_string(p.N) + " (or 1) elements";
      return std::nullopt;
    }
    const float beta = n.attr_float("beta", 1.0f);
    p.bias.resize(static_cast<size_t>(p.N));
    for (int64_t i = 0; i < p.N; ++i) p.bias[i] = beta * c.data<float>()[c.numel() == 1 ? 0 : i];
  }
  p.w.resize(static_cast<size_t>(p.N * p.K));
  for (int64_t nn = 0; nn < p.N; ++nn)
    for (int64_t k = 0; k < p.K; ++k) {
      const float v = trans ? bd[nn * p.K + k] : bd[k * p.N + nn];
      p.w[nn * p.K + k] = alpha == 1.0f ? v : alpha * v;
    }
  return p;
}

Tensor BytesTensor(DType dtype, Shape shape, const void* data, size_t bytes) {
  Tensor t(dtype, std::move(shape));
  if (bytes != t.nbytes()) throw Error("QuantizeWeightOnly: internal size mismatch");
  if (bytes) std::memcpy(t.raw(), data, bytes);
  return t;
}

}  // namespace

WeightOnlyResult QuantizeWeightOnly(const ir::Graph& graph, const WeightOnlyOptions& options) {
  const WeightOnlyOptions& o = options;
  if (o.bits != 4 && o.bits != 8)
    throw Error("weight-only: --bits must be 4 or 8, got " + std::to_string(o.bits));
  if (o.group_size != 32 && o.group_size != 64 && o.group_size != 128)
    throw Error("weight-only: --group-size must be 32, 64 or 128, got " +
                std::to_string(o.group_size));
  WeightOnlyResult r;
  r.graph = graph;
  r.pipeline = RunInferencePipeline(r.graph);
  ir::Graph& g = r.graph;
  const std::set<std::string> exclude(o.exclude.begin(), o.exclude.end());
  for (const std::string& e : exclude)
    if (!g.FindNode(e))
      throw Error("--exclude: no node named '" + e +
                  "' in the model (after the inference pipeline; see 'qforge info --nodes')");

  const std::string scheme = std::string(o.bits == 4 ? "int4" : "int8") + " g" +
                             std::to_string(o.group_size) + (o.symmetric ? " sym" : " asym") +
                             (o.fp16_scales ? " fp16 scales" : " fp32 scales");
  std::vector<ir::Node> nodes;
  int padded = 0;
  for (const ir::Node& n : g.nodes) {
    if (!n.domain.empty() || (n.op_type != "MatMul" && n.op_type != "Gemm")) {
      nodes.push_back(n);
      continue;
    }
    NodeDecision d{n.name, n.op_type, false, ""};
    std::optional<LinearPlan> plan;
    if (exclude.count(n.name))
      d.reason = "excluded (--exclude)";
    else
      plan = PlanLinear(g, n, &d.reason);
    if (!plan) {
      r.nodes.push_back(d);
      nodes.push_back(n);
      continue;
    }
    const LinearPlan& p = *plan;
    const int64_t gs = o.group_size, Kp = (p.K + gs - 1) / gs * gs;
    std::vector<float> wp(static_cast<size_t>(p.N * Kp), 0.0f);
    for (int64_t i = 0; i < p.N; ++i)
      std::copy(p.w.begin() + i * p.K, p.w.begin() + (i + 1) * p.K, wp.begin() + i * Kp);
    kernels::MatMulNBitsWeights m;
    std::vector<float> deq(static_cast<size_t>(p.N * Kp));
    if (o.bits == 4) {
      const kernels::Int4Weights q =
          kernels::QuantizeInt4Weights(wp.data(), p.N, Kp, gs, o.symmetric, o.fp16_scales);
      kernels::DequantizeInt4Weights(q, deq.data());
      m = kernels::ToMatMulNBits(q, p.K);
    } else {
      const kernels::Int8Weights q =
          kernels::QuantizeInt8Weights(wp.data(), p.N, Kp, gs, o.symmetric, o.fp16_scales);
      kernels::DequantizeInt8Weights(q, deq.data());
      m = kernels::ToMatMulNBits(q, p.K);
    }
    WeightOnlyLayer layer;
    layer.node = n.name;
    layer.tensor = p.weight;
    layer.N = p.N;
    layer.K = p.K;
    layer.padded_K = Kp;
    layer.groups = m.blocks();
    layer.fp32_bytes = 4 * p.N * p.K;
    numerics::ErrorStats stats;
    for (int64_t i = 0; i < p.N; ++i) stats.Add(p.w.data() + i * p.K, deq.data() + i * Kp, p.K);
    layer.error = stats.Summary();

    // New initializers, named after the weight (unique in the graph).
    const int64_t nb = m.blocks(), blob = gs * o.bits / 8;
    const std::string base = p.weight + (o.bits == 4 ? "_q4" : "_q8");
    const std::string bq = ir::UniqueValueName(g, base);
    g.initializers[bq] = BytesTensor(DType::kU8, {p.N, nb, blob}, m.b.data(), m.b.size());
    std::string scales = ir::UniqueValueName(g, base + "_scales");
    if (o.fp16_scales) {
      const std::string s16 = ir::UniqueValueName(g, base + "_scales_fp16");
      g.initializers[s16] = BytesTensor(DType::kF16, {p.N * nb}, m.scales_fp16.data(),
                                        m.scales_fp16.size() * sizeof(uint16_t));
      ir::Node cast;
      cast.name = n.name + "_scales_cast";
      cast.op_type = "Cast";
      cast.inputs = {s16};
      cast.outputs = {scales};
      cast.attrs["to"] = int64_t{static_cast<int64_t>(DType::kF32)};
      nodes.push_back(cast);
      g.value_info[scales] = ir::ValueInfo{scales, DType::kF32, true, {ir::Dim::Known(p.N * nb)}};
      layer.quantized_bytes += static_cast<int64_t>(m.scales_fp16.size() * 2);
    } else {
      g.initializers[scales] =
          BytesTensor(DType::kF32, {p.N * nb}, m.scales.data(), m.scales.size() * sizeof(float));
      layer.quantized_bytes += static_cast<int64_t>(m.scales.size() * 4);
    }
    std::string zp;
    if (!m.zero_points.empty()) {
      zp = ir::UniqueValueName(g, base + "_zero_points");
      g.initializers[zp] = BytesTensor(DType::kU8, {static_cast<int64_t>(m.zero_points.size())},
                                       m.zero_points.data(), m.zero_points.size());
    }
    layer.quantized_bytes += static_cast<int64_t>(m.b.size() + m.zero_points.size());
    std::string bias;
    if (!p.bias.empty()) {
      bias = ir::UniqueValueName(g, n.name.empty() ? p.weight + "_bias" : n.name + "_bias");
      g.initializers[bias] = Tensor::FromVector<float>({p.N}, p.bias);
    }
    ir::Node q;
    q.name = n.name;
    q.op_type = "MatMulNBits";
    q.domain = "com.microsoft";
    q.inputs = {p.a, bq, scales, zp, "", bias};
    while (!q.inputs.empty() && q.inputs.back().empty()) q.inputs.pop_back();
    q.outputs = n.outputs;
    q.attrs["K"] = p.K;
    q.attrs["N"] = p.N;
    q.attrs["bits"] = int64_t{o.bits};
    q.attrs["block_size"] = gs;
    nodes.push_back(q);

    d.quantized = true;
    d.reason = "MatMulNBits " + scheme + ", [" + std::to_string(p.N) + " x " + std::to_string(p.K) +
               "]" + (Kp != p.K ? ", K padded to " + std::to_string(Kp) : "") +
               (p.bias.empty() ? "" : ", bias fused");
    padded += Kp != p.K;
    r.nodes.push_back(d);
    r.layers.push_back(layer);
  }
  g.nodes = std::move(nodes);
  if (!r.layers.empty()) g.opset_imports["com.microsoft"] = 1;
  ir::RemoveUnusedValues(g);
  ir::VerifyOrThrow(g);
  if (r.layers.empty())
    r.notes.push_back("no MatMul / Gemm with constant weights: the graph is unchanged");
  if (padded)
    r.notes.push_back(std::to_string(padded) +
                      " weight(s) have K not a multiple of the group size: the last group is "
                      "zero-padded (MatMulNBits' last block), costing a little extra storage");
  if (o.fp16_scales && !r.layers.empty())
    r.notes.push_back(
        "fp16 scales are stored as float16 initializers read through a Cast to "
        "float32 (ONNX Runtime's MatMulNBits wants scales of A's type)");
  return r;
}

}  // namespace qforge::passes
