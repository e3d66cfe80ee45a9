// Pass: lower DequantizeLinear -> op -> [Relu|Clip] -> QuantizeLinear patterns (QDQ models from
// qforge or from other tools) to integer ops, so the int8 runtime computes on quantized tensors
// between QuantizeLinear and DequantizeLinear.
//
// The integer op reads the quantized inputs of the DequantizeLinear nodes and writes the
// QuantizeLinear's output value, so consecutive lowered ops connect without conversions; the
// DQ/Q nodes left without readers are removed at the end. A fused Relu/Clip becomes the clamp
// [out_min, out_max] in the output's quantized domain: quantization is monotonic, so
//   Q(clip(y, lo, hi)) = clamp(Q(y), Q(lo), Q(hi))        (Relu: lo = 0, Q(0) = zero point).
// When that clamp is the whole [qmin, qmax] range the activation is dropped (it can change
// nothing); otherwise it needs a qforge-domain op with out_min/out_max (Conv, MatMul, Gemm).
// A QuantizeLinear of a constant (an fp32 weight some tools keep) is folded into an initializer
// first, so its DequantizeLinear looks like any int8 weight.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <set>

#include "qforge/numerics/quant_params.h"
#include "qforge/passes/quantize.h"
#include "runtime/op_kernel.h"

namespace qforge::passes {

namespace {

// One DequantizeLinear input or QuantizeLinear output with constant parameters.
struct QParam {
  std::string q;      // the quantized value
  std::string scale;  // initializer names; zp empty when absent (zero of dtype)
  std::string zp;
  DType dtype = DType::kUndefined;
  const Tensor* scale_t = nullptr;
  const Tensor* zp_t = nullptr;
  int64_t axis = 1;
  bool per_tensor() const { return scale_t->numel() == 1; }
  float s(int64_t i = 0) const { return scale_t->data<float>()[scale_t->numel() == 1 ? 0 : i]; }
  int32_t z(int64_t i = 0) const {
    return zp_t ? static_cast<int32_t>(zp_t->GetAsInt64(zp_t->numel() == 1 ? 0 : i)) : 0;
  }
  numerics::IntFormat fmt() const {
    return dtype == DType::kI8 ? numerics::kInt8 : numerics::kUInt8;
  }
};

bool SameParams(const QParam& a, const QParam& b) {
  return a.dtype == b.dtype && a.per_tensor() && b.per_tensor() && a.s() == b.s() && a.z() == b.z();
}

const Tensor* Init(const ir::Graph& g, const std::string& v) {
  auto it = g.initializers.find(v);
  return it == g.initializers.end() ? nullptr : &it->second;
}

bool IsQuantDType(DType t) { return t == DType::kU8 || t == DType::kI8; }

// Scale (f32, constant) and zero point (constant if given) of a Q or DQ node.
bool ReadParams(const ir::Graph& g, const ir::Node& n, QParam& p) {
  if (n.attr_int("block_size", 0) != 0 || !n.has_input(1)) return false;
  p.scale = n.inputs[1];
  p.scale_t = Init(g, p.scale);
  if (!p.scale_t || p.scale_t->dtype() != DType::kF32 || p.scale_t->numel() < 1 ||
      p.scale_t->rank() > 1)
    return false;
  for (float s : p.scale_t->span<float>())
    if (!(s > 0) || !std::isfinite(s)) return false;
  if (n.has_input(2)) {
    p.zp = n.inputs[2];
    p.zp_t = Init(g, p.zp);
    if (!p.zp_t || p.zp_t->numel() != p.scale_t->numel()) return false;
  }
  p.axis = n.attr_int("axis", 1);
  return true;
}

// v is produced by a DequantizeLinear with constant parameters.
std::optional<QParam> AsDq(const ir::Graph& g, const std::string& v) {
  const int pi = g.FindProducer(v);
  if (pi < 0) return std::nullopt;
  const ir::Node& n = g.nodes[pi];
  if (!n.domain.empty() || n.op_type != "DequantizeLinear" || !n.has_input(0)) return std::nullopt;
  QParam p;
  if (!ReadParams(g, n, p)) return std::nullopt;
  p.q = n.inputs[0];
  if (p.zp_t) {
    p.dtype = p.zp_t->dtype();
  } else if (const Tensor* t = Init(g, p.q)) {
    p.dtype = t->dtype();
  } else if (int qi = g.FindProducer(p.q); qi >= 0 && g.nodes[qi].op_type == "QuantizeLinear" &&
                                           !g.nodes[qi].has_input(2) &&
                                           g.nodes[qi].attr_int("output_dtype", 0) == 0) {
    p.dtype = DType::kU8;
  } else if (auto vi = g.FindValueInfo(p.q)) {
    p.dtype = vi->dtype;
  }
  return p;
}

// Node qi is a per-tensor QuantizeLinear to uint8/int8 with constant parameters.
std::optional<QParam> AsQ(const ir::Graph& g, int qi) {
  if (qi < 0) return std::nullopt;
  const ir::Node& n = g.nodes[qi];
  if (!n.domain.empty() || n.op_type != "QuantizeLinear" || n.outputs.size() != 1)
    return std::nullopt;
  QParam p;
  if (!ReadParams(g, n, p) || !p.per_tensor()) return std::nullopt;
  if (n.attr_int("saturate", 1) != 1) return std::nullopt;
  p.dtype = p.zp_t
                ? p.zp_t->dtype()
                : static_cast<DType>(n.attr_int("output_dtype", static_cast<int64_t>(DType::kU8)));
  if (!IsQuantDType(p.dtype)) return std::nullopt;
  p.q = n.outputs[0];
  return p;
}

// The only node reading v, when v is not a graph output; -1 otherwise.
int SoleReader(const ir::Graph& g, const std::string& v) {
  if (ir::IsGraphOutput(g, v)) return -1;
  const std::vector<int> r = ir::Consumers(g, v);
  if (r.size() != 1) return -1;
  int uses = 0;
  for (const std::string& in : g.nodes[r[0]].inputs) uses += in == v;
  return uses == 1 ? r[0] : -1;
}

bool HaveOp(const std::string& domain, const std::string& op) {
  return runtime::FindOp(domain, op) != nullptr;
}

class Lowering {
 public:
  explicit Lowering(ir::Graph& g) : g_(g) {}

