// Before/after tests of QuantizeStatic (fp32 -> QDQ) and LowerQdqToInteger (QDQ -> integer ops).
#include "qforge/passes/quantize.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qforge/numerics/quant_params.h"
#include "qforge/runtime/session.h"
#include "runtime/op_kernel.h"

namespace qforge::passes {
namespace {

Tensor Random(Shape shape, uint32_t seed, float lo = -1, float hi = 1) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  for (float& v : t.span<float>()) v = d(rng);
  return t;
}

ir::Node N(std::string op, std::vector<std::string> in, std::vector<std::string> out,
           std::string name) {
  ir::Node n;
  n.op_type = std::move(op);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.name = std::move(name);
  return n;
}

int Count(const ir::Graph& g, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes) c += n.op_type == op;
  return c;
}

// x [B,3,8,8] -> Conv 3->4 3x3 pad 1 -> Relu -> MaxPool 2 -> Flatten -> Gemm 64->5 -> y, plus
// a side branch Add(y, y) -> z to have an Add; Sigmoid on z (no int8 kernel) -> s.
ir::Graph SmallCnn() {
  ir::Graph g;
  g.name = "small";
  g.opset_imports[""] = 13;
  ir::ValueInfo x{
      "x",
      DType::kF32,
      true,
      {ir::Dim::Symbol("batch"), ir::Dim::Known(3), ir::Dim::Known(8), ir::Dim::Known(8)}};
  g.inputs.push_back(x);
  g.initializers["w1"] = Random({4, 3, 3, 3}, 1, -0.5f, 0.5f);
  g.initializers["b1"] = Random({4}, 2, -0.2f, 0.2f);
  g.initializers["w2"] = Random({5, 64}, 3, -0.3f, 0.3f);
  g.initializers["b2"] = Random({5}, 4, -0.1f, 0.1f);
  ir::Node conv = N("Conv", {"x", "w1", "b1"}, {"c"}, "conv");
  conv.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  conv.attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
  g.nodes.push_back(conv);
  g.nodes.push_back(N("Relu", {"c"}, {"r"}, "relu"));
  ir::Node pool = N("MaxPool", {"r"}, {"p"}, "pool");
  pool.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  pool.attrs["strides"] = std::vector<int64_t>{2, 2};
  g.nodes.push_back(pool);
  g.nodes.push_back(N("Flatten", {"p"}, {"f"}, "flatten"));
  ir::Node gemm = N("Gemm", {"f", "w2", "b2"}, {"y"}, "fc");
  gemm.attrs["transB"] = int64_t{1};
  g.nodes.push_back(gemm);
  g.nodes.push_back(N("Add", {"y", "y"}, {"z"}, "add"));
  g.nodes.push_back(N("Sigmoid", {"z"}, {"s"}, "sigmoid"));
  g.outputs.push_back({"y", DType::kF32, false, {}});
  g.outputs.push_back({"s", DType::kF32, false, {}});
  return g;
}

std::map<std::string, Tensor> Feeds(uint32_t seed, int64_t batch = 4) {
  return {{"x", Random({batch, 3, 8, 8}, seed, 0.0f, 1.0f)}};
}

// A min/max calibration of every float tensor, made by running the graph (what qforge
// calibrate writes, without the calib module).
calib::CalibTable Calibrate(const ir::Graph& g, int batches = 4) {
  calib::CalibTable t;
  t.method = "minmax";
  runtime::Session s(g);
  auto add = [&](const std::string& name, const Tensor& v) {
    if (v.dtype() != DType::kF32) return;
    auto [it, fresh] = t.entries.try_emplace(name);
    calib::CalibEntry& e = it->second;
    e.tensor = name;
    e.observer = "minmax";
    for (float f : v.span<float>()) {
      if (fresh) e.range_min = e.range_max = f, fresh = false;
      e.range_min = std::min<double>(e.range_min, f);
      e.range_max = std::max<double>(e.range_max, f);
    }
    e.range_min = std::min(e.range_min, 0.0);
    e.range_max = std::max(e.range_max, 0.0);
  };
  for (int b = 0; b < batches; ++b) {
    auto feeds = Feeds(100 + b);
    for (const auto& [n, v] : feeds) add(n, v);
    auto out = s.Run(feeds, [&](const ir::Node& n, const std::vector<Tensor>& outs) {
      for (size_t k = 0; k < outs.size(); ++k) add(n.outputs[k], outs[k]);
    });
    for (const auto& [n, v] : out) add(n, v);
  }
  return t;
}

