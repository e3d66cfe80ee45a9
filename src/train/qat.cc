// QAT graph preparation (QDQ graph -> training graph with FakeQuant nodes) and export of the
// trained model back into the QDQ graph; see qat.h.
#include "qforge/train/qat.h"

#include <cmath>
#include <map>
#include <set>

#include "qforge/passes/passes.h"
#include "qforge/passes/quantize.h"

namespace qforge::train {

namespace nq = qforge::numerics;

FakeQuantConfig FakeQuantNodeConfig(const ir::Node& node, int64_t scale_rank) {
  FakeQuantConfig c;
  const int64_t bits = node.attr_int("bits", 8);
  const bool is_signed = node.attr_int("signed", 0) != 0;
  c.format = nq::IntFormat{static_cast<int>(bits), is_signed};
  if (bits < 2 || bits > 16 || !c.format.valid())
    throw Error(node.Describe() + ": bad 'bits' attribute " + std::to_string(bits));
  c.restricted_range = node.attr_int("restricted", 0) != 0;
  if (scale_rank > 1) throw Error(node.Describe() + ": scale must be a scalar or 1-D");
  c.granularity = scale_rank == 1
                      ? nq::Granularity::PerChannel(static_cast<int>(node.attr_int("axis", 0)))
                      : nq::Granularity::PerTensor();
  return c;
}

void SetEstimator(ir::Graph& graph, Estimator e) {
  for (ir::Node& n : graph.nodes)
    if (n.domain == kFakeQuantDomain && n.op_type == kFakeQuantOp)
      n.attrs["estimator"] = std::string(EstimatorName(e));
}

namespace {

Tensor FloatTensor(const Shape& shape, const std::vector<float>& v) {
  return Tensor::FromVector<float>(shape, v);
}

// The zero points of a u8 / i8 / i32 initializer as floats.
std::vector<float> ZeroPointsAsFloat(const Tensor& z) {
  std::vector<float> out;
  for (int64_t i = 0; i < z.numel(); ++i) out.push_back(static_cast<float>(z.GetAsInt64(i)));
  return out;
}

bool IsWeightOp(const std::string& op) {
  return op == "Conv" || op == "ConvTranspose" || op == "Gemm" || op == "MatMul";
}

ir::Node MakeFakeQuant(const std::string& name, const std::string& x, const std::string& scale,
                       const std::string& zero, const std::string& y, const FakeQuantConfig& c,
                       const QatOptions& o, bool observe) {
  ir::Node n;
  n.name = name;
  n.op_type = kFakeQuantOp;
  n.domain = kFakeQuantDomain;
  n.inputs = {x, scale, zero};
  n.outputs = {y};
  n.attrs["bits"] = int64_t{c.format.bits};
  n.attrs["signed"] = int64_t{c.format.is_signed ? 1 : 0};
  n.attrs["restricted"] = int64_t{c.restricted_range ? 1 : 0};
  n.attrs["axis"] =
      int64_t{c.granularity.kind == nq::Granularity::Kind::kPerChannel ? c.granularity.axis : 0};
  n.attrs["estimator"] = std::string(EstimatorName(o.estimator));
  n.attrs["observer_freeze_step"] = observe ? o.observer_freeze_step : int64_t{0};
  n.attrs["observer_momentum"] = static_cast<float>(o.observer_momentum);
  n.attrs["soft_k_start"] = static_cast<float>(o.soft.k_start);
  n.attrs["soft_k_end"] = static_cast<float>(o.soft.k_end);
  n.attrs["soft_anneal_steps"] = o.soft.anneal_steps;
  return n;
}

const Tensor& Initializer(const ir::Graph& g, const std::string& name, const char* what) {
  auto it = g.initializers.find(name);
  if (it == g.initializers.end())
    throw Error(std::string("QAT: ") + what + " '" + name + "' is not an initializer");
  return it->second;
}

// Re-inserts a BatchNormalization (BnSite) after every layer of m.graph the inference pipeline
// folded a BN of `fp32` into, when that layer's weight is fake quantized per output channel and
// its bias is a BiasSite (layers that do not qualify stay folded, their statistics frozen).
void InsertBatchNorms(const ir::Graph& fp32, QatModel& m) {
  ir::Graph& g = m.graph;
  for (const ir::Node& bn : fp32.nodes) {
    if (bn.op_type != "BatchNormalization" || !bn.domain.empty() || bn.inputs.size() < 5) continue;
    const int fp = fp32.FindProducer(bn.inputs[0]);
    const int pi = g.FindProducer(bn.outputs[0]);
    if (fp < 0 || pi < 0) continue;
    const ir::Node& layer = g.nodes[pi];
    if (layer.name != fp32.nodes[fp].name || (layer.op_type != "Conv" && layer.op_type != "Gemm") ||
        layer.inputs.size() < 3)
      continue;
    bool params = true;
    for (size_t k = 1; k < 5; ++k)
      params = params && fp32.is_initializer(bn.inputs[k]) &&
               fp32.initializers.at(bn.inputs[k]).dtype() == DType::kF32;
    if (!params) continue;
    const FakeQuantSite* w = nullptr;
    for (const FakeQuantSite& s : m.sites)
      if (s.kind == FakeQuantSite::Kind::kWeight && s.output == layer.inputs[1]) w = &s;
    bool has_bias = false;
    for (const BiasSite& b : m.biases) has_bias = has_bias || b.fp32 == layer.inputs[2];
    if (!w || !has_bias || w->config.granularity.kind != nq::Granularity::Kind::kPerChannel)
      continue;
    const std::vector<float> gamma = fp32.initializers.at(bn.inputs[1]).ToFloatVector();
    const std::vector<float> beta = fp32.initializers.at(bn.inputs[2]).ToFloatVector();
    const std::vector<float> var = fp32.initializers.at(bn.inputs[4]).ToFloatVector();
    const size_t c = gamma.size();
    const Tensor& wt = g.initializers.at(w->input);
    const int axis = w->config.granularity.axis;
    if (beta.size() != c || var.size() != c || axis < 0 || axis >= wt.rank() ||
        wt.dim(axis) != static_cast<int64_t>(c) ||
        g.initializers.at(w->scale).numel() != static_cast<int64_t>(c))
      continue;
    const float eps = bn.attr_float("epsilon", 1e-5f);
    // u's running statistics and a scale / bias making BN(u) = u in evaluation mode.
    std::vector<float> v0(c), scale(c);
    for (size_t i = 0; i < c; ++i) {
      const double v = double(gamma[i]) * gamma[i] * var[i] / (double(var[i]) + eps);
      v0[i] = static_cast<float>(v);
      scale[i] = static_cast<float>(std::sqrt(double(v0[i]) + eps));
    }
    BnSite site;
    site.output = bn.outputs[0];
    site.input = ir::UniqueValueName(g, site.output + "_prebn");
    site.node = site.output + "_qat_bn";
    site.scale = ir::UniqueValueName(g, site.node + "_scale");
    g.initializers[site.scale] = FloatTensor({int64_t(c)}, scale);
    site.bias = ir::UniqueValueName(g, site.node + "_bias");
    g.initializers[site.bias] = FloatTensor({int64_t(c)}, beta);
    site.mean = ir::UniqueValueName(g, site.node + "_mean");
    g.initializers[site.mean] = FloatTensor({int64_t(c)}, beta);
    site.var = ir::UniqueValueName(g, site.node + "_var");
    g.initializers[site.var] = FloatTensor({int64_t(c)}, v0);
    site.epsilon = eps;
    site.weight = w->input;
    site.weight_scale = w->scale;
    site.layer_bias = layer.inputs[2];
    site.weight_axis = axis;
    ir::Node node;
    node.name = site.node;
    node.op_type = "BatchNormalization";
    node.inputs = {site.input, site.scale, site.bias, site.mean, site.var};
    node.outputs = {site.output};
    node.attrs["epsilon"] = eps;
    node.attrs["momentum"] = bn.attr_float("momentum", 0.9f);
    g.nodes[pi].outputs[0] = site.input;
    g.nodes.insert(g.nodes.begin() + pi + 1, node);
    m.weights.push_back(site.scale);
    m.weights.push_back(site.bias);
    m.batch_norms.push_back(site);
  }
  ir::TopologicalSort(g);
  ir::VerifyOrThrow(g);
}

}  // namespace

void FoldQatBatchNorms(QatModel& m) {
  ir::Graph& g = m.graph;
  std::set<std::string> folded_params;
  for (const BnSite& b : m.batch_norms) {
    const std::vector<float> scale = Initializer(g, b.scale, "BN scale").ToFloatVector();
    const std::vector<float> bias = Initializer(g, b.bias, "BN bias").ToFloatVector();
    const std::vector<float> mean = Initializer(g, b.mean, "BN mean").ToFloatVector();
    const std::vector<float> var = Initializer(g, b.var, "BN variance").ToFloatVector();
    Tensor w = Initializer(g, b.weight, "weight").Clone();
    Tensor ws = Initializer(g, b.weight_scale, "weight scale").Clone();
    Tensor lb = Initializer(g, b.layer_bias, "bias").Clone();
    const int64_t c = static_cast<int64_t>(scale.size());
    if (w.dim(b.weight_axis) != c || ws.numel() != c || lb.numel() != c)
      throw Error("QAT: BatchNormalization '" + b.node + "' does not match its layer's channels");
    // W's elements as [outer, C, inner] around the channel axis.
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < b.weight_axis; ++d) outer *= w.dim(d);
    for (int64_t d = b.weight_axis + 1; d < w.rank(); ++d) inner *= w.dim(d);
    float* pw = w.data<float>();
    for (int64_t k = 0; k < c; ++k) {
      const double a = double(scale[k]) / std::sqrt(double(var[k]) + b.epsilon);
      if (!std::isfinite(a) || a == 0)
        throw Error("QAT: BatchNormalization '" + b.node + "' channel " + std::to_string(k) +
                    " cannot be folded (factor " + std::to_string(a) + ")");
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t i = 0; i < inner; ++i) {
          float& x = pw[(o * c + k) * inner + i];
          x = static_cast<float>(x * a);
        }
      ws.data<float>()[k] = static_cast<float>(ws.data<float>()[k] * std::abs(a));
      lb.data<float>()[k] = static_cast<float>(lb.data<float>()[k] * a + (bias[k] - mean[k] * a));
    }
    g.initializers[b.weight] = w;
    g.initializers[b.weight_scale] = ws;
    g.initializers[b.layer_bias] = lb;
    const int bi = g.FindProducer(b.output);
    const int pi = g.FindProducer(b.input);
    if (bi < 0 || pi < 0 || g.nodes[bi].name != b.node)
      throw Error("QAT: BatchNormalization '" + b.node + "' is not in the training graph");
    g.nodes[pi].outputs[0] = b.output;
    g.nodes.erase(g.nodes.begin() + bi);
    folded_params.insert({b.scale, b.bias});
  }
  if (m.batch_norms.empty()) return;
  m.batch_norms.clear();
  std::vector<std::string> weights;
  for (const std::string& w : m.weights)
    if (!folded_params.count(w)) weights.push_back(w);
  m.weights = std::move(weights);
  ir::RemoveUnusedValues(g);
  ir::VerifyOrThrow(g);
}

