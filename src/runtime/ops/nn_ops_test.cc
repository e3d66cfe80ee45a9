// Tests for the nn ops through ir::Graph + runtime::Session: attribute handling, opset
// differences, shapes, optional outputs and error messages. Kernel math is tested in kernels/.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "qforge/kernels/norm.h"
#include "qforge/kernels/pool.h"
#include "qforge/runtime/session.h"

namespace qforge::runtime {
namespace {

// One-node graph: inputs named in0.. (graph inputs unless given as initializers), outputs out0..
struct OneNode {
  ir::Graph g;
  ir::Node node;
  std::map<std::string, Tensor> feeds;

  OneNode(const std::string& op, int64_t opset) {
    node.op_type = op;
    node.name = "n1";
    g.opset_imports[""] = opset;
  }
  OneNode& Input(const Tensor& t, bool constant = false) {
    const std::string name = "in" + std::to_string(node.inputs.size());
    node.inputs.push_back(name);
    if (constant) {
      g.initializers[name] = t;
    } else {
      ir::ValueInfo vi;
      vi.name = name;
      vi.dtype = t.dtype();
      g.inputs.push_back(vi);
      feeds[name] = t;
    }
    return *this;
  }
  OneNode& Skip() {
    node.inputs.push_back("");
    return *this;
  }
  OneNode& Attr(const std::string& k, ir::AttrValue v) {
    node.attrs[k] = std::move(v);
    return *this;
  }
  std::map<std::string, Tensor> Run(int outputs = 1, std::vector<bool> named = {}) {
    for (int i = 0; i < outputs; ++i) {
      const bool use = named.empty() || named[i];
      node.outputs.push_back(use ? "out" + std::to_string(i) : "");
      if (use) g.outputs.push_back(ir::ValueInfo{"out" + std::to_string(i)});
    }
    g.nodes = {node};
    Session s(g, SessionOptions{2});
    return s.Run(feeds);
  }
};

std::vector<float> Vals(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

Tensor Iota(Shape shape, float start = 1.0f) {
  Tensor t(DType::kF32, shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = start + static_cast<float>(i);
  return t;
}

Tensor Random(Shape shape, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  Tensor t(DType::kF32, shape);
  for (float& v : t.span<float>()) v = d(rng);
  return t;
}

// Expects construction or running to throw an Error whose message contains every piece.
template <typename F>
void ExpectError(F&& f, std::vector<std::string> pieces) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const auto& p : pieces)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "'" << e.what() << "' lacks '" << p << "'";
  }
}

// ---------------- BatchNormalization ----------------

TEST(NnOps, BatchNormConstantAndRuntimeParamsAgreeWithReference) {
  const Tensor x = Random({2, 3, 4, 5}, 1);
  const Tensor scale = Random({3}, 2), bias = Random({3}, 3), mean = Random({3}, 4);
  const Tensor var = Random({3}, 5, 0.5f, 2.0f);
  std::vector<float> ref(x.numel());
  kernels::BatchNormRef(2, 3, 20, x.data<float>(), scale.data<float>(), bias.data<float>(),
                        mean.data<float>(), var.data<float>(), 1e-3f, ref.data());
  for (bool constant : {true, false}) {
    OneNode t("BatchNormalization", 15);
    t.Input(x).Input(scale, constant).Input(bias, constant).Input(mean, constant);
    t.Input(var, constant).Attr("epsilon", 1e-3f);
    std::vector<float> y = Vals(t.Run()["out0"]);
    for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], ref[i], 1e-5f) << constant;
  }
}

TEST(NnOps, BatchNormSpatialZeroUsesPerPositionStatistics) {
  // Opset 7, spatial=0: statistics of shape [C, H] = [2, 2].
  const Tensor x = Iota({1, 2, 2});
  const Tensor scale = Tensor::FromVector<float>({2, 2}, {1, 2, 3, 4});
  const Tensor zero(DType::kF32, {2, 2});
  const Tensor one = Tensor::FromVector<float>({2, 2}, {1, 1, 1, 1});
  OneNode t("BatchNormalization", 7);
  t.Input(x).Input(scale, true).Input(zero, true).Input(zero, true).Input(one, true);
  t.Attr("spatial", int64_t{0}).Attr("epsilon", 0.0f);
  EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{1, 4, 9, 16}));
}