  int Run() {
    int rewrites = FoldConstantQuantize();
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (TryLower(i)) {
        ++rewrites;
        EraseDead();
      }
    }
    rewrites += CollapseDqQ();
    RemoveDeadNodes();
    ir::RemoveUnusedValues(g_);
    return rewrites;
  }

 private:
  // Zero-point input name for p (a zero initializer of p's dtype when the node had none).
  std::string Zp(const QParam& p) {
    if (!p.zp.empty()) return p.zp;
    const std::string key = std::string("zero_") + std::string(DTypeName(p.dtype));
    auto it = zeros_.find(key);
    if (it != zeros_.end()) return it->second;
    const std::string name = ir::UniqueValueName(g_, key + "_point");
    g_.initializers[name] = Tensor(p.dtype, {});
    zeros_[key] = name;
    return name;
  }

  // A weight's zero point with the scale's shape (QLinearConv/QLinearMatMul/QGemm want one).
  std::string WeightZp(const QParam& w) {
    if (!w.zp.empty()) return w.zp;
    if (w.per_tensor()) return Zp(w);
    const std::string name = ir::UniqueValueName(g_, w.q + "_zero_point");
    g_.initializers[name] = Tensor(w.dtype, w.scale_t->shape());
    return name;
  }

  // The int32 bias of a product with input scale s_x and weight scales w (per channel n or per
  // tensor): reused as is when it is already int32 with scale s_x * s_w[c] and zero point 0,
  // otherwise its real values are requantized to that scale (round half to even, saturated).
  // Returns "" when the bias is not a constant.
  std::string Bias(const std::string& b, float s_x, const QParam& w, int64_t channels) {
    const float tol = 1e-6f;
    std::vector<float> real;
    if (auto dq = AsDq(g_, b)) {
      const Tensor* q = Init(g_, dq->q);
      if (!q || q->numel() != channels ||
          (dq->scale_t->numel() != 1 && dq->scale_t->numel() != channels))
        return "";
      bool exact = q->dtype() == DType::kI32;
      for (int64_t c = 0; exact && c < channels; ++c) {
        const float want = s_x * w.s(w.per_tensor() ? 0 : c);
        exact = dq->z(dq->per_tensor() ? 0 : c) == 0 &&
                std::fabs(dq->s(dq->per_tensor() ? 0 : c) - want) <= tol * want;
      }
      if (exact) return dq->q;
      for (int64_t c = 0; c < channels; ++c) {
        const int64_t k = dq->per_tensor() ? 0 : c;
        real.push_back(static_cast<float>(q->GetAsInt64(c) - dq->z(k)) * dq->s(k));
      }
    } else if (const Tensor* f = Init(g_, b);
               f && f->dtype() == DType::kF32 && f->numel() == channels) {
      real = f->ToFloatVector();
    } else {
      return "";
    }
    Tensor q(DType::kI32, {channels});
    for (int64_t c = 0; c < channels; ++c) {
      const float s = s_x * w.s(w.per_tensor() ? 0 : c);
      if (!(s > 0) || !std::isfinite(s)) return "";
      q.data<int32_t>()[c] = numerics::QuantizeValue(real[c], {s, 0}, numerics::kInt32);
    }
    const std::string name = ir::UniqueValueName(g_, b + "_int32");
    g_.initializers[name] = q;
    return name;
  }

