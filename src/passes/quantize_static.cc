// Pass: static post-training quantization — fp32 graph + calibration table -> QDQ graph.
//
// How it works (docs/quantization.md):
//  1. RunInferencePipeline (BN folding etc.) on a copy.
//  2. Decide, in topological order, which nodes are quantized (and why not), and the
//     activation parameters of every tensor a quantized node reads or writes:
//       compute ops (Conv, ConvTranspose, Gemm, MatMul, Add, Mul, Concat, AveragePool,
//       GlobalAveragePool): inputs and output from the calibration range; a single following
//       Relu/Clip is absorbed (the output range is the activation's output range);
//       pass-through ops (MaxPool, Reshape, Transpose, Flatten, Squeeze, Unsqueeze,
//       Resize nearest): the output reuses the input's parameters, so Q(DQ(x)) is exact.
//  3. Rewrite: constant weights -> int8 initializer + DequantizeLinear; biases -> int32 with
//     scale s_in * s_w; each quantized activation tensor T gets one QuantizeLinear ->
//     DequantizeLinear pair right after its producer, and every reader reads the dequantized
//     value (so fp32 readers see exactly what the integer path represents).
#include <algorithm>
#include <cmath>
#include <set>

#include "qforge/numerics/quant_params.h"
#include "qforge/passes/quantize.h"