const NodeDecision& Decision(const QuantizeResult& r, const std::string& node) {
  for (const auto& d : r.nodes)
    if (d.node == node) return d;
  throw std::runtime_error("no decision for " + node);
}

std::map<std::string, Tensor> RunGraph(const ir::Graph& g,
                                       const std::map<std::string, Tensor>& feeds) {
  runtime::Session s(g);
  return s.Run(feeds);
}

TEST(QuantizeStatic, MakesAValidQdqGraphWithInt8WeightsAndInt32Bias) {
  const ir::Graph g = SmallCnn();
  const calib::CalibTable table = Calibrate(g);
  const QuantizeResult r = QuantizeStatic(g, table);
  EXPECT_TRUE(ir::Verify(r.graph).empty());
  for (const char* node : {"conv", "relu", "pool", "flatten", "fc", "add"})
    EXPECT_TRUE(Decision(r, node).quantized) << node << ": " << Decision(r, node).reason;
  EXPECT_FALSE(Decision(r, "sigmoid").quantized);
  EXPECT_NE(Decision(r, "sigmoid").reason.find("no int8 kernel"), std::string::npos);
  EXPECT_NE(Decision(r, "relu").reason.find("absorbed"), std::string::npos);

  // Weights: int8 in [-127, 127], one scale per output channel; biases int32 with s_in * s_w.
  const Tensor& wq = r.graph.initializers.at("w1_quantized");
  ASSERT_EQ(wq.dtype(), DType::kI8);
  int lo = 0, hi = 0;
  for (int8_t v : wq.span<int8_t>()) lo = std::min<int>(lo, v), hi = std::max<int>(hi, v);
  EXPECT_GE(lo, -127);
  EXPECT_EQ(std::max(-lo, hi), 127);  // symmetric: the largest magnitude maps to 127
  const Tensor& ws = r.graph.initializers.at("w1_scale");
  ASSERT_EQ(ws.shape(), Shape{4});
  const Tensor& bq = r.graph.initializers.at("b1_quantized");
  ASSERT_EQ(bq.dtype(), DType::kI32);
  const Tensor& bs = r.graph.initializers.at("b1_scale");
  const float s_x = r.graph.initializers.at("x_scale").data<float>()[0];
  for (int c = 0; c < 4; ++c) EXPECT_EQ(bs.data<float>()[c], s_x * ws.data<float>()[c]);
  // The Gemm weight [N, K] with transB=1 is per row (axis 0).
  EXPECT_EQ(r.graph.initializers.at("w2_scale").shape(), Shape{5});
  // Activations: uint8 asymmetric by default; MaxPool and Flatten reuse their input's scale.
  const Tensor& rz = r.graph.initializers.at("r_zero_point");
  EXPECT_EQ(rz.dtype(), DType::kU8);
  EXPECT_EQ(rz.data<uint8_t>()[0], 0);  // ReLU range [0, max]
  EXPECT_EQ(r.graph.initializers.at("p_scale").data<float>()[0],
            r.graph.initializers.at("r_scale").data<float>()[0]);
  // No fp32 weights are left.
  EXPECT_FALSE(r.graph.is_initializer("w1"));
  EXPECT_EQ(Count(r.graph, "Conv"), 1);
  EXPECT_GT(Count(r.graph, "QuantizeLinear"), 4);

  // The QDQ graph approximates the fp32 graph (outputs kept under their names).
  const auto feeds = Feeds(7);
  auto a = RunGraph(g, feeds), b = RunGraph(r.graph, feeds);
  const calib::CalibEntry& ye = table.entries.at("y");
  const double range = ye.range_max - ye.range_min;
  auto va = a.at("y").ToFloatVector(), vb = b.at("y").ToFloatVector();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 0.05 * range) << i;

  // Weight errors are reported; activation errors are filled by MeasureActivationErrors.
  int weights = 0;
  for (const auto& t : r.tensors)
    if (t.kind == QuantizedTensorInfo::Kind::kWeight) {
      ++weights;
      EXPECT_GT(t.error.sqnr_db, 30) << t.tensor;
    }
  EXPECT_EQ(weights, 2);
}

