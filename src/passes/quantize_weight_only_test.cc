// Before/after tests of QuantizeWeightOnly (MatMul / Gemm with constant weights -> MatMulNBits).
#include "qforge/passes/quantize_weight_only.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "qforge/runtime/session.h"

namespace qforge::passes {
namespace {

Tensor Random(Shape shape, uint32_t seed, float scale = 1.0f) {
  Tensor t(DType::kF32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
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

// x [B, 40] -> Gemm (transB, alpha 0.5, beta 2, C [24]) -> Relu -> MatMul W2 [24, 16] -> h
// -> MatMul(h, h^T) (activation x activation) -> y [B, B]; and h is an output too.
ir::Graph Model() {
  ir::Graph g;
  g.name = "wo";
  g.opset_imports[""] = 17;
  g.inputs = {ir::ValueInfo{"x", DType::kF32, true, {ir::Dim::Symbol("B"), ir::Dim::Known(40)}}};
  g.initializers["W1"] = Random({24, 40}, 1, 0.2f);
  g.initializers["C1"] = Random({24}, 2, 0.1f);
  g.initializers["W2"] = Random({24, 16}, 3, 0.2f);
  ir::Node gemm = N("Gemm", {"x", "W1", "C1"}, {"a"}, "fc1");
  gemm.attrs["transB"] = int64_t{1};
  gemm.attrs["alpha"] = 0.5f;
  gemm.attrs["beta"] = 2.0f;
  ir::Node tr = N("Transpose", {"h"}, {"ht"}, "tr");
  tr.attrs["perm"] = std::vector<int64_t>{1, 0};
  g.nodes = {gemm, N("Relu", {"a"}, {"r"}, "relu"), N("MatMul", {"r", "W2"}, {"h"}, "fc2"), tr,
             N("MatMul", {"h", "ht"}, {"y"}, "scores")};
  g.outputs = {ir::ValueInfo{"y", DType::kF32, false, {}},
               ir::ValueInfo{"h", DType::kF32, false, {}}};
  return g;
}

std::map<std::string, Tensor> RunModel(const ir::Graph& g, const Tensor& x) {
  runtime::Session s(g);
  return s.Run({{"x", x}});
}

double Sqnr(const Tensor& ref, const Tensor& a) {
  double s = 0, e = 0;
  for (int64_t i = 0; i < ref.numel(); ++i) {
    s += double(ref.data<float>()[i]) * ref.data<float>()[i];
    const double d = double(a.data<float>()[i]) - ref.data<float>()[i];
    e += d * d;
  }
  return 10 * std::log10(s / e);
}

TEST(QuantizeWeightOnly, ReplacesConstantWeightMatMulsAndKeepsTheRest) {
  const ir::Graph g = Model();
  for (int bits : {4, 8}) {
    for (bool fp16 : {true, false}) {
      WeightOnlyOptions o;
      o.bits = bits;
      o.fp16_scales = fp16;
      o.symmetric = !fp16;
      const WeightOnlyResult r = QuantizeWeightOnly(g, o);
      EXPECT_EQ(Count(r.graph, "MatMulNBits"), 2);
      EXPECT_EQ(Count(r.graph, "MatMul"), 1);  // the activation x activation one
      EXPECT_EQ(Count(r.graph, "Gemm"), 0);
      EXPECT_EQ(Count(r.graph, "Cast"), fp16 ? 2 : 0);
      EXPECT_EQ(r.graph.opset_imports.at("com.microsoft"), 1);
      EXPECT_FALSE(r.graph.is_initializer("W1"));  // the fp32 weights are gone
      ASSERT_EQ(r.nodes.size(), 3u);
      EXPECT_TRUE(r.nodes[0].quantized);
      EXPECT_NE(r.nodes[0].reason.find("bias fused"), std::string::npos);
      EXPECT_TRUE(r.nodes[1].quantized);
      EXPECT_FALSE(r.nodes[2].quantized);
      EXPECT_NE(r.nodes[2].reason.find("not a constant"), std::string::npos);
      ASSERT_EQ(r.layers.size(), 2u);
      EXPECT_EQ(r.layers[0].K, 40);
      EXPECT_EQ(r.layers[0].padded_K, 64);  // K padded to whole groups of 32
      EXPECT_EQ(r.layers[1].N, 16);
      const double min_db = bits == 4 ? 15 : 35;
      for (const auto& l : r.layers) {
        EXPECT_GT(l.error.sqnr_db, min_db) << l.tensor;
        EXPECT_EQ(l.error.count, l.N * l.K);
      }
      const int64_t blob = 32 * bits / 8;
      EXPECT_EQ(r.layers[0].quantized_bytes,
                24 * 2 * blob + 24 * 2 * (fp16 ? 2 : 4) +
                    (o.symmetric ? 0 : 24 * 1 /* ceil(2*b/8) */ * (bits == 4 ? 1 : 2)));
      // Same interface, outputs close to fp32.
      const Tensor x = Random({5, 40}, 4);
      auto ref = RunModel(g, x), q = RunModel(r.graph, x);
      EXPECT_GT(Sqnr(ref.at("h"), q.at("h")), bits == 4 ? 12 : 30);
      EXPECT_GT(Sqnr(ref.at("y"), q.at("y")), bits == 4 ? 12 : 30);
    }
  }
}

TEST(QuantizeWeightOnly, ExcludeAndErrors) {
  const ir::Graph g = Model();
  WeightOnlyOptions o;
  o.exclude = {"fc2"};
  const WeightOnlyResult r = QuantizeWeightOnly(g, o);
  EXPECT_EQ(Count(r.graph, "MatMulNBits"), 1);
  EXPECT_EQ(r.nodes[1].reason, "excluded (--exclude)");
  o.exclude = {"nope"};
  EXPECT_THROW(QuantizeWeightOnly(g, o), Error);
  o = {};
  o.bits = 3;
  EXPECT_THROW(QuantizeWeightOnly(g, o), Error);
  o = {};
  o.group_size = 48;
  EXPECT_THROW(QuantizeWeightOnly(g, o), Error);
}

TEST(QuantizeWeightOnly, UnsupportedGemmFormsStayFp32WithAReason) {
  ir::Graph g = Model();
  g.nodes[0].attrs["transA"] = int64_t{1};
  WeightOnlyResult r = QuantizeWeightOnly(g, {});
  EXPECT_FALSE(r.nodes[0].quantized);
  EXPECT_NE(r.nodes[0].reason.find("transA"), std::string::npos);
  g = Model();
  g.initializers["C1"] = Random({3, 24}, 2);  // a 2-D bias is not a row
  r = QuantizeWeightOnly(g, {});
  EXPECT_FALSE(r.nodes[0].quantized);
  EXPECT_NE(r.nodes[0].reason.find("bias C"), std::string::npos);
}

TEST(QuantizeWeightOnly, GraphWithoutLinearLayersIsUnchanged) {
  ir::Graph g;
  g.opset_imports[""] = 17;
  g.inputs = {ir::ValueInfo{"x", DType::kF32, false, {}}};
  g.nodes = {N("Relu", {"x"}, {"y"}, "relu")};
  g.outputs = {ir::ValueInfo{"y", DType::kF32, false, {}}};
  const WeightOnlyResult r = QuantizeWeightOnly(g, {});
  EXPECT_TRUE(r.layers.empty());
  EXPECT_EQ(r.notes.size(), 1u);  // nothing quantized
  EXPECT_EQ(ir::ToText(r.graph), ir::ToText(g));
}

}  // namespace
}  // namespace qforge::passes
