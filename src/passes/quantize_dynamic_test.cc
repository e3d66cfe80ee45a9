// Before/after tests of QuantizeDynamic (fp32 -> DynamicQuantizeLinear + MatMulInteger) and of
// the FuseDynamicQLinear execution pass (bit-exact with the unfused graph).
#include "qforge/passes/quantize_dynamic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qforge/runtime/session.h"

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

// A small transformer-like block: x [B, T, 16]
//   h = Gemm-like Linear via MatMul(x, w1 [16, 12]) + b1 (separate Add, as PyTorch exports)
//   r = Relu(h); s = MatMul(r, Transpose(r)) (activations x activations) -> "scores"
//   y = Gemm(Reshape(r -> [B*T, 12]), w2 [5, 12] transB, b2) -> "y"
ir::Graph Block() {
  ir::Graph g;
  g.name = "block";
  g.opset_imports[""] = 13;
  g.inputs.push_back(
      {"x", DType::kF32, true, {ir::Dim::Symbol("batch"), ir::Dim::Known(4), ir::Dim::Known(16)}});
  g.initializers["w1"] = Random({16, 12}, 1, -0.5f, 0.5f);
  g.initializers["b1"] = Random({12}, 2, -0.2f, 0.2f);
  g.initializers["w2"] = Random({5, 12}, 3, -0.4f, 0.4f);
  g.initializers["b2"] = Random({5}, 4, -0.1f, 0.1f);
  g.initializers["shape"] = Tensor::FromVector<int64_t>({2}, {-1, 12});
  g.nodes.push_back(N("MatMul", {"x", "w1"}, {"mm"}, "fc1/MatMul"));
  g.nodes.push_back(N("Add", {"b1", "mm"}, {"h"}, "fc1/Add"));
  g.nodes.push_back(N("Relu", {"h"}, {"r"}, "relu"));
  ir::Node t = N("Transpose", {"r"}, {"rt"}, "transpose");
  t.attrs["perm"] = std::vector<int64_t>{0, 2, 1};
  g.nodes.push_back(t);
  g.nodes.push_back(N("MatMul", {"r", "rt"}, {"scores"}, "scores/MatMul"));
  g.nodes.push_back(N("Reshape", {"r", "shape"}, {"r2"}, "reshape"));
  ir::Node gemm = N("Gemm", {"r2", "w2", "b2"}, {"y"}, "fc2/Gemm");
  gemm.attrs["transB"] = int64_t{1};
  g.nodes.push_back(gemm);
  g.outputs.push_back({"scores", DType::kF32, false, {}});
  g.outputs.push_back({"y", DType::kF32, false, {}});
  return g;
}

std::map<std::string, Tensor> RunGraph(const ir::Graph& g, const Tensor& x) {
  runtime::Session s(g);
  return s.Run({{"x", x}});
}