namespace qforge::passes {

const std::vector<TargetProfile>& TargetProfiles() {
  static const std::vector<TargetProfile> kProfiles = {
      {"generic", "scalar reference kernels (any x86-64)", int64_t{1} << 15, true, true,
       "reference kernels: int64 sums, no instruction-set constraint beyond K <= 2^15"},
      {"avx2", "AVX2 int8 GEMM: operands widened to int16, vpmaddwd (exact, no saturation)",
       int64_t{1} << 15, true, true,
       "AVX2 kernels widen both operands to int16 (vpmaddwd), so no 7-bit weight or activation "
       "restriction is needed; the saturating vpmaddubsw is never used"},
      {"avx512vnni", "AVX-512 VNNI int8 GEMM: vpdpbusd (uint8 x int8, no saturation)",
       int64_t{1} << 15, true, true,
       "vpdpbusd multiplies uint8 activations by int8 weights; int8 activations are shifted "
       "to uint8 (XOR 0x80, zero point + 128) before each GEMM, so uint8 is the cheaper choice"},
  };
  return kProfiles;
}

const TargetProfile& FindTargetProfile(const std::string& name) {
  // The kernels' ISA names (kernels::IsaName) are accepted too.
  const std::string key = name == "scalar" ? "generic" : name == "avx512" ? "avx512vnni" : name;
  std::string known;
  for (const TargetProfile& p : TargetProfiles()) {
    if (p.name == key) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw Error("unknown quantization target '" + name + "' (known: " + known + ")");
}

bool HasQdq(const ir::Graph& g) {
  for (const ir::Node& n : g.nodes)
    if (n.domain.empty() && (n.op_type == "QuantizeLinear" || n.op_type == "DequantizeLinear"))
      return true;
  return false;
}

namespace {

using numerics::Granularity;
using numerics::IntFormat;
using numerics::QuantParams;

struct ActParams {
  DType dtype = DType::kU8;
  QuantParams p;
};

bool IsComputeOp(const std::string& op) {
  static const std::set<std::string> kOps = {"Conv",   "ConvTranspose", "Gemm",
                                             "MatMul", "Add",           "Mul",
                                             "Concat", "AveragePool",   "GlobalAveragePool"};
  return kOps.count(op) != 0;
}
bool IsPassThrough(const std::string& op) {
  static const std::set<std::string> kOps = {"MaxPool", "Reshape",   "Transpose", "Flatten",
                                             "Squeeze", "Unsqueeze", "Resize"};
  return kOps.count(op) != 0;
}
// Ops whose output range may absorb a following Relu/Clip (the lowering fuses it, or drops it
// when the quantized range already excludes what it clips).
bool CanAbsorbActivation(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul" || op == "Add" ||
         op == "Mul";
}

// What the quantizer decided for one node.
struct Plan {
  bool quantize = false;
  std::string reason;
  int absorbed = -1;                 // index of the absorbed Relu/Clip
  std::string out;                   // the group's output tensor
  std::vector<size_t> act_inputs;    // inputs quantized as activations
  std::vector<size_t> const_inputs;  // Add/Mul constant inputs, quantized per tensor
  int weight = -1, bias = -1;        // input indices
  int weight_axis = -1;              // -1: per tensor
  int bias_axis = 0;
};

class Quantizer {
 public:
  Quantizer(ir::Graph& g, const calib::CalibTable& table, const QuantizeOptions& opt,
            QuantizeResult& res)
      : g_(g), table_(table), opt_(opt), res_(res) {
    act_fmt_ = opt.activation_dtype == DType::kI8 ? numerics::kInt8 : numerics::kUInt8;
  }

  void Run() {
    const std::set<std::string> exclude(opt_.exclude.begin(), opt_.exclude.end());
    for (const std::string& e : exclude)
      if (!g_.FindNode(e))
        throw Error("--exclude: no node named '" + e +
                    "' (names are those after BatchNormalization folding; see 'qforge info')");
    per_channel_ = opt_.per_channel;
    if (per_channel_ && g_.opset() < 13) {
      per_channel_ = false;
      res_.notes.push_back("opset " + std::to_string(g_.opset()) +
                           " < 13 has no per-axis DequantizeLinear: weights quantized per tensor");
    }

    plans_.assign(g_.nodes.size(), Plan{});
    std::vector<int> absorber(g_.nodes.size(), -1);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& n = g_.nodes[i];
      Plan& p = plans_[i];
      if (absorber[i] >= 0) {
        p.quantize = true;
        p.reason = "absorbed into the output range of " + g_.nodes[absorber[i]].Describe();
        continue;
      }
      if (exclude.count(n.name)) {
        p.reason = "excluded (--exclude)";
        continue;
      }
      p.reason = Decide(i, p);
      if (p.quantize && p.absorbed >= 0) absorber[p.absorbed] = static_cast<int>(i);
    }
    Rewrite();
    ir::RemoveUnusedValues(g_);
  }

  const std::vector<Plan>& plans() const { return plans_; }

 private:
  // Parameters for activation tensor t: already assigned, or from the calibration range.
  // Returns nullptr (and sets *why) when t cannot be a quantized activation.
  const ActParams* Act(const std::string& t, std::string* why) {
    auto it = params_.find(t);
    if (it != params_.end()) return &it->second;
    if (g_.is_initializer(t)) {
      *why = "input '" + t + "' is a constant";
      return nullptr;
    }
    if (auto vi = g_.FindValueInfo(t);
        vi && vi->dtype != DType::kF32 && vi->dtype != DType::kUndefined) {
      *why = "input '" + t + "' is " + std::string(DTypeName(vi->dtype)) + ", not float";
      return nullptr;
    }
    auto found = table_.entries.find(t);
    const calib::CalibEntry* e = found == table_.entries.end() ? nullptr : &found->second;
    if (!e) {
      *why = "no calibration range for '" + t + "'";
      return nullptr;
    }
    if (!std::isfinite(e->range_min) || !std::isfinite(e->range_max)) {
      *why = "calibration range of '" + t + "' is not finite";
      return nullptr;
    }
    ActParams a;
    a.dtype = opt_.activation_dtype;
    numerics::RangeOptions ro;
    ro.symmetric = opt_.symmetric_activations;
    a.p = numerics::ChooseQuantParams(static_cast<float>(e->range_min),
                                      static_cast<float>(e->range_max), act_fmt_, ro);
    return &params_.emplace(t, a).first->second;
  }

  const Tensor* ConstF32(const std::string& name) const {
    auto it = g_.initializers.find(name);
    if (it == g_.initializers.end() || it->second.dtype() != DType::kF32) return nullptr;
    return &it->second;
  }

  // The Relu/Clip reading n's only output, if it can be absorbed; -1 otherwise.
  int FindActivation(size_t i) const {
    const ir::Node& n = g_.nodes[i];
    if (n.outputs.size() != 1 || ir::IsGraphOutput(g_, n.outputs[0])) return -1;
    const std::vector<int> readers = ir::Consumers(g_, n.outputs[0]);
    if (readers.size() != 1) return -1;
    const ir::Node& a = g_.nodes[readers[0]];
    if (!a.domain.empty() || a.inputs.empty() || a.inputs[0] != n.outputs[0]) return -1;
    if (std::count(opt_.exclude.begin(), opt_.exclude.end(), a.name)) return -1;
    if (a.op_type == "Relu") return readers[0];
    if (a.op_type == "Clip") {
      for (size_t k = 1; k < a.inputs.size(); ++k)
        if (a.has_input(k) && !g_.is_initializer(a.inputs[k])) return -1;
      return readers[0];
    }
    return -1;
  }

  // Fills p for node i; returns the reason text (why not, or how).
  std::string Decide(size_t i, Plan& p) {
    const ir::Node& n = g_.nodes[i];
    if (!n.domain.empty()) return "no int8 kernel for " + n.domain + "::" + n.op_type;
    std::string why;
    if (IsPassThrough(n.op_type)) {
      if (n.op_type == "Resize" && n.attr_string("mode", "nearest") != "nearest")
        return "Resize mode '" + n.attr_string("mode", "nearest") + "' (only nearest is exact)";
      if (n.op_type == "MaxPool" && n.outputs.size() > 1 && !n.outputs[1].empty())
        return "MaxPool with an Indices output";
      if (!n.has_input(0) || n.outputs.empty()) return "malformed node";
      // Pass-through ops follow their producer: quantizing them alone would add a rounding
      // with nothing integer to gain.
      auto it = params_.find(n.inputs[0]);
      if (it == params_.end()) return "input '" + n.inputs[0] + "' is not quantized";
      const ActParams* a = &it->second;
      p.act_inputs = {0};
      p.out = n.outputs[0];
      if (params_.count(p.out)) return "output already has parameters";
      params_[p.out] = *a;
      p.quantize = true;
      return "pass-through (input scale)";
    }
    if (!IsComputeOp(n.op_type)) {
      if (n.op_type == "Relu" || n.op_type == "Clip")
        return "no int8 kernel for a standalone " + n.op_type +
               " (absorbed only after Conv/Gemm/MatMul/Add/Mul)";
      return "no int8 kernel for " + n.op_type;
    }
    if (n.outputs.size() != 1) return "more than one output";
    const TargetProfile& target = FindTargetProfile(opt_.target);
    std::string how;
    if (n.op_type == "Conv" || n.op_type == "ConvTranspose" || n.op_type == "Gemm" ||
        n.op_type == "MatMul") {
      if (!n.has_input(0) || !n.has_input(1)) return "missing input";
      const Tensor* w = ConstF32(n.inputs[1]);
      const bool conv = n.op_type == "Conv", convt = n.op_type == "ConvTranspose";
      if (!w && n.op_type != "MatMul") return "weight '" + n.inputs[1] + "' is not a constant";
      int64_t K = 0, out_channels = 0;
      if (conv || convt) {
        if (w->rank() < 3) return "weight of rank " + std::to_string(w->rank());
        const int64_t group = n.attr_int("group", 1);
        if (conv) {
          K = w->numel() / std::max<int64_t>(w->dim(0), 1);
          out_channels = w->dim(0);
          p.weight_axis = 0;
        } else {
          K = w->dim(0) / std::max<int64_t>(group, 1);
          out_channels = w->dim(1) * group;
          p.weight_axis = group == 1 ? 1 : -1;  // per-axis 1 is per output channel only then
        }
        p.bias_axis = 0;
      } else if (n.op_type == "Gemm") {
        if (n.attr_int("transA", 0) != 0) return "Gemm with transA=1";
        if (n.attr_float("alpha", 1.0f) != 1.0f || n.attr_float("beta", 1.0f) != 1.0f)
          return "Gemm with alpha or beta != 1";
        if (w->rank() != 2) return "Gemm weight of rank " + std::to_string(w->rank());
        const bool tb = n.attr_int("transB", 0) != 0;
        K = tb ? w->dim(1) : w->dim(0);
        out_channels = tb ? w->dim(0) : w->dim(1);
        p.weight_axis = tb ? 0 : 1;
      } else if (w) {  // MatMul with a constant B [.., K, N]: per column
        if (w->rank() < 2) return "MatMul weight of rank " + std::to_string(w->rank());
        K = w->dim(-2);
        out_channels = w->dim(-1);
        p.weight_axis = w->rank() == 2 ? 1 : -1;
      } else {  // MatMul of two activations: both per tensor
        p.act_inputs.push_back(1);
      }
      if (K > target.max_reduction)
        return "reduction length " + std::to_string(K) + " exceeds the " + target.name +
               " kernels' limit " + std::to_string(target.max_reduction);
      if (w) {
        p.weight = 1;
        if (!per_channel_) p.weight_axis = -1;
      }
      if (n.has_input(2) && n.op_type != "MatMul") {
        const Tensor* b = ConstF32(n.inputs[2]);
        if (!b) return "bias '" + n.inputs[2] + "' is not a constant";
        if (b->numel() != out_channels || (b->rank() > 1 && b->numel() != b->dim(-1)))
          return "bias of shape " + ShapeToString(b->shape()) + " is not one per output channel";
        p.bias = 2;
        p.bias_axis = b->rank() == 0 ? 0 : static_cast<int>(b->rank()) - 1;
      }
      p.act_inputs.insert(p.act_inputs.begin(), 0);
      how = p.weight < 0         ? "activations x activations, per tensor"
            : p.weight_axis >= 0 ? "weights per channel"
                                 : "weights per tensor";
      if (convt) how += "; runs fp32 between DQ and Q in qforge (no integer ConvTranspose)";
    } else if (n.op_type == "Add" || n.op_type == "Mul") {
      if (n.num_inputs() != 2) return "needs two inputs";
      for (size_t k = 0; k < 2; ++k) {
        if (g_.is_initializer(n.inputs[k])) {
          if (!ConstF32(n.inputs[k])) return "constant input '" + n.inputs[k] + "' is not float";
          p.const_inputs.push_back(k);
        } else {
          p.act_inputs.push_back(k);
        }
      }
      if (p.act_inputs.empty()) return "both inputs are constants";
      how = "per-tensor inputs and output";
    } else {  // Concat, AveragePool, GlobalAveragePool
      for (size_t k = 0; k < n.inputs.size(); ++k) {
        if (!n.has_input(k)) continue;
        if (g_.is_initializer(n.inputs[k])) return "constant input '" + n.inputs[k] + "'";
        p.act_inputs.push_back(k);
      }
      how = n.op_type == "Concat" ? "inputs requantized to the shared output scale"
                                  : "per-tensor input and output";
    }
    for (size_t k : p.act_inputs)
      if (!Act(n.inputs[k], &why)) return why;
    p.out = n.outputs[0];
    if (CanAbsorbActivation(n.op_type)) {
      p.absorbed = FindActivation(i);
      if (p.absorbed >= 0) {
        p.out = g_.nodes[p.absorbed].outputs[0];
        how += ", absorbs " + g_.nodes[p.absorbed].Describe();
      }
    }
    if (!opt_.quantize_outputs && ir::IsGraphOutput(g_, p.out)) {
      how += ", fp32 output (graph output)";
    } else if (!Act(p.out, &why)) {
      p.absorbed = -1;
      return why;
    }
    p.quantize = true;
    return how;
  }

  // A value name used neither in the graph nor by a node created but not yet inserted.
  std::string Unique(const std::string& base) {
    std::string name = ir::UniqueValueName(g_, base);
    for (int k = 1; reserved_.count(name); ++k)
      name = ir::UniqueValueName(g_, base + "_" + std::to_string(k));
    reserved_.insert(name);
    return name;
  }

  std::string Add(const std::string& base, Tensor t) {
    const std::string name = Unique(base);
    g_.initializers[name] = std::move(t);
    return name;
  }

  static Tensor Scalar(float s) { return Tensor::FromVector<float>({}, {s}); }
  static Tensor ZeroPoint(DType t, int32_t z, Shape shape = {}) {
    Tensor out(t, shape);
    for (int64_t i = 0; i < out.numel(); ++i) {
      if (t == DType::kU8) out.data<uint8_t>()[i] = static_cast<uint8_t>(z);
      if (t == DType::kI8) out.data<int8_t>()[i] = static_cast<int8_t>(z);
      if (t == DType::kI32) out.data<int32_t>()[i] = z;
    }
    return out;
  }

  // A QuantizeLinear / DequantizeLinear node; axis >= 0 makes it per axis (per channel).
  static ir::Node QdqNode(const std::string& op, const std::string& name,
                          std::vector<std::string> in, std::vector<std::string> out,
                          int axis = -1) {
    ir::Node q = ir::MakeNode(op, name, std::move(in), std::move(out));
    if (axis >= 0) q.attrs["axis"] = int64_t{axis};
    return q;
  }

  // Weight w of node `node` -> int8 + DequantizeLinear (per axis or per tensor). Returns the
  // dequantized value name and the scales.
  std::string QuantizeWeight(const std::string& w, const std::string& node, int axis,
                             std::vector<float>* scales, std::vector<ir::Node>* dq_nodes) {
    const Tensor& W = *ConstF32(w);
    const Granularity gr = axis >= 0 ? Granularity::PerChannel(axis) : Granularity::PerTensor();
    numerics::RangeOptions ro;
    ro.symmetric = true;
    ro.restricted_range = true;
    const std::vector<QuantParams> qp =
        numerics::ChooseQuantParams(W.data<float>(), W.shape(), gr, numerics::kInt8, ro);
    Tensor q(DType::kI8, W.shape());
    numerics::Quantize(W.data<float>(), W.shape(), gr, qp, numerics::kInt8, q.data<int8_t>(),
                       /*restricted_range=*/true);
    std::vector<float> dq(W.numel());
    numerics::Dequantize(q.data<int8_t>(), W.shape(), gr, qp, dq.data());
    QuantizedTensorInfo info;
    info.kind = QuantizedTensorInfo::Kind::kWeight;
    info.tensor = w;
    info.node = node;
    info.dtype = DType::kI8;
    info.channels = static_cast<int64_t>(qp.size());
    info.scale = qp[0].scale;
    numerics::ErrorStats es;
    es.Add(W.data<float>(), dq.data(), W.numel());
    info.error = es.Summary();
    res_.tensors.push_back(info);

    scales->clear();
    for (const QuantParams& p : qp) scales->push_back(p.scale);
    const Shape sshape = axis >= 0 ? Shape{static_cast<int64_t>(qp.size())} : Shape{};
    const std::string qn = Add(w + "_quantized", q);
    const std::string sn = Add(w + "_scale", Tensor::FromVector<float>(sshape, *scales));
    const std::string zn = Add(w + "_zero_point", ZeroPoint(DType::kI8, 0, sshape));
    const std::string out = Unique(w + "_dequantized");
    dq_nodes->push_back(
        QdqNode("DequantizeLinear", w + "_DequantizeLinear", {qn, sn, zn}, {out}, axis));
    return out;
  }

  // Bias b -> int32 with scale s_in * s_w[c] and zero point 0.
  std::string QuantizeBias(const std::string& b, float s_in, const std::vector<float>& s_w,
                           int axis, std::vector<ir::Node>* dq_nodes) {
    const Tensor& B = *ConstF32(b);
    std::vector<QuantParams> qp;
    for (float sw : s_w) {
      const float s = s_in * sw;  // float product, as the integer kernels' contract
      if (!(s >= numerics::kMinScale) || !std::isfinite(s)) return b;  // keep fp32 bias
      qp.push_back({s, 0});
    }
    const bool per_channel = qp.size() > 1;
    const Granularity gr = per_channel ? Granularity::PerChannel(axis) : Granularity::PerTensor();
    Tensor q(DType::kI32, B.shape());
    numerics::Quantize(B.data<float>(), B.shape(), gr, qp, numerics::kInt32, q.data<int32_t>());
    const Shape sshape = per_channel ? Shape{static_cast<int64_t>(qp.size())} : Shape{};
    std::vector<float> scales;
    for (const auto& p : qp) scales.push_back(p.scale);
    const std::string qn = Add(b + "_quantized", q);
    const std::string sn = Add(b + "_scale", Tensor::FromVector<float>(sshape, scales));
    const std::string zn = Add(b + "_zero_point", ZeroPoint(DType::kI32, 0, sshape));
    const std::string out = Unique(b + "_dequantized");
    dq_nodes->push_back(QdqNode("DequantizeLinear", b + "_DequantizeLinear", {qn, sn, zn}, {out},
                                per_channel ? axis : -1));
    return out;
  }

  // A constant Add/Mul operand -> activation dtype, per tensor, its own min/max.
  std::string QuantizeConstant(const std::string& c, std::vector<ir::Node>* dq_nodes) {
    const Tensor& C = *ConstF32(c);
    numerics::RangeOptions ro;
    ro.symmetric = opt_.symmetric_activations;
    const std::vector<QuantParams> qp = numerics::ChooseQuantParams(
        C.data<float>(), C.shape(), Granularity::PerTensor(), act_fmt_, ro);
    Tensor q(opt_.activation_dtype, C.shape());
    if (opt_.activation_dtype == DType::kI8)
      numerics::Quantize(C.data<float>(), C.shape(), Granularity::PerTensor(), qp, act_fmt_,
                         q.data<int8_t>());
    else
      numerics::Quantize(C.data<float>(), C.shape(), Granularity::PerTensor(), qp, act_fmt_,
                         q.data<uint8_t>());
    const std::string qn = Add(c + "_quantized", q);
    const std::string sn = Add(c + "_scale", Scalar(qp[0].scale));
    const std::string zn = Add(c + "_zero_point", ZeroPoint(q.dtype(), qp[0].zero_point));
    const std::string out = Unique(c + "_dequantized");
    dq_nodes->push_back(QdqNode("DequantizeLinear", c + "_DequantizeLinear", {qn, sn, zn}, {out}));
    return out;
  }

  void Rewrite() {
    // Which activation tensors get a Q -> DQ pair.
    std::vector<std::string> qdq;
    std::set<std::string> in_qdq;
    auto want = [&](const std::string& t) {
      if (in_qdq.insert(t).second) qdq.push_back(t);
    };
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Plan& p = plans_[i];
      if (!p.quantize || p.out.empty()) continue;
      for (size_t k : p.act_inputs) want(g_.nodes[i].inputs[k]);
      if (params_.count(p.out)) want(p.out);
    }

    // Weights, biases and constants: DQ nodes go in front of their consumer.
    std::vector<std::vector<ir::Node>> before(g_.nodes.size());
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const Plan& p = plans_[i];
      if (!p.quantize) continue;
      ir::Node& n = g_.nodes[i];
      std::vector<float> s_w;
      if (p.weight >= 0) {
        const std::string w = n.inputs[p.weight];
        n.inputs[p.weight] = QuantizeWeight(w, n.name, p.weight_axis, &s_w, &before[i]);
      }
      if (p.bias >= 0) {
        const float s_in = params_.at(n.inputs[0]).p.scale;
        n.inputs[p.bias] = QuantizeBias(n.inputs[p.bias], s_in, s_w, p.bias_axis, &before[i]);
      }
      for (size_t k : p.const_inputs) n.inputs[k] = QuantizeConstant(n.inputs[k], &before[i]);
    }

    // Activations: Q -> DQ after the producer; readers switch to the dequantized value.
    std::map<int, std::vector<ir::Node>> after;  // producer index (-1: graph input) -> nodes
    for (const std::string& t : qdq) {
      const ActParams& a = params_.at(t);
      const int prod = g_.FindProducer(t);
      const std::string sn = Add(t + "_scale", Scalar(a.p.scale));
      const std::string zn = Add(t + "_zero_point", ZeroPoint(a.dtype, a.p.zero_point));
      std::string src = t, dq_out;
      if (ir::IsGraphOutput(g_, t) && opt_.quantize_outputs && prod >= 0) {
        // Keep the graph output's name on the dequantized value.
        src = Unique(t + "_fp32");
        for (std::string& o : g_.nodes[prod].outputs)
          if (o == t) o = src;
        for (ir::Node& n : g_.nodes)
          for (std::string& in : n.inputs)
            if (in == t) in = src;
        dq_out = t;
      } else {
        dq_out = Unique(t + "_dequantized");
        for (ir::Node& n : g_.nodes)
          for (std::string& in : n.inputs)
            if (in == t) in = dq_out;
      }
      const std::string q_out = Unique(t + "_quantized");
      std::vector<ir::Node>& list = after[prod];
      list.push_back(QdqNode("QuantizeLinear", t + "_QuantizeLinear", {src, sn, zn}, {q_out}));
      list.push_back(
          QdqNode("DequantizeLinear", t + "_DequantizeLinear", {q_out, sn, zn}, {dq_out}));
      // Value info of the new intermediates (handy for viewers and ONNX Runtime).
      if (auto vi = g_.FindValueInfo(t); vi && vi->has_shape) {
        ir::ValueInfo qv = *vi;
        qv.name = q_out;
        qv.dtype = a.dtype;
        g_.value_info[q_out] = qv;
      }
      QuantizedTensorInfo info;
      info.kind = QuantizedTensorInfo::Kind::kActivation;
      info.tensor = t;
      info.dequantized = dq_out;
      info.node = prod >= 0 ? g_.nodes[prod].name : "(graph input)";
      info.dtype = a.dtype;
      info.scale = a.p.scale;
      info.zero_point = a.p.zero_point;
      res_.tensors.push_back(info);
    }

    std::vector<ir::Node> nodes;
    if (after.count(-1)) nodes = after[-1];
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      for (ir::Node& d : before[i]) nodes.push_back(std::move(d));
      nodes.push_back(g_.nodes[i]);
      if (auto it = after.find(static_cast<int>(i)); it != after.end())
        for (ir::Node& d : it->second) nodes.push_back(std::move(d));
    }
    g_.nodes = std::move(nodes);
    // Node names must be unique: the QDQ names derive from unique value names, but a model may
    // already use one of them.
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
  const calib::CalibTable& table_;
  const QuantizeOptions& opt_;
  QuantizeResult& res_;
  IntFormat act_fmt_;
  bool per_channel_ = true;
  std::vector<Plan> plans_;
  std::map<std::string, ActParams> params_;
  std::set<std::string> reserved_;
};

}  // namespace