  // The Relu/Clip (optional) and QuantizeLinear after node i; fills the clamp range.
  struct Tail {
    int act = -1, q = -1;
    QParam y;
    int32_t out_min = 0, out_max = 0;
    bool clamps() const { return out_min > y.fmt().qmin() || out_max < y.fmt().qmax(); }
  };
  std::optional<Tail> FindTail(size_t i) {
    const ir::Node& n = g_.nodes[i];
    if (n.outputs.size() != 1) return std::nullopt;
    Tail t;
    int r = SoleReader(g_, n.outputs[0]);
    if (r < 0) return std::nullopt;
    float lo = -std::numeric_limits<float>::infinity(), hi = -lo;
    const ir::Node& a = g_.nodes[r];
    if (a.domain.empty() && (a.op_type == "Relu" || a.op_type == "Clip") &&
        a.inputs[0] == n.outputs[0] && a.outputs.size() == 1) {
      if (a.op_type == "Relu") {
        lo = 0;
      } else if (g_.opset() < 11) {
        lo = a.attr_float("min", lo);
        hi = a.attr_float("max", hi);
      } else {
        for (size_t k = 1; k < 3; ++k) {
          if (!a.has_input(k)) continue;
          const Tensor* c = Init(g_, a.inputs[k]);
          if (!c || c->numel() != 1 || c->dtype() != DType::kF32) return std::nullopt;
          (k == 1 ? lo : hi) = c->data<float>()[0];
        }
      }
      t.act = r;
      r = SoleReader(g_, a.outputs[0]);
    }
    auto y = AsQ(g_, r);
    if (!y) return std::nullopt;
    t.q = r;
    t.y = *y;
    const int32_t qmin = y->fmt().qmin(), qmax = y->fmt().qmax();
    t.out_min = qmin;
    t.out_max = qmax;
    const numerics::QuantParams yp{y->s(), y->z()};
    if (lo > -std::numeric_limits<float>::infinity())
      t.out_min = std::max(qmin, numerics::QuantizeValue(lo, yp, qmin, qmax));
    if (hi < std::numeric_limits<float>::infinity())
      t.out_max = std::min(qmax, numerics::QuantizeValue(hi, yp, qmin, qmax));
    if (t.out_min > t.out_max) return std::nullopt;
    return t;
  }

  // Replaces node i by `lowered` (writing the Q's output) and marks the tail dead.
  void Replace(size_t i, ir::Node lowered, const Tail& t) {
    lowered.name = g_.nodes[i].name;
    lowered.outputs = {t.y.q};
    if (!lowered.domain.empty()) g_.opset_imports.emplace(lowered.domain, 1);
    g_.nodes[i] = std::move(lowered);
    if (t.act >= 0) dead_.insert(t.act);
    dead_.insert(t.q);
  }

  void EraseDead() {
    std::vector<ir::Node> kept;
    for (size_t i = 0; i < g_.nodes.size(); ++i)
      if (!dead_.count(static_cast<int>(i))) kept.push_back(std::move(g_.nodes[i]));
    g_.nodes = std::move(kept);
    dead_.clear();
  }

