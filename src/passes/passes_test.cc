// Before/after tests for the graph passes: structure, validity, and the same outputs.
#include "qforge/passes/passes.h"

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
           std::string name = "") {
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

// Runs g and g' on the same inputs and checks every output agrees to tolerance.
void ExpectSameOutputs(const ir::Graph& before, const ir::Graph& after,
                       const std::map<std::string, Tensor>& inputs, float tol = 1e-4f) {
  runtime::Session a(before), b(after);
  auto ra = a.Run(inputs), rb = b.Run(inputs);
  ASSERT_EQ(ra.size(), rb.size());
  for (const auto& [name, ta] : ra) {
    ASSERT_TRUE(rb.count(name)) << name;
    const Tensor& tb = rb.at(name);
    ASSERT_EQ(ta.shape(), tb.shape()) << name;
    auto va = ta.ToFloatVector(), vb = tb.ToFloatVector();
    for (size_t i = 0; i < va.size(); ++i)
      ASSERT_NEAR(va[i], vb[i], tol * (1 + std::fabs(va[i]))) << name << "[" << i << "]";
  }
}

ir::Graph ConvBnRelu(const std::string& producer) {
  ir::Graph g;
  g.name = "t";
  g.opset_imports[""] = 13;
  const int64_t C = 3, M = 4;
  if (producer == "Conv") {
    g.inputs.push_back(
        {"x",
         DType::kF32,
         true,
         {ir::Dim::Symbol("batch"), ir::Dim::Known(C), ir::Dim::Known(5), ir::Dim::Known(5)}});
    g.initializers["w"] = Random({M, C, 3, 3}, 1);
    g.initializers["b"] = Random({M}, 2);
    ir::Node c = N("Conv", {"x", "w", "b"}, {"c"}, "conv");
    c.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
    g.nodes.push_back(c);
  } else if (producer == "ConvTranspose") {
    g.inputs.push_back(
        {"x",
         DType::kF32,
         true,
         {ir::Dim::Known(1), ir::Dim::Known(4), ir::Dim::Known(5), ir::Dim::Known(5)}});
    g.initializers["w"] = Random({4, M / 2, 3, 3}, 1);  // group 2: [C, M/group, k, k]
    ir::Node c = N("ConvTranspose", {"x", "w"}, {"c"}, "deconv");
    c.attrs["group"] = int64_t{2};
    c.attrs["strides"] = std::vector<int64_t>{2, 2};
    g.nodes.push_back(c);
  } else {  // Gemm with transB
    g.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Known(2), ir::Dim::Known(6)}});
    g.initializers["w"] = Random({M, 6}, 1);
    g.initializers["b"] = Random({M}, 2);
    ir::Node c = N("Gemm", {"x", "w", "b"}, {"c"}, "fc");
    c.attrs["transB"] = int64_t{1};
    c.attrs["alpha"] = 0.5f;
    c.attrs["beta"] = 2.0f;
    g.nodes.push_back(c);
  }
  g.initializers["gamma"] = Random({M}, 3, 0.5f, 2.0f);
  g.initializers["beta"] = Random({M}, 4);
  g.initializers["mean"] = Random({M}, 5);
  g.initializers["var"] = Random({M}, 6, 0.1f, 3.0f);
  g.nodes.push_back(N("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"bn"}, "bn"));
  g.nodes.push_back(N("Relu", {"bn"}, {"y"}, "relu"));
  g.outputs.push_back({"y", DType::kF32, false, {}});
  return g;
}

class FoldBatchNormTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FoldBatchNormTest, FoldsAndKeepsOutputs) {
  ir::Graph before = ConvBnRelu(GetParam());
  ir::Graph after = before;
  EXPECT_EQ(FoldBatchNorm(after), 1);
  EXPECT_TRUE(ir::Verify(after).empty());
  EXPECT_EQ(Count(after, "BatchNormalization"), 0);
  EXPECT_EQ(after.nodes.size(), 2u);
  EXPECT_EQ(after.initializers.count("gamma"), 0u);  // unused constants dropped
  Shape xs = before.inputs[0].dims[0].known() ? Shape{} : Shape{2};
  for (const auto& d : before.inputs[0].dims)
    if (d.known()) xs.push_back(d.value);
  ExpectSameOutputs(before, after, {{"x", Random(xs, 9)}});
}

