// Pass: dynamic int8 quantization — fp32 graph -> DynamicQuantizeLinear + MatMulInteger /
// ConvInteger graph (or qforge::DynamicQLinear per row). The forms are documented in
// include/qforge/passes/quantize_dynamic.h and docs/quantization.md ("Dynamic quantization").
//
// How it works:
//  1. RunInferencePipeline on a copy (weights of Linear layers become plain constants).
//  2. Decide per node, with a reason: MatMul / Gemm with a constant 2-D fp32 weight (a Linear
//     layer), MatMul of two activations, Conv with a constant weight (only with "Conv" in ops),
//     LSTM / GRU with constant W and R (their own quantized ops, see RewriteRnn).
//  3. Rewrite each decided node into its dynamic form; the last node of the form writes the
//     original output name, so every reader (and the per-layer error analysis) is unchanged.
//     One DynamicQuantizeLinear per activation tensor, shared by all its quantized readers
//     (a transformer's q, k, v projections of one LayerNorm output quantize it once).
#include "qforge/passes/quantize_dynamic.h"

#include <algorithm>
#include <map>
#include <set>

#include "qforge/numerics/error_stats.h"
#include "qforge/numerics/quant_params.h"

namespace qforge::passes {

bool HasQforgeOnlyOps(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes)
    if (n.domain == "qforge") return true;
  return false;
}

namespace {

using numerics::Granularity;
using numerics::QuantParams;

enum class Form { kNone, kLinear, kActAct, kConv, kRnn };

struct Plan {
  Form form = Form::kNone;
  std::string reason;
  bool gemm_trans_b = false;  // Gemm: weight stored [N, K]
};

// The largest reduction the int8 GEMM sums exactly (kernels::kMaxQGemmK).
constexpr int64_t kMaxK = int64_t{1} << 15;

class DynamicQuantizer {
 public:
  DynamicQuantizer(ir::Graph& g, const DynamicQuantizeOptions& opt, QuantizeResult& res)
      : g_(g), opt_(opt), res_(res), ops_(opt.ops.begin(), opt.ops.end()), names_(g) {}

  void Run() {
    const std::set<std::string> exclude(opt_.exclude.begin(), opt_.exclude.end());
    for (const std::string& e : exclude)
      if (!g_.FindNode(e))
        throw Error("--exclude: no node named '" + e +
                    "' (names are those after BatchNormalization folding; see 'qforge info')");
    plans_.assign(g_.nodes.size(), Plan{});
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      Plan& p = plans_[i];
      if (exclude.count(g_.nodes[i].name)) {
        p.reason = "excluded (--exclude)";
        continue;
      }
      p.reason = Decide(g_.nodes[i], p);
    }
    Rewrite();
    ir::RemoveUnusedValues(g_);
  }

  const std::vector<Plan>& plans() const { return plans_; }
  const std::vector<std::string>& notes() const { return gru_notes_; }

 private:
  const Tensor* ConstF32(const std::string& name) const {
    auto it = g_.initializers.find(name);
    if (it == g_.initializers.end() || it->second.dtype() != DType::kF32) return nullptr;
    return &it->second;
  }

  // Empty when t can be quantized as a run-time activation; otherwise why not.
  std::string ActivationProblem(const std::string& t) const {
    if (g_.is_initializer(t)) return "input '" + t + "' is a constant";
    if (auto vi = g_.FindValueInfo(t);
        vi && vi->dtype != DType::kF32 && vi->dtype != DType::kUndefined)
      return "input '" + t + "' is " + std::string(DTypeName(vi->dtype)) + ", not float32";
    return "";
  }

  // The known size of dimension d (negative: from the end) of value t, or -1.
  int64_t KnownDim(const std::string& t, int d) const {
    auto vi = g_.FindValueInfo(t);
    if (!vi || !vi->has_shape) return -1;
    const int r = static_cast<int>(vi->dims.size());
    if (d < 0) d += r;
    if (d < 0 || d >= r) return -1;
    return vi->dims[d].value;
  }