  bool TryLower(size_t i) {
    const ir::Node n = g_.nodes[i];
    if (!n.domain.empty() || n.inputs.empty() || !n.has_input(0)) return false;
    static const std::set<std::string> kPassThrough = {
        "MaxPool", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Resize"};
    const std::string& op = n.op_type;
    if (op != "Conv" && op != "MatMul" && op != "Gemm" && op != "Add" && op != "Mul" &&
        op != "Concat" && op != "AveragePool" && op != "GlobalAveragePool" &&
        !kPassThrough.count(op))
      return false;
    auto tail = FindTail(i);
    if (!tail) return false;
    const Tail& t = *tail;
    // Activation inputs: per tensor, same 8-bit type family the kernels take.
    auto act = [&](size_t k) -> std::optional<QParam> {
      if (!n.has_input(k)) return std::nullopt;
      auto p = AsDq(g_, n.inputs[k]);
      if (!p || !p->per_tensor() || !IsQuantDType(p->dtype)) return std::nullopt;
      return p;
    };

    if (kPassThrough.count(op)) {
      if (t.act >= 0) return false;
      if (op == "Resize" && n.attr_string("mode", "nearest") != "nearest") return false;
      if (n.outputs.size() != 1) return false;
      auto x = act(0);
      if (!x || !SameParams(*x, t.y)) return false;
      ir::Node l = n;
      l.inputs[0] = x->q;
      Replace(i, l, t);
      return true;
    }

    if (op == "Conv" || op == "MatMul" || op == "Gemm") {
      auto x = act(0);
      if (!x || x->dtype == DType::kUndefined) return false;
      auto w = AsDq(g_, n.inputs.size() > 1 ? n.inputs[1] : "");
      if (!w || !IsQuantDType(w->dtype)) return false;
      const Tensor* W = Init(g_, w->q);
      int64_t channels = 1;
      ir::Node l;
      if (op == "Conv") {
        if (!W || W->rank() < 3) return false;
        channels = W->dim(0);
        if (!w->per_tensor() && !(w->axis == 0 && w->scale_t->numel() == channels)) return false;
        l.op_type = "QLinearConv";
        l.attrs = n.attrs;
      } else if (op == "Gemm") {
        if (!W || W->rank() != 2) return false;
        if (n.attr_float("alpha", 1.0f) != 1.0f || n.attr_float("beta", 1.0f) != 1.0f) return false;
        const bool tb = n.attr_int("transB", 0) != 0;
        channels = tb ? W->dim(0) : W->dim(1);
        const int64_t n_axis = tb ? 0 : 1;
        if (!w->per_tensor() && !(w->axis == n_axis && w->scale_t->numel() == channels))
          return false;
        l.op_type = "QGemm";
        l.domain = "com.microsoft";
        l.attrs["transA"] = n.attr_int("transA", 0);
        l.attrs["transB"] = n.attr_int("transB", 0);
        l.attrs["alpha"] = 1.0f;
      } else {  // MatMul: B constant or an activation; per tensor or per column
        if (!w->per_tensor()) {
          if (!W || W->rank() != 2) return false;
          const int64_t axis = w->axis < 0 ? w->axis + 2 : w->axis;
          if (axis != 1 || w->scale_t->numel() != W->dim(1)) return false;
        }
        if (!W && !w->per_tensor()) return false;
        l.op_type = "QLinearMatMul";
      }
      std::string bias;
      if (op != "MatMul" && n.has_input(2)) {
        bias = Bias(n.inputs[2], x->s(), *w, channels);
        if (bias.empty()) return false;
      }
      if (t.clamps()) {
        if (l.domain == "com.microsoft") l.domain.clear();
        l.domain = "qforge";
        l.attrs["out_min"] = int64_t{t.out_min};
        l.attrs["out_max"] = int64_t{t.out_max};
      }
      if (!HaveOp(l.domain, l.op_type)) return false;
      if (op == "Gemm") {
        l.inputs = {x->q, x->scale, Zp(*x), w->q, w->scale, WeightZp(*w), bias, t.y.scale, Zp(t.y)};
      } else {
        l.inputs = {x->q, x->scale, Zp(*x), w->q, w->scale, WeightZp(*w), t.y.scale, Zp(t.y)};
        if (!bias.empty()) l.inputs.push_back(bias);
      }
      Replace(i, l, t);
      return true;
    }

    // Add, Mul, Concat, AveragePool, GlobalAveragePool: no fused clamp; the activation may only
    // be dropped when it cannot change a quantized value.
    if (t.clamps()) return false;
    ir::Node l;
    l.domain = "com.microsoft";
    std::vector<QParam> xs;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      auto x = act(k);
      if (!x || x->dtype != t.y.dtype) return false;
      xs.push_back(*x);
    }
    if (op == "Add" || op == "Mul") {
      if (xs.size() != 2) return false;
      l.op_type = op == "Add" ? "QLinearAdd" : "QLinearMul";
      l.inputs = {xs[0].q,     xs[0].scale, Zp(xs[0]), xs[1].q,
                  xs[1].scale, Zp(xs[1]),   t.y.scale, Zp(t.y)};
    } else if (op == "Concat") {
      l.op_type = "QLinearConcat";
      l.attrs["axis"] = n.attr_int("axis");
      l.inputs = {t.y.scale, Zp(t.y)};
      for (const QParam& x : xs) {
        l.inputs.push_back(x.q);
        l.inputs.push_back(x.scale);
        l.inputs.push_back(Zp(x));
      }
    } else {
      if (xs.size() != 1) return false;
      l.op_type = op == "AveragePool" ? "QLinearAveragePool" : "QLinearGlobalAveragePool";
      l.attrs = n.attrs;
      l.attrs["channels_last"] = int64_t{0};
      l.inputs = {xs[0].q, xs[0].scale, Zp(xs[0]), t.y.scale, Zp(t.y)};
    }
    if (!HaveOp(l.domain, l.op_type)) return false;
    Replace(i, l, t);
    return true;
  }