TEST(NnOps, BatchNormRejectsTrainingModeAndBadShapes) {
  const Tensor p = Tensor::FromVector<float>({2}, {1, 1});
  ExpectError(
      [&] {
        OneNode t("BatchNormalization", 15);
        t.Input(Iota({1, 2, 2})).Input(p, true).Input(p, true).Input(p, true).Input(p, true);
        t.Attr("training_mode", int64_t{1}).Run(3);
      },
      {"BatchNormalization 'n1'", "training_mode"});
  ExpectError(
      [&] {
        OneNode t("BatchNormalization", 15);
        t.Input(Iota({1, 3, 2})).Input(p, true).Input(p, true).Input(p, true).Input(p, true);
        t.Run();
      },
      {"'n1'", "needs 3"});
}

// ---------------- Pooling ----------------

TEST(NnOps, MaxPoolSameUpperAndIndices) {
  // 1x1x3x3, kernel 2, stride 2, SAME_UPPER: out 2x2, total pad 1 at the end.
  OneNode t("MaxPool", 12);
  t.Input(Iota({1, 1, 3, 3})).Attr("kernel_shape", std::vector<int64_t>{2, 2});
  t.Attr("strides", std::vector<int64_t>{2, 2}).Attr("auto_pad", std::string("SAME_UPPER"));
  auto out = t.Run(2);
  EXPECT_EQ(out["out0"].shape(), (Shape{1, 1, 2, 2}));
  EXPECT_EQ(Vals(out["out0"]), (std::vector<float>{5, 6, 8, 9}));
  EXPECT_EQ(out["out1"].ToInt64Vector(), (std::vector<int64_t>{4, 5, 7, 8}));
}

TEST(NnOps, MaxPoolSameLowerPadsAtTheBeginning) {
  OneNode t("MaxPool", 12);
  t.Input(Iota({1, 1, 3, 3})).Attr("kernel_shape", std::vector<int64_t>{2, 2});
  t.Attr("strides", std::vector<int64_t>{2, 2}).Attr("auto_pad", std::string("SAME_LOWER"));
  EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{1, 3, 7, 9}));
}

TEST(NnOps, PoolCeilModeOutputShape) {
  for (std::string op : {"MaxPool", "AveragePool"}) {
    OneNode t(op, 12);
    t.Input(Iota({1, 1, 4, 4})).Attr("kernel_shape", std::vector<int64_t>{3, 3});
    t.Attr("strides", std::vector<int64_t>{2, 2}).Attr("ceil_mode", int64_t{1});
    Tensor y = t.Run()["out0"];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 2, 2})) << op;
    if (op == "MaxPool")
      EXPECT_EQ(Vals(y), (std::vector<float>{11, 12, 15, 16}));
    else
      EXPECT_EQ(Vals(y), (std::vector<float>{6, 7.5f, 12, 13.5f}));
  }
}

TEST(NnOps, PoolNdMatchesKernelReference) {
  // 1-D and 3-D go through the reference; 2-D through the fast path: all checked against it.
  for (int nd = 1; nd <= 3; ++nd) {
    Shape xs = {2, 3};
    for (int i = 0; i < nd; ++i) xs.push_back(6 + i);
    const Tensor x = Random(xs, 10 + nd);
    kernels::PoolGeometry g;
    g.batch = 2;
    g.channels = 3;
    for (int i = 0; i < nd; ++i) {
      g.in.push_back(xs[2 + i]);
      g.kernel.push_back(3);
      g.strides.push_back(2);
      g.dilations.push_back(1);
      g.pads_begin.push_back(1);
      g.pads_end.push_back(1);
      g.out.push_back((xs[2 + i] + 2 - 3) / 2 + 1);
    }
    int64_t ny = 6;
    for (int64_t o : g.out) ny *= o;
    std::vector<float> want_max(ny), want_avg(ny);
    kernels::MaxPoolRef<float>(g, x.data<float>(), want_max.data(), nullptr, 0);
    kernels::AveragePoolRef(g, true, x.data<float>(), want_avg.data());
    for (std::string op : {"MaxPool", "AveragePool"}) {
      OneNode t(op, 11);
      t.Input(x).Attr("kernel_shape", std::vector<int64_t>(nd, 3));
      t.Attr("strides", std::vector<int64_t>(nd, 2)).Attr("pads", std::vector<int64_t>(2 * nd, 1));
      if (op == "AveragePool") t.Attr("count_include_pad", int64_t{1});
      std::vector<float> y = Vals(t.Run()["out0"]);
      const std::vector<float>& want = op == "MaxPool" ? want_max : want_avg;
      ASSERT_EQ(y.size(), want.size());
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i], 1e-5f) << op << nd;
    }
  }
}