  std::string TooLong(int64_t K) const {
    return "reduction length " + std::to_string(K) + " exceeds the int8 GEMM limit " +
           std::to_string(kMaxK);
  }

  std::string Decide(const ir::Node& n, Plan& p) {
    const std::string& op = n.op_type;
    const bool known = n.domain.empty() && (op == "MatMul" || op == "Gemm" || op == "Conv" ||
                                            op == "LSTM" || op == "GRU");
    if (!known) {
      std::string covered;
      for (const char* o : {"MatMul", "Gemm", "Conv", "LSTM", "GRU"})
        if (ops_.count(o)) covered += std::string(covered.empty() ? "" : ", ") + o;
      return "stays fp32 (dynamic quantization covers " + covered + ")";
    }
    if (!ops_.count(op))
      return op == "Conv" ? "Conv not in --ops (opt-in: dynamic conv loses accuracy)"
                          : op + " not in --ops";
    if (op == "LSTM" || op == "GRU") return DecideRnn(n, p);
    if (!n.has_input(0) || !n.has_input(1) || n.outputs.size() != 1) return "malformed node";
    if (std::string why = ActivationProblem(n.inputs[0]); !why.empty()) return why;
    const std::string rows = opt_.per_row ? "per row (qforge::DynamicQLinear)" : "per tensor";
    if (op == "MatMul") {
      if (g_.is_initializer(n.inputs[1])) {
        const Tensor* w = ConstF32(n.inputs[1]);
        if (!w) return "weight '" + n.inputs[1] + "' is not float32";
        if (w->rank() != 2)
          return "weight of rank " + std::to_string(w->rank()) +
                 " (per-column scales need a 2-D weight)";
        if (w->dim(0) > kMaxK) return TooLong(w->dim(0));
        p.form = Form::kLinear;
        return "int8 weights per column; uint8 activations " + rows + " at run time";
      }
      if (std::string why = ActivationProblem(n.inputs[1]); !why.empty()) return why;
      if (const int64_t K = KnownDim(n.inputs[1], -2); K > kMaxK) return TooLong(K);
      p.form = Form::kActAct;
      return "activations x activations: both uint8 per tensor at run time";
    }
    const Tensor* w = ConstF32(n.inputs[1]);
    if (!w) return "weight '" + n.inputs[1] + "' is not a float32 constant";
    if (op == "Gemm") {
      if (n.attr_int("transA", 0) != 0) return "Gemm with transA=1";
      if (n.attr_float("alpha", 1.0f) != 1.0f || n.attr_float("beta", 1.0f) != 1.0f)
        return "Gemm with alpha or beta != 1";
      if (w->rank() != 2) return "Gemm weight of rank " + std::to_string(w->rank());
      p.gemm_trans_b = n.attr_int("transB", 0) != 0;
      const int64_t K = p.gemm_trans_b ? w->dim(1) : w->dim(0);
      if (K > kMaxK) return TooLong(K);
      p.form = Form::kLinear;
      return "int8 weights per output channel; uint8 activations " + rows + " at run time";
    }
    // Conv
    if (w->rank() != 3 && w->rank() != 4)
      return "Conv weight of rank " + std::to_string(w->rank()) + " (1-D and 2-D only)";
    if (w->dim(0) == 0) return "Conv without output channels";
    const int64_t K = w->numel() / w->dim(0);
    if (K > kMaxK) return TooLong(K);
    if (n.has_input(2)) {
      const Tensor* b = ConstF32(n.inputs[2]);
      if (!b || b->numel() != w->dim(0)) return "bias is not a float32 constant per channel";
    }
    p.form = Form::kConv;
    return "int8 weights per output channel (stored uint8 + 128); uint8 activations per tensor "
           "at run time";
  }

