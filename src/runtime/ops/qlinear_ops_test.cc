// Tests for the integer runtime ops (qlinear_ops.cc) through ir::Graph + Session: against
// straightforward formulas (exact int64 sums; the float QLinear* reference within one step and
// numerics::Requantize exactly), ONNX / ORT-documented examples, fused clamps and errors.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "qforge/kernels/qelementwise.h"
#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/requantize.h"
#include "qforge/runtime/session.h"

namespace qforge::runtime {
namespace {

// One node, inputs in0.. (graph inputs, or initializers when constant; Skip() = absent input).
struct OneNode {
  ir::Graph g;
  ir::Node node;
  std::map<std::string, Tensor> feeds;

  explicit OneNode(const std::string& op, const std::string& domain = "", int64_t opset = 17) {
    node.op_type = op;
    node.domain = domain;
    node.name = "n1";
    g.opset_imports[""] = opset;
    if (!domain.empty()) g.opset_imports[domain] = 1;
  }
  OneNode& In(const Tensor& t, bool constant = false) {
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
  std::vector<Tensor> Run(int outputs = 1, int threads = 2) {
    node.outputs.clear();
    g.outputs.clear();
    for (int i = 0; i < outputs; ++i) {
      node.outputs.push_back("out" + std::to_string(i));
      g.outputs.push_back(ir::ValueInfo{"out" + std::to_string(i)});
    }
    g.nodes = {node};
    Session s(g, SessionOptions{threads});
    std::map<std::string, Tensor> r = s.Run(feeds);
    std::vector<Tensor> out;
    for (int i = 0; i < outputs; ++i) out.push_back(r.at("out" + std::to_string(i)));
    return out;
  }
  Tensor Run1(int threads = 2) { return Run(1, threads)[0]; }
  std::string Error(int outputs = 1) {
    try {
      Run(outputs);
    } catch (const qforge::Error& e) {
      return e.what();
    }
    return "";
  }
};

Tensor Codes(DType t, Shape shape, std::mt19937& rng, int lo = -1000, int hi = 1000) {
  const int tmin = t == DType::kI8 ? -128 : 0, tmax = t == DType::kI8 ? 127 : 255;
  std::uniform_int_distribution<int> u(std::max(lo, tmin), std::min(hi, tmax));
  Tensor x(t, shape);
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (t == DType::kI8)
      x.data<int8_t>()[i] = static_cast<int8_t>(u(rng));
    else
      x.data<uint8_t>()[i] = static_cast<uint8_t>(u(rng));
  }
  return x;
}

Tensor Zp(DType t, int v) {
  return t == DType::kI8 ? Tensor::Scalar<int8_t>(static_cast<int8_t>(v))
                         : Tensor::Scalar<uint8_t>(static_cast<uint8_t>(v));
}
Tensor ZpVec(DType t, const std::vector<int>& v) {
  Tensor z(t, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DType::kI8)
      z.data<int8_t>()[i] = static_cast<int8_t>(v[i]);
    else
      z.data<uint8_t>()[i] = static_cast<uint8_t>(v[i]);
  }
  return z;
}

// The expected output code of an exact accumulator: numerics::Requantize with M = s_in*s_w/s_out
// (what every qforge kernel computes), and the ONNX float reference round_half_even(real / s_y).
struct Expect {
  int32_t exact;      // qforge's contract
  int32_t float_ref;  // ONNX reference (float), may differ by one step
};
Expect ExpectCode(int64_t acc, double alpha, float s_in, float s_w, float s_out, int32_t zy,
                  int32_t qmin, int32_t qmax) {
  Expect e;
  e.exact = numerics::Requantize(static_cast<int32_t>(acc),
                                 numerics::QuantizeMultiplier(alpha * s_in * s_w / s_out), zy, qmin,
                                 qmax);
  const float real = static_cast<float>(acc) * (s_in * s_w * static_cast<float>(alpha));
  const double r = numerics::RoundHalfEven(static_cast<double>(real / s_out)) + zy;
  e.float_ref = static_cast<int32_t>(std::min<double>(std::max<double>(r, qmin), qmax));
  return e;
}

void CheckCodes(const Tensor& y, const std::vector<Expect>& e, const std::string& what) {
  ASSERT_EQ(y.numel(), static_cast<int64_t>(e.size())) << what;
  int off_by_one = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    const int64_t v = y.GetAsInt64(i);
    ASSERT_EQ(v, e[i].exact) << what << " at " << i;
    ASSERT_LE(std::abs(v - e[i].float_ref), 1) << what << " at " << i;
    off_by_one += v != e[i].float_ref;
  }
  EXPECT_LE(off_by_one, y.numel() / 100 + 1) << what;
}

// ---------------------------------------------------------------------------------------------
// Convolution.

struct ConvCase {
  int64_t n = 1, c = 3, h = 6, w = 5, m = 4, group = 1, kh = 3, kw = 3;
  int64_t sh = 1, sw = 1, dh = 1, dw = 1, pt = 1, pl = 1, pb = 1, pr = 1;
};

// Exact int64 accumulators of a 2-D grouped convolution with zero-point padding.
std::vector<int64_t> ConvAcc(const ConvCase& c, const Tensor& x, int zx, const Tensor& w,
                             const std::vector<int>& zw, const std::vector<int32_t>* bias,
                             int64_t& oh_n, int64_t& ow_n) {
  oh_n = (c.h + c.pt + c.pb - c.dh * (c.kh - 1) - 1) / c.sh + 1;
  ow_n = (c.w + c.pl + c.pr - c.dw * (c.kw - 1) - 1) / c.sw + 1;
  const int64_t cg = c.c / c.group, mg = c.m / c.group;
  std::vector<int64_t> acc;
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t m = 0; m < c.m; ++m)
      for (int64_t oh = 0; oh < oh_n; ++oh)
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          int64_t s = bias ? (*bias)[m] : 0;
          const int64_t g = m / mg;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t i = 0; i < c.kh; ++i)
              for (int64_t j = 0; j < c.kw; ++j) {
                const int64_t ih = oh * c.sh - c.pt + i * c.dh, iw = ow * c.sw - c.pl + j * c.dw;
                if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
                const int64_t xv = x.GetAsInt64(((n * c.c + g * cg + ci) * c.h + ih) * c.w + iw);
                const int64_t wv = w.GetAsInt64(((m * cg + ci) * c.kh + i) * c.kw + j);
                s += (xv - zx) * (wv - zw[zw.size() == 1 ? 0 : m]);
              }
          acc.push_back(s);
        }
  return acc;
}