QatModel PrepareQat(const ir::Graph& fp32, const calib::CalibTable& table,
                    const QatOptions& options) {
  if (options.bits_w != 8 && options.bits_w != 4 && options.bits_w != 2)
    throw Error("--bits-w must be 8, 4 or 2, got " + std::to_string(options.bits_w));
  if (options.bits_a != 8 && options.bits_a != 4)
    throw Error("--bits-a must be 8 or 4, got " + std::to_string(options.bits_a));
  QatModel m;
  m.options = options;
  passes::QuantizeResult res = passes::QuantizeStatic(fp32, table, passes::QuantizeOptions{});
  int quantized = 0;
  for (const passes::NodeDecision& d : res.nodes) quantized += d.quantized;
  if (quantized == 0)
    throw Error(
        "QAT: the static quantizer quantized no node of this model (does the calibration "
        "match it?)");
  ir::Graph cleaned = fp32;  // the fp32 values the QDQ graph's quantized initializers came from
  passes::RunInferencePipeline(cleaned);
  m.qdq = res.graph;
  ir::Graph& g = m.graph;
  g = res.graph;
  const bool lsq = options.estimator == Estimator::kLsq;

  // The fp32 initializer a node of g read at input k before quantization.
  auto fp32_input = [&](const ir::Node& consumer, size_t k) -> std::string {
    const ir::Node* c = cleaned.FindNode(consumer.name);
    if (!c || k >= c->inputs.size() || !cleaned.is_initializer(c->inputs[k]) ||
        cleaned.initializers.at(c->inputs[k]).dtype() != DType::kF32)
      throw Error("QAT: cannot find the fp32 constant behind input " + std::to_string(k) + " of " +
                  consumer.Describe());
    const std::string& name = c->inputs[k];
    if (!g.initializers.count(name)) g.initializers[name] = cleaned.initializers.at(name).Clone();
    return name;
  };

  // Node index by output and readers by value, in g before the rewrite.
  std::map<std::string, int> producer;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const std::string& o : g.nodes[i].outputs) producer[o] = static_cast<int>(i);

  // What replaces each Q / DQ node: a FakeQuant, or nothing.
  std::map<size_t, ir::Node> replace;
  std::set<size_t> drop;
  std::map<std::string, std::string> rename;  // value -> value (extra DQ outputs of one Q)

  // 1. Activations: QuantizeLinear -> DequantizeLinear pairs.
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& q = g.nodes[i];
    if (!q.domain.empty() || q.op_type != "QuantizeLinear") continue;
    std::vector<int> readers = ir::Consumers(g, q.outputs[0]);
    if (readers.empty()) {
      drop.insert(i);
      continue;
    }
    std::string dq_out;
    for (int r : readers) {
      const ir::Node& dq = g.nodes[r];
      if (dq.op_type != "DequantizeLinear" || dq.inputs.size() < 3 || dq.inputs[1] != q.inputs[1] ||
          dq.inputs[2] != q.inputs[2])
        throw Error("QAT: " + q.Describe() + " is not followed by a matching DequantizeLinear");
      drop.insert(r);
      if (dq_out.empty())
        dq_out = dq.outputs[0];
      else
        rename[dq.outputs[0]] = dq_out;
    }
    const std::string& sn = q.inputs[1];
    const std::string& zn = q.inputs[2];
    const Tensor& st = Initializer(g, sn, "activation scale");
    const Tensor& zt = Initializer(g, zn, "activation zero point");
    if (zt.dtype() != DType::kU8 || st.numel() != 1)
      throw Error("QAT: activation " + q.inputs[0] + " is not quantized to uint8 per tensor");
    FakeQuantSite s;
    s.kind = FakeQuantSite::Kind::kActivation;
    s.config = ActivationConfig(options.bits_a);
    nq::QuantParams p{st.data<float>()[0], static_cast<int32_t>(zt.data<uint8_t>()[0])};
    if (options.bits_a != 8) {  // the calibrated range [(0 - z) s, (255 - z) s] at the new width
      const float lo = nq::DequantizeValue(0, p), hi = nq::DequantizeValue(255, p);
      p = nq::ChooseQuantParams(lo, hi, s.config.format);
    }
    s.node = q.inputs[0] + "_FakeQuant";
    s.input = q.inputs[0];
    s.output = dq_out;
    s.scale = sn;
    s.zero_point = zn;
    s.qdq_scale = sn;
    s.qdq_zero_point = zn;
    s.train_scale = s.train_zero_point = lsq;
    g.initializers[sn] = Tensor::Scalar<float>(p.scale);
    g.initializers[zn] = Tensor::Scalar<float>(static_cast<float>(p.zero_point));
    replace[i] = MakeFakeQuant(s.node, s.input, sn, zn, s.output, s.config, options, true);
    m.sites.push_back(s);
  }

  // The activation FakeQuant producing value v (for bias scales), by output name.
  std::map<std::string, std::string> act_scale_of;
  for (const FakeQuantSite& s : m.sites) act_scale_of[s.output] = s.scale;
  for (const auto& [from, to] : rename) act_scale_of[from] = act_scale_of[to];

  // 2. Weights and constants (every other DequantizeLinear of an initializer); biases after,
  // since a bias site names its weight's scale.
  std::map<std::string, std::string> weight_scale_of;  // FakeQuant output -> scale
  std::vector<size_t> bias_dqs;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& dq = g.nodes[i];
    if (drop.count(i) || !dq.domain.empty() || dq.op_type != "DequantizeLinear") continue;
    if (dq.inputs.size() < 3 || !g.is_initializer(dq.inputs[0]))
      throw Error("QAT: unexpected " + dq.Describe() + " in the quantized graph");
    const Tensor& qt = g.initializers.at(dq.inputs[0]);
    if (qt.dtype() == DType::kI32) {
      bias_dqs.push_back(i);
      continue;
    }
    const std::vector<int> readers = ir::Consumers(g, dq.outputs[0]);
    if (readers.size() != 1)
      throw Error("QAT: " + dq.Describe() + " does not feed exactly one node");
    const ir::Node& consumer = g.nodes[readers[0]];
    size_t k = 0;
    while (k < consumer.inputs.size() && consumer.inputs[k] != dq.outputs[0]) ++k;
    const Tensor& st = Initializer(g, dq.inputs[1], "scale");
    const Tensor& zt = Initializer(g, dq.inputs[2], "zero point");
    FakeQuantSite s;
    s.input = fp32_input(consumer, k);
    s.output = dq.outputs[0];
    s.node = dq.outputs[0] + "_FakeQuant";
    s.qdq_quantized = dq.inputs[0];
    s.qdq_scale = dq.inputs[1];
    s.qdq_zero_point = dq.inputs[2];
    s.scale = dq.inputs[1];
    s.zero_point = dq.inputs[2];
    const Tensor& w = g.initializers.at(s.input);
    std::vector<float> scales = st.ToFloatVector();
    if (qt.dtype() == DType::kI8 && IsWeightOp(consumer.op_type) && k == 1) {
      s.kind = FakeQuantSite::Kind::kWeight;
      s.config = WeightConfig(options.bits_w, static_cast<int>(dq.attr_int("axis", 1)));
      if (st.rank() == 0) s.config.granularity = nq::Granularity::PerTensor();
      if (options.bits_w != 8) {  // max |W_c| / qmax at the narrower width
        nq::RangeOptions ro;
        ro.symmetric = ro.restricted_range = true;
        scales.clear();
        for (const nq::QuantParams& p : nq::ChooseQuantParams(
                 w.data<float>(), w.shape(), s.config.granularity, s.config.format, ro))
          scales.push_back(p.scale);
      }
      s.train_scale = lsq;
      weight_scale_of[s.output] = s.scale;
      m.weights.push_back(s.input);
    } else {
      s.kind = FakeQuantSite::Kind::kConstant;
      s.config.format = qt.dtype() == DType::kI8 ? nq::kInt8 : nq::kUInt8;
      s.config.granularity =
          st.rank() == 0 ? nq::Granularity::PerTensor()
                         : nq::Granularity::PerChannel(static_cast<int>(dq.attr_int("axis", 1)));
    }
    const std::vector<float> zeros = ZeroPointsAsFloat(zt);
    g.initializers[s.scale] = FloatTensor(st.shape(), scales);
    g.initializers[s.zero_point] = FloatTensor(zt.shape(), zeros);
    replace[i] = MakeFakeQuant(s.node, s.input, s.scale, s.zero_point, s.output, s.config, options,
                               s.kind == FakeQuantSite::Kind::kWeight);
    m.sites.push_back(s);
  }

  // 3. Biases: the consumer reads the fp32 bias directly.
  for (size_t i : bias_dqs) {
    const ir::Node& dq = g.nodes[i];
    const std::vector<int> readers = ir::Consumers(g, dq.outputs[0]);
    if (readers.size() != 1)
      throw Error("QAT: " + dq.Describe() + " does not feed exactly one node");
    ir::Node& consumer = g.nodes[readers[0]];
    size_t k = 0;
    while (k < consumer.inputs.size() && consumer.inputs[k] != dq.outputs[0]) ++k;
    BiasSite b;
    b.fp32 = fp32_input(consumer, k);
    auto in = act_scale_of.find(consumer.inputs[0]);
    auto ws = weight_scale_of.find(consumer.inputs.size() > 1 ? consumer.inputs[1] : "");
    if (in == act_scale_of.end() || ws == weight_scale_of.end())
      throw Error("QAT: the int32 bias of " + consumer.Describe() +
                  " has no quantized input or weight");
    b.input_scale = in->second;
    b.weight_scale = ws->second;
    b.qdq_quantized = dq.inputs[0];
    b.qdq_scale = dq.inputs[1];
    consumer.inputs[k] = b.fp32;
    m.biases.push_back(b);
    m.weights.push_back(b.fp32);
    drop.insert(i);
  }

  std::vector<ir::Node> nodes;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (auto it = replace.find(i); it != replace.end()) {
      nodes.push_back(std::move(it->second));
    } else if (!drop.count(i)) {
      nodes.push_back(std::move(g.nodes[i]));
    }
  }
  g.nodes = std::move(nodes);
  for (const auto& [from, to] : rename) ir::ReplaceAllUses(g, from, to);
  g.opset_imports[kFakeQuantDomain] = 1;
  ir::RemoveUnusedValues(g);
  ir::TopologicalSort(g);
  ir::VerifyOrThrow(g);
  if (options.bn_freeze_step < 0) throw Error("QAT: the BatchNorm freeze step must be >= 0");
  if (options.bn_freeze_step > 0) InsertBatchNorms(fp32, m);

  for (const FakeQuantSite& s : m.sites) {
    if (s.train_scale) m.quant_params.push_back(s.scale);
    if (s.train_zero_point) m.quant_params.push_back(s.zero_point);
  }
  return m;
}