TEST(NnOps, MaxPoolUint8AndBadAttributes) {
  Tensor x = Tensor::FromVector<uint8_t>({1, 1, 2, 2}, {1, 200, 3, 4});
  OneNode t("MaxPool", 12);
  t.Input(x).Attr("kernel_shape", std::vector<int64_t>{2, 2});
  Tensor y = t.Run()["out0"];
  EXPECT_EQ(y.dtype(), DType::kU8);
  EXPECT_EQ(y.data<uint8_t>()[0], 200);
  ExpectError(
      [&] {
        OneNode b("MaxPool", 12);
        b.Input(Iota({1, 1, 4, 4})).Attr("kernel_shape", std::vector<int64_t>{2, 2});
        b.Attr("strides", std::vector<int64_t>{1}).Run();
      },
      {"MaxPool 'n1'", "strides"});
  ExpectError(
      [&] {
        OneNode b("AveragePool", 12);
        b.Input(Iota({1, 1, 4})).Attr("kernel_shape", std::vector<int64_t>{2, 2}).Run();
      },
      {"AveragePool 'n1'", "rank 4"});
  ExpectError(
      [&] {
        OneNode b("MaxPool", 12);
        b.Input(Iota({1, 1, 2, 2})).Attr("kernel_shape", std::vector<int64_t>{3, 3}).Run();
      },
      {"'n1'", "exceeds"});
}

TEST(NnOps, GlobalAveragePool) {
  OneNode t("GlobalAveragePool", 7);
  t.Input(Iota({1, 2, 2, 2}));
  Tensor y = t.Run()["out0"];
  EXPECT_EQ(y.shape(), (Shape{1, 2, 1, 1}));
  EXPECT_EQ(Vals(y), (std::vector<float>{2.5f, 6.5f}));
}

// ---------------- Softmax / LogSoftmax ----------------

TEST(NnOps, SoftmaxOpsetSemantics) {
  const Tensor x = Random({2, 3, 4}, 7);
  // Opset 11, axis 1: coerced to [2, 12]; each of the 2 rows of 12 sums to 1.
  {
    OneNode t("Softmax", 11);
    std::vector<float> y = Vals(t.Input(x).Attr("axis", int64_t{1}).Run()["out0"]);
    for (int r = 0; r < 2; ++r)
      EXPECT_NEAR(std::accumulate(y.begin() + 12 * r, y.begin() + 12 * (r + 1), 0.0), 1.0, 1e-5);
  }
  // Opset 13, axis 1: each (n, :, k) line of 3 sums to 1.
  {
    OneNode t("Softmax", 13);
    std::vector<float> y = Vals(t.Input(x).Attr("axis", int64_t{1}).Run()["out0"]);
    for (int n = 0; n < 2; ++n)
      for (int k = 0; k < 4; ++k)
        EXPECT_NEAR(y[n * 12 + k] + y[n * 12 + 4 + k] + y[n * 12 + 8 + k], 1.0, 1e-5);
  }
  // Defaults: opset < 13 axis 1 (coerce), opset 13 axis -1.
  {
    OneNode t("LogSoftmax", 13);
    std::vector<float> y = Vals(t.Input(x).Run()["out0"]);
    double s = 0;
    for (int k = 0; k < 4; ++k) s += std::exp(y[k]);
    EXPECT_NEAR(s, 1.0, 1e-5);
  }
  ExpectError([&] { OneNode("Softmax", 13).Input(x).Attr("axis", int64_t{3}).Run(); },
              {"Softmax 'n1'", "axis 3"});
}