  // LSTM / GRU: W [D, G H, I] and R [D, G H, H] constant fp32; X an activation.
  std::string DecideRnn(const ir::Node& n, Plan& p) {
    const bool lstm = n.op_type == "LSTM";
    if (!n.has_input(0) || !n.has_input(1) || !n.has_input(2)) return "malformed node";
    if (std::string why = ActivationProblem(n.inputs[0]); !why.empty()) return why;
    const Tensor* w = ConstF32(n.inputs[1]);
    const Tensor* r = ConstF32(n.inputs[2]);
    if (!w || !r) return "W or R is not a float32 constant";
    if (w->rank() != 3 || r->rank() != 3) return "W or R is not of rank 3";
    if (w->dim(2) > kMaxK || r->dim(2) > kMaxK) return TooLong(std::max(w->dim(2), r->dim(2)));
    if (n.inputs.size() > (lstm ? 8u : 6u)) return "malformed node";
    p.form = Form::kRnn;
    const bool ort = lstm && !opt_.per_row && n.attr_int("layout", 0) == 0;
    return std::string("int8 W and R per gate channel; uint8 x and h ") +
           (opt_.per_row ? "per row" : "per tensor") + " at run time (" +
           (ort    ? "com.microsoft::DynamicQuantizeLSTM, runs in ONNX Runtime"
            : lstm ? "qforge::DynamicQuantizeLSTM, qforge only"
                   : "qforge::DynamicQuantizeGRU in .qf; unrolled over time into standard ops "
                     "in .onnx: ONNX Runtime has no quantized GRU") +
           ")";
  }

  // A value name used neither in the graph nor by a node created but not yet inserted.
  std::string Unique(const std::string& base) { return names_.Fresh(base); }
  std::string AddInit(const std::string& base, Tensor t) {
    const std::string name = Unique(base);
    g_.initializers[name] = std::move(t);
    return name;
  }

  struct Dql {
    std::string q, s, z;
  };
  // The DynamicQuantizeLinear outputs for activation x, created (into `out`) on first use.
  const Dql& Quantized(const std::string& x, std::vector<ir::Node>* out) {
    auto it = dql_.find(x);
    if (it != dql_.end()) return it->second;
    Dql d{Unique(x + "_quantized"), Unique(x + "_scale"), Unique(x + "_zero_point")};
    out->push_back(
        ir::MakeNode("DynamicQuantizeLinear", x + "_DynamicQuantizeLinear", {x}, {d.q, d.s, d.z}));
    return dql_.emplace(x, d).first->second;
  }

  // W quantized int8 symmetric [-127, 127] with one scale per index along `axis`; records the
  // weight's error. Returns the codes (W's shape) and fills scales.
  Tensor QuantizeWeight(const Tensor& W, const std::string& name, const std::string& node, int axis,
                        std::vector<float>* scales) {
    const Granularity gr = Granularity::PerChannel(axis);
    numerics::RangeOptions ro;
    ro.symmetric = true;
    ro.restricted_range = true;
    const std::vector<QuantParams> qp =
        numerics::ChooseQuantParams(W.data<float>(), W.shape(), gr, numerics::kInt8, ro);
    Tensor q(DType::kI8, W.shape());
    numerics::Quantize(W.data<float>(), W.shape(), gr, qp, numerics::kInt8, q.data<int8_t>(),
                       /*restricted_range=*/true);
    std::vector<float> dq(static_cast<size_t>(W.numel()));
    numerics::Dequantize(q.data<int8_t>(), W.shape(), gr, qp, dq.data());
    QuantizedTensorInfo info;
    info.kind = QuantizedTensorInfo::Kind::kWeight;
    info.tensor = name;
    info.node = node;
    info.dtype = DType::kI8;
    info.channels = static_cast<int64_t>(qp.size());
    info.scale = qp.empty() ? 1.0f : qp[0].scale;
    numerics::ErrorStats es;
    es.Add(W.data<float>(), dq.data(), W.numel());
    info.error = es.Summary();
    res_.tensors.push_back(info);
    scales->clear();
    for (const QuantParams& p : qp) scales->push_back(p.scale);
    return q;
  }

  void RecordOutput(const ir::Node& n) {
    // The first named output (an LSTM may leave Y unnamed and use only Y_h).
    std::string out;
    for (const std::string& o : n.outputs)
      if (out.empty()) out = o;
    if (out.empty()) return;
    QuantizedTensorInfo info;
    info.kind = QuantizedTensorInfo::Kind::kActivation;
    info.tensor = out;
    info.dequantized = out;
    info.node = n.name;
    info.dtype = DType::kU8;
    res_.tensors.push_back(info);
  }