  // QuantizeLinear of a constant fp32 tensor (weights some tools leave in fp32 in front of the
  // DequantizeLinear) becomes the quantized initializer, with the same rounding as the op
  // (numerics::Quantize: x / s in float, half to even, saturated).
  int FoldConstantQuantize() {
    int n = 0;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      const ir::Node& q = g_.nodes[i];
      if (!q.domain.empty() || q.op_type != "QuantizeLinear" || q.outputs.size() != 1 ||
          ir::IsGraphOutput(g_, q.outputs[0]))
        continue;
      const Tensor* x = Init(g_, q.inputs[0]);
      QParam p;
      if (!x || x->dtype() != DType::kF32 || !ReadParams(g_, q, p)) continue;
      if (q.attr_int("saturate", 1) != 1) continue;
      p.dtype =
          p.zp_t ? p.zp_t->dtype()
                 : static_cast<DType>(q.attr_int("output_dtype", static_cast<int64_t>(DType::kU8)));
      if (!IsQuantDType(p.dtype)) continue;
      numerics::Granularity gr = numerics::Granularity::PerTensor();
      if (!p.per_tensor()) {
        const int64_t axis = p.axis < 0 ? p.axis + x->rank() : p.axis;
        if (axis < 0 || axis >= x->rank() || x->dim(axis) != p.scale_t->numel()) continue;
        gr = numerics::Granularity::PerChannel(static_cast<int>(axis));
      }
      std::vector<numerics::QuantParams> params;
      for (int64_t c = 0; c < p.scale_t->numel(); ++c) params.push_back({p.s(c), p.z(c)});
      Tensor out(p.dtype, x->shape());
      if (p.dtype == DType::kI8)
        numerics::Quantize(x->data<float>(), x->shape(), gr, params, numerics::kInt8,
                           out.data<int8_t>());
      else
        numerics::Quantize(x->data<float>(), x->shape(), gr, params, numerics::kUInt8,
                           out.data<uint8_t>());
      g_.initializers[q.outputs[0]] = out;
      dead_.insert(static_cast<int>(i));
      ++n;
    }
    EraseDead();
    return n;
  }

  // QuantizeLinear(DequantizeLinear(x)) with equal parameters is x.
  int CollapseDqQ() {
    int n = 0;
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      auto y = AsQ(g_, static_cast<int>(i));
      if (!y || ir::IsGraphOutput(g_, y->q)) continue;
      auto x = AsDq(g_, g_.nodes[i].inputs[0]);
      if (!x || !x->per_tensor() || !SameParams(*x, *y)) continue;
      for (ir::Node& r : g_.nodes)
        for (std::string& in : r.inputs)
          if (in == y->q) in = x->q;
      ++n;
    }
    return n;
  }

  // Removes nodes none of whose outputs is read or is a graph output.
  void RemoveDeadNodes() {
    for (bool changed = true; changed;) {
      changed = false;
      std::set<std::string> used;
      for (const ir::Node& n : g_.nodes)
        for (const std::string& in : n.inputs) used.insert(in);
      for (const ir::ValueInfo& o : g_.outputs) used.insert(o.name);
      std::vector<ir::Node> kept;
      for (ir::Node& n : g_.nodes) {
        bool live = false;
        for (const std::string& o : n.outputs) live |= !o.empty() && used.count(o);
        if (live)
          kept.push_back(std::move(n));
        else
          changed = true;
      }
      g_.nodes = std::move(kept);
    }
  }

  ir::Graph& g_;
  std::set<int> dead_;
  std::map<std::string, std::string> zeros_;
};

}  // namespace

int LowerQdqToInteger(ir::Graph& g) {
  Lowering l(g);
  const int n = l.Run();
  ir::VerifyOrThrow(g);
  return n;
}

}  // namespace qforge::passes