INSTANTIATE_TEST_SUITE_P(Producers, FoldBatchNormTest,
                         ::testing::Values("Conv", "ConvTranspose", "Gemm"));

TEST(FoldBatchNorm, SkipsSharedProducerOutput) {
  ir::Graph g = ConvBnRelu("Conv");
  g.nodes.push_back(N("Relu", {"c"}, {"y2"}));
  g.outputs.push_back({"y2", DType::kF32, false, {}});
  EXPECT_EQ(FoldBatchNorm(g), 0);
}

TEST(FoldBatchNorm, SkipsNonConstantStatistics) {
  ir::Graph g = ConvBnRelu("Conv");
  g.initializers.erase("mean");
  g.inputs.push_back({"mean", DType::kF32, true, {ir::Dim::Known(4)}});
  EXPECT_EQ(FoldBatchNorm(g), 0);
}

TEST(RemoveIdentity, RemovesIdentityAndDropout) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Known(4)}});
  g.nodes.push_back(N("Relu", {"x"}, {"a"}));
  g.nodes.push_back(N("Identity", {"a"}, {"b"}));
  g.nodes.push_back(N("Dropout", {"b"}, {"c"}));
  g.nodes.push_back(N("Neg", {"c"}, {"d"}));
  g.nodes.push_back(N("Identity", {"d"}, {"y"}));  // graph output keeps its name
  g.outputs.push_back({"y", DType::kF32, false, {}});
  ir::Graph before = g;
  EXPECT_EQ(RemoveIdentity(g), 3);
  EXPECT_TRUE(ir::Verify(g).empty());
  EXPECT_EQ(g.nodes.size(), 2u);
  EXPECT_EQ(g.nodes[1].outputs[0], "y");
  ExpectSameOutputs(before, g, {{"x", Random({4}, 1)}});
}

TEST(RemoveIdentity, KeepsIdentityFromInputToOutput) {
  ir::Graph g;
  g.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Known(4)}});
  g.nodes.push_back(N("Identity", {"x"}, {"y"}));
  g.outputs.push_back({"y", DType::kF32, false, {}});
  EXPECT_EQ(RemoveIdentity(g), 0);
}

TEST(FoldConstants, FoldsConstantSubgraphButKeepsDequantize) {
  ir::Graph g;
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Known(2), ir::Dim::Known(3)}});
  g.initializers["w"] = Random({3, 2}, 1);
  g.initializers["two"] = Tensor::Scalar<float>(2.0f);
  g.initializers["qw"] = Tensor::FromVector<int8_t>({2}, {10, -20});
  g.initializers["s"] = Tensor::Scalar<float>(0.1f);
  g.nodes.push_back(N("Mul", {"w", "two"}, {"w2"}));
  g.nodes.push_back(N("Transpose", {"w2"}, {"w2t"}));
  g.nodes.push_back(N("Transpose", {"w2t"}, {"w2tt"}));
  g.nodes.push_back(N("MatMul", {"x", "w2tt"}, {"y"}));
  g.nodes.push_back(N("DequantizeLinear", {"qw", "s"}, {"dq"}));
  g.nodes.push_back(N("Add", {"y", "dq"}, {"z"}));
  g.outputs.push_back({"z", DType::kF32, false, {}});
  ir::Graph before = g;
  EXPECT_EQ(FoldConstants(g), 3);
  EXPECT_TRUE(ir::Verify(g).empty());
  EXPECT_EQ(Count(g, "DequantizeLinear"), 1);
  EXPECT_EQ(Count(g, "Mul"), 0);
  ASSERT_TRUE(g.initializers.count("w2tt"));
  ExpectSameOutputs(before, g, {{"x", Random({2, 3}, 7)}});
}