  // acc (int32) -> y = Cast(acc) * (xs * ws) [+ bias]; y_name is the final output's name.
  void Dequantize(const ir::Node& n, const std::string& acc, const std::string& xs,
                  const std::string& ws, const std::string& bias, std::vector<ir::Node>* out) {
    const std::string& y = n.outputs[0];
    const std::string accf = Unique(y + "_int32_float");
    ir::Node cast = ir::MakeNode("Cast", n.name + "/Cast", {acc}, {accf});
    cast.attrs["to"] = int64_t{static_cast<int64_t>(DType::kF32)};
    out->push_back(cast);
    const std::string scale = Unique(y + "_scale_product");
    out->push_back(ir::MakeNode("Mul", n.name + "/ScaleProduct", {xs, ws}, {scale}));
    const std::string mul_out = bias.empty() ? y : Unique(y + "_without_bias");
    out->push_back(ir::MakeNode("Mul", n.name + "/Dequantize", {accf, scale}, {mul_out}));
    if (!bias.empty()) out->push_back(ir::MakeNode("Add", n.name + "/Bias", {mul_out, bias}, {y}));
  }

  void RewriteLinear(const ir::Node& n, const Plan& p, std::vector<ir::Node>* out) {
    const std::string& wname = n.inputs[1];
    const Tensor& W = *ConstF32(wname);
    std::vector<float> scales;
    // Codes as [K, N] (MatMulInteger's and DynamicQLinear's B), one scale per column n.
    Tensor q = QuantizeWeight(W, wname, n.name, p.gemm_trans_b ? 0 : 1, &scales);
    if (p.gemm_trans_b) {
      const int64_t N = W.dim(0), K = W.dim(1);
      Tensor t(DType::kI8, {K, N});
      for (int64_t r = 0; r < N; ++r)
        for (int64_t k = 0; k < K; ++k) t.data<int8_t>()[k * N + r] = q.data<int8_t>()[r * K + k];
      q = t;
    }
    const int64_t N = q.dim(1);
    const std::string wq = AddInit(wname + "_quantized", q);
    const std::string ws = AddInit(wname + "_scale", Tensor::FromVector<float>({N}, scales));
    std::string bias;  // Gemm's C (beta = 1): added after the dequantization
    if (n.op_type == "Gemm" && n.has_input(2)) bias = n.inputs[2];
    const std::string& x = n.inputs[0];
    if (opt_.per_row) {
      std::vector<std::string> in = {x, wq, ws};
      const Tensor* b = bias.empty() ? nullptr : ConstF32(bias);
      const bool own_bias = b && b->numel() == N && (b->rank() == 1 || b->rank() == 2);
      if (own_bias) in.push_back(b->rank() == 1 ? bias : AddInit(bias + "_row", b->Reshaped({N})));
      const std::string y =
          bias.empty() || own_bias ? n.outputs[0] : Unique(n.outputs[0] + "_without_bias");
      ir::Node d = ir::MakeNode("DynamicQLinear", n.name, in, {y});
      d.domain = "qforge";
      d.attrs["per_row"] = int64_t{1};
      out->push_back(d);
      if (!bias.empty() && !own_bias)
        out->push_back(ir::MakeNode("Add", n.name + "/Bias", {y, bias}, {n.outputs[0]}));
      g_.opset_imports["qforge"] = 1;
      return;
    }
    const Dql& d = Quantized(x, out);
    const std::string acc = Unique(n.outputs[0] + "_int32");
    out->push_back(ir::MakeNode("MatMulInteger", n.name, {d.q, wq, d.z}, {acc}));
    Dequantize(n, acc, d.s, ws, bias, out);
  }

  void RewriteActAct(const ir::Node& n, std::vector<ir::Node>* out) {
    const Dql a = Quantized(n.inputs[0], out);
    const Dql b = Quantized(n.inputs[1], out);
    const std::string acc = Unique(n.outputs[0] + "_int32");
    out->push_back(ir::MakeNode("MatMulInteger", n.name, {a.q, b.q, a.z, b.z}, {acc}));
    Dequantize(n, acc, a.s, b.s, "", out);
  }

