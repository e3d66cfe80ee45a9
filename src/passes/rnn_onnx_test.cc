// Tests of LowerDynamicQuantizeGru: the unrolled standard-ONNX form of qforge::DynamicQuantizeGRU
// computes what the qforge op computes (both run by runtime::Session), and the forms it cannot
// express are refused with a clear error.
#include "qforge/passes/rnn_onnx.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "qforge/passes/quantize_dynamic.h"
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

struct GruCase {
  std::string direction = "forward";
  bool lbr = false;
  bool h0 = false;
  bool bias = true;
};

// x [T=7, batch, 9] (and h0 [1, batch, 12] as an input) -> GRU hidden 12 -> "y", "y_h".
ir::Graph Gru(const GruCase& c) {
  const int64_t H = 12, D = c.direction == "bidirectional" ? 2 : 1;
  ir::Graph g;
  g.name = "gru";
  g.opset_imports[""] = 14;
  g.inputs.push_back(
      {"x", DType::kF32, true, {ir::Dim::Known(7), ir::Dim::Symbol("batch"), ir::Dim::Known(9)}});
  g.initializers["W"] = Random({D, 3 * H, 9}, 31, -0.6f, 0.6f);
  g.initializers["R"] = Random({D, 3 * H, H}, 32, -0.6f, 0.6f);
  if (c.bias) g.initializers["B"] = Random({D, 6 * H}, 33, -0.3f, 0.3f);
  ir::Node n;
  n.op_type = "GRU";
  n.name = "rnn/GRU";
  n.inputs = {"x", "W", "R", c.bias ? "B" : "", "", c.h0 ? "h0" : ""};
  n.outputs = {"y", "y_h"};
  n.attrs["hidden_size"] = H;
  n.attrs["direction"] = c.direction;
  if (c.lbr) n.attrs["linear_before_reset"] = int64_t{1};
  if (c.h0)
    g.inputs.push_back({"h0",
                        DType::kF32,
                        true,
                        {ir::Dim::Known(D), ir::Dim::Symbol("batch"), ir::Dim::Known(H)}});
  g.nodes.push_back(n);
  g.outputs.push_back({"y", DType::kF32, false, {}});
  g.outputs.push_back({"y_h", DType::kF32, false, {}});
  return g;
}

TEST(LowerDynamicQuantizeGru, MatchesTheQforgeOp) {
  const Tensor x = Random({7, 5, 9}, 40, -2, 2);
  const Tensor h0 = Random({1, 5, 12}, 41);
  for (const char* dir : {"forward", "reverse"})
    for (int lbr = 0; lbr < 2; ++lbr)
      for (int with_h0 = 0; with_h0 < 2; ++with_h0) {
        GruCase c;
        c.direction = dir;
        c.lbr = lbr == 1;
        c.h0 = with_h0 == 1;
        c.bias = !(lbr == 1 && with_h0 == 1);
        SCOPED_TRACE(std::string(dir) + " lbr " + std::to_string(lbr) + " h0 " +
                     std::to_string(with_h0));
        const QuantizeResult r = QuantizeDynamic(Gru(c));
        ASSERT_EQ(r.graph.nodes.size(), 1u);
        ASSERT_EQ(r.graph.nodes[0].op_type, "DynamicQuantizeGRU");
        ir::Graph lowered = r.graph;
        const std::vector<std::string> notes = LowerDynamicQuantizeGru(lowered);
        ASSERT_EQ(notes.size(), 1u);
        EXPECT_FALSE(HasQforgeOnlyOps(lowered));
        EXPECT_EQ(lowered.opset_imports.count("qforge"), 0u);
        EXPECT_TRUE(ir::Verify(lowered).empty());
        int dql = 0, mmi = 0;
        for (const ir::Node& n : lowered.nodes) {
          EXPECT_TRUE(n.domain.empty()) << n.op_type;
          dql += n.op_type == "DynamicQuantizeLinear";
          mmi += n.op_type == "MatMulInteger";
        }
        // x once; per step h (and r . h without linear_before_reset); 3 projections and 3
        // recurrent products per step (none at step 0 without h0).
        const int steps_with_h = with_h0 ? 7 : 6;
        EXPECT_EQ(dql, 1 + steps_with_h * (lbr ? 1 : 2));
        EXPECT_EQ(mmi, 3 + steps_with_h * 3);

        std::map<std::string, Tensor> feeds = {{"x", x}};
        if (c.h0) feeds["h0"] = h0;
        runtime::Session qs(r.graph), ls(lowered);
        const auto a = qs.Run(feeds), b = ls.Run(feeds);
        for (const char* out : {"y", "y_h"}) {
          const Tensor& ya = a.at(out);
          const Tensor& yb = b.at(out);
          ASSERT_EQ(ya.shape(), yb.shape()) << out;
          // Sigmoid / Tanh may differ in the last bits between the fused cell and the
          // element-wise ops, which can move one rounding of a quantized state by one code:
          // the outputs agree within a fraction of h's quantization step (about 2 / 255).
          float worst = 0;
          for (int64_t i = 0; i < ya.numel(); ++i)
            worst = std::max(worst, std::fabs(ya.data<float>()[i] - yb.data<float>()[i]));
          EXPECT_LE(worst, 2e-3f) << out;
        }
      }
}

TEST(LowerDynamicQuantizeGru, RefusesFormsWithoutStandardOps) {
  GruCase bi;
  bi.direction = "bidirectional";
  ir::Graph g = QuantizeDynamic(Gru(bi)).graph;
  try {
    LowerDynamicQuantizeGru(g);
    FAIL() << "bidirectional accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rnn/GRU"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bidirectional"), std::string::npos) << e.what();
  }
  DynamicQuantizeOptions per_row;
  per_row.per_row = true;
  ir::Graph pr = QuantizeDynamic(Gru({}), per_row).graph;
  EXPECT_THROW(LowerDynamicQuantizeGru(pr), Error);
  // Unknown number of steps.
  ir::Graph sym = Gru({});
  sym.inputs[0].dims[0] = ir::Dim::Symbol("T");
  ir::Graph q = QuantizeDynamic(sym).graph;
  try {
    LowerDynamicQuantizeGru(q);
    FAIL() << "symbolic T accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("time steps"), std::string::npos) << e.what();
  }
  // A graph without the op is left alone.
  ir::Graph plain = Gru({});
  EXPECT_TRUE(LowerDynamicQuantizeGru(plain).empty());
  EXPECT_EQ(plain.nodes.size(), 1u);
}

}  // namespace
}  // namespace qforge::passes