namespace {

// The effective (s, z) of a site from the training graph's current values.
std::vector<nq::QuantParams> SiteParams(const ir::Graph& g, const FakeQuantSite& s) {
  const Tensor& st = Initializer(g, s.scale, "scale");
  const Tensor& zt = Initializer(g, s.zero_point, "zero point");
  std::vector<nq::QuantParams> out;
  for (int64_t i = 0; i < st.numel(); ++i) {
    const float sc = st.data<float>()[i], z = zt.data<float>()[i];
    if (!std::isfinite(sc) || !std::isfinite(z))
      throw Error("QAT export: scale / zero point of '" + s.input + "' is not finite");
    out.push_back(EffectiveParams(sc, z, s.config));
  }
  return out;
}

// A bias's int32 quantization: scale s_in * s_w[c] (float product, as passes::QuantizeStatic
// and the integer kernels), zero point 0, per channel along the last axis when s_w is.
struct BiasQuant {
  std::vector<nq::QuantParams> params;
  nq::Granularity granularity;
};
BiasQuant BiasParams(const QatModel& model, const BiasSite& b, const Tensor& bias) {
  const ir::Graph& g = model.graph;
  auto site_of = [&](const std::string& scale) -> const FakeQuantSite& {
    for (const FakeQuantSite& s : model.sites)
      if (s.scale == scale) return s;
    throw Error("QAT: no fake quantizer with scale '" + scale + "'");
  };
  const std::vector<nq::QuantParams> in = SiteParams(g, site_of(b.input_scale));
  const std::vector<nq::QuantParams> w = SiteParams(g, site_of(b.weight_scale));
  BiasQuant r;
  for (const nq::QuantParams& pw : w) {
    const float s = in[0].scale * pw.scale;
    if (!(s >= nq::kMinScale) || !std::isfinite(s))
      throw Error("QAT: bias scale of '" + b.fp32 + "' underflows");
    r.params.push_back({s, 0});
  }
  const bool per_channel = r.params.size() > 1;
  if (per_channel && bias.numel() != static_cast<int64_t>(r.params.size()))
    throw Error("QAT: bias '" + b.fp32 + "' does not have one value per channel");
  for (int64_t i = 0; i < bias.numel(); ++i)
    if (!std::isfinite(bias.data<float>()[i]))
      throw Error("QAT: bias '" + b.fp32 + "' has a non-finite value");
  r.granularity = per_channel ? nq::Granularity::PerChannel(static_cast<int>(bias.rank()) - 1)
                              : nq::Granularity::PerTensor();
  return r;
}

}  // namespace

