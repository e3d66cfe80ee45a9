// Tests for the graph IR: attributes, verification, topological sort, text form.
#include "qforge/ir/graph.h"

#include <gtest/gtest.h>

namespace qforge::ir {
namespace {

Node MakeNode(std::string op, std::vector<std::string> in, std::vector<std::string> out,
              std::string name = "") {
  Node n;
  n.op_type = std::move(op);
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.name = std::move(name);
  return n;
}

Graph SmallGraph() {
  Graph g;
  g.name = "g";
  g.opset_imports[""] = 13;
  g.inputs.push_back({"x", DType::kF32, true, {Dim::Symbol("batch"), Dim::Known(4)}});
  g.initializers["w"] = Tensor::FromVector<float>({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  g.nodes.push_back(MakeNode("MatMul", {"x", "w"}, {"y"}, "mm"));
  g.nodes.push_back(MakeNode("Relu", {"y"}, {"z"}, "relu"));
  g.outputs.push_back({"z", DType::kF32, false, {}});
  return g;
}

TEST(Node, TypedAttributes) {
  Node n = MakeNode("Conv", {"x"}, {"y"}, "c");
  n.attrs["group"] = int64_t{2};
  n.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  n.attrs["alpha"] = 0.5f;
  EXPECT_EQ(n.attr_int("group"), 2);
  EXPECT_EQ(n.attr_int("missing", 7), 7);
  EXPECT_EQ(n.attr_ints("pads").size(), 4u);
  EXPECT_FLOAT_EQ(n.attr_float("alpha"), 0.5f);
  EXPECT_THROW(n.attr_float("group"), Error);  // wrong kind
  EXPECT_THROW(n.attr_int("missing"), Error);
  try {
    n.attr_int("strides");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Conv 'c'"), std::string::npos);
  }
}

TEST(Node, OptionalInputs) {
  Node n = MakeNode("Clip", {"x", "", "max", ""}, {"y"});
  EXPECT_EQ(n.num_inputs(), 3u);
  EXPECT_TRUE(n.has_input(0));
  EXPECT_FALSE(n.has_input(1));
  EXPECT_FALSE(n.has_input(9));
}

TEST(Graph, ValueNamerAvoidsGraphNamesAndItsOwn) {
  Graph g;
  g.inputs.push_back({"x", DType::kF32, false, {}});
  g.initializers["w"] = Tensor(DType::kF32, {1});
  g.initializers["w_1"] = Tensor(DType::kF32, {1});
  g.nodes.push_back(ir::MakeNode("Relu", "relu", {"x"}, {"y"}));
  EXPECT_EQ(g.nodes[0].op_type, "Relu");
  EXPECT_EQ(g.nodes[0].inputs, std::vector<std::string>{"x"});
  ValueNamer names(g);
  EXPECT_EQ(names.Fresh("x"), "x_1");
  EXPECT_EQ(names.Fresh("w"), "w_2");
  EXPECT_EQ(names.Fresh("y"), "y_1");
  EXPECT_EQ(names.Fresh("z"), "z");
  EXPECT_EQ(names.Fresh("z"), "z_1");  // names it gave out are taken
  EXPECT_EQ(names.Fresh("z"), "z_2");
}

TEST(Graph, VerifyAcceptsValidGraph) {
  Graph g = SmallGraph();
  EXPECT_TRUE(Verify(g).empty());
  EXPECT_EQ(g.opset(), 13);
  EXPECT_EQ(g.ParameterCount(), 8);
  EXPECT_EQ(g.ParameterBytes(), 32);
  EXPECT_EQ(g.FindProducer("z"), 1);
  EXPECT_EQ(g.FindProducer("x"), -1);
  ASSERT_TRUE(g.FindValueInfo("w").has_value());
  EXPECT_EQ(g.FindValueInfo("w")->dims[0].value, 4);
  EXPECT_EQ(g.FindValueInfo("x")->dims[0].symbol, "batch");
}

TEST(Graph, VerifyFindsProblems) {
  Graph g = SmallGraph();
  g.nodes[0].inputs[0] = "nope";
  EXPECT_FALSE(Verify(g).empty());
  EXPECT_THROW(VerifyOrThrow(g), Error);

  Graph dup = SmallGraph();
  dup.nodes[1].outputs[0] = "y";
  dup.outputs[0].name = "y";
  EXPECT_FALSE(Verify(dup).empty());

  Graph unproduced = SmallGraph();
  unproduced.outputs.push_back({"q", DType::kF32, false, {}});
  EXPECT_FALSE(Verify(unproduced).empty());
}

TEST(Graph, TopologicalSortRestoresOrderAndDetectsCycles) {
  Graph g = SmallGraph();
  std::swap(g.nodes[0], g.nodes[1]);
  EXPECT_FALSE(Verify(g).empty());
  TopologicalSort(g);
  EXPECT_TRUE(Verify(g).empty());
  EXPECT_EQ(g.nodes[0].op_type, "MatMul");

  Graph cyc;
  cyc.nodes.push_back(MakeNode("Relu", {"b"}, {"a"}));
  cyc.nodes.push_back(MakeNode("Relu", {"a"}, {"b"}));
  EXPECT_THROW(TopologicalSort(cyc), Error);
}

TEST(Graph, TopologicalSortHandlesLongChains) {
  Graph g;
  g.inputs.push_back({"v0", DType::kF32, false, {}});
  const int n = 20000;  // deep enough to overflow a recursive sort
  for (int i = n; i >= 1; --i)
    g.nodes.push_back(MakeNode("Relu", {"v" + std::to_string(i - 1)}, {"v" + std::to_string(i)}));
  g.outputs.push_back({"v" + std::to_string(n), DType::kF32, false, {}});
  TopologicalSort(g);
  EXPECT_TRUE(Verify(g).empty());
}

TEST(Graph, TextForm) {
  Graph g = SmallGraph();
  g.nodes[1].attrs["alpha"] = 0.5f;
  std::string t = ToText(g);
  EXPECT_NE(t.find("input x: f32[batch,4]"), std::string::npos) << t;
  EXPECT_NE(t.find("y = MatMul(x, w)  # mm"), std::string::npos) << t;
  EXPECT_NE(t.find("z = Relu(y) {alpha=0.5}"), std::string::npos) << t;
}

}  // namespace
}  // namespace qforge::ir