TEST(QuantizeStatic, OptionsPerTensorInt8SymmetricExclude) {
  const ir::Graph g = SmallCnn();
  const calib::CalibTable table = Calibrate(g);
  QuantizeOptions o;
  o.per_channel = false;
  o.activation_dtype = DType::kI8;
  o.symmetric_activations = true;
  o.exclude = {"fc"};
  o.target = "avx512vnni";
  const QuantizeResult r = QuantizeStatic(g, table, o);
  EXPECT_TRUE(ir::Verify(r.graph).empty());
  EXPECT_EQ(r.graph.initializers.at("w1_scale").shape(), Shape{});
  EXPECT_EQ(r.graph.initializers.at("x_zero_point").dtype(), DType::kI8);
  EXPECT_EQ(r.graph.initializers.at("x_zero_point").data<int8_t>()[0], 0);
  EXPECT_FALSE(Decision(r, "fc").quantized);
  EXPECT_EQ(Decision(r, "fc").reason, "excluded (--exclude)");
  EXPECT_TRUE(r.graph.is_initializer("w2"));  // excluded weights stay fp32
  // The graph still computes y closely.
  const auto feeds = Feeds(9);
  auto a = RunGraph(g, feeds), b = RunGraph(r.graph, feeds);
  auto va = a.at("y").ToFloatVector(), vb = b.at("y").ToFloatVector();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 0.1) << i;
}

TEST(QuantizeStatic, BadOptionsAreErrors) {
  const ir::Graph g = SmallCnn();
  const calib::CalibTable table = Calibrate(g);
  QuantizeOptions o;
  o.exclude = {"nope"};
  EXPECT_THROW(QuantizeStatic(g, table, o), Error);
  o = {};
  o.target = "z80";
  EXPECT_THROW(QuantizeStatic(g, table, o), Error);
  o = {};
  o.activation_dtype = DType::kI16;
  EXPECT_THROW(QuantizeStatic(g, table, o), Error);
}

TEST(QuantizeStatic, MissingCalibrationKeepsTheNodeFp32WithAReason) {
  const ir::Graph g = SmallCnn();
  calib::CalibTable table = Calibrate(g);
  table.entries.erase("x");
  const QuantizeResult r = QuantizeStatic(g, table);
  EXPECT_TRUE(ir::Verify(r.graph).empty());
  EXPECT_FALSE(Decision(r, "conv").quantized);
  EXPECT_EQ(Decision(r, "conv").reason, "no calibration range for 'x'");
  EXPECT_FALSE(Decision(r, "pool").quantized);  // its input is not quantized any more
  EXPECT_TRUE(Decision(r, "fc").quantized) << Decision(r, "fc").reason;
  // A table made for another model quantizes nothing, and says so.
  calib::CalibTable other;
  other.model = "other.onnx";
  other.entries["unrelated"] = {};
  const QuantizeResult none = QuantizeStatic(g, other);
  for (const auto& d : none.nodes) EXPECT_FALSE(d.quantized) << d.node;
  EXPECT_NE(none.notes.back().find("other.onnx"), std::string::npos);
  EXPECT_EQ(ir::ToText(none.graph), [&] {
    ir::Graph clean = g;
    RunInferencePipeline(clean);
    return ir::ToText(clean);
  }());
}