// ---------------- LayerNormalization ----------------

TEST(NnOps, LayerNormOutputsAndBroadcastScale) {
  const Tensor x = Random({2, 3, 4}, 9);
  const Tensor scale = Tensor::FromVector<float>({4}, {1, 2, 3, 4});
  OneNode t("LayerNormalization", 17);
  t.Input(x).Input(scale, true).Attr("axis", int64_t{1});  // normalize [3, 4], scale broadcast
  auto out = t.Run(3);
  EXPECT_EQ(out["out1"].shape(), (Shape{2, 1, 1}));
  EXPECT_EQ(out["out2"].shape(), (Shape{2, 1, 1}));
  const float* xd = x.data<float>();
  for (int n = 0; n < 2; ++n) {
    double mean = 0, var = 0;
    for (int i = 0; i < 12; ++i) mean += xd[n * 12 + i] / 12.0;
    for (int i = 0; i < 12; ++i) var += (xd[n * 12 + i] - mean) * (xd[n * 12 + i] - mean) / 12.0;
    const double inv = 1 / std::sqrt(var + 1e-5);
    EXPECT_NEAR(out["out1"].data<float>()[n], mean, 1e-6);
    EXPECT_NEAR(out["out2"].data<float>()[n], inv, 1e-5);
    for (int i = 0; i < 12; ++i)
      EXPECT_NEAR(out["out0"].data<float>()[n * 12 + i],
                  (xd[n * 12 + i] - mean) * inv * (1 + i % 4), 1e-5);
  }
  ExpectError(
      [&] {
        OneNode b("LayerNormalization", 17);
        b.Input(x).Input(Tensor::FromVector<float>({3}, {1, 1, 1}), true).Run();
      },
      {"LayerNormalization 'n1'", "Scale"});
}

// ---------------- Resize ----------------

TEST(NnOps, ResizeOpsets) {
  const Tensor x = Tensor::FromVector<float>({1, 1, 2, 2}, {1, 2, 3, 4});
  const Tensor scales = Tensor::FromVector<float>({4}, {1, 1, 2, 2});
  // Opset 10: (X, scales), asymmetric nearest.
  {
    OneNode t("Resize", 10);
    Tensor y = t.Input(x).Input(scales, true).Run()["out0"];
    EXPECT_EQ(Vals(y), (std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}));
  }
  // Opset 11: (X, roi, scales); linear, half_pixel.
  {
    OneNode t("Resize", 11);
    t.Input(x).Input(Tensor(DType::kF32, {0}), true).Input(scales, true);
    Tensor y = t.Attr("mode", std::string("linear")).Run()["out0"];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 4, 4}));
    EXPECT_EQ(Vals(y)[0], 1.0f);
    EXPECT_EQ(Vals(y)[1], 1.25f);
    EXPECT_EQ(Vals(y)[5], 1.25f + 0.25f * 2);
  }
  // Opset 13: sizes only (roi and scales omitted), align_corners.
  {
    OneNode t("Resize", 13);
    t.Input(x).Skip().Skip().Input(Tensor::FromVector<int64_t>({4}, {1, 1, 3, 3}), true);
    t.Attr("mode", std::string("linear"));
    t.Attr("coordinate_transformation_mode", std::string("align_corners"));
    EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{1, 1.5f, 2, 2, 2.5f, 3, 3, 3.5f, 4}));
  }
  // Opset 18 'axes': sizes for the last two axes only.
  {
    OneNode t("Resize", 18);
    t.Input(x).Skip().Skip().Input(Tensor::FromVector<int64_t>({2}, {1, 4}), true);
    t.Attr("axes", std::vector<int64_t>{2, 3});
    t.Attr("coordinate_transformation_mode", std::string("asymmetric"));
    t.Attr("nearest_mode", std::string("floor"));
    Tensor y = t.Run()["out0"];
    EXPECT_EQ(y.shape(), (Shape{1, 1, 1, 4}));
    EXPECT_EQ(Vals(y), (std::vector<float>{1, 1, 2, 2}));
  }
}