TEST(QLinearConvOp, MatchesReferenceFormulas) {
  std::mt19937 rng(11);
  const std::vector<ConvCase> cases = {
      {},
      {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
      {2, 4, 7, 9, 6, 2, 3, 3, 2, 2, 1, 1, 1, 0, 1, 2},
      {1, 8, 10, 10, 8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  // depthwise
      {1, 8, 9, 9, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},    // depthwise stride 2
      {1, 5, 6, 6, 7, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},    // pointwise
      {1, 3, 9, 8, 2, 1, 3, 2, 1, 2, 2, 1, 2, 1, 0, 1},    // dilation
  };
  int idx = 0;
  for (const ConvCase& c : cases) {
    for (DType xt : {DType::kU8, DType::kI8}) {
      for (DType wt : {DType::kI8, DType::kU8}) {
        for (bool per_channel : {false, true}) {
          for (bool constant : {true, false}) {
            const std::string what = "case " + std::to_string(idx) + " x " +
                                     std::string(DTypeName(xt)) + " w " +
                                     std::string(DTypeName(wt)) + (per_channel ? " pc" : " pt") +
                                     (constant ? " const" : "");
            const Tensor x = Codes(xt, {c.n, c.c, c.h, c.w}, rng);
            const Tensor w = Codes(wt, {c.m, c.c / c.group, c.kh, c.kw}, rng);
            const int zx = xt == DType::kI8 ? -3 : 130;
            std::vector<int> zw(per_channel ? c.m : 1);
            std::vector<float> sw(per_channel ? c.m : 1);
            for (size_t i = 0; i < zw.size(); ++i) {
              zw[i] = (wt == DType::kI8 ? 0 : 128) + static_cast<int>(i % 3) - 1;
              sw[i] = 0.01f + 0.003f * static_cast<float>(i);
            }
            std::vector<int32_t> bias(c.m);
            for (int64_t m = 0; m < c.m; ++m) bias[m] = static_cast<int32_t>(m * 97 - 200);
            const float sx = 0.05f, sy = 0.07f;
            const DType yt = xt;
            const int zy = yt == DType::kI8 ? 5 : 120;
            OneNode node("QLinearConv");
            node.In(x)
                .In(Tensor::Scalar(sx))
                .In(Zp(xt, zx))
                .In(w, constant)
                .In(per_channel ? Tensor::FromVector<float>({c.m}, sw) : Tensor::Scalar(sw[0]),
                    constant)
                .In(per_channel ? ZpVec(wt, zw) : Zp(wt, zw[0]), constant)
                .In(Tensor::Scalar(sy))
                .In(Zp(yt, zy))
                .In(Tensor::FromVector<int32_t>({c.m}, bias), constant)
                .Attr("group", c.group)
                .Attr("strides", std::vector<int64_t>{c.sh, c.sw})
                .Attr("dilations", std::vector<int64_t>{c.dh, c.dw})
                .Attr("pads", std::vector<int64_t>{c.pt, c.pl, c.pb, c.pr});
            const Tensor y = node.Run1();
            int64_t oh, ow;
            const std::vector<int64_t> acc = ConvAcc(c, x, zx, w, zw, &bias, oh, ow);
            EXPECT_EQ(y.dtype(), yt);
            EXPECT_EQ(y.shape(), (Shape{c.n, c.m, oh, ow})) << what;
            std::vector<Expect> e;
            const int64_t plane = oh * ow;
            for (size_t i = 0; i < acc.size(); ++i) {
              const int64_t m = (static_cast<int64_t>(i) / plane) % c.m;
              e.push_back(ExpectCode(acc[i], 1.0, sx, sw[per_channel ? m : 0], sy, zy,
                                     yt == DType::kI8 ? -128 : 0, yt == DType::kI8 ? 127 : 255));
            }
            CheckCodes(y, e, what);

            // ConvInteger on the same data: the exact int32 accumulators (no bias).
            OneNode ci("ConvInteger");
            ci.In(x).In(w, constant).In(Zp(xt, zx)).In(per_channel ? ZpVec(wt, zw) : Zp(wt, zw[0]));
            ci.Attr("group", c.group)
                .Attr("strides", std::vector<int64_t>{c.sh, c.sw})
                .Attr("dilations", std::vector<int64_t>{c.dh, c.dw})
                .Attr("pads", std::vector<int64_t>{c.pt, c.pl, c.pb, c.pr});
            const Tensor yi = ci.Run1();
            const std::vector<int64_t> acc0 = ConvAcc(c, x, zx, w, zw, nullptr, oh, ow);
            ASSERT_EQ(yi.dtype(), DType::kI32);
            ASSERT_EQ(yi.ToInt64Vector(), acc0) << what;
          }
        }
      }
    }
    ++idx;
  }
}

TEST(QLinearConvOp, ThreadCountDoesNotChangeResults) {
  // Model-sized layers (a 3x3 conv, a depthwise conv, a QLinearAdd) on 1, 2 and 3 threads.
  std::mt19937 rng(13);
  const Tensor x = Codes(DType::kU8, {1, 32, 28, 28}, rng);
  for (int64_t group : {1, 32}) {
    const int64_t m = group == 1 ? 64 : 32;
    const Tensor w = Codes(DType::kI8, {m, 32 / group, 3, 3}, rng);
    std::vector<Tensor> ys;
    for (int threads : {1, 2, 3}) {
      OneNode n("QLinearConv");
      n.In(x)
          .In(Tensor::Scalar(0.02f))
          .In(Zp(DType::kU8, 128))
          .In(w, true)
          .In(Tensor::Scalar(0.01f), true)
          .In(Zp(DType::kI8, 0), true)
          .In(Tensor::Scalar(0.3f))
          .In(Zp(DType::kU8, 128))
          .Attr("group", group)
          .Attr("pads", std::vector<int64_t>{1, 1, 1, 1});
      ys.push_back(n.Run1(threads));
    }
    EXPECT_EQ(ys[0].ToInt64Vector(), ys[1].ToInt64Vector()) << group;
    EXPECT_EQ(ys[0].ToInt64Vector(), ys[2].ToInt64Vector()) << group;
  }
  const Tensor big = Codes(DType::kI8, {1, 24, 56, 56}, rng);
  std::vector<Tensor> adds;
  for (int threads : {1, 2, 3}) {
    OneNode n("QLinearAdd", "com.microsoft");
    n.In(big).In(Tensor::Scalar(0.1f)).In(Zp(DType::kI8, 1)).In(big).In(Tensor::Scalar(0.07f));
    n.In(Zp(DType::kI8, -1)).In(Tensor::Scalar(0.2f)).In(Zp(DType::kI8, 0));
    adds.push_back(n.Run1(threads));
  }
  EXPECT_EQ(adds[0].ToInt64Vector(), adds[1].ToInt64Vector());
  EXPECT_EQ(adds[0].ToInt64Vector(), adds[2].ToInt64Vector());
}

TEST(QLinearConvOp, ConstantScalesAndChangingInputShapesInOneSession) {
  // Constant weights and scales (the lowered models' case: multipliers made once, the geometry
  // kept per input shape): one Session run on inputs of changing batch and size, then the first
  // shape again, every output checked exactly against the formula.
  std::mt19937 rng(29);
  struct Layer {
    int64_t c, m, group, k, stride, pad;
  };
  const std::vector<Layer> layers = {
      {16, 24, 1, 1, 1, 0},   // pointwise (the GEMM on the input as is)
      {8, 16, 1, 3, 1, 1},    // 3x3 (tap pointers)
      {16, 16, 16, 3, 2, 1},  // depthwise stride 2
      {3, 32, 1, 3, 2, 1},    // stem (row runs)
  };
  const std::vector<std::array<int64_t, 3>> inputs = {
      {1, 10, 9}, {2, 7, 12}, {1, 1, 1}, {1, 10, 9}};
  for (const Layer& l : layers) {
    const Tensor w = Codes(DType::kI8, {l.m, l.c / l.group, l.k, l.k}, rng, -127, 127);
    std::vector<float> sw(l.m);
    for (int64_t i = 0; i < l.m; ++i) sw[i] = 0.004f + 0.001f * static_cast<float>(i % 7);
    std::vector<int32_t> bias(l.m);
    for (int64_t i = 0; i < l.m; ++i) bias[i] = static_cast<int32_t>(i * 131 - 900);
    const float sx = 0.03f, sy = 0.05f;
    const int zx = 121, zy = 7;
    OneNode node("QLinearConv");
    node.In(Codes(DType::kU8, {1, l.c, 2, 2}, rng))
        .In(Tensor::Scalar(sx), true)
        .In(Zp(DType::kU8, zx), true)
        .In(w, true)
        .In(Tensor::FromVector<float>({l.m}, sw), true)
        .In(ZpVec(DType::kI8, std::vector<int>(l.m, 0)), true)
        .In(Tensor::Scalar(sy), true)
        .In(Zp(DType::kU8, zy), true)
        .In(Tensor::FromVector<int32_t>({l.m}, bias), true)
        .Attr("group", l.group)
        .Attr("strides", std::vector<int64_t>{l.stride, l.stride})
        .Attr("pads", std::vector<int64_t>{l.pad, l.pad, l.pad, l.pad});
    node.node.outputs = {"out0"};
    node.g.outputs = {ir::ValueInfo{"out0"}};
    node.g.nodes = {node.node};
    Session session(node.g, SessionOptions{1});
    for (const auto& in : inputs) {
      ConvCase c{in[0],    l.c,      in[1], in[2], l.m,   l.group, l.k,   l.k,
                 l.stride, l.stride, 1,     1,     l.pad, l.pad,   l.pad, l.pad};
      const Tensor x = Codes(DType::kU8, {c.n, c.c, c.h, c.w}, rng);
      const std::string what = "c " + std::to_string(l.c) + " m " + std::to_string(l.m) + " k " +
                               std::to_string(l.k) + " input " + ShapeToString(x.shape());
      const Tensor y = session.Run({{"in0", x}}).at("out0");
      int64_t oh, ow;
      const std::vector<int64_t> acc =
          ConvAcc(c, x, zx, w, std::vector<int>(l.m, 0), &bias, oh, ow);
      ASSERT_EQ(y.shape(), (Shape{c.n, c.m, oh, ow})) << what;
      std::vector<Expect> e;
      for (size_t i = 0; i < acc.size(); ++i) {
        const int64_t m = (static_cast<int64_t>(i) / (oh * ow)) % c.m;
        e.push_back(ExpectCode(acc[i], 1.0, sx, sw[m], sy, zy, 0, 255));
      }
      CheckCodes(y, e, what);
    }
  }
}

TEST(QLinearConvOp, AutoPadAndOneD) {
  std::mt19937 rng(3);
  // 1-D convolution [N, C, L] with SAME_UPPER: L = 7, k = 4, stride 2 -> 4 outputs, pads (1, 2).
  const Tensor x = Codes(DType::kU8, {1, 2, 7}, rng);
  const Tensor w = Codes(DType::kU8, {3, 2, 4}, rng);
  const Tensor y = OneNode("ConvInteger")
                       .In(x)
                       .In(w)
                       .In(Zp(DType::kU8, 7))
                       .In(Zp(DType::kU8, 9))
                       .Attr("auto_pad", std::string("SAME_UPPER"))
                       .Attr("strides", std::vector<int64_t>{2})
                       .Run1();
  ASSERT_EQ(y.shape(), (Shape{1, 3, 4}));
  ConvCase c;
  c.c = 2;
  c.h = 1;
  c.w = 7;
  c.m = 3;
  c.kh = 1;
  c.kw = 4;
  c.sw = 2;
  c.pt = c.pb = 0;
  c.pl = 1;
  c.pr = 2;
  int64_t oh, ow;
  EXPECT_EQ(y.ToInt64Vector(), ConvAcc(c, x, 7, w, {9}, nullptr, oh, ow));
}

TEST(QLinearConvOp, FusedClampAndErrors) {
  std::mt19937 rng(5);
  const Tensor x = Codes(DType::kU8, {1, 2, 4, 4}, rng);
  const Tensor w = Codes(DType::kI8, {3, 2, 3, 3}, rng);
  auto make = [&](const std::string& domain) {
    OneNode n("QLinearConv", domain);
    n.In(x)
        .In(Tensor::Scalar(0.02f))
        .In(Zp(DType::kU8, 128))
        .In(w, true)
        .In(Tensor::Scalar(0.01f), true)
        .In(Zp(DType::kI8, 0), true)
        .In(Tensor::Scalar(0.01f))
        .In(Zp(DType::kU8, 100));
    return n;
  };
  const Tensor plain = make("").Run1();
  const Tensor fused =
      make("qforge").Attr("out_min", int64_t{100}).Attr("out_max", int64_t{160}).Run1();
  bool clipped = false;
  for (int64_t i = 0; i < plain.numel(); ++i) {
    const int64_t p = plain.GetAsInt64(i);
    EXPECT_EQ(fused.GetAsInt64(i), std::min<int64_t>(160, std::max<int64_t>(100, p)));
    clipped = clipped || p < 100 || p > 160;
  }
  EXPECT_TRUE(clipped);  // the test data exercises the clamp
  // Only the lower bound: Relu.
  const Tensor relu = make("qforge").Attr("out_min", int64_t{100}).Run1();
  for (int64_t i = 0; i < plain.numel(); ++i)
    EXPECT_EQ(relu.GetAsInt64(i), std::max<int64_t>(100, plain.GetAsInt64(i)));

  std::string err = make("qforge").Attr("out_min", int64_t{5}).Attr("out_max", int64_t{4}).Error();
  EXPECT_NE(err.find("out_min"), std::string::npos) << err;
  err = make("qforge").Attr("out_min", int64_t{300}).Error();
  EXPECT_NE(err.find("outside"), std::string::npos) << err;
  // Bad scale, wrong zero-point dtype, wrong channel count.
  err = OneNode("QLinearConv")
            .In(x)
            .In(Tensor::Scalar(-1.0f))
            .In(Zp(DType::kU8, 0))
            .In(w)
            .In(Tensor::Scalar(1.0f))
            .In(Zp(DType::kI8, 0))
            .In(Tensor::Scalar(1.0f))
            .In(Zp(DType::kU8, 0))
            .Error();
  EXPECT_NE(err.find("QLinearConv 'n1'"), std::string::npos) << err;
  EXPECT_NE(err.find("x_scale"), std::string::npos) << err;
  err = OneNode("ConvInteger").In(x).In(w).In(Zp(DType::kI8, 0)).Error();
  EXPECT_NE(err.find("x_zero_point"), std::string::npos) << err;
  err = OneNode("ConvInteger").In(Codes(DType::kU8, {1, 3, 4, 4}, rng)).In(w).Error();
  EXPECT_NE(err.find("channels"), std::string::npos) << err;
  err = OneNode("ConvInteger").In(x).In(Tensor::FromVector<float>({1, 2, 1, 1}, {1, 2})).Error();
  EXPECT_NE(err.find("uint8 or int8"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------------------------
// MatMul / Gemm.

// Exact int64 A x B for A [batch.., M, K], B [batch.., K, N] with numpy broadcasting of the
// batch dims (given here already broadcast: ai/bi map output batch t to A's/B's batch).
std::vector<int64_t> MatMulAcc(const Tensor& a, int za, const Tensor& b, const std::vector<int>& zb,
                               int64_t batches, int64_t M, int64_t K, int64_t N,
                               const std::vector<int64_t>& ai, const std::vector<int64_t>& bi) {
  std::vector<int64_t> acc;
  for (int64_t t = 0; t < batches; ++t)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        int64_t s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += (a.GetAsInt64((ai[t] * M + i) * K + k) - za) *
               (b.GetAsInt64((bi[t] * K + k) * N + j) - zb[zb.size() == 1 ? 0 : j]);
        acc.push_back(s);
      }
  return acc;
}

TEST(QLinearMatMulOp, MatchesReferenceFormulasWithBroadcasting) {
  std::mt19937 rng(21);
  struct Case {
    Shape a, b;
    int64_t batches;
    std::vector<int64_t> ai, bi;
  };
  const std::vector<Case> cases = {
      {{1, 1}, {1, 1}, 1, {0}, {0}},
      {{5, 9}, {9, 7}, 1, {0}, {0}},
      {{2, 3, 17}, {17, 33}, 2, {0, 1}, {0, 0}},  // shared 2-D B
      {{2, 3, 4}, {2, 4, 5}, 2, {0, 1}, {0, 1}},  // batched B
      {{3, 4}, {2, 4, 6}, 2, {0, 0}, {0, 1}},     // A broadcast
      {{2, 1, 3, 8}, {1, 3, 8, 2}, 6, {0, 0, 0, 1, 1, 1}, {0, 1, 2, 0, 1, 2}},
  };
  int idx = 0;
  for (const Case& c : cases) {
    const int64_t M = c.a[c.a.size() - 2], K = c.a.back(), N = c.b.back();
    for (DType at : {DType::kU8, DType::kI8}) {
      for (DType bt : {DType::kI8, DType::kU8}) {
        for (bool per_col : {false, true}) {
          for (bool constant : {false, true}) {
            const std::string what =
                "case " + std::to_string(idx) + " " + std::string(DTypeName(at)) + " x " +
                std::string(DTypeName(bt)) + (per_col ? " pc" : "") + (constant ? " const" : "");
            const Tensor a = Codes(at, c.a, rng), b = Codes(bt, c.b, rng);
            const int za = at == DType::kI8 ? 4 : 127;
            std::vector<int> zb(per_col ? N : 1);
            std::vector<float> sb(per_col ? N : 1);
            for (size_t j = 0; j < zb.size(); ++j) {
              zb[j] = (bt == DType::kI8 ? 0 : 128) + static_cast<int>(j % 2);
              sb[j] = 0.02f + 0.001f * static_cast<float>(j);
            }
            const float sa = 0.03f, sy = 0.11f;
            const DType yt = bt;  // exercise an output type other than A's
            const int zy = yt == DType::kI8 ? -7 : 131;
            const Tensor y =
                OneNode("QLinearMatMul")
                    .In(a)
                    .In(Tensor::Scalar(sa))
                    .In(Zp(at, za))
                    .In(b, constant)
                    .In(per_col ? Tensor::FromVector<float>({N}, sb) : Tensor::Scalar(sb[0]),
                        constant)
                    .In(per_col ? ZpVec(bt, zb) : Zp(bt, zb[0]), constant)
                    .In(Tensor::Scalar(sy))
                    .In(Zp(yt, zy))
                    .Run1();
            const std::vector<int64_t> acc =
                MatMulAcc(a, za, b, zb, c.batches, M, K, N, c.ai, c.bi);
            std::vector<Expect> e;
            for (size_t i = 0; i < acc.size(); ++i)
              e.push_back(ExpectCode(acc[i], 1.0, sa, sb[per_col ? i % N : 0], sy, zy,
                                     yt == DType::kI8 ? -128 : 0, yt == DType::kI8 ? 127 : 255));
            ASSERT_EQ(y.dtype(), yt);
            CheckCodes(y, e, what);

            const Tensor yi = OneNode("MatMulInteger")
                                  .In(a)
                                  .In(b, constant)
                                  .In(Zp(at, za))
                                  .In(per_col ? ZpVec(bt, zb) : Zp(bt, zb[0]), constant)
                                  .Run1();
            ASSERT_EQ(yi.dtype(), DType::kI32);
            ASSERT_EQ(yi.ToInt64Vector(), acc) << what;
          }
        }
      }
    }
    ++idx;
  }
}

TEST(MatMulIntegerOp, VectorOperandsAndErrors) {
  // ONNX MatMulInteger example: zero points 12 and 0.
  const Tensor a = Tensor::FromVector<uint8_t>({4, 3}, {11, 7, 3, 10, 6, 2, 9, 5, 1, 8, 4, 0});
  const Tensor b = Tensor::FromVector<uint8_t>({3, 2}, {1, 4, 2, 5, 3, 6});
  const Tensor y =
      OneNode("MatMulInteger").In(a).In(b).In(Zp(DType::kU8, 12)).In(Zp(DType::kU8, 0)).Run1();
  EXPECT_EQ(y.ToInt64Vector(), (std::vector<int64_t>{-38, -83, -44, -98, -50, -113, -56, -128}));
  // 1-D operands drop their dimension (numpy matmul).
  const Tensor v = Tensor::FromVector<uint8_t>({3}, {1, 2, 3});
  const Tensor yv = OneNode("MatMulInteger").In(v).In(b).Run1();
  EXPECT_EQ(yv.shape(), (Shape{2}));
  EXPECT_EQ(yv.ToInt64Vector(), (std::vector<int64_t>{14, 32}));
  const Tensor yw = OneNode("MatMulInteger").In(a).In(v).Run1();
  EXPECT_EQ(yw.shape(), (Shape{4}));
  EXPECT_EQ(yw.ToInt64Vector(), (std::vector<int64_t>{34, 28, 22, 16}));
  std::string err = OneNode("MatMulInteger").In(a).In(a).Error();
  EXPECT_NE(err.find("MatMulInteger 'n1'"), std::string::npos) << err;
  EXPECT_NE(err.find("K"), std::string::npos) << err;
  err = OneNode("MatMulInteger").In(a).In(b).In(ZpVec(DType::kU8, {1, 2, 3, 4})).Error();
  EXPECT_NE(err.find("a_zero_point"), std::string::npos) << err;
}

TEST(MatMulIntegerOp, EmptyDimensions) {
  // K = 0: every accumulator is the empty sum 0. M = 0 / N = 0: empty outputs.
  const Tensor yk =
      OneNode("MatMulInteger").In(Tensor(DType::kU8, {2, 0})).In(Tensor(DType::kI8, {0, 3})).Run1();
  EXPECT_EQ(yk.shape(), (Shape{2, 3}));
  EXPECT_EQ(yk.ToInt64Vector(), std::vector<int64_t>(6, 0));
  EXPECT_EQ(OneNode("MatMulInteger")
                .In(Tensor(DType::kU8, {0, 4}))
                .In(Tensor(DType::kI8, {4, 3}))
                .Run1()
                .shape(),
            (Shape{0, 3}));
  EXPECT_EQ(OneNode("MatMulInteger")
                .In(Tensor(DType::kU8, {2, 4}))
                .In(Tensor(DType::kI8, {4, 0}))
                .Run1()
                .shape(),
            (Shape{2, 0}));
}

TEST(QGemmOp, OrtSemantics) {
  std::mt19937 rng(8);
  const int64_t M = 5, K = 13, N = 6;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (int bias_kind : {0, 1, 2, 3}) {  // none, [N], [M, N], [M, 1]
        for (bool quant_out : {true, false}) {
          const std::string what = std::string(ta ? "tA " : "") + (tb ? "tB " : "") + "bias " +
                                   std::to_string(bias_kind) + (quant_out ? " q" : " float");
          const Tensor a = Codes(DType::kU8, ta ? Shape{K, M} : Shape{M, K}, rng);
          const Tensor b = Codes(DType::kI8, tb ? Shape{N, K} : Shape{K, N}, rng);
          const float alpha = 0.5f, sa = 0.04f, sy = 0.02f;
          const std::vector<float> sb = {0.01f, 0.02f, 0.03f, 0.015f, 0.025f, 0.005f};
          Shape cs = bias_kind == 1 ? Shape{N} : bias_kind == 2 ? Shape{M, N} : Shape{M, 1};
          Tensor c(DType::kI32, cs);
          for (int64_t i = 0; i < c.numel(); ++i)
            c.data<int32_t>()[i] = static_cast<int32_t>(i * 37 - 100);
          OneNode node("QGemm", "com.microsoft");
          node.In(a).In(Tensor::Scalar(sa)).In(Zp(DType::kU8, 120)).In(b, true);
          node.In(Tensor::FromVector<float>({N}, sb), true)
              .In(ZpVec(DType::kI8, {0, 0, 0, 0, 0, 0}), true);
          if (bias_kind)
            node.In(c, true);
          else
            node.Skip();
          if (quant_out) node.In(Tensor::Scalar(sy)).In(Zp(DType::kU8, 128));
          node.Attr("alpha", alpha).Attr("transA", int64_t{ta}).Attr("transB", int64_t{tb});
          const Tensor y = node.Run1();
          ASSERT_EQ(y.shape(), (Shape{M, N})) << what;
          std::vector<Expect> e;
          std::vector<float> f;
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              int64_t s = 0;
              for (int64_t k = 0; k < K; ++k)
                s += (a.GetAsInt64(ta ? k * M + i : i * K + k) - 120) *
                     b.GetAsInt64(tb ? j * K + k : k * N + j);
              if (bias_kind == 1) s += c.data<int32_t>()[j];
              if (bias_kind == 2) s += c.data<int32_t>()[i * N + j];
              if (bias_kind == 3) s += c.data<int32_t>()[i];
              e.push_back(ExpectCode(s, alpha, sa, sb[j], sy, 128, 0, 255));
              f.push_back(static_cast<float>(s) * static_cast<float>(double(alpha) * sa * sb[j]));
            }
          if (quant_out) {
            ASSERT_EQ(y.dtype(), DType::kU8) << what;
            CheckCodes(y, e, what);
          } else {
            ASSERT_EQ(y.dtype(), DType::kF32) << what;
            for (int64_t i = 0; i < M * N; ++i) EXPECT_EQ(y.data<float>()[i], f[i]) << what;
          }
        }
      }
    }
  }
  // qforge::QGemm with a clamp, int8 everything.
  const Tensor a = Codes(DType::kI8, {3, 4}, rng), b = Codes(DType::kI8, {4, 5}, rng);
  auto run = [&](const std::string& domain, bool clamp) {
    OneNode n("QGemm", domain);
    n.In(a).In(Tensor::Scalar(0.1f)).In(Zp(DType::kI8, 1)).In(b).In(Tensor::Scalar(0.1f));
    n.In(Zp(DType::kI8, 0)).Skip().In(Tensor::Scalar(0.2f)).In(Zp(DType::kI8, -10));
    if (clamp) n.Attr("out_min", int64_t{-10}).Attr("out_max", int64_t{20});
    return n.Run1();
  };
  const Tensor plain = run("com.microsoft", false), fused = run("qforge", true);
  ASSERT_EQ(fused.dtype(), DType::kI8);
  for (int64_t i = 0; i < plain.numel(); ++i)
    EXPECT_EQ(fused.GetAsInt64(i),
              std::min<int64_t>(20, std::max<int64_t>(-10, plain.GetAsInt64(i))));
}

TEST(QLinearMatMulOp, FusedVariantAndOnnxExample) {
  // ONNX QLinearMatMul documentation example (uint8, 2-D).
  const Tensor a = Tensor::FromVector<uint8_t>({2, 4}, {208, 236, 0, 238, 3, 214, 255, 29});
  const Tensor b =
      Tensor::FromVector<uint8_t>({4, 3}, {152, 51, 244, 60, 26, 255, 0, 127, 246, 127, 254, 247});
  auto run = [&](const std::string& domain) {
    OneNode n("QLinearMatMul", domain);
    n.In(a).In(Tensor::Scalar(0.0066f)).In(Zp(DType::kU8, 113));
    n.In(b).In(Tensor::Scalar(0.00705f)).In(Zp(DType::kU8, 114));
    n.In(Tensor::Scalar(0.0107f)).In(Zp(DType::kU8, 118));
    if (!domain.empty()) n.Attr("out_max", int64_t{150});
    return n.Run1();
  };
  EXPECT_EQ(run("").ToInt64Vector(), (std::vector<int64_t>{168, 115, 255, 1, 66, 151}));
  EXPECT_EQ(run("qforge").ToInt64Vector(), (std::vector<int64_t>{150, 115, 150, 1, 66, 150}));
}

// ---------------------------------------------------------------------------------------------
// DynamicQuantizeLinear.

TEST(DynamicQuantizeLinearOp, OnnxExamples) {
  const std::vector<Tensor> r =
      OneNode("DynamicQuantizeLinear")
          .In(Tensor::FromVector<float>({6}, {0, 2, -3, -2.5f, 1.34f, 0.5f}))
          .Run(3);
  EXPECT_EQ(r[0].ToInt64Vector(), (std::vector<int64_t>{153, 255, 0, 26, 221, 179}));
  EXPECT_FLOAT_EQ(r[1].ToFloatVector()[0], 5.0f / 255.0f);
  EXPECT_EQ(r[2].ToInt64Vector(), (std::vector<int64_t>{153}));
  // All positive: the range is extended to 0, zero point 0.
  const std::vector<Tensor> p =
      OneNode("DynamicQuantizeLinear").In(Tensor::FromVector<float>({3}, {1, 2.55f, 0.5f})).Run(3);
  EXPECT_EQ(p[2].ToInt64Vector(), (std::vector<int64_t>{0}));
  EXPECT_EQ(p[0].ToInt64Vector(), (std::vector<int64_t>{100, 255, 50}));
  // All zero: scale 0, everything 0 (no division by zero).
  const std::vector<Tensor> z =
      OneNode("DynamicQuantizeLinear").In(Tensor::FromVector<float>({2}, {0, 0})).Run(3);
  EXPECT_EQ(z[1].ToFloatVector()[0], 0.0f);
  EXPECT_EQ(z[0].ToInt64Vector(), (std::vector<int64_t>{0, 0}));
  const std::string err =
      OneNode("DynamicQuantizeLinear").In(Tensor::FromVector<int32_t>({1}, {1})).Error(3);
  EXPECT_NE(err.find("float32"), std::string::npos) << err;
}

// ---------------------------------------------------------------------------------------------
// com.microsoft QLinearAdd / QLinearMul / QLinearConcat / pooling.

// Broadcast index of output element i into an operand of shape `s` (right-aligned).
int64_t BroadcastIndex(int64_t i, const Shape& out, const Shape& s) {
  int64_t idx = 0, stride = 1;
  for (size_t d = 0; d < out.size(); ++d) {
    const int64_t od = out[out.size() - 1 - d], coord = i % od;
    i /= od;
    if (d < s.size()) {
      const int64_t sd = s[s.size() - 1 - d];
      idx += (sd == 1 ? 0 : coord) * stride;
      stride *= sd;
    }
  }
  return idx;
}

TEST(QLinearAddMulOp, BroadcastingAgainstTheFormula) {
  std::mt19937 rng(31);
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3, 4, 5}, {2, 3, 4, 5}}, {{2, 3, 4, 5}, {1, 3, 1, 1}},  {{7}, {}}, {{1}, {3, 9}},
      {{4, 1, 6}, {5, 1}},          {{1, 64, 7, 7}, {1, 64, 7, 7}}};
  for (const auto& [as, bs] : shapes) {
    for (DType t : {DType::kU8, DType::kI8}) {
      for (bool add : {true, false}) {
        const Tensor a = Codes(t, as, rng), b = Codes(t, bs, rng);
        const int za = t == DType::kI8 ? -3 : 125, zb = t == DType::kI8 ? 10 : 131;
        const int zc = t == DType::kI8 ? 2 : 128;
        // Scales with no simple ratios: round ones (0.02, 0.05) make exact ties common, where
        // the float reference rounds half to even and Requantize half up.
        const float sa = 0.0213f, sb = 0.0347f, sc = add ? 0.0519f : 0.0231f;
        const Tensor y = OneNode(add ? "QLinearAdd" : "QLinearMul", "com.microsoft")
                             .In(a)
                             .In(Tensor::Scalar(sa))
                             .In(Zp(t, za))
                             .In(b)
                             .In(Tensor::Scalar(sb))
                             .In(Zp(t, zb))
                             .In(Tensor::Scalar(sc))
                             .In(Zp(t, zc))
                             .Run1();
        const Shape out = y.shape();
        ASSERT_EQ(y.dtype(), t);
        const int32_t lo = t == DType::kI8 ? -128 : 0, hi = t == DType::kI8 ? 127 : 255;
        const kernels::QAddParams pa = kernels::QAddParams::Make(sa, za, sb, zb, sc, zc, lo, hi);
        const kernels::QMulParams pm = kernels::QMulParams::Make(sa, za, sb, zb, sc, zc, lo, hi);
        int off = 0;
        for (int64_t i = 0; i < y.numel(); ++i) {
          const int64_t av = a.GetAsInt64(BroadcastIndex(i, out, as)) - za;
          const int64_t bv = b.GetAsInt64(BroadcastIndex(i, out, bs)) - zb;
          const double real = add ? (sa * av + sb * bv) / sc : (sa * av) * (sb * bv) / sc;
          const double fr = std::min<double>(hi, std::max<double>(lo, std::nearbyint(real) + zc));
          const int32_t exact =
              add ? numerics::Requantize(static_cast<int32_t>(av * pa.ka + bv * pa.kb), pa.m, zc,
                                         lo, hi)
                  : numerics::Requantize(static_cast<int32_t>(av * bv), pm.m, zc, lo, hi);
          ASSERT_EQ(y.GetAsInt64(i), exact) << i;
          ASSERT_LE(std::abs(y.GetAsInt64(i) - fr), 1) << i;
          off += y.GetAsInt64(i) != fr;
        }
        EXPECT_LE(off, y.numel() / 50 + 1);
      }
    }
  }
  std::string err = OneNode("QLinearAdd", "com.microsoft")
                        .In(Tensor::FromVector<uint8_t>({2}, {1, 2}))
                        .In(Tensor::Scalar(1.0f))
                        .In(Zp(DType::kU8, 0))
                        .In(Tensor::FromVector<int8_t>({2}, {1, 2}))
                        .In(Tensor::Scalar(1.0f))
                        .In(Zp(DType::kI8, 0))
                        .In(Tensor::Scalar(1.0f))
                        .In(Zp(DType::kU8, 0))
                        .Error();
  EXPECT_NE(err.find("same type"), std::string::npos) << err;
}

