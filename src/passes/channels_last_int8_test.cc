// Before/after tests of ChannelsLastInt8: small ResNet- and MobileNetV2-style networks quantized
// (QuantizeStatic + LowerQdqToInteger) give bit-identical outputs with and without the rewrite,
// and the rewritten graph has the expected channels-last nodes and transposes.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "qforge/passes/passes.h"
#include "qforge/passes/quantize.h"
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

struct Builder {
  ir::Graph g;
  uint32_t seed = 1;
  ir::Node& Add(std::string op, std::vector<std::string> in, std::string out) {
    ir::Node n;
    n.op_type = std::move(op);
    n.inputs = std::move(in);
    n.outputs = {out};
    n.name = out;
    g.nodes.push_back(std::move(n));
    return g.nodes.back();
  }
  // Conv c -> m, kernel k, stride s, pad k / 2, group; optional Relu.
  std::string Conv(const std::string& x, int64_t c, int64_t m, int64_t k, int64_t s, int64_t group,
                   bool relu, const std::string& name) {
    g.initializers[name + ".w"] = Random({m, c / group, k, k}, seed++, -0.4f, 0.4f);
    g.initializers[name + ".b"] = Random({m}, seed++, -0.1f, 0.1f);
    ir::Node& n = Add("Conv", {x, name + ".w", name + ".b"}, name);
    n.attrs["kernel_shape"] = std::vector<int64_t>{k, k};
    n.attrs["strides"] = std::vector<int64_t>{s, s};
    n.attrs["pads"] = std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2};
    n.attrs["group"] = group;
    if (!relu) return name;
    Add("Relu", {name}, name + ".relu");
    return name + ".relu";
  }
};

// x [B, 3, 12, 12]: conv 3x3 s2 -> MaxPool 3x3 pad 1 -> MobileNetV2 block (expand 1x1,
// depthwise 3x3, project 1x1, residual Add) -> ResNet block (3x3, 3x3, Add) -> Concat of two
// 1x1 branches on channels -> GlobalAveragePool -> Flatten -> Gemm; a second output taken from
// inside the chain.
ir::Graph Net() {
  Builder b;
  b.g.name = "nhwc";
  b.g.opset_imports[""] = 13;
  b.g.inputs.push_back(
      {"x",
       DType::kF32,
       true,
       {ir::Dim::Symbol("batch"), ir::Dim::Known(3), ir::Dim::Known(12), ir::Dim::Known(12)}});
  std::string h = b.Conv("x", 3, 16, 3, 2, 1, true, "stem");
  ir::Node& mp = b.Add("MaxPool", {h}, "pool");
  mp.attrs["kernel_shape"] = std::vector<int64_t>{3, 3};
  mp.attrs["strides"] = std::vector<int64_t>{1, 1};
  mp.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  h = "pool";
  std::string e = b.Conv(h, 16, 48, 1, 1, 1, true, "expand");
  e = b.Conv(e, 48, 48, 3, 1, 48, true, "dw");
  e = b.Conv(e, 48, 16, 1, 1, 1, false, "project");
  b.Add("Add", {h, e}, "res1");
  std::string r = b.Conv("res1", 16, 16, 3, 1, 1, true, "r1");
  r = b.Conv(r, 16, 16, 3, 1, 1, false, "r2");
  b.Add("Add", {"res1", r}, "res2");
  b.Add("Relu", {"res2"}, "res2.relu");
  const std::string a = b.Conv("res2.relu", 16, 8, 1, 1, 1, true, "ba");
  const std::string c = b.Conv("res2.relu", 16, 24, 3, 2, 1, false, "bc");
  const std::string d = b.Conv(c, 24, 24, 3, 2, 24, true, "bd");  // stride-2 depthwise
  (void)d;
  ir::Node& cat = b.Add("Concat", {a, b.Conv("res2.relu", 16, 4, 1, 1, 1, true, "bb")}, "cat");
  cat.attrs["axis"] = int64_t{1};
  b.Add("GlobalAveragePool", {"cat"}, "gap");
  b.Add("Flatten", {"gap"}, "flat");
  b.g.initializers["fc.w"] = Random({5, 12}, 99, -0.3f, 0.3f);
  b.g.initializers["fc.b"] = Random({5}, 98, -0.1f, 0.1f);
  ir::Node& fc = b.Add("Gemm", {"flat", "fc.w", "fc.b"}, "y");
  fc.attrs["transB"] = int64_t{1};
  b.g.outputs.push_back({"y", DType::kF32, false, {}});
  b.g.outputs.push_back({d, DType::kF32, false, {}});
  return b.g;
}