TEST(QuantizeStatic, GraphOutputsCanStayFp32) {
  const ir::Graph g = SmallCnn();
  QuantizeOptions o;
  o.quantize_outputs = false;
  const QuantizeResult r = QuantizeStatic(g, Calibrate(g), o);
  EXPECT_TRUE(ir::Verify(r.graph).empty());
  // y is a graph output: the Gemm writes it in fp32 (no Q/DQ pair named after it) ...
  EXPECT_EQ(r.graph.FindProducer("y"), [&] {
    for (size_t i = 0; i < r.graph.nodes.size(); ++i)
      if (r.graph.nodes[i].op_type == "Gemm") return static_cast<int>(i);
    return -1;
  }());
  // ... but the Add that reads it still gets a quantized input.
  EXPECT_TRUE(r.graph.is_initializer("y_scale"));
}

// After lowering, the graph computes what the QDQ graph computes: exactly for the pass-through
// and collapsed parts, within one output quantization step where integer kernels requantize
// (fixed-point round half up vs the QDQ graph's float rounding).
TEST(LowerQdqToInteger, ComputesTheQdqGraphWithinOneStep) {
  const ir::Graph g = SmallCnn();
  const calib::CalibTable table = Calibrate(g);
  const QuantizeResult r = QuantizeStatic(g, table);
  ir::Graph lowered = r.graph;
  const int rewrites = LowerQdqToInteger(lowered);
  EXPECT_TRUE(ir::Verify(lowered).empty());
  if (runtime::FindOp("", "QLinearConv")) {
    EXPECT_GT(rewrites, 0);
    EXPECT_EQ(Count(lowered, "Conv"), 0) << ir::ToText(lowered);
    EXPECT_EQ(Count(lowered, "Relu"), 0);
  }
  // MaxPool/Flatten read quantized values when their producer was lowered.
  const auto feeds = Feeds(11);
  auto a = RunGraph(r.graph, feeds), b = RunGraph(lowered, feeds);
  const float step = r.graph.initializers.at("y_scale").data<float>()[0];
  auto va = a.at("y").ToFloatVector(), vb = b.at("y").ToFloatVector();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_LE(std::fabs(va[i] - vb[i]), 1.01f * step) << i;
}

TEST(LowerQdqToInteger, CollapsesDqQWithEqualParamsAndKeepsOthers) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Known(4)}});
  g.initializers["s"] = Tensor::Scalar<float>(0.1f);
  g.initializers["z"] = Tensor::Scalar<uint8_t>(10);
  g.initializers["s2"] = Tensor::Scalar<float>(0.2f);
  g.nodes.push_back(N("QuantizeLinear", {"x", "s", "z"}, {"q1"}, "q1"));
  g.nodes.push_back(N("DequantizeLinear", {"q1", "s", "z"}, {"d1"}, "d1"));
  g.nodes.push_back(N("QuantizeLinear", {"d1", "s", "z"}, {"q2"}, "q2"));   // redundant
  g.nodes.push_back(N("QuantizeLinear", {"d1", "s2", "z"}, {"q3"}, "q3"));  // requantizes
  g.nodes.push_back(N("DequantizeLinear", {"q2", "s", "z"}, {"y"}, "d2"));
  g.nodes.push_back(N("DequantizeLinear", {"q3", "s2", "z"}, {"y3"}, "d3"));
  g.outputs.push_back({"y", DType::kF32, false, {}});
  g.outputs.push_back({"y3", DType::kF32, false, {}});
  ir::Graph l = g;
  EXPECT_EQ(LowerQdqToInteger(l), 1);
  EXPECT_TRUE(ir::Verify(l).empty());
  EXPECT_EQ(l.FindNode("q2"), nullptr);
  EXPECT_NE(l.FindNode("q3"), nullptr);
  const auto feeds =
      std::map<std::string, Tensor>{{"x", Tensor::FromVector<float>({4}, {-3, 0.04f, 1, 30})}};
  auto a = RunGraph(g, feeds), b = RunGraph(l, feeds);
  EXPECT_EQ(a.at("y").ToFloatVector(), b.at("y").ToFloatVector());
  EXPECT_EQ(a.at("y3").ToFloatVector(), b.at("y3").ToFloatVector());
}