QuantizeResult QuantizeStatic(const ir::Graph& graph, const calib::CalibTable& table,
                              const QuantizeOptions& options) {
  if (options.activation_dtype != DType::kU8 && options.activation_dtype != DType::kI8)
    throw Error("activation dtype must be uint8 or int8, got " +
                std::string(DTypeName(options.activation_dtype)));
  const TargetProfile& target = FindTargetProfile(options.target);
  if (options.activation_dtype == DType::kI8 && !target.int8_activations)
    throw Error("target '" + target.name + "' does not accept int8 activations");
  if (options.activation_dtype == DType::kU8 && !target.uint8_activations)
    throw Error("target '" + target.name + "' does not accept uint8 activations");
  QuantizeResult res;
  res.graph = graph;
  if (res.graph.opset() < 10)
    throw Error("model opset " + std::to_string(res.graph.opset()) +
                " has no QuantizeLinear (needs opset >= 10)");
  res.pipeline = RunInferencePipeline(res.graph);
  res.notes.push_back("target " + target.name + ": " + target.note);
  // Decisions are recorded against the cleaned graph before the rewrite adds Q/DQ nodes.
  std::vector<std::pair<std::string, std::string>> names;
  for (const ir::Node& n : res.graph.nodes) names.emplace_back(n.name, n.op_type);
  Quantizer q(res.graph, table, options, res);
  q.Run();
  for (size_t i = 0; i < names.size(); ++i) {
    const Plan& p = q.plans()[i];
    res.nodes.push_back({names[i].first, names[i].second, p.quantize, p.reason});
  }
  int quantized = 0, missing = 0;
  for (const NodeDecision& d : res.nodes) {
    quantized += d.quantized;
    missing += d.reason.rfind("no calibration range", 0) == 0;
  }
  if (quantized == 0 && missing > 0)
    res.notes.push_back("no node was quantized: the calibration table (made for '" + table.model +
                        "') has no ranges for this model's tensors");
  ir::VerifyOrThrow(res.graph);
  return res;
}

}  // namespace qforge::passes