  void RewriteConv(const ir::Node& n, std::vector<ir::Node>* out) {
    const std::string& wname = n.inputs[1];
    const Tensor& W = *ConstF32(wname);
    std::vector<float> scales;
    const Tensor q = QuantizeWeight(W, wname, n.name, 0, &scales);
    // ONNX Runtime's ConvInteger takes uint8 weights only: code + 128 with zero point 128 keeps
    // every difference (w - zw), hence every product, unchanged.
    Tensor u(DType::kU8, W.shape());
    for (int64_t i = 0; i < q.numel(); ++i)
      u.data<uint8_t>()[i] = static_cast<uint8_t>(q.data<int8_t>()[i] + 128);
    const int64_t C = W.dim(0);
    Shape cshape = {C};  // broadcasts over [batch, C, spatial...]
    for (int64_t d = 2; d < W.rank(); ++d) cshape.push_back(1);
    const std::string wq = AddInit(wname + "_quantized", u);
    const std::string wz = AddInit(wname + "_zero_point", Tensor::Scalar<uint8_t>(128));
    const std::string ws = AddInit(wname + "_scale", Tensor::FromVector<float>(cshape, scales));
    std::string bias;
    if (n.has_input(2))
      bias = AddInit(n.inputs[2] + "_channels", ConstF32(n.inputs[2])->Reshaped(cshape));
    const Dql& d = Quantized(n.inputs[0], out);
    const std::string acc = Unique(n.outputs[0] + "_int32");
    ir::Node c = ir::MakeNode("ConvInteger", n.name, {d.q, wq, d.z, wz}, {acc});
    c.attrs = n.attrs;  // auto_pad, dilations, group, kernel_shape, pads, strides: as Conv
    out->push_back(c);
    Dequantize(n, acc, d.s, ws, bias, out);
  }

  // LSTM -> com.microsoft DynamicQuantizeLSTM (ONNX Runtime's contrib op; per-row activations or
  // layout 1: the qforge-domain op of the same name), GRU -> qforge DynamicQuantizeGRU:
  //   X, Wq [D, I, G H] int8, Rq [D, H, G H] int8, the fp32 node's B, sequence_lens, initial_h
  //   (LSTM: initial_c, P), W_scale [D, G H], W_zero_point (int8 zeros), R_scale, R_zero_point.
  // W and R are quantized int8 symmetric [-127, 127] with one scale per gate channel (per row of
  // the ONNX [D, G H, K] weight) and stored transposed (K x G H per direction).
  void RewriteRnn(const ir::Node& n, std::vector<ir::Node>* out) {
    const bool lstm = n.op_type == "LSTM";
    std::vector<std::string> in(lstm ? 12 : 10);
    for (size_t i = 0; i < n.inputs.size(); ++i)
      if (i != 1 && i != 2) in[i] = n.inputs[i];
    for (int which = 0; which < 2; ++which) {
      const std::string& wname = n.inputs[1 + which];
      const Tensor& W = *ConstF32(wname);
      const int64_t D = W.dim(0), N = W.dim(1), K = W.dim(2);
      std::vector<float> scales;
      const Tensor q = QuantizeWeight(W.Reshaped({D * N, K}), wname, n.name, 0, &scales);
      Tensor t(DType::kI8, {D, K, N});
      for (int64_t d = 0; d < D; ++d)
        for (int64_t r = 0; r < N; ++r)
          for (int64_t k = 0; k < K; ++k)
            t.data<int8_t>()[(d * K + k) * N + r] = q.data<int8_t>()[(d * N + r) * K + k];
      const size_t si = (lstm ? 8 : 6) + 2 * which;
      in[1 + which] = AddInit(wname + "_quantized", t);
      in[si] = AddInit(wname + "_scale", Tensor::FromVector<float>({D, N}, scales));
      in[si + 1] = AddInit(wname + "_zero_point", Tensor(DType::kI8, {D, N}));
    }
    ir::Node q =
        ir::MakeNode(lstm ? "DynamicQuantizeLSTM" : "DynamicQuantizeGRU", n.name, in, n.outputs);
    q.attrs = n.attrs;
    const bool ort = lstm && !opt_.per_row && n.attr_int("layout", 0) == 0;
    if (ort) {
      q.domain = "com.microsoft";
      q.attrs.erase("layout");  // 0, the only layout of the contrib op
      g_.opset_imports["com.microsoft"] = 1;
    } else {
      q.domain = "qforge";
      if (opt_.per_row) q.attrs["per_row"] = int64_t{1};
      g_.opset_imports["qforge"] = 1;
      if (!lstm)
        gru_notes_.push_back("GRU '" + n.name +
                             "' became qforge::DynamicQuantizeGRU: ONNX Runtime has no quantized "
                             "GRU, so an .onnx output unrolls it over time into standard ops "
                             "(passes::LowerDynamicQuantizeGru; --ops without GRU keeps it fp32)");
    }
    out->push_back(q);
  }