// A ReLU between Conv and QuantizeLinear becomes out_min = zero point (qforge::QLinearConv)
// for symmetric activations, where the zero point is not the lowest code.
TEST(LowerQdqToInteger, FusesReluIntoTheClampRange) {
  if (!runtime::FindOp("qforge", "QLinearConv")) GTEST_SKIP() << "qforge::QLinearConv missing";
  const ir::Graph g = SmallCnn();
  QuantizeOptions o;
  o.activation_dtype = DType::kI8;
  o.symmetric_activations = true;
  const QuantizeResult r = QuantizeStatic(g, Calibrate(g), o);
  ir::Graph l = r.graph;
  LowerQdqToInteger(l);
  const ir::Node* conv = l.FindNode("conv");
  ASSERT_NE(conv, nullptr);
  EXPECT_EQ(conv->domain, "qforge");
  EXPECT_EQ(conv->op_type, "QLinearConv");
  EXPECT_EQ(conv->attr_int("out_min"), 0);
  EXPECT_EQ(conv->attr_int("out_max"), 127);
  const auto feeds = Feeds(12);
  auto a = RunGraph(r.graph, feeds), b = RunGraph(l, feeds);
  const float step = r.graph.initializers.at("y_scale").data<float>()[0];
  auto va = a.at("y").ToFloatVector(), vb = b.at("y").ToFloatVector();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_LE(std::fabs(va[i] - vb[i]), 1.01f * step) << i;
}

TEST(MeasureActivationErrors, ReportsEveryQuantizedActivation) {
  const ir::Graph g = SmallCnn();
  QuantizeResult r = QuantizeStatic(g, Calibrate(g));
  ir::Graph reference = g;
  RunInferencePipeline(reference);
  MeasureActivationErrors(reference, r, {Feeds(20), Feeds(21)});
  int acts = 0;
  for (const auto& t : r.tensors) {
    if (t.kind != QuantizedTensorInfo::Kind::kActivation) continue;
    ++acts;
    EXPECT_GT(t.error.count, 0) << t.tensor;
    EXPECT_GT(t.error.sqnr_db, 15) << t.tensor;
    EXPECT_LT(t.error.sqnr_db, 80) << t.tensor;  // quantization does add noise
  }
  EXPECT_GE(acts, 5);
}

}  // namespace
}  // namespace qforge::passes