TEST(NnOps, ResizeErrors) {
  const Tensor x = Iota({1, 1, 2, 2});
  const Tensor scales = Tensor::FromVector<float>({4}, {1, 1, 2, 2});
  const Tensor sizes = Tensor::FromVector<int64_t>({4}, {1, 1, 4, 4});
  ExpectError(
      [&] { OneNode("Resize", 13).Input(x).Skip().Input(scales, true).Input(sizes, true).Run(); },
      {"Resize 'n1'", "exactly one"});
  ExpectError(
      [&] {
        OneNode("Resize", 13)
            .Input(x)
            .Skip()
            .Input(scales, true)
            .Attr("mode", std::string("area"))
            .Run();
      },
      {"Resize 'n1'", "mode 'area'"});
  ExpectError(
      [&] {
        OneNode("Resize", 13)
            .Input(x)
            .Skip()
            .Input(Tensor::FromVector<float>({2}, {2, 2}), true)
            .Run();
      },
      {"Resize 'n1'", "scales has 2"});
}

// ---------------- Pad ----------------

TEST(NnOps, PadAttributeAndInputForms) {
  const Tensor x = Tensor::FromVector<float>({2, 2}, {1, 2, 3, 4});
  {
    OneNode t("Pad", 2);
    t.Input(x).Attr("pads", std::vector<int64_t>{0, 1, 0, 0}).Attr("value", 9.0f);
    EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{9, 1, 2, 9, 3, 4}));
  }
  {
    OneNode t("Pad", 13);
    t.Input(x).Input(Tensor::FromVector<int64_t>({4}, {1, 0, -1, 0}), true);
    t.Input(Tensor::Scalar<float>(5.0f), true);
    EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{5, 5, 1, 2}));
  }
  {
    OneNode t("Pad", 13);
    t.Input(x).Input(Tensor::FromVector<int64_t>({4}, {0, 2, 0, 0}), true);
    t.Attr("mode", std::string("reflect"));
    EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{1, 2, 1, 2, 3, 4, 3, 4}));
  }
  {
    OneNode t("Pad", 18);  // axes input: pad only axis 1
    t.Input(x).Input(Tensor::FromVector<int64_t>({2}, {1, 1}), true).Skip();
    t.Input(Tensor::FromVector<int64_t>({1}, {-1}), true).Attr("mode", std::string("edge"));
    EXPECT_EQ(Vals(t.Run()["out0"]), (std::vector<float>{1, 1, 2, 2, 3, 3, 4, 4}));
  }
}

TEST(NnOps, PadErrors) {
  const Tensor x = Iota({2, 2});
  ExpectError(
      [&] {
        OneNode("Pad", 13).Input(x).Input(Tensor::FromVector<int64_t>({2}, {1, 1}), true).Run();
      },
      {"Pad 'n1'", "pads has 2 values, expected 4"});
  ExpectError(
      [&] {
        OneNode("Pad", 13)
            .Input(x)
            .Input(Tensor::FromVector<int64_t>({4}, {0, 0, 0, 0}), true)
            .Attr("mode", std::string("mirror"))
            .Run();
      },
      {"Pad 'n1'", "mirror"});
  ExpectError(
      [&] {
        OneNode("Pad", 13)
            .Input(x)
            .Input(Tensor::FromVector<int64_t>({4}, {-3, 0, 0, 0}), true)
            .Run();
      },
      {"Pad 'n1'", "negative"});
}