TEST(QLinearConcatOp, RequantizesEachInput) {
  const Tensor a = Tensor::FromVector<uint8_t>({1, 2}, {0, 200});
  const Tensor b = Tensor::FromVector<uint8_t>({1, 3}, {10, 128, 255});
  // Y: scale 0.5, zp 100. a: scale 0.25, zp 0 -> y = round(q / 2) + 100 (0 -> 100, 200 -> 200);
  // b: same parameters as Y -> copied.
  const Tensor y = OneNode("QLinearConcat", "com.microsoft")
                       .In(Tensor::Scalar(0.5f))
                       .In(Zp(DType::kU8, 100))
                       .In(a)
                       .In(Tensor::Scalar(0.25f))
                       .In(Zp(DType::kU8, 0))
                       .In(b)
                       .In(Tensor::Scalar(0.5f))
                       .In(Zp(DType::kU8, 100))
                       .Attr("axis", int64_t{1})
                       .Run1();
  EXPECT_EQ(y.shape(), (Shape{1, 5}));
  EXPECT_EQ(y.ToInt64Vector(), (std::vector<int64_t>{100, 200, 10, 128, 255}));
  // int8 with a scale ratio of 3 and a saturating value.
  const Tensor c = Tensor::FromVector<int8_t>({2, 1}, {-128, 50});
  const Tensor yc = OneNode("QLinearConcat", "com.microsoft")
                        .In(Tensor::Scalar(1.0f))
                        .In(Zp(DType::kI8, 0))
                        .In(c)
                        .In(Tensor::Scalar(3.0f))
                        .In(Zp(DType::kI8, 0))
                        .In(Tensor::FromVector<int8_t>({2, 1}, {1, 2}))
                        .In(Tensor::Scalar(1.0f))
                        .In(Zp(DType::kI8, 0))
                        .Attr("axis", int64_t{-1})
                        .Run1();
  EXPECT_EQ(yc.ToInt64Vector(), (std::vector<int64_t>{-128, 1, 127, 2}));
  const std::string err = OneNode("QLinearConcat", "com.microsoft")
                              .In(Tensor::Scalar(1.0f))
                              .In(Zp(DType::kI8, 0))
                              .In(c)
                              .In(Tensor::Scalar(3.0f))
                              .Error();
  EXPECT_NE(err.find("triples"), std::string::npos) << err;
}