namespace qforge::passes {
namespace {

// Every quantizable op kind in one graph: depthwise Conv + Clip (ReLU6), ConvTranspose,
// AveragePool, 1x1 Conv, Add, Mul by a constant, Concat, Resize (nearest), Transpose,
// GlobalAveragePool, Reshape, MatMul with constant weights.
ir::Graph AllOps() {
  ir::Graph g;
  g.name = "all";
  g.opset_imports[""] = 13;
  g.inputs.push_back(
      {"x",
       DType::kF32,
       true,
       {ir::Dim::Known(2), ir::Dim::Known(4), ir::Dim::Known(6), ir::Dim::Known(6)}});
  g.initializers["wd"] = Random({4, 1, 3, 3}, 31, -0.6f, 0.6f);
  g.initializers["bd"] = Random({4}, 32, -0.1f, 0.1f);
  g.initializers["wt"] = Random({4, 2, 2, 2}, 33, -0.5f, 0.5f);
  g.initializers["bt"] = Random({2}, 34, -0.1f, 0.1f);
  g.initializers["w1"] = Random({2, 4, 1, 1}, 35, -0.7f, 0.7f);
  g.initializers["k"] = Random({1, 2, 1, 1}, 36, 0.5f, 1.5f);
  g.initializers["lo"] = Tensor::Scalar<float>(0.0f);
  g.initializers["hi"] = Tensor::Scalar<float>(0.6f);
  g.initializers["scales"] = Tensor::FromVector<float>({4}, {1, 1, 2, 2});
  g.initializers["shape"] = Tensor::FromVector<int64_t>({2}, {2, 4});
  g.initializers["wm"] = Random({4, 3}, 37, -1.0f, 1.0f);
  ir::Node dw = N("Conv", {"x", "wd", "bd"}, {"d"}, "dw");
  dw.attrs["group"] = int64_t{4};
  dw.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  g.nodes.push_back(dw);
  g.nodes.push_back(N("Clip", {"d", "lo", "hi"}, {"c1"}, "relu6"));
  ir::Node ct = N("ConvTranspose", {"c1", "wt", "bt"}, {"ct"}, "deconv");
  ct.attrs["strides"] = std::vector<int64_t>{2, 2};
  g.nodes.push_back(ct);
  ir::Node ap = N("AveragePool", {"ct"}, {"ap"}, "avgpool");
  ap.attrs["kernel_shape"] = std::vector<int64_t>{2, 2};
  ap.attrs["strides"] = std::vector<int64_t>{2, 2};
  g.nodes.push_back(ap);
  g.nodes.push_back(N("Conv", {"c1", "w1"}, {"c2"}, "pw"));
  g.nodes.push_back(N("Add", {"ap", "c2"}, {"a"}, "add"));
  g.nodes.push_back(N("Mul", {"a", "k"}, {"m"}, "mul"));
  ir::Node cat = N("Concat", {"m", "c2"}, {"cat"}, "concat");
  cat.attrs["axis"] = int64_t{1};
  g.nodes.push_back(cat);
  g.nodes.push_back(N("Resize", {"cat", "", "scales"}, {"rs"}, "resize"));
  ir::Node tr = N("Transpose", {"rs"}, {"tr"}, "transpose");
  tr.attrs["perm"] = std::vector<int64_t>{0, 1, 3, 2};
  g.nodes.push_back(tr);
  g.nodes.push_back(N("GlobalAveragePool", {"tr"}, {"gap"}, "gap"));
  g.nodes.push_back(N("Reshape", {"gap", "shape"}, {"flat"}, "reshape"));
  g.nodes.push_back(N("MatMul", {"flat", "wm"}, {"y"}, "matmul"));
  g.outputs.push_back({"y", DType::kF32, true, {ir::Dim::Known(2), ir::Dim::Known(3)}});
  return g;
}

std::map<std::string, Tensor> AllOpsFeeds(uint32_t seed) {
  return {{"x", Random({2, 4, 6, 6}, seed, -1.0f, 1.0f)}};
}

calib::CalibTable CalibrateAllOps(const ir::Graph& g) {
  calib::CalibTable t;
  runtime::Session s(g);
  auto add = [&](const std::string& name, const Tensor& v) {
    if (v.dtype() != DType::kF32) return;
    calib::CalibEntry& e = t.entries[name];
    e.tensor = name;
    for (float f : v.span<float>()) {
      e.range_min = std::min<double>(e.range_min, f);
      e.range_max = std::max<double>(e.range_max, f);
    }
  };
  for (uint32_t b = 0; b < 4; ++b) {
    auto feeds = AllOpsFeeds(200 + b);
    add("x", feeds.at("x"));
    auto out = s.Run(feeds, [&](const ir::Node& n, const std::vector<Tensor>& outs) {
      for (size_t k = 0; k < outs.size(); ++k) add(n.outputs[k], outs[k]);
    });
    for (const auto& [n, v] : out) add(n, v);
  }
  return t;
}

TEST(QuantizeStatic, QuantizesEveryOpKindAndLowersWhatTheRuntimeHas) {
  const ir::Graph g = AllOps();
  const QuantizeResult r = QuantizeStatic(g, CalibrateAllOps(g));
  ASSERT_TRUE(ir::Verify(r.graph).empty());
  for (const auto& d : r.nodes) EXPECT_TRUE(d.quantized) << d.node << ": " << d.reason;
  // Depthwise: one scale per output channel; ConvTranspose (group 1): per axis 1.
  EXPECT_EQ(r.graph.initializers.at("wd_scale").shape(), Shape{4});
  EXPECT_EQ(r.graph.initializers.at("wt_scale").shape(), Shape{2});
  EXPECT_EQ(r.graph.initializers.at("bt_scale").shape(), Shape{2});
  EXPECT_EQ(r.graph.initializers.at("wm_scale").shape(), Shape{3});  // MatMul per column
  EXPECT_EQ(r.graph.initializers.at("k_quantized").dtype(), DType::kU8);
  // Pass-through ops share their input's parameters.
  EXPECT_EQ(r.graph.initializers.at("rs_scale").data<float>()[0],
            r.graph.initializers.at("cat_scale").data<float>()[0]);
  EXPECT_EQ(r.graph.initializers.at("tr_scale").data<float>()[0],
            r.graph.initializers.at("cat_scale").data<float>()[0]);
  // ReLU6 range: the clip output is [0, 0.6].
  const float c1_scale = r.graph.initializers.at("c1_scale").data<float>()[0];
  EXPECT_LE(c1_scale, 0.6f / 255 * 1.0001f);

  const float y_step = r.graph.initializers.at("y_scale").data<float>()[0];
  for (uint32_t seed : {300u, 301u}) {
    const auto feeds = AllOpsFeeds(seed);
    auto f = RunGraph(g, feeds).at("y").ToFloatVector();
    auto q = RunGraph(r.graph, feeds).at("y").ToFloatVector();
    for (size_t i = 0; i < f.size(); ++i) EXPECT_NEAR(f[i], q[i], 12 * y_step) << i;
  }

  ir::Graph l = r.graph;
  LowerQdqToInteger(l);
  ASSERT_TRUE(ir::Verify(l).empty());
  auto has = [&](const std::string& domain, const std::string& op) {
    for (const auto& n : l.nodes)
      if (n.domain == domain && n.op_type == op) return true;
    return false;
  };
  struct Expect {
    const char* fp32_op;
    const char* domain;
    const char* int_op;
  };
  // The ReLU6 bounds equal the calibrated range [0, 0.6], so its clamp is the whole uint8 range
  // and the standard QLinearConv suffices.
  for (const Expect& e :
       {Expect{"Conv", "", "QLinearConv"}, Expect{"MatMul", "", "QLinearMatMul"},
        Expect{"Add", "com.microsoft", "QLinearAdd"}, Expect{"Mul", "com.microsoft", "QLinearMul"},
        Expect{"Concat", "com.microsoft", "QLinearConcat"},
        Expect{"AveragePool", "com.microsoft", "QLinearAveragePool"},
        Expect{"GlobalAveragePool", "com.microsoft", "QLinearGlobalAveragePool"}}) {
    if (runtime::FindOp(e.domain, e.int_op))
      EXPECT_TRUE(has(e.domain, e.int_op)) << e.int_op << "\n" << ir::ToText(l);
    else
      EXPECT_TRUE(has("", e.fp32_op)) << e.fp32_op << " kept in fp32 without its integer op";
  }
  EXPECT_TRUE(has("", "ConvTranspose"));  // no integer ConvTranspose: fp32 between DQ and Q
  // The lowered graph computes the QDQ graph up to requantization rounding (one step per
  // requantized tensor, which can grow a little through later layers).
  for (uint32_t seed : {300u, 301u}) {
    const auto feeds = AllOpsFeeds(seed);
    auto a = RunGraph(r.graph, feeds).at("y").ToFloatVector();
    auto b = RunGraph(l, feeds).at("y").ToFloatVector();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 3 * y_step) << i;
  }
}

}  // namespace
}  // namespace qforge::passes

