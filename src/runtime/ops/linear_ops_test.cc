// Tests for Conv / ConvTranspose / Gemm / MatMul through ir::Graph + runtime::Session: ONNX
// attribute semantics (auto_pad, group, output_shape, broadcasting, opsets) and error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/conv_ref.h"
#include "kernels/ref/gemm_ref.h"
#include "qforge/runtime/session.h"

namespace qforge::runtime {
namespace {

// One-node graph: inputs in0.. (graph inputs, or initializers when constant), output out0.
struct OneNode {
  ir::Graph g;
  ir::Node node;
  std::map<std::string, Tensor> feeds;

  OneNode(const std::string& op, int64_t opset = 17, const std::string& domain = "") {
    node.op_type = op;
    node.domain = domain;
    node.name = "n1";
    g.opset_imports[""] = opset;
    if (!domain.empty()) g.opset_imports[domain] = 1;
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
  OneNode& Attr(const std::string& k, ir::AttrValue v) {
    node.attrs[k] = std::move(v);
    return *this;
  }
  Tensor Run(int threads = 2) {
    node.outputs = {"out0"};
    g.outputs = {ir::ValueInfo{"out0"}};
    g.nodes = {node};
    Session s(g, SessionOptions{threads});
    return s.Run(feeds).at("out0");
  }
};

Tensor Iota(Shape shape, float start = 0.0f) {
  Tensor t(DType::kF32, shape);
  float* d = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = start + static_cast<float>(i);
  return t;
}

Tensor Filled(Shape shape, float v) {
  Tensor t(DType::kF32, shape);
  for (float& x : t.span<float>()) x = v;
  return t;
}

Tensor Random(Shape shape, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Tensor t(DType::kF32, shape);
  for (float& x : t.span<float>()) x = u(rng);
  return t;
}

std::vector<float> Values(const Tensor& t) {
  return std::vector<float>(t.data<float>(), t.data<float>() + t.numel());
}

void ExpectNear(const Tensor& got, const Tensor& want, double tol = 1e-4) {
  ASSERT_EQ(got.shape(), want.shape());
  const float* g = got.data<float>();
  const float* w = want.data<float>();
  for (int64_t i = 0; i < got.numel(); ++i) ASSERT_NEAR(g[i], w[i], tol) << "at " << i;
}

// Message of the Error thrown by f ("" if none).
template <typename F>
std::string ErrorOf(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// Conv

TEST(ConvOp, OnnxBasicWithAndWithoutPadding) {
  for (bool constant_w : {false, true}) {
    OneNode n("Conv");
    n.Input(Iota({1, 1, 5, 5})).Input(Filled({1, 1, 3, 3}, 1.0f), constant_w);
    n.Attr("kernel_shape", std::vector<int64_t>{3, 3})
        .Attr("pads", std::vector<int64_t>{1, 1, 1, 1});
    const Tensor y = n.Run();
    EXPECT_EQ(y.shape(), (Shape{1, 1, 5, 5}));
    EXPECT_EQ(Values(y),
              (std::vector<float>{12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                                  117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84}));
  }
  OneNode n("Conv");
  n.Input(Iota({1, 1, 5, 5})).Input(Filled({1, 1, 3, 3}, 1.0f), true);
  EXPECT_EQ(Values(n.Run()), (std::vector<float>{54, 63, 72, 99, 108, 117, 144, 153, 162}));
}

TEST(ConvOp, AutoPadSameLowerStride2) {
  // ONNX test_conv_with_autopad_same.
  OneNode n("Conv");
  n.Input(Iota({1, 1, 5, 5})).Input(Filled({1, 1, 3, 3}, 1.0f), true);
  n.Attr("auto_pad", std::string("SAME_LOWER")).Attr("strides", std::vector<int64_t>{2, 2});
  EXPECT_EQ(Values(n.Run()), (std::vector<float>{12, 27, 24, 63, 108, 81, 72, 117, 84}));
}

TEST(ConvOp, AutoPadModesMatchExplicitPads) {
  std::mt19937 rng(1);
  const Tensor x = Random({1, 2, 4, 6}, rng), w = Random({3, 2, 3, 2}, rng);
  // Odd total padding along H (out 2: (2-1)*2 + 3 - 4 = 1) and W (out 3: 2*2 + 2 - 6 = 0).
  struct Mode {
    std::string auto_pad;
    std::vector<int64_t> pads;
  };
  for (const Mode& m : {Mode{"SAME_UPPER", {0, 0, 1, 0}}, Mode{"SAME_LOWER", {1, 0, 0, 0}},
                        Mode{"VALID", {0, 0, 0, 0}}}) {
    SCOPED_TRACE(m.auto_pad);
    OneNode a("Conv");
    a.Input(x)
        .Input(w, true)
        .Attr("auto_pad", m.auto_pad)
        .Attr("strides", std::vector<int64_t>{2, 2});
    OneNode b("Conv");
    b.Input(x).Input(w, true).Attr("pads", m.pads).Attr("strides", std::vector<int64_t>{2, 2});
    const Tensor ya = a.Run(), yb = b.Run();
    ExpectNear(ya, yb, 0.0);
    if (m.auto_pad != "VALID") EXPECT_EQ(ya.shape(), (Shape{1, 3, 2, 3}));
  }
}

TEST(ConvOp, GroupsDilationsBiasMatchReference) {
  std::mt19937 rng(2);
  for (bool constant : {false, true}) {
    const Tensor x = Random({2, 6, 9, 8}, rng), w = Random({4, 3, 3, 2}, rng), b = Random({4}, rng);
    OneNode n("Conv");
    n.Input(x).Input(w, constant).Input(b, constant);
    n.Attr("group", int64_t{2})
        .Attr("dilations", std::vector<int64_t>{2, 1})
        .Attr("strides", std::vector<int64_t>{1, 2})
        .Attr("pads", std::vector<int64_t>{1, 0, 2, 1});
    const Tensor y = n.Run();
    kernels::ConvGeometry g;
    g.batch = 2;
    g.in_channels = 6;
    g.out_channels = 4;
    g.group = 2;
    g.in_size = {9, 8};
    g.kernel = {3, 2};
    g.strides = {1, 2};
    g.dilations = {2, 1};
    g.pads_begin = {1, 0};
    g.pads_end = {2, 1};
    g.out_size = {8, 4};
    Tensor want(DType::kF32, {2, 4, 8, 4});
    kernels::ref::Conv(g, x.data<float>(), w.data<float>(), b.data<float>(), want.data<float>());
    ExpectNear(y, want);
  }
}

TEST(ConvOp, Conv1dAnd3dAndDepthwise) {
  std::mt19937 rng(3);
  {
    OneNode n("Conv");
    n.Input(Random({1, 2, 10}, rng)).Input(Random({3, 2, 3}, rng), true);
    EXPECT_EQ(n.Run().shape(), (Shape{1, 3, 8}));
  }
  {
    OneNode n("Conv");
    n.Input(Random({1, 2, 4, 5, 6}, rng)).Input(Random({3, 2, 2, 2, 2}, rng), true);
    n.Attr("pads", std::vector<int64_t>{1, 1, 1, 0, 0, 0});
    EXPECT_EQ(n.Run().shape(), (Shape{1, 3, 4, 5, 6}));
  }
  {
    // Depthwise (group == C == M) against a per-channel single-group conv.
    const Tensor x = Random({1, 3, 7, 7}, rng), w = Random({3, 1, 3, 3}, rng);
    OneNode n("Conv");
    n.Input(x)
        .Input(w, true)
        .Attr("group", int64_t{3})
        .Attr("pads", std::vector<int64_t>{1, 1, 1, 1});
    const Tensor y = n.Run();
    for (int c = 0; c < 3; ++c) {
      Tensor xc(DType::kF32, {1, 1, 7, 7}), wc(DType::kF32, {1, 1, 3, 3});
      std::copy(x.data<float>() + c * 49, x.data<float>() + (c + 1) * 49, xc.data<float>());
      std::copy(w.data<float>() + c * 9, w.data<float>() + (c + 1) * 9, wc.data<float>());
      OneNode one("Conv");
      one.Input(xc).Input(wc, true).Attr("pads", std::vector<int64_t>{1, 1, 1, 1});
      const Tensor yc = one.Run();
      for (int i = 0; i < 49; ++i)
        EXPECT_NEAR(y.data<float>()[c * 49 + i], yc.data<float>()[i], 1e-5);
    }
  }
}

TEST(ConvOp, FusedActivation) {
  std::mt19937 rng(4);
  const Tensor x = Random({1, 4, 6, 6}, rng), w = Random({5, 4, 3, 3}, rng);
  OneNode plain("Conv");
  plain.Input(x).Input(w, true);
  const Tensor y = plain.Run();
  OneNode fused("FusedConv", 17, "qforge");
  fused.Input(x)
      .Input(w, true)
      .Attr("activation", std::string("Clip"))
      .Attr("activation_params", std::vector<float>{0.0f, 0.5f});
  const Tensor yf = fused.Run();
  for (int64_t i = 0; i < y.numel(); ++i)
    EXPECT_FLOAT_EQ(yf.data<float>()[i], std::min(std::max(y.data<float>()[i], 0.0f), 0.5f));
  OneNode bad("FusedConv", 17, "qforge");
  bad.Input(x).Input(w, true).Attr("activation", std::string("Swish"));
  EXPECT_NE(ErrorOf([&] { bad.Run(); }).find("Swish"), std::string::npos);
}

TEST(ConvOp, ErrorsNameTheNode) {
  std::mt19937 rng(5);
  {
    OneNode n("Conv");
    n.Input(Random({1, 3, 5, 5}, rng)).Input(Random({2, 2, 3, 3}, rng), true);
    const std::string msg = ErrorOf([&] { n.Run(); });
    EXPECT_NE(msg.find("Conv 'n1'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("channels"), std::string::npos) << msg;
  }
  {
    OneNode n("Conv");
    n.Input(Random({1, 1, 2, 2}, rng)).Input(Random({1, 1, 3, 3}, rng), true);
    EXPECT_NE(ErrorOf([&] { n.Run(); }).find("smaller"), std::string::npos);
  }
  {
    OneNode n("Conv");
    n.Input(Random({1, 1, 5, 5}, rng)).Input(Random({1, 1, 3, 3}, rng), true);
    n.Attr("strides", std::vector<int64_t>{1});
    EXPECT_NE(ErrorOf([&] { n.Run(); }).find("strides"), std::string::npos);
  }
  {
    OneNode n("Conv");
    n.Input(Random({1, 1, 5, 5}, rng)).Input(Random({1, 1, 3, 3}, rng), true);
    n.Attr("kernel_shape", std::vector<int64_t>{2, 2});
    EXPECT_NE(ErrorOf([&] { n.Run(); }).find("kernel_shape"), std::string::npos);
  }
  {
    OneNode n("Conv");
    n.Input(Random({1, 1, 5, 5}, rng))
        .Input(Random({1, 1, 3, 3}, rng), true)
        .Input(Random({2}, rng), true);
    EXPECT_NE(ErrorOf([&] { n.Run(); }).find("bias"), std::string::npos);
  }
}

// ---------------------------------------------------------------------------------------------
// ConvTranspose

TEST(ConvTransposeOp, OnnxBasic) {
  OneNode n("ConvTranspose");
  n.Input(Iota({1, 1, 3, 3})).Input(Filled({1, 2, 3, 3}, 1.0f), true);
  const Tensor y = n.Run();
  EXPECT_EQ(y.shape(), (Shape{1, 2, 5, 5}));
  const std::vector<float> plane = {0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                    27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
  const std::vector<float> v = Values(y);
  EXPECT_EQ(std::vector<float>(v.begin(), v.begin() + 25), plane);
}

TEST(ConvTransposeOp, OutputShapeEqualsOutputPadding) {
  // ONNX: strides [3, 2] with output_shape [10, 8] equals output_padding [1, 1].
  const Tensor x = Iota({1, 1, 3, 3}), w = Filled({1, 2, 3, 3}, 1.0f);
  OneNode a("ConvTranspose");
  a.Input(x)
      .Input(w, true)
      .Attr("strides", std::vector<int64_t>{3, 2})
      .Attr("output_shape", std::vector<int64_t>{10, 8});
  OneNode b("ConvTranspose");
  b.Input(x)
      .Input(w, true)
      .Attr("strides", std::vector<int64_t>{3, 2})
      .Attr("output_padding", std::vector<int64_t>{1, 1});
  const Tensor ya = a.Run(), yb = b.Run();
  EXPECT_EQ(ya.shape(), (Shape{1, 2, 10, 8}));
  ExpectNear(ya, yb, 0.0);
  // Output rows 9 (the output_padding row) receive no taps: zero.
  for (int c = 0; c < 8; ++c) EXPECT_EQ(ya.data<float>()[9 * 8 + c], 0.0f);
}

TEST(ConvTransposeOp, PadsAutoPadGroupsMatchReference) {
  std::mt19937 rng(6);
  const Tensor x = Random({2, 4, 3, 4}, rng), w = Random({4, 3, 3, 2}, rng), b = Random({6}, rng);
  {
    OneNode n("ConvTranspose");
    n.Input(x).Input(w, true).Input(b, true);
    n.Attr("group", int64_t{2})
        .Attr("strides", std::vector<int64_t>{2, 3})
        .Attr("pads", std::vector<int64_t>{1, 0, 0, 1})
        .Attr("dilations", std::vector<int64_t>{1, 2});
    const Tensor y = n.Run();
    kernels::ConvGeometry g;
    g.batch = 2;
    g.in_channels = 4;
    g.out_channels = 6;
    g.group = 2;
    g.in_size = {3, 4};
    g.kernel = {3, 2};
    g.strides = {2, 3};
    g.dilations = {1, 2};
    g.pads_begin = {1, 0};
    g.pads_end = {0, 1};
    // out = s * (in - 1) + (k - 1) * d + 1 - pads
    g.out_size = {2 * 2 + 3 - 1, 3 * 3 + 3 - 1};
    Tensor want(DType::kF32, {2, 6, 6, 11});
    kernels::ref::ConvTranspose(g, x.data<float>(), w.data<float>(), b.data<float>(),
                                want.data<float>());
    ExpectNear(y, want);
  }
  {
    // SAME_UPPER: out = in * stride, total padding split with the larger half at the end.
    OneNode n("ConvTranspose");
    n.Input(x)
        .Input(w, true)
        .Attr("group", int64_t{2})
        .Attr("auto_pad", std::string("SAME_UPPER"))
        .Attr("strides", std::vector<int64_t>{2, 2});
    const Tensor y = n.Run();
    EXPECT_EQ(y.shape(), (Shape{2, 6, 6, 8}));
    // H: full = 2*2 + 3 = 7, total 1 -> pads (0, 1); W: full = 2*3 + 2 = 8, total 0.
    OneNode e("ConvTranspose");
    e.Input(x)
        .Input(w, true)
        .Attr("group", int64_t{2})
        .Attr("strides", std::vector<int64_t>{2, 2})
        .Attr("pads", std::vector<int64_t>{0, 0, 1, 0});
    ExpectNear(y, e.Run(), 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// Gemm

Tensor RefGemm(const Tensor& a, const Tensor& b, const Tensor* c, bool ta, bool tb, float alpha,
               float beta) {
  const int64_t m = ta ? a.dim(1) : a.dim(0), k = ta ? a.dim(0) : a.dim(1);
  const int64_t n = tb ? b.dim(0) : b.dim(1);
  Tensor y(DType::kF32, {m, n});
  int64_t c_rows = 1, c_cols = 1;
  if (c && c->rank() >= 1) c_cols = c->shape().back();
  if (c && c->rank() == 2) c_rows = c->dim(0);
  kernels::ref::Gemm(ta, tb, m, n, k, alpha, a.data<float>(), b.data<float>(), beta,
                     c ? c->data<float>() : nullptr, c_rows, c_cols, y.data<float>());
  return y;
}

TEST(GemmOp, AttributesAndCBroadcasting) {
  std::mt19937 rng(7);
  const Shape c_shapes[] = {{}, {1}, {5}, {1, 5}, {4, 1}, {4, 5}};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const Shape& cs : c_shapes)
        for (bool constant : {false, true}) {
          SCOPED_TRACE("tA=" + std::to_string(ta) + " tB=" + std::to_string(tb) +
                       " C=" + ShapeToString(cs) + " const=" + std::to_string(constant));
          const Tensor a = Random(ta ? Shape{3, 4} : Shape{4, 3}, rng);
          const Tensor b = Random(tb ? Shape{5, 3} : Shape{3, 5}, rng);
          const Tensor c = Random(cs, rng);
          OneNode n("Gemm", 13);
          n.Input(a).Input(b, constant).Input(c, constant);
          n.Attr("transA", int64_t{ta}).Attr("transB", int64_t{tb});
          n.Attr("alpha", 0.75f).Attr("beta", -1.5f);
          ExpectNear(n.Run(), RefGemm(a, b, &c, ta, tb, 0.75f, -1.5f), 1e-5);
        }
}

TEST(GemmOp, OptionalCByOpset) {
  std::mt19937 rng(8);
  const Tensor a = Random({2, 3}, rng), b = Random({3, 4}, rng);
  OneNode n11("Gemm", 11);
  n11.Input(a).Input(b, true);
  ExpectNear(n11.Run(), RefGemm(a, b, nullptr, false, false, 1.0f, 0.0f), 1e-5);
  OneNode n9("Gemm", 9);
  n9.Input(a).Input(b, true);
  EXPECT_NE(ErrorOf([&] { n9.Run(); }).find("3 inputs"), std::string::npos);
}

TEST(GemmOp, FusedReluAndErrors) {
  std::mt19937 rng(9);
  const Tensor a = Random({3, 6}, rng), b = Random({6, 7}, rng), c = Random({7}, rng);
  OneNode f("FusedGemm", 17, "qforge");
  f.Input(a).Input(b, true).Input(c, true).Attr("activation", std::string("Relu"));
  const Tensor y = f.Run();
  const Tensor want = RefGemm(a, b, &c, false, false, 1.0f, 1.0f);
  for (int64_t i = 0; i < y.numel(); ++i)
    EXPECT_NEAR(y.data<float>()[i], std::max(0.0f, want.data<float>()[i]), 1e-5);

  OneNode bad("Gemm");
  bad.Input(Random({3, 6}, rng)).Input(Random({5, 7}, rng), true);
  const std::string msg = ErrorOf([&] { bad.Run(); });
  EXPECT_NE(msg.find("Gemm 'n1'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("inner"), std::string::npos) << msg;
  OneNode badc("Gemm");
  badc.Input(Random({3, 6}, rng)).Input(Random({6, 7}, rng)).Input(Random({3, 2}, rng));
  EXPECT_NE(ErrorOf([&] { badc.Run(); }).find("broadcast"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// MatMul

// Naive numpy-style matmul for checking (operands already of rank >= 2, same rank).
Tensor NaiveBatchedMatMul(const Tensor& a, const Tensor& b, const Shape& batch) {
  const int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
  Shape ys = batch;
  ys.push_back(m);
  ys.push_back(n);
  Tensor y(DType::kF32, ys);
  const int64_t batches = NumElements(batch);
  const size_t r = batch.size();
  for (int64_t flat = 0; flat < batches; ++flat) {
    int64_t rest = flat, ao = 0, bo = 0, as = m * k, bs = k * n;
    for (size_t d = r; d-- > 0;) {
      const int64_t idx = rest % batch[d];
      rest /= batch[d];
      if (a.dim(d) != 1) ao += idx * as;
      if (b.dim(d) != 1) bo += idx * bs;
      as *= a.dim(d);
      bs *= b.dim(d);
    }
    kernels::ref::Gemm(false, false, m, n, k, 1.0f, a.data<float>() + ao, b.data<float>() + bo,
                       0.0f, nullptr, 1, 1, y.data<float>() + flat * m * n);
  }
  return y;
}

TEST(MatMulOp, BroadcastBatches) {
  std::mt19937 rng(10);
  struct Case {
    Shape a, b, batch;
  };
  for (const Case& c : {Case{{2, 1, 3, 4}, {1, 3, 4, 5}, {2, 3}}, Case{{3, 3, 4}, {3, 4, 2}, {3}},
                        Case{{2, 3, 4}, {1, 4, 6}, {2}}}) {
    for (bool constant : {false, true}) {
      const Tensor a = Random(c.a, rng), b = Random(c.b, rng);
      OneNode n("MatMul");
      n.Input(a).Input(b, constant);
      ExpectNear(n.Run(), NaiveBatchedMatMul(a, b, c.batch), 1e-5);
    }
  }
}

TEST(MatMulOp, SharedTwoDimBAndVectors) {
  std::mt19937 rng(11);
  const Tensor a = Random({2, 3, 4}, rng), b = Random({4, 5}, rng);
  for (bool constant : {false, true}) {
    OneNode n("MatMul");
    n.Input(a).Input(b, constant);
    const Tensor y = n.Run();
    EXPECT_EQ(y.shape(), (Shape{2, 3, 5}));
    ExpectNear(y, NaiveBatchedMatMul(a, b.Reshaped({1, 4, 5}), {2}), 1e-5);
  }
  // 1-D x 2-D -> [N]; 2-D x 1-D -> [M]; 1-D x 1-D -> scalar.
  const Tensor v = Random({4}, rng), m = Random({4, 3}, rng), mt = Random({3, 4}, rng);
  OneNode vm("MatMul");
  vm.Input(v).Input(m, true);
  const Tensor y1 = vm.Run();
  EXPECT_EQ(y1.shape(), (Shape{3}));
  OneNode mv("MatMul");
  mv.Input(mt).Input(v, true);
  const Tensor y2 = mv.Run();
  EXPECT_EQ(y2.shape(), (Shape{3}));
  OneNode vv("MatMul");
  vv.Input(v).Input(v);
  const Tensor y3 = vv.Run();
  EXPECT_EQ(y3.shape(), (Shape{}));
  double dot = 0.0;
  for (int i = 0; i < 4; ++i) dot += v.data<float>()[i] * v.data<float>()[i];
  EXPECT_NEAR(y3.data<float>()[0], dot, 1e-5);
  for (int j = 0; j < 3; ++j) {
    double s1 = 0.0, s2 = 0.0;
    for (int k = 0; k < 4; ++k) {
      s1 += v.data<float>()[k] * m.data<float>()[k * 3 + j];
      s2 += mt.data<float>()[j * 4 + k] * v.data<float>()[k];
    }
    EXPECT_NEAR(y1.data<float>()[j], s1, 1e-5);
    EXPECT_NEAR(y2.data<float>()[j], s2, 1e-5);
  }
}

TEST(MatMulOp, Errors) {
  std::mt19937 rng(12);
  OneNode n("MatMul");
  n.Input(Random({2, 3}, rng)).Input(Random({4, 5}, rng));
  EXPECT_NE(ErrorOf([&] { n.Run(); }).find("MatMul 'n1'"), std::string::npos);
  OneNode b("MatMul");
  b.Input(Random({2, 3, 4}, rng)).Input(Random({3, 4, 5}, rng));
  EXPECT_NE(ErrorOf([&] { b.Run(); }).find("broadcast"), std::string::npos);
  OneNode t("MatMul");
  Tensor ints(DType::kI32, {2, 2});
  t.Input(ints).Input(Random({2, 2}, rng));
  EXPECT_NE(ErrorOf([&] { t.Run(); }).find("float32"), std::string::npos);
}

}  // namespace
}  // namespace qforge::runtime