// max |a - b| / max |a|
double RelErr(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    num = std::max(num, double(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
    den = std::max(den, double(std::fabs(a.data<float>()[i])));
  }
  return num / den;
}

const NodeDecision& Decision(const QuantizeResult& r, const std::string& node) {
  for (const auto& d : r.nodes)
    if (d.node == node) return d;
  ADD_FAILURE() << "no decision for " << node;
  static NodeDecision none;
  return none;
}

TEST(QuantizeDynamic, RewritesLinearAndActivationMatMuls) {
  const ir::Graph g = Block();
  const QuantizeResult r = QuantizeDynamic(g);
  EXPECT_TRUE(Decision(r, "fc1/MatMul").quantized);
  EXPECT_TRUE(Decision(r, "fc2/Gemm").quantized);
  EXPECT_TRUE(Decision(r, "scores/MatMul").quantized);
  EXPECT_EQ(Decision(r, "scores/MatMul").reason,
            "activations x activations: both uint8 per tensor at run time");
  EXPECT_FALSE(Decision(r, "relu").quantized);
  EXPECT_EQ(Decision(r, "relu").reason,
            "stays fp32 (dynamic quantization covers MatMul, Gemm, LSTM, GRU)");
  EXPECT_FALSE(Decision(r, "fc1/Add").quantized);
  // x and r are quantized once each (r feeds both sides of the scores MatMul and fc2 via the
  // Reshape, whose output r2 gets its own), rt once: 4 DynamicQuantizeLinear.
  EXPECT_EQ(Count(r.graph, "DynamicQuantizeLinear"), 4);
  EXPECT_EQ(Count(r.graph, "MatMulInteger"), 3);
  EXPECT_EQ(Count(r.graph, "MatMul"), 0);
  EXPECT_EQ(Count(r.graph, "Gemm"), 0);
  EXPECT_FALSE(HasQforgeOnlyOps(r.graph));
  // Weights: int8 [K, N] (the Gemm's transB weight transposed) with one scale per column.
  EXPECT_EQ(r.graph.initializers.at("w1_quantized").dtype(), DType::kI8);
  EXPECT_EQ(r.graph.initializers.at("w2_quantized").shape(), (Shape{12, 5}));
  EXPECT_EQ(r.graph.initializers.at("w2_scale").shape(), (Shape{5}));
  EXPECT_FALSE(r.graph.is_initializer("w1"));
  int weights = 0, outputs = 0;
  for (const auto& t : r.tensors) {
    if (t.kind == QuantizedTensorInfo::Kind::kWeight) {
      ++weights;
      EXPECT_GT(t.error.sqnr_db, 35) << t.tensor;  // int8 per channel
    } else {
      ++outputs;
    }
  }
  EXPECT_EQ(weights, 2);
  EXPECT_EQ(outputs, 3);
  ir::VerifyOrThrow(r.graph);

  const Tensor x = Random({3, 4, 16}, 7);
  auto ref = RunGraph(g, x), dyn = RunGraph(r.graph, x);
  EXPECT_LT(RelErr(ref.at("y"), dyn.at("y")), 0.03);
  EXPECT_LT(RelErr(ref.at("scores"), dyn.at("scores")), 0.03);
}

TEST(QuantizeDynamic, FusionIsBitExactWithTheStandardGraph) {
  const QuantizeResult r = QuantizeDynamic(Block());
  ir::Graph fused = r.graph;
  EXPECT_EQ(FuseDynamicQLinear(fused), 3);  // fc1 (with its Add), fc2 and the scores
  ir::VerifyOrThrow(fused);
  EXPECT_EQ(Count(fused, "DynamicQLinear"), 2);
  EXPECT_EQ(Count(fused, "DynamicQMatMul"), 1);
  EXPECT_EQ(Count(fused, "MatMulInteger"), 0);
  EXPECT_EQ(Count(fused, "Add"), 0);  // fc1's bias Add went into the fused op
  EXPECT_EQ(Count(fused, "Mul"), 0);
  EXPECT_EQ(Count(fused, "Cast"), 0);
  EXPECT_EQ(Count(fused, "DynamicQuantizeLinear"), 0);
  for (uint32_t seed : {1u, 2u, 3u}) {
    // Wide and narrow inputs, a batch of one and of several.
    const Tensor x = Random({seed, 4, 16}, 100 + seed, -3.0f * seed, 2.0f * seed);
    auto a = RunGraph(r.graph, x), b = RunGraph(fused, x);
    for (const char* out : {"y", "scores"})
      EXPECT_EQ(a.at(out).ToFloatVector(), b.at(out).ToFloatVector()) << out << " seed " << seed;
  }
  // All-zero input: scale 0 in DynamicQuantizeLinear; both give the bias.
  Tensor zeros(DType::kF32, {2, 4, 16});
  auto a = RunGraph(r.graph, zeros), b = RunGraph(fused, zeros);
  EXPECT_EQ(a.at("y").ToFloatVector(), b.at("y").ToFloatVector());
  // The execution pipeline runs the fusion.
  ir::Graph piped = r.graph;
  RunExecutionPipeline(piped);
  EXPECT_EQ(Count(piped, "DynamicQLinear"), 2);
}

// DynamicQMatMul with broadcast batch dims and a rank-1 operand (small slices: the direct
// loop), and a large slice (the packed DynamicQGemm path), against the standard graph.
TEST(QuantizeDynamic, ActivationMatMulFusionBroadcasts) {
  const std::vector<std::pair<Shape, Shape>> cases = {{{2, 3, 4, 5}, {5, 6}},
                                                      {{2, 3, 4, 5}, {1, 3, 5, 6}},
                                                      {{2, 3, 4, 5}, {5}},
                                                      {{2, 80, 70}, {70, 90}}};
  for (const auto& [ashape, bshape] : cases) {
    ir::Graph g;
    g.name = "mm";
    g.opset_imports[""] = 13;
    g.inputs.push_back({"a", DType::kF32, false, {}});
    g.inputs.push_back({"b", DType::kF32, false, {}});
    g.nodes.push_back(N("MatMul", {"a", "b"}, {"y"}, "mm"));
    g.outputs.push_back({"y", DType::kF32, false, {}});
    const QuantizeResult r = QuantizeDynamic(g);
    ir::Graph fused = r.graph;
    ASSERT_EQ(FuseDynamicQLinear(fused), 1);
    EXPECT_EQ(Count(fused, "DynamicQMatMul"), 1);
    const Tensor a = Random(ashape, 21, -2, 3), b = Random(bshape, 22, -1, 0.5f);
    runtime::Session s1(r.graph), s2(fused), s3(g);
    const auto y1 = s1.Run({{"a", a}, {"b", b}}).at("y"), y2 = s2.Run({{"a", a}, {"b", b}}).at("y");
    EXPECT_EQ(y1.shape(), y2.shape());
    EXPECT_EQ(y1.ToFloatVector(), y2.ToFloatVector()) << ShapeToString(bshape);
    EXPECT_LT(RelErr(s3.Run({{"a", a}, {"b", b}}).at("y"), y2), 0.03);
  }
}

TEST(QuantizeDynamic, FusionLeavesOtherPatternsAlone) {
  QuantizeResult r = QuantizeDynamic(Block());
  // A DynamicQuantizeLinear output read elsewhere stays; a scale that is not a constant blocks
  // the fusion of that layer.
  ir::Graph g = r.graph;
  for (ir::Node& n : g.nodes)
    if (n.name == "fc2/Gemm/ScaleProduct") n.inputs = {n.inputs[0], n.inputs[0]};
  EXPECT_EQ(FuseDynamicQLinear(g), 2);  // fc1 and the scores; fc2 stays unfused
  EXPECT_EQ(Count(g, "MatMulInteger"), 1);
  ir::VerifyOrThrow(g);
  const Tensor x = Random({2, 4, 16}, 9);
  ir::Graph unfused = r.graph;
  for (ir::Node& n : unfused.nodes)
    if (n.name == "fc2/Gemm/ScaleProduct") n.inputs = {n.inputs[0], n.inputs[0]};
  EXPECT_EQ(RunGraph(unfused, x).at("y").ToFloatVector(), RunGraph(g, x).at("y").ToFloatVector());
}

TEST(QuantizeDynamic, PerRowUsesTheQforgeOp) {
  const ir::Graph g = Block();
  DynamicQuantizeOptions o;
  o.per_row = true;
  const QuantizeResult r = QuantizeDynamic(g, o);
  EXPECT_EQ(Count(r.graph, "DynamicQLinear"), 2);
  EXPECT_EQ(Count(r.graph, "MatMulInteger"), 1);  // activations x activations: per tensor
  EXPECT_TRUE(HasQforgeOnlyOps(r.graph));
  EXPECT_FALSE(r.notes.empty());
  ir::VerifyOrThrow(r.graph);
  // Rows of very different magnitude: per row keeps the small rows precise.
  Tensor x = Random({2, 4, 16}, 11);
  for (int64_t i = 0; i < 16; ++i) x.data<float>()[i] *= 100.0f;  // the first token is large
  const auto ref = RunGraph(g, x);
  const auto row = RunGraph(r.graph, x), tensor = RunGraph(QuantizeDynamic(g).graph, x);
  EXPECT_LT(RelErr(ref.at("y"), row.at("y")), 0.02);
  // Compare the error on the small rows (all but the first token of batch 0).
  double e_row = 0, e_tensor = 0;
  const Tensor &yr = ref.at("y"), &y1 = row.at("y"), &y2 = tensor.at("y");
  for (int64_t i = 5; i < yr.numel(); ++i) {
    e_row = std::max(e_row, double(std::fabs(yr.data<float>()[i] - y1.data<float>()[i])));
    e_tensor = std::max(e_tensor, double(std::fabs(yr.data<float>()[i] - y2.data<float>()[i])));
  }
  EXPECT_LT(e_row * 4, e_tensor);
}

TEST(QuantizeDynamic, ConvIsOptIn) {
  ir::Graph g;
  g.name = "conv";
  g.opset_imports[""] = 13;
  g.inputs.push_back(
      {"x",
       DType::kF32,
       true,
       {ir::Dim::Symbol("b"), ir::Dim::Known(3), ir::Dim::Known(6), ir::Dim::Known(6)}});
  g.initializers["w"] = Random({4, 3, 3, 3}, 1, -0.5f, 0.5f);
  g.initializers["b"] = Random({4}, 2, -0.2f, 0.2f);
  ir::Node conv = N("Conv", {"x", "w", "b"}, {"y"}, "conv");
  conv.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  conv.attrs["strides"] = std::vector<int64_t>{2, 2};
  g.nodes.push_back(conv);
  g.outputs.push_back({"y", DType::kF32, false, {}});

  const QuantizeResult off = QuantizeDynamic(g);
  EXPECT_EQ(Decision(off, "conv").reason,
            "Conv not in --ops (opt-in: dynamic conv loses accuracy)");
  EXPECT_EQ(Count(off.graph, "Conv"), 1);

  DynamicQuantizeOptions o;
  o.ops = {"Conv"};
  const QuantizeResult on = QuantizeDynamic(g, o);
  EXPECT_TRUE(Decision(on, "conv").quantized);
  EXPECT_EQ(Count(on.graph, "ConvInteger"), 1);
  EXPECT_EQ(on.graph.initializers.at("w_quantized").dtype(), DType::kU8);
  EXPECT_EQ(on.graph.initializers.at("w_scale").shape(), (Shape{4, 1, 1}));
  const Tensor x = Random({2, 3, 6, 6}, 5);
  EXPECT_LT(RelErr(RunGraph(g, x).at("y"), RunGraph(on.graph, x).at("y")), 0.03);
}

TEST(QuantizeDynamic, ExcludeAndBadOptions) {
  DynamicQuantizeOptions o;
  o.exclude = {"fc2/Gemm"};
  const QuantizeResult r = QuantizeDynamic(Block(), o);
  EXPECT_EQ(Decision(r, "fc2/Gemm").reason, "excluded (--exclude)");
  EXPECT_EQ(Count(r.graph, "Gemm"), 1);
  o.exclude = {"nosuchnode"};
  EXPECT_THROW(QuantizeDynamic(Block(), o), Error);
  DynamicQuantizeOptions bad;
  bad.ops = {"Softmax"};
  EXPECT_THROW(QuantizeDynamic(Block(), bad), Error);
  ir::Graph old = Block();
  old.opset_imports[""] = 9;
  EXPECT_THROW(QuantizeDynamic(old), Error);
  // Only Gemm: the MatMuls stay fp32 with a reason.
  DynamicQuantizeOptions gemm;
  gemm.ops = {"Gemm"};
  const QuantizeResult g = QuantizeDynamic(Block(), gemm);
  EXPECT_EQ(Decision(g, "fc1/MatMul").reason, "MatMul not in --ops");
  EXPECT_EQ(Count(g.graph, "MatMulInteger"), 1);
}

// x [T=6, batch, 8] -> LSTM or GRU (hidden 10, given direction) -> Y_h -> "h".
ir::Graph Recurrent(const std::string& op, const std::string& direction) {
  const int64_t G = op == "LSTM" ? 4 : 3, D = direction == "bidirectional" ? 2 : 1, H = 10;
  ir::Graph g;
  g.name = "rnn";
  g.opset_imports[""] = 14;
  g.inputs.push_back(
      {"x", DType::kF32, true, {ir::Dim::Known(6), ir::Dim::Symbol("batch"), ir::Dim::Known(8)}});
  g.initializers["W"] = Random({D, G * H, 8}, 11, -0.5f, 0.5f);
  g.initializers["R"] = Random({D, G * H, H}, 12, -0.5f, 0.5f);
  g.initializers["B"] = Random({D, 2 * G * H}, 13, -0.2f, 0.2f);
  ir::Node n = N(op, {"x", "W", "R", "B"}, {"", "h"}, "rnn");
  n.attrs["hidden_size"] = H;
  n.attrs["direction"] = direction;
  g.nodes.push_back(n);
  g.outputs.push_back({"h", DType::kF32, false, {}});
  return g;
}

TEST(QuantizeDynamic, RecurrentLayers) {
  const Tensor x = Random({6, 3, 8}, 20);
  for (const char* op : {"LSTM", "GRU"})
    for (int per_row = 0; per_row < 2; ++per_row) {
      SCOPED_TRACE(std::string(op) + " per_row " + std::to_string(per_row));
      const ir::Graph g = Recurrent(op, "bidirectional");
      DynamicQuantizeOptions o;
      o.per_row = per_row == 1;
      const QuantizeResult r = QuantizeDynamic(g, o);
      ASSERT_EQ(r.graph.nodes.size(), 1u);
      const ir::Node& q = r.graph.nodes[0];
      const bool lstm = std::string(op) == "LSTM";
      EXPECT_EQ(q.op_type, lstm ? "DynamicQuantizeLSTM" : "DynamicQuantizeGRU");
      EXPECT_EQ(q.domain, lstm && !per_row ? "com.microsoft" : "qforge");
      EXPECT_EQ(HasQforgeOnlyOps(r.graph), !lstm || per_row);
      ASSERT_EQ(q.inputs.size(), lstm ? 12u : 10u);
      // W: [2, 8, G H] int8 codes of the transposed weight, a scale per gate channel.
      const Tensor& w = r.graph.initializers.at(q.inputs[1]);
      const Tensor& ws = r.graph.initializers.at(q.inputs[lstm ? 8 : 6]);
      const Tensor& W = g.initializers.at("W");
      const int64_t N = W.dim(1);
      EXPECT_EQ(w.dtype(), DType::kI8);
      EXPECT_EQ(w.shape(), (Shape{2, 8, N}));
      EXPECT_EQ(ws.shape(), (Shape{2, N}));
      for (int64_t d = 0; d < 2; ++d)
        for (int64_t n = 0; n < N; ++n) {
          float amax = 0;
          for (int64_t k = 0; k < 8; ++k)
            amax = std::max(amax, std::fabs(W.data<float>()[(d * N + n) * 8 + k]));
          EXPECT_FLOAT_EQ(ws.data<float>()[d * N + n], amax / 127.0f);
          for (int64_t k = 0; k < 8; ++k) {
            const float deq = w.data<int8_t>()[(d * 8 + k) * N + n] * ws.data<float>()[d * N + n];
            EXPECT_NEAR(deq, W.data<float>()[(d * N + n) * 8 + k], amax / 127.0f / 2 * 1.001f);
          }
        }
      EXPECT_EQ(r.notes.empty(), lstm && !per_row);
      // Runs, and stays close to fp32.
      runtime::Session fs(g), qs(r.graph);
      const Tensor yf = fs.Run({{"x", x}}).at("h"), yq = qs.Run({{"x", x}}).at("h");
      ASSERT_EQ(yf.shape(), yq.shape());
      for (int64_t i = 0; i < yf.numel(); ++i)
        EXPECT_NEAR(yq.data<float>()[i], yf.data<float>()[i], 0.03f);
    }
}

TEST(QuantizeDynamic, RecurrentOptOut) {
  DynamicQuantizeOptions o;
  o.ops = {"MatMul", "Gemm"};
  const QuantizeResult r = QuantizeDynamic(Recurrent("GRU", "forward"), o);
  EXPECT_EQ(r.graph.nodes[0].op_type, "GRU");
  EXPECT_FALSE(HasQforgeOnlyOps(r.graph));
  EXPECT_NE(r.nodes[0].reason.find("GRU not in --ops"), std::string::npos) << r.nodes[0].reason;
}

}  // namespace
}  // namespace qforge::passes