TEST(Pipeline, RunsAllPassesAndVerifies) {
  ir::Graph g = ConvBnRelu("Conv");
  ir::Graph before = g;
  auto stats = RunInferencePipeline(g);
  ASSERT_EQ(stats.size(), 3u);
  EXPECT_EQ(stats[2].pass, "fold-batchnorm");
  EXPECT_EQ(stats[2].rewrites, 1);
  ExpectSameOutputs(before, g, {{"x", Random({1, 3, 5, 5}, 3)}});
}

// Conv or Gemm (no BN) followed by an activation node built by `act`.
ir::Graph ProducerThen(const std::string& producer, ir::Node act) {
  ir::Graph g = ConvBnRelu(producer);
  g.nodes.erase(g.nodes.begin() + 1, g.nodes.end());  // drop BN and Relu
  for (const char* k : {"gamma", "beta", "mean", "var"}) g.initializers.erase(k);
  act.inputs[0] = "c";
  act.outputs = {"y"};
  g.nodes.push_back(act);
  return g;
}

Shape InputShape(const ir::Graph& g) {
  Shape xs;
  for (const auto& d : g.inputs[0].dims) xs.push_back(d.known() ? d.value : 2);
  return xs;
}

TEST(FuseActivation, FusesReluIntoConvAndGemm) {
  for (const std::string producer : {"Conv", "Gemm"}) {
    ir::Graph before = ProducerThen(producer, N("Relu", {"c"}, {"y"}));
    ir::Graph after = before;
    EXPECT_EQ(FuseActivation(after), 1) << producer;
    EXPECT_TRUE(ir::Verify(after).empty());
    ASSERT_EQ(after.nodes.size(), 1u);
    EXPECT_EQ(after.nodes[0].domain, "qforge");
    EXPECT_EQ(after.nodes[0].op_type, "Fused" + producer);
    EXPECT_EQ(after.nodes[0].attr_string("activation", ""), "Relu");
    EXPECT_EQ(after.nodes[0].outputs[0], "y");
    ExpectSameOutputs(before, after, {{"x", Random(InputShape(before), 7, -3, 3)}});
  }
}

TEST(FuseActivation, FusesClipWithConstantBoundsBothOpsetForms) {
  // Clip-11+: bounds as inputs (Relu6 as exported by PyTorch).
  ir::Graph before = ProducerThen("Conv", N("Clip", {"c", "lo", "hi"}, {"y"}));
  before.initializers["lo"] = Tensor::Scalar<float>(0.0f);
  before.initializers["hi"] = Tensor::Scalar<float>(0.5f);
  ir::Graph after = before;
  EXPECT_EQ(FuseActivation(after), 1);
  EXPECT_EQ(after.nodes[0].attr_floats("activation_params", {}), (std::vector<float>{0, 0.5f}));
  EXPECT_EQ(after.initializers.count("hi"), 0u);
  ExpectSameOutputs(before, after, {{"x", Random(InputShape(before), 8, -3, 3)}});
  // Clip-6: bounds as attributes; only an upper bound.
  ir::Node clip6 = N("Clip", {"c"}, {"y"});
  clip6.attrs["max"] = 0.25f;
  ir::Graph b6 = ProducerThen("Gemm", clip6);
  b6.opset_imports[""] = 6;
  ir::Graph a6 = b6;
  EXPECT_EQ(FuseActivation(a6), 1);
  const auto p = a6.nodes[0].attr_floats("activation_params", {});
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(std::isinf(p[0]) && p[0] < 0);
  EXPECT_EQ(p[1], 0.25f);
}