std::map<std::string, Tensor> Feeds(uint32_t seed, int64_t batch) {
  return {{"x", Random({batch, 3, 12, 12}, seed, 0.0f, 1.0f)}};
}

// Min/max of every float tensor over a few batches (what qforge calibrate writes).
calib::CalibTable Calibrate(const ir::Graph& g) {
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
  for (int i = 0; i < 3; ++i) {
    auto feeds = Feeds(100 + i, 2);
    for (const auto& [n, v] : feeds) add(n, v);
    auto out = s.Run(feeds, [&](const ir::Node& n, const std::vector<Tensor>& outs) {
      for (size_t k = 0; k < outs.size(); ++k) add(n.outputs[k], outs[k]);
    });
    for (const auto& [n, v] : out) add(n, v);
  }
  return t;
}

int CountOp(const ir::Graph& g, const std::string& domain, const std::string& op) {
  int c = 0;
  for (const auto& n : g.nodes) c += n.domain == domain && n.op_type == op;
  return c;
}

void CheckBitExact(DType act) {
  const ir::Graph fp = Net();
  QuantizeOptions o;
  o.activation_dtype = act;
  ir::Graph lowered = QuantizeStatic(fp, Calibrate(fp), o).graph;
  LowerQdqToInteger(lowered);
  const int convs = CountOp(lowered, "", "QLinearConv") + CountOp(lowered, "qforge", "QLinearConv");
  ASSERT_GE(convs, 10) << ir::ToText(lowered);
  ir::Graph nhwc = lowered;
  const int rewrites = ChannelsLastInt8(nhwc);
  ir::VerifyOrThrow(nhwc);
  // Every 2-D convolution is channels-last; the adds, the concat and the pool join the chain.
  int cl = 0;
  for (const auto& n : nhwc.nodes) cl += n.attr_int("channels_last", 0) == 1;
  // + the global average pool, the max pool and the input's QuantizeLinear
  EXPECT_EQ(cl, convs + 3) << ir::ToText(nhwc);
  EXPECT_EQ(CountOp(nhwc, "qforge", "MaxPool"), 1);
  EXPECT_EQ(CountOp(nhwc, "qforge", "QuantizeLinear"), 1);
  EXPECT_EQ(rewrites, convs + 2 + CountOp(lowered, "com.microsoft", "QLinearAdd") +
                          CountOp(lowered, "com.microsoft", "QLinearConcat"));
  // One transpose, for the second graph output: the input's QuantizeLinear writes NHWC itself,
  // the max pool runs channels-last and Flatten reads the pooled value as it is.
  EXPECT_EQ(CountOp(nhwc, "", "Transpose"), 1) << ir::ToText(nhwc);
  for (int64_t batch : {1, 3}) {
    runtime::Session a(lowered), b(nhwc);
    const auto feeds = Feeds(7 + batch, batch);
    const auto ra = a.Run(feeds), rb = b.Run(feeds);
    ASSERT_EQ(ra.size(), 2u);
    for (const auto& [name, ta] : ra) {
      const Tensor& tb = rb.at(name);
      ASSERT_EQ(ta.shape(), tb.shape()) << name;
      ASSERT_EQ(ta.dtype(), tb.dtype()) << name;
      EXPECT_EQ(0, std::memcmp(ta.raw(), tb.raw(), ta.nbytes())) << name << " batch " << batch;
    }
  }
  // Idempotent: nothing left to rewrite.
  EXPECT_EQ(ChannelsLastInt8(nhwc), 0);
}

TEST(ChannelsLastInt8, BitExactUint8) { CheckBitExact(DType::kU8); }
TEST(ChannelsLastInt8, BitExactInt8) { CheckBitExact(DType::kI8); }

TEST(ChannelsLastInt8, LeavesFloatGraphsAlone) {
  ir::Graph g = Net();
  EXPECT_EQ(ChannelsLastInt8(g), 0);
}

}  // namespace
}  // namespace qforge::passes