TEST(NnOps, AbsurdSizesGiveErrorsNotCrashes) {
  const Tensor x = Iota({1, 1, 2, 2});
  ExpectError(
      [&] {
        OneNode("Pad", 13)
            .Input(x)
            .Input(Tensor::FromVector<int64_t>({8}, {0, 0, 0, 0, 0, 0, int64_t{1} << 62, 0}), true)
            .Run();
      },
      {"Pad 'n1'"});
  ExpectError(
      [&] {
        OneNode("Pad", 13)
            .Input(x)
            .Input(
                Tensor::FromVector<int64_t>({8}, {0, 0, 1 << 20, 1 << 20, 0, 0, 1 << 20, 1 << 20}),
                true)
            .Run();
      },
      {"Pad 'n1'"});
  ExpectError(
      [&] {
        OneNode("Resize", 13)
            .Input(x)
            .Skip()
            .Input(Tensor::FromVector<float>({4}, {1, 1, 1e6f, 1e6f}), true)
            .Run();
      },
      {"Resize 'n1'"});
  ExpectError(
      [&] {
        OneNode("MaxPool", 12)
            .Input(x)
            .Attr("kernel_shape", std::vector<int64_t>{2, 2})
            .Attr("pads", std::vector<int64_t>{0, 0, int64_t{1} << 60, 0})
            .Run();
      },
      {"MaxPool 'n1'", "too large"});
}

// PyTorch's results (tests/data/nnops/make_torch_fixtures.py): pooling with ceil_mode,
// count_include_pad and dilation, and Resize against F.interpolate.
TEST(NnOps, MatchesPyTorchFixtures) {
  std::ifstream in("tests/data/nnops/torch_fixtures.txt");
  ASSERT_TRUE(in) << "run from the source root (ctest does)";
  std::string line;
  int cases = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> parts;
    std::stringstream ss(line);
    for (std::string part; std::getline(ss, part, '|');) parts.push_back(part);
    ASSERT_EQ(parts.size(), 5u) << line.substr(0, 80);
    std::stringstream head(parts[0]);
    std::string op;
    head >> op;
    std::map<std::string, std::string> kv;
    for (std::string item; head >> item;) {
      const size_t eq = item.find('=');
      kv[item.substr(0, eq)] = item.substr(eq + 1);
    }
    auto ints = [](const std::string& text) {
      std::vector<int64_t> v;
      std::stringstream t(text);
      for (int64_t d; t >> d;) v.push_back(d);
      return v;
    };
    auto floats = [](const std::string& text) {
      std::vector<float> v;
      std::stringstream t(text);
      for (float f; t >> f;) v.push_back(f);
      return v;
    };
    const Shape xs = ints(parts[1]), ys = ints(parts[3]);
    const Tensor x = Tensor::FromVector<float>(xs, floats(parts[2]));
    const std::vector<float> want = floats(parts[4]);
    OneNode t(op, 13);
    t.Input(x);
    if (op == "Resize") {
      t.Skip().Skip().Input(Tensor::FromVector<int64_t>({4}, ys), true);
      t.Attr("mode", kv["mode"]).Attr("coordinate_transformation_mode", kv["coord"]);
      if (kv.count("nearest")) t.Attr("nearest_mode", kv["nearest"]);
      if (kv.count("a")) t.Attr("cubic_coeff_a", std::stof(kv["a"]));
    } else {
      const int64_t k = std::stoll(kv["k"]), st = std::stoll(kv["s"]), pd = std::stoll(kv["p"]);
      t.Attr("kernel_shape", std::vector<int64_t>{k, k});
      t.Attr("strides", std::vector<int64_t>{st, st});
      t.Attr("pads", std::vector<int64_t>{pd, pd, pd, pd});
      t.Attr("ceil_mode", std::stoll(kv["ceil"]));
      if (op == "MaxPool") {
        const int64_t d = std::stoll(kv["d"]);
        t.Attr("dilations", std::vector<int64_t>{d, d});
      } else {
        t.Attr("count_include_pad", std::stoll(kv["cip"]));
      }
    }
    const Tensor y = t.Run()["out0"];
    ASSERT_EQ(y.shape(), ys) << parts[0];
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(y.data<float>()[i], want[i], 1e-5f + 1e-5f * std::fabs(want[i]))
          << parts[0] << " at " << i;
    ++cases;
  }
  EXPECT_GT(cases, 200);
}

}  // namespace
}  // namespace qforge::runtime