TEST(FuseActivation, SkipsWhatItCannotFuse) {
  // Clip bound computed at run time.
  ir::Graph g = ProducerThen("Conv", N("Clip", {"c", "lo"}, {"y"}));
  g.inputs.push_back({"lo", DType::kF32, true, {}});
  EXPECT_EQ(FuseActivation(g), 0);
  // The producer's output is also read elsewhere.
  ir::Graph h = ProducerThen("Conv", N("Relu", {"c"}, {"y"}));
  h.outputs.push_back({"c", DType::kF32, false, {}});
  EXPECT_EQ(FuseActivation(h), 0);
  // Not a Conv/Gemm producer.
  ir::Graph m;
  m.opset_imports[""] = 13;
  m.inputs.push_back({"x", DType::kF32, true, {ir::Dim::Known(2), ir::Dim::Known(2)}});
  m.nodes.push_back(N("MatMul", {"x", "x"}, {"c"}));
  m.nodes.push_back(N("Relu", {"c"}, {"y"}));
  m.outputs.push_back({"y", DType::kF32, false, {}});
  EXPECT_EQ(FuseActivation(m), 0);
}

// x -> Conv -> c; Add(c, z) or Add(z, c) -> s; Relu -> y (ResNet's block tail). `known`: whether
// shape inference described c and z.
ir::Graph ConvAddRelu(bool conv_first, bool known) {
  ir::Graph g = ProducerThen("Conv", N("Relu", {"c"}, {"y"}));
  const std::vector<ir::Dim> dims = {ir::Dim::Symbol("batch"), ir::Dim::Known(4), ir::Dim::Known(5),
                                     ir::Dim::Known(5)};
  g.inputs.push_back({"z", DType::kF32, true, dims});
  if (known) g.value_info["c"] = {"c", DType::kF32, true, dims};
  g.nodes.insert(
      g.nodes.begin() + 1,
      N("Add", conv_first ? std::vector<std::string>{"c", "z"} : std::vector<std::string>{"z", "c"},
        {"s"}, "add"));
  g.nodes.back().inputs[0] = "s";
  return g;
}

TEST(FuseResidualAdd, FusesAddThenActivationIntoOneConv) {
  for (bool conv_first : {true, false}) {
    ir::Graph before = ConvAddRelu(conv_first, true);
    ir::Graph after = before;
    EXPECT_EQ(FuseResidualAdd(after), 1);
    EXPECT_TRUE(ir::Verify(after).empty());
    EXPECT_EQ(FuseActivation(after), 1);
    EXPECT_TRUE(ir::Verify(after).empty());
    ASSERT_EQ(after.nodes.size(), 1u);
    const ir::Node& f = after.nodes[0];
    EXPECT_EQ(f.op_type, "FusedConv");
    ASSERT_EQ(f.inputs.size(), 4u);
    EXPECT_EQ(f.inputs[3], "z");
    EXPECT_EQ(f.attr_string("activation", ""), "Relu");
    ExpectSameOutputs(before, after,
                      {{"x", Random({2, 3, 5, 5}, 11, -2, 2)}, {"z", Random({2, 4, 5, 5}, 12)}});
  }
}

TEST(FuseResidualAdd, SkipsWithoutShapeInformation) {
  ir::Graph g = ConvAddRelu(true, false);
  EXPECT_EQ(FuseResidualAdd(g), 0);
}

TEST(Pipeline, ExecutionPipelineFoldsBatchNormThenFusesRelu) {
  ir::Graph g = ConvBnRelu("Conv");
  ir::Graph before = g;
  auto stats = RunExecutionPipeline(g);
  ASSERT_EQ(stats.size(), 9u);
  EXPECT_EQ(stats[3].pass, "fuse-dynamic-qlinear");
  EXPECT_EQ(stats[3].rewrites, 0);
  EXPECT_EQ(stats[4].pass, "fuse-residual-add");
  EXPECT_EQ(stats[5].pass, "fuse-activation");
  EXPECT_EQ(stats[5].rewrites, 1);
  EXPECT_EQ(stats[6].pass, "channels-last-int8");
  EXPECT_EQ(stats[7].pass, "fuse-gelu");
  EXPECT_EQ(stats[8].pass, "fuse-matmul-bias");
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op_type, "FusedConv");
  ExpectSameOutputs(before, g, {{"x", Random({2, 3, 5, 5}, 4, -2, 2)}});
}

}  // namespace
}  // namespace qforge::passes