namespace qforge::passes {
namespace {

// A QDQ model as other tools write it (ONNX Runtime's quantize_static style): zero points
// omitted where they are 0 (uint8 by default), weight zero points given per channel, the bias
// either int32 behind a DequantizeLinear without zero point or plain fp32.
ir::Graph ForeignQdq(bool fp32_bias, bool fp32_weight = false) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back(
      {"x",
       DType::kF32,
       true,
       {ir::Dim::Known(1), ir::Dim::Known(2), ir::Dim::Known(5), ir::Dim::Known(5)}});
  g.outputs.push_back({"y", DType::kF32, true, {}});
  const float sx = 1.0f / 255, sy = 0.02f;
  const std::vector<float> sw = {0.01f, 0.004f, 0.02f};
  Tensor w(DType::kI8, {3, 2, 3, 3});
  for (int64_t i = 0; i < w.numel(); ++i)
    w.data<int8_t>()[i] = static_cast<int8_t>((i * 37) % 255 - 127);
  g.initializers["w_s"] = Tensor::FromVector<float>({3}, sw);
  if (fp32_weight) {  // the weight left in fp32 behind QuantizeLinear -> DequantizeLinear
    Tensor wf(DType::kF32, w.shape());
    for (int64_t i = 0; i < w.numel(); ++i)
      wf.data<float>()[i] = w.data<int8_t>()[i] * sw[i / 18] + 0.001f * (i % 3);
    g.initializers["w_f"] = wf;
    ir::Node qw = N("QuantizeLinear", {"w_f", "w_s", "w_z"}, {"w_q"}, "w_quant");
    qw.attrs["axis"] = int64_t{0};
    g.nodes.push_back(qw);
  } else {
    g.initializers["w_q"] = w;
  }
  g.initializers["w_z"] = Tensor(DType::kI8, {3});
  g.initializers["x_s"] = Tensor::Scalar<float>(sx);
  g.initializers["y_s"] = Tensor::Scalar<float>(sy);
  std::vector<float> bias = {0.3f, -0.2f, 0.05f};
  if (fp32_bias) {
    g.initializers["b"] = Tensor::FromVector<float>({3}, bias);
  } else {
    std::vector<int32_t> bq;
    std::vector<float> bs;
    for (int c = 0; c < 3; ++c) {
      bs.push_back(sx * sw[c]);
      bq.push_back(static_cast<int32_t>(std::lround(bias[c] / bs.back())));
    }
    g.initializers["b_q"] = Tensor::FromVector<int32_t>({3}, bq);
    g.initializers["b_s"] = Tensor::FromVector<float>({3}, bs);
    ir::Node db = N("DequantizeLinear", {"b_q", "b_s"}, {"b"}, "b_dq");
    db.attrs["axis"] = int64_t{0};
    g.nodes.push_back(db);
  }
  g.nodes.push_back(N("QuantizeLinear", {"x", "x_s"}, {"x_q"}, "x_q"));
  g.nodes.push_back(N("DequantizeLinear", {"x_q", "x_s"}, {"x_d"}, "x_dq"));
  ir::Node dw = N("DequantizeLinear", {"w_q", "w_s", "w_z"}, {"w"}, "w_dq");
  dw.attrs["axis"] = int64_t{0};
  g.nodes.push_back(dw);
  g.nodes.push_back(N("Conv", {"x_d", "w", "b"}, {"c"}, "conv"));
  g.nodes.push_back(N("QuantizeLinear", {"c", "y_s"}, {"c_q"}, "c_q"));
  g.nodes.push_back(N("DequantizeLinear", {"c_q", "y_s"}, {"y"}, "c_dq"));
  ir::TopologicalSort(g);
  return g;
}

TEST(LowerQdqToInteger, LowersQdqModelsFromOtherTools) {
  if (!runtime::FindOp("", "QLinearConv")) GTEST_SKIP() << "QLinearConv missing";
  for (int variant = 0; variant < 3; ++variant) {
    const bool fp32_bias = variant == 1;
    const ir::Graph g = ForeignQdq(fp32_bias, /*fp32_weight=*/variant == 2);
    ir::Graph l = g;
    EXPECT_GT(LowerQdqToInteger(l), 0);
    EXPECT_TRUE(ir::Verify(l).empty());
    const ir::Node* conv = l.FindNode("conv");
    ASSERT_NE(conv, nullptr);
    EXPECT_EQ(conv->op_type, "QLinearConv") << ir::ToText(l);
    EXPECT_EQ(Count(l, "Conv"), 0);
    if (!fp32_bias) {
      EXPECT_EQ(conv->inputs[8], "b_q");  // int32 bias with s_x * s_w reused
    }
    const auto feeds = std::map<std::string, Tensor>{{"x", Random({1, 2, 5, 5}, 77, 0, 1)}};
    auto a = RunGraph(g, feeds).at("y").ToFloatVector();
    auto b = RunGraph(l, feeds).at("y").ToFloatVector();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_LE(std::fabs(a[i] - b[i]), 0.02f * 1.001f) << i;
  }
}

}  // namespace
}  // namespace qforge::passes