TEST(QLinearPoolOps, AverageAndGlobalAverage) {
  // 1 x 1 x 3 x 3 uint8, zp 10, scales 1 -> 1: a 2x2 window, stride 1, no padding.
  const Tensor x = Tensor::FromVector<uint8_t>({1, 1, 3, 3}, {10, 12, 14, 16, 18, 20, 22, 24, 27});
  auto pool = [&](bool channels_last, const Tensor& in, int64_t include_pad,
                  std::vector<int64_t> pads) {
    return OneNode("QLinearAveragePool", "com.microsoft")
        .In(in)
        .In(Tensor::Scalar(1.0f))
        .In(Zp(DType::kU8, 10))
        .In(Tensor::Scalar(1.0f))
        .In(Zp(DType::kU8, 10))
        .Attr("kernel_shape", std::vector<int64_t>{2, 2})
        .Attr("pads", pads)
        .Attr("count_include_pad", include_pad)
        .Attr("channels_last", int64_t{channels_last})
        .Run1();
  };
  // Means of (x - 10): (0+2+6+8)/4 = 4, (2+4+8+10)/4 = 6, (6+8+12+14)/4 = 10, (8+10+14+17)/4 =
  // 12.25 -> 12.
  EXPECT_EQ(pool(false, x, 0, {0, 0, 0, 0}).ToInt64Vector(),
            (std::vector<int64_t>{14, 16, 20, 22}));
  // Padding 1 on top/left: the corner window holds one tap (0) -> 10; with count_include_pad the
  // divisor is 4. Window (0,1): taps 0, 2 -> mean 1 (/2) or 0.5 -> round half up 1 (/4).
  const Tensor p0 = pool(false, x, 0, {1, 1, 0, 0});
  const Tensor p1 = pool(false, x, 1, {1, 1, 0, 0});
  EXPECT_EQ(p0.shape(), (Shape{1, 1, 3, 3}));
  EXPECT_EQ(p0.GetAsInt64(1), 11);
  EXPECT_EQ(p1.GetAsInt64(1), 11);
  EXPECT_EQ(p0.GetAsInt64(3), 13);  // taps 0, 6 -> 3
  EXPECT_EQ(p1.GetAsInt64(3), 12);  // 6 / 4 = 1.5 -> 2
  // channels_last: NHWC with 2 channels gives the NCHW result per channel.
  Tensor nhwc(DType::kU8, {1, 3, 3, 2});
  for (int64_t i = 0; i < 9; ++i) {
    nhwc.data<uint8_t>()[2 * i] = x.data<uint8_t>()[i];
    nhwc.data<uint8_t>()[2 * i + 1] = static_cast<uint8_t>(x.data<uint8_t>()[i] + 1);
  }
  const Tensor pl = pool(true, nhwc, 0, {0, 0, 0, 0});
  EXPECT_EQ(pl.shape(), (Shape{1, 2, 2, 2}));
  EXPECT_EQ(pl.ToInt64Vector(), (std::vector<int64_t>{14, 15, 16, 17, 20, 21, 22, 23}));
  // Global: mean of (x - 10) = 73 / 9 = 8.11, at y scale 2 -> 4.06 -> 4.
  const Tensor g = OneNode("QLinearGlobalAveragePool", "com.microsoft")
                       .In(x)
                       .In(Tensor::Scalar(1.0f))
                       .In(Zp(DType::kU8, 10))
                       .In(Tensor::Scalar(2.0f))
                       .In(Zp(DType::kU8, 0))
                       .Run1();
  EXPECT_EQ(g.shape(), (Shape{1, 1, 1, 1}));
  EXPECT_EQ(g.ToInt64Vector(), (std::vector<int64_t>{4}));
  const std::string err = OneNode("QLinearAveragePool", "com.microsoft")
                              .In(x)
                              .In(Tensor::Scalar(1.0f))
                              .In(Zp(DType::kU8, 10))
                              .In(Tensor::Scalar(1.0f))
                              .Attr("kernel_shape", std::vector<int64_t>{5, 5})
                              .Error();
  EXPECT_NE(err.find("larger"), std::string::npos) << err;
  // Pads as large as the kernel: the corner window would hold no input tap.
  const std::string err2 = OneNode("QLinearAveragePool", "com.microsoft")
                               .In(x)
                               .In(Tensor::Scalar(1.0f))
                               .In(Zp(DType::kU8, 10))
                               .In(Tensor::Scalar(1.0f))
                               .Attr("kernel_shape", std::vector<int64_t>{2, 2})
                               .Attr("pads", std::vector<int64_t>{2, 2, 2, 2})
                               .Error();
  EXPECT_NE(err2.find("QLinearAveragePool 'n1'"), std::string::npos) << err2;
  EXPECT_NE(err2.find("outside"), std::string::npos) << err2;
}