  void Rewrite() {
    std::vector<ir::Node> nodes;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& n = g_.nodes[i];
      const Plan& p = plans_[i];
      switch (p.form) {
        case Form::kNone:
          nodes.push_back(n);
          continue;
        case Form::kLinear:
          RewriteLinear(n, p, &nodes);
          break;
        case Form::kActAct:
          RewriteActAct(n, &nodes);
          break;
        case Form::kConv:
          RewriteConv(n, &nodes);
          break;
        case Form::kRnn:
          RewriteRnn(n, &nodes);
          break;
      }
      RecordOutput(n);
    }
    g_.nodes = std::move(nodes);
    // Node names must stay unique (a model may already use one of the derived names).
    std::set<std::string> names;
    for (ir::Node& n : g_.nodes) {
      if (n.name.empty()) continue;
      std::string name = n.name;
      for (int k = 1; !names.insert(name).second; ++k) name = n.name + "_" + std::to_string(k);
      n.name = name;
    }
    ir::TopologicalSort(g_);
  }

  ir::Graph& g_;
  const DynamicQuantizeOptions& opt_;
  QuantizeResult& res_;
  std::set<std::string> ops_;
  std::vector<Plan> plans_;
  std::map<std::string, Dql> dql_;
  ir::ValueNamer names_;
  std::vector<std::string> gru_notes_;
};

}  // namespace

QuantizeResult QuantizeDynamic(const ir::Graph& graph, const DynamicQuantizeOptions& options) {
  for (const std::string& op : options.ops)
    if (op != "MatMul" && op != "Gemm" && op != "Conv" && op != "LSTM" && op != "GRU")
      throw Error("--ops: '" + op +
                  "' cannot be quantized dynamically (supported: MatMul, Gemm, "
                  "Conv, LSTM, GRU)");
  QuantizeResult res;
  res.graph = graph;
  if (res.graph.opset() < 10)
    throw Error("model opset " + std::to_string(res.graph.opset()) +
                " has no DynamicQuantizeLinear / MatMulInteger (needs opset >= 10)");
  res.pipeline = RunInferencePipeline(res.graph);
  std::vector<std::pair<std::string, std::string>> names;
  for (const ir::Node& n : res.graph.nodes) names.emplace_back(n.name, n.op_type);
  DynamicQuantizer q(res.graph, options, res);
  q.Run();
  int quantized = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const Plan& p = q.plans()[i];
    res.nodes.push_back({names[i].first, names[i].second, p.form != Form::kNone, p.reason});
    quantized += p.form != Form::kNone;
  }
  if (options.per_row)
    res.notes.push_back(
        "per-row activations use qforge::DynamicQLinear, which is not standard ONNX (ONNX's "
        "DynamicQuantizeLinear is per tensor): run the result with qforge (.qf)");
  for (const std::string& note : q.notes()) res.notes.push_back(note);
  if (quantized == 0) res.notes.push_back("no node was quantized: the graph is unchanged");
  ir::VerifyOrThrow(res.graph);
  return res;
}

}  // namespace qforge::passes
