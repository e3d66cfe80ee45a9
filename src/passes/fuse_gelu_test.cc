// Tests of FuseGelu (the PyTorch-exported exact GELU subgraph becomes one Gelu node whose
// output matches x / 2 * (1 + erf(x / sqrt 2)); near-misses are left alone) and of
// FuseMatMulBias (MatMul + bias [+ Gelu] -> qforge::FusedMatMul, same values).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qforge/passes/passes.h"
#include "qforge/runtime/session.h"

namespace qforge::passes {
namespace {

ir::Node Op(std::string op, std::vector<std::string> in, std::string out) {
  ir::Node n;
  n.op_type = std::move(op);
  n.inputs = std::move(in);
  n.outputs = {std::move(out)};
  n.name = n.outputs[0];
  return n;
}

// y = Mul(Mul(x, Add(Erf(Div(x, sqrt2)), 1)), 0.5), optionally the other export form
// Mul(Mul(x, 0.5), Add(...)) and with a chosen "1" constant; x = Relu(in) so x is a node output.
ir::Graph GeluGraph(bool half_first, float one = 1.0f, bool extra_reader = false) {
  ir::Graph g;
  g.name = "gelu";
  g.opset_imports[""] = 17;
  g.inputs.push_back({"in", DType::kF32, true, {ir::Dim::Symbol("n"), ir::Dim::Known(37)}});
  g.outputs.push_back({"y", DType::kF32, false, {}});
  g.initializers["sqrt2"] = Tensor::Scalar<float>(1.4142135f);
  g.initializers["one"] = Tensor::Scalar<float>(one);
  g.initializers["half"] = Tensor::Scalar<float>(0.5f);
  g.nodes.push_back(Op("Relu", {"in"}, "x"));
  g.nodes.push_back(Op("Div", {"x", "sqrt2"}, "d"));
  g.nodes.push_back(Op("Erf", {"d"}, "e"));
  g.nodes.push_back(Op("Add", {"one", "e"}, "a"));
  if (half_first) {
    g.nodes.push_back(Op("Mul", {"half", "x"}, "h"));
    g.nodes.push_back(Op("Mul", {"a", "h"}, "y"));
  } else {
    g.nodes.push_back(Op("Mul", {"x", "a"}, "m"));
    g.nodes.push_back(Op("Mul", {"m", "half"}, "y"));
  }
  if (extra_reader) {
    g.outputs.push_back({"e2", DType::kF32, false, {}});
    g.nodes.push_back(Op("Neg", {"e"}, "e2"));
  }
  return g;
}

TEST(FuseGelu, BothExportFormsBecomeOneGeluWithTheSameValues) {
  for (bool half_first : {false, true}) {
    SCOPED_TRACE(half_first ? "Mul(Mul(x, 0.5), a)" : "Mul(Mul(x, a), 0.5)");
    ir::Graph g = GeluGraph(half_first);
    ASSERT_EQ(FuseGelu(g), 1);
    ASSERT_EQ(g.nodes.size(), 2u);
    EXPECT_EQ(g.nodes[1].op_type, "Gelu");
    EXPECT_EQ(g.nodes[1].inputs, std::vector<std::string>{"x"});
    EXPECT_EQ(g.nodes[1].outputs, std::vector<std::string>{"y"});
    EXPECT_TRUE(g.initializers.empty());  // the constants were only read by the pattern
    ir::VerifyOrThrow(g);

    Tensor in(DType::kF32, {5, 37});
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-6, 6);
    for (float& v : in.span<float>()) v = dist(rng);
    runtime::Session s(g);
    const Tensor y = s.Run({{"in", in}}).at("y");
    for (int64_t i = 0; i < in.numel(); ++i) {
      const double x = std::max(0.0f, in.data<float>()[i]);
      const double want = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
      ASSERT_NEAR(y.data<float>()[i], want, 1e-6 * (1 + std::fabs(want))) << "x=" << x;
    }
  }
}

TEST(FuseGelu, NearMissesAreLeftAlone) {
  ir::Graph wrong_const = GeluGraph(false, 2.0f);
  EXPECT_EQ(FuseGelu(wrong_const), 0);
  EXPECT_EQ(wrong_const.nodes.size(), 6u);
  ir::Graph shared = GeluGraph(false, 1.0f, /*extra_reader=*/true);  // erf also read elsewhere
  EXPECT_EQ(FuseGelu(shared), 0);
}

// MatMul(x [2, 3, 8], W [8, 5]) + Add(b [5]) then the exported GELU: FuseGelu + FuseMatMulBias
// leave one qforge::FusedMatMul (activation Gelu) whose output matches the double formula.
TEST(FuseMatMulBias, MatMulBiasGeluBecomesOneFusedNode) {
  for (bool with_gelu : {true, false}) {
    SCOPED_TRACE(with_gelu ? "with Gelu" : "bias only");
    ir::Graph g;
    g.name = "mlp";
    g.opset_imports[""] = 17;
    g.inputs.push_back(
        {"x", DType::kF32, true, {ir::Dim::Symbol("n"), ir::Dim::Known(3), ir::Dim::Known(8)}});
    g.outputs.push_back({"y", DType::kF32, false, {}});
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> dist(-1, 1);
    Tensor w(DType::kF32, {8, 5}), b(DType::kF32, {5});
    for (float& v : w.span<float>()) v = dist(rng);
    for (float& v : b.span<float>()) v = dist(rng);
    g.initializers["w"] = w;
    g.initializers["b"] = b;
    g.nodes.push_back(Op("MatMul", {"x", "w"}, "mm"));
    if (with_gelu) {
      g.initializers["sqrt2"] = Tensor::Scalar<float>(1.4142135f);
      g.initializers["one"] = Tensor::Scalar<float>(1.0f);
      g.initializers["half"] = Tensor::Scalar<float>(0.5f);
      g.nodes.push_back(Op("Add", {"b", "mm"}, "h"));
      g.nodes.push_back(Op("Div", {"h", "sqrt2"}, "d"));
      g.nodes.push_back(Op("Erf", {"d"}, "e"));
      g.nodes.push_back(Op("Add", {"e", "one"}, "a"));
      g.nodes.push_back(Op("Mul", {"h", "a"}, "m"));
      g.nodes.push_back(Op("Mul", {"m", "half"}, "y"));
    } else {
      g.nodes.push_back(Op("Add", {"mm", "b"}, "y"));
    }
    ir::Graph fused = g;
    EXPECT_EQ(FuseGelu(fused), with_gelu ? 1 : 0);
    // A bias of rank 2 needs A's rank: without shape information the graph is left alone.
    ir::Graph rank2 = fused;
    rank2.initializers["b"] = Tensor::FromVector<float>({1, 5}, b.ToFloatVector());
    rank2.inputs[0].has_shape = false;
    rank2.inputs[0].dims.clear();
    EXPECT_EQ(FuseMatMulBias(rank2), 0);
    ASSERT_EQ(FuseMatMulBias(fused), 1);
    ASSERT_EQ(fused.nodes.size(), 1u);
    const ir::Node& f = fused.nodes[0];
    EXPECT_EQ(f.domain, "qforge");
    EXPECT_EQ(f.op_type, "FusedMatMul");
    EXPECT_EQ(f.attr_string("activation", ""), with_gelu ? "Gelu" : "");
    EXPECT_EQ(f.outputs[0], "y");

    Tensor x(DType::kF32, {2, 3, 8});
    for (float& v : x.span<float>()) v = 3 * dist(rng);
    runtime::Session s(fused);
    const Tensor y = s.Run({{"x", x}}).at("y");
    ASSERT_EQ(y.shape(), (Shape{2, 3, 5}));
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t n = 0; n < 5; ++n) {
        double h = b.data<float>()[n];
        for (int64_t k = 0; k < 8; ++k)
          h += double(x.data<float>()[r * 8 + k]) * w.data<float>()[k * 5 + n];
        const double want = with_gelu ? 0.5 * h * (1 + std::erf(h / std::sqrt(2.0))) : h;
        ASSERT_NEAR(y.data<float>()[r * 5 + n], want, 1e-5 * (1 + std::fabs(want)));
      }
  }
}

}  // namespace
}  // namespace qforge::passes