// ---------------------------------------------------------------------------------------------
// The data-movement and pooling ops the integer path runs on 8-bit tensors between QLinear ops.

TEST(Int8Tensors, DataMovementAndPoolingOpsAreDtypeGeneric) {
  for (DType t : {DType::kU8, DType::kI8}) {
    const std::string tn(DTypeName(t));
    Tensor x(t, {1, 2, 2, 3});
    for (int64_t i = 0; i < x.numel(); ++i) {
      if (t == DType::kI8)
        x.data<int8_t>()[i] = static_cast<int8_t>(i * 21 - 120);
      else
        x.data<uint8_t>()[i] = static_cast<uint8_t>(i * 21);
    }
    const std::vector<int64_t> xv = x.ToInt64Vector();
    auto i64 = [](std::vector<int64_t> v) {
      return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
    };
    auto same_values = [&](const Tensor& y, const std::string& op) {
      EXPECT_EQ(y.dtype(), t) << op << " " << tn;
      EXPECT_EQ(y.ToInt64Vector(), xv) << op << " " << tn;
    };
    same_values(OneNode("Reshape").In(x).In(i64({2, 6}), true).Run1(), "Reshape");
    same_values(OneNode("Flatten").In(x).Attr("axis", int64_t{1}).Run1(), "Flatten");
    same_values(OneNode("Squeeze").In(x).In(i64({0}), true).Run1(), "Squeeze");
    same_values(OneNode("Unsqueeze").In(x).In(i64({0}), true).Run1(), "Unsqueeze");
    const Tensor tr =
        OneNode("Transpose").In(x).Attr("perm", std::vector<int64_t>{0, 2, 3, 1}).Run1();
    EXPECT_EQ(tr.dtype(), t);
    EXPECT_EQ(tr.GetAsInt64(1), xv[6]) << tn;  // (0, 0, 0, 1) <- (0, 1, 0, 0)
    const Tensor cc = OneNode("Concat").In(x).In(x).Attr("axis", int64_t{1}).Run1();
    EXPECT_EQ(cc.shape(), (Shape{1, 4, 2, 3}));
    EXPECT_EQ(cc.GetAsInt64(12), xv[0]) << tn;
    const Tensor sl =
        OneNode("Slice").In(x).In(i64({1}), true).In(i64({2}), true).In(i64({1}), true).Run1();
    EXPECT_EQ(sl.ToInt64Vector(), std::vector<int64_t>(xv.begin() + 6, xv.end())) << tn;
    const Tensor ga = OneNode("Gather").In(x).In(i64({1}), true).Attr("axis", int64_t{1}).Run1();
    EXPECT_EQ(ga.ToInt64Vector(), std::vector<int64_t>(xv.begin() + 6, xv.end())) << tn;
    const Tensor mp = OneNode("MaxPool")
                          .In(x)
                          .Attr("kernel_shape", std::vector<int64_t>{2, 2})
                          .Attr("strides", std::vector<int64_t>{1, 1})
                          .Run1();
    EXPECT_EQ(mp.dtype(), t);
    EXPECT_EQ(mp.ToInt64Vector(), (std::vector<int64_t>{xv[4], xv[5], xv[10], xv[11]})) << tn;
    const Tensor rs = OneNode("Resize")
                          .In(x)
                          .Skip()
                          .In(Tensor::FromVector<float>({4}, {1, 1, 2, 2}), true)
                          .Attr("mode", std::string("nearest"))
                          .Run1();
    EXPECT_EQ(rs.dtype(), t);
    EXPECT_EQ(rs.shape(), (Shape{1, 2, 4, 6}));
    EXPECT_EQ(rs.GetAsInt64(7), xv[0]) << tn;  // row 1, col 1 <- (0, 0)
    if (t == DType::kI8) {
      const Tensor cl = OneNode("Clip")
                            .In(x)
                            .In(Tensor::Scalar<int8_t>(-10), true)
                            .In(Tensor::Scalar<int8_t>(50), true)
                            .Run1();
      for (int64_t i = 0; i < cl.numel(); ++i)
        EXPECT_EQ(cl.GetAsInt64(i), std::clamp<int64_t>(xv[i], -10, 50));
    }
  }
}

}  // namespace
}  // namespace qforge::runtime