void SnapBiases(QatModel& model) {
  for (const BiasSite& b : model.biases) {
    Tensor& bias = model.graph.initializers.at(b.fp32);
    const BiasQuant bq = BiasParams(model, b, bias);
    std::vector<int32_t> q(bias.numel());
    nq::Quantize<int32_t>(bias.data<float>(), bias.shape(), bq.granularity, bq.params, nq::kInt32,
                          q.data());
    Tensor snapped(DType::kF32, bias.shape());
    nq::Dequantize<int32_t>(q.data(), bias.shape(), bq.granularity, bq.params,
                            snapped.data<float>());
    bias = snapped;
  }
}

ir::Graph ExportQdq(const QatModel& model) {
  if (!model.batch_norms.empty())
    throw Error("QAT export: BatchNormalization '" + model.batch_norms[0].node +
                "' is not folded yet (FoldQatBatchNorms)");
  ir::Graph q = model.qdq;
  const ir::Graph& g = model.graph;
  for (const FakeQuantSite& s : model.sites) {
    const std::vector<nq::QuantParams> p = SiteParams(g, s);
    std::vector<float> scales;
    for (const nq::QuantParams& x : p) scales.push_back(x.scale);
    const Shape sshape = q.initializers.at(s.qdq_scale).shape();
    if (s.kind == FakeQuantSite::Kind::kActivation) {
      q.initializers[s.qdq_scale] = Tensor::Scalar<float>(p[0].scale);
      q.initializers[s.qdq_zero_point] =
          Tensor::Scalar<uint8_t>(static_cast<uint8_t>(p[0].zero_point));
      if (s.config.qmax() < 255) {
        // Narrower than uint8: a Clip to [(qmin - z) s, (qmax - z) s] before the QuantizeLinear
        // makes its saturation that of the narrow format (the clip bounds divide back to exactly
        // qmin - z and qmax - z after rounding).
        for (size_t i = 0; i < q.nodes.size(); ++i) {
          ir::Node& qn = q.nodes[i];
          if (qn.op_type != "QuantizeLinear" || qn.inputs[1] != s.qdq_scale) continue;
          const std::string lo = ir::UniqueValueName(q, s.input + "_clip_min");
          q.initializers[lo] = Tensor::Scalar<float>(nq::DequantizeValue(s.config.qmin(), p[0]));
          const std::string hi = ir::UniqueValueName(q, s.input + "_clip_max");
          q.initializers[hi] = Tensor::Scalar<float>(nq::DequantizeValue(s.config.qmax(), p[0]));
          const std::string out = ir::UniqueValueName(q, s.input + "_clipped");
          ir::Node clip;
          clip.name = out;
          clip.op_type = "Clip";
          clip.inputs = {qn.inputs[0], lo, hi};
          clip.outputs = {out};
          qn.inputs[0] = out;
          q.nodes.insert(q.nodes.begin() + static_cast<std::ptrdiff_t>(i), clip);
          break;
        }
      }
    } else if (s.kind == FakeQuantSite::Kind::kWeight) {
      const Tensor& w = Initializer(g, s.input, "weight");
      for (int64_t i = 0; i < w.numel(); ++i)
        if (!std::isfinite(w.data<float>()[i]))
          throw Error("QAT export: weight '" + s.input + "' has a non-finite value");
      Tensor qt(DType::kI8, w.shape());
      nq::Quantize<int8_t>(w.data<float>(), w.shape(), s.config.granularity, p, s.config.format,
                           qt.data<int8_t>(), s.config.restricted_range);
      q.initializers[s.qdq_quantized] = qt;
      q.initializers[s.qdq_scale] = FloatTensor(sshape, scales);
    }
    // Constants keep the template's values (they are not trained).
  }
  for (const BiasSite& b : model.biases) {
    const Tensor& bias = Initializer(g, b.fp32, "bias");
    const BiasQuant bq = BiasParams(model, b, bias);
    Tensor qt(DType::kI32, bias.shape());
    nq::Quantize<int32_t>(bias.data<float>(), bias.shape(), bq.granularity, bq.params, nq::kInt32,
                          qt.data<int32_t>());
    std::vector<float> scales;
    for (const nq::QuantParams& p : bq.params) scales.push_back(p.scale);
    q.initializers[b.qdq_quantized] = qt;
    q.initializers[b.qdq_scale] = FloatTensor(q.initializers.at(b.qdq_scale).shape(), scales);
  }
  ir::VerifyOrThrow(q);
  return q;
}

}  // namespace qforge::train
