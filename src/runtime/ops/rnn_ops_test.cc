// Tests of rnn_ops.cc: LSTM / GRU fast path against the plain-loop reference over every option,
// a hand-computed step, the quantized ops bit-exact with their kernels::ref reference, quantized
// vs fp32 closeness, and clean errors.
#include "runtime/ops/rnn_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "qforge/runtime/session.h"

namespace qforge::runtime {
namespace {

Tensor Random(const Shape& shape, uint32_t seed, float scale = 1.0f) {
  Tensor t(DType::kF32, shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return t;
}

struct Case {
  std::string op = "LSTM";
  std::string domain;
  int64_t T = 5, B = 3, I = 4, H = 6;
  std::string direction = "forward";
  bool bias = true, lens = false, h0 = false, c0 = false, peep = false;
  bool constant = true;  // weights as initializers (prepacked) or fed at run time
  int64_t layout = 0;
  bool lbr = false, input_forget = false;
  float clip = 0.0f;
  std::vector<std::string> acts;
  std::vector<float> alpha, beta;
  int outputs = 3;
};

struct Built {
  ir::Node node;
  std::vector<Tensor> inputs;  // one per node input (undefined: omitted)
  std::vector<bool> constant;
};

int Dirs(const Case& c) { return c.direction == "bidirectional" ? 2 : 1; }
int Gates(const Case& c) { return c.op.find("LSTM") != std::string::npos ? 4 : 3; }

// Quantizes w [D, N, K] (ONNX fp32 layout) to int8 [D, K, N] with one symmetric scale per
// (direction, column); returns the codes, fills scales [D, N] and the dequantized w (ONNX layout).
Tensor QuantizeRows(const Tensor& w, Tensor* scales, Tensor* dequantized) {
  const int64_t D = w.dim(0), N = w.dim(1), K = w.dim(2);
  Tensor q(DType::kI8, {D, K, N});
  *scales = Tensor(DType::kF32, {D, N});
  *dequantized = Tensor(DType::kF32, w.shape());
  for (int64_t d = 0; d < D; ++d)
    for (int64_t n = 0; n < N; ++n) {
      float amax = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        amax = std::max(amax, std::fabs(w.data<float>()[(d * N + n) * K + k]));
      const float s = amax > 0 ? amax / 127.0f : 1.0f;
      scales->data<float>()[d * N + n] = s;
      for (int64_t k = 0; k < K; ++k) {
        const float v = std::nearbyint(w.data<float>()[(d * N + n) * K + k] / s);
        q.data<int8_t>()[(d * K + k) * N + n] = static_cast<int8_t>(v);
        dequantized->data<float>()[(d * N + n) * K + k] = v * s;
      }
    }
  return q;
}

Built Build(const Case& c, uint32_t seed, bool quantized = false, bool per_row = false,
            Tensor* deq_w = nullptr, Tensor* deq_r = nullptr) {
  Built b;
  const int64_t D = Dirs(c), G = Gates(c), H = c.H;
  const bool lstm = G == 4;
  b.node.name = "rnn";
  b.node.op_type = quantized ? (lstm ? "DynamicQuantizeLSTM" : "DynamicQuantizeGRU") : c.op;
  b.node.domain = quantized ? (lstm && !per_row && c.layout == 0 ? "com.microsoft" : "qforge") : "";
  if (!c.domain.empty()) b.node.domain = c.domain;
  auto add = [&](Tensor t, bool constant) {
    b.node.inputs.push_back(t.defined() ? "in" + std::to_string(b.inputs.size()) : "");
    b.inputs.push_back(t);
    b.constant.push_back(constant);
  };
  const Shape xs = c.layout == 1 ? Shape{c.B, c.T, c.I} : Shape{c.T, c.B, c.I};
  add(Random(xs, seed), false);
  Tensor W = Random({D, G * H, c.I}, seed + 1, 0.6f), R = Random({D, G * H, H}, seed + 2, 0.6f);
  Tensor ws, rs, wq, rq, dw, dr;
  if (quantized) {
    wq = QuantizeRows(W, &ws, &dw);
    rq = QuantizeRows(R, &rs, &dr);
    if (deq_w) *deq_w = dw;
    if (deq_r) *deq_r = dr;
    add(wq, c.constant);
    add(rq, c.constant);
  } else {
    add(W, c.constant);
    add(R, c.constant);
  }
  add(c.bias ? Random({D, 2 * G * H}, seed + 3, 0.3f) : Tensor(), c.constant);
  Tensor lens;
  if (c.lens) {
    lens = Tensor(DType::kI32, {c.B});
    for (int64_t i = 0; i < c.B; ++i)
      lens.data<int32_t>()[i] = static_cast<int32_t>((c.T - i % (c.T + 1) + c.T) % (c.T + 1));
  }
  add(lens, false);
  const Shape st = c.layout == 1 ? Shape{c.B, D, H} : Shape{D, c.B, H};
  add(c.h0 ? Random(st, seed + 4, 0.5f) : Tensor(), false);
  if (lstm) {
    add(c.c0 ? Random(st, seed + 5, 0.5f) : Tensor(), false);
    add(c.peep ? Random({D, 3 * H}, seed + 6, 0.4f) : Tensor(), c.constant);
  }
  if (quantized) {
    add(ws, c.constant);
    add(Tensor(DType::kI8, ws.shape()), c.constant);
    add(rs, c.constant);
    add(Tensor(DType::kI8, rs.shape()), c.constant);
  } else {
    while (!b.node.inputs.empty() && b.node.inputs.back().empty()) {
      b.node.inputs.pop_back();
      b.inputs.pop_back();
      b.constant.pop_back();
    }
  }
  b.node.attrs["hidden_size"] = H;
  if (c.direction != "forward") b.node.attrs["direction"] = c.direction;
  if (c.layout) b.node.attrs["layout"] = c.layout;
  if (c.lbr && !lstm) b.node.attrs["linear_before_reset"] = int64_t{1};
  if (c.input_forget) b.node.attrs["input_forget"] = int64_t{1};
  if (c.clip > 0) b.node.attrs["clip"] = c.clip;
  if (per_row) b.node.attrs["per_row"] = int64_t{1};
  if (!c.acts.empty()) b.node.attrs["activations"] = c.acts;
  if (!c.alpha.empty()) b.node.attrs["activation_alpha"] = c.alpha;
  if (!c.beta.empty()) b.node.attrs["activation_beta"] = c.beta;
  const int outs = std::min(c.outputs, lstm ? 3 : 2);
  for (int i = 0; i < outs; ++i) b.node.outputs.push_back("y" + std::to_string(i));
  return b;
}

std::vector<Tensor> RunSession(const Built& b) {
  ir::Graph g;
  g.opset_imports[""] = 14;
  g.opset_imports["com.microsoft"] = 1;
  g.opset_imports["qforge"] = 1;
  std::map<std::string, Tensor> feeds;
  for (size_t i = 0; i < b.inputs.size(); ++i) {
    if (!b.inputs[i].defined()) continue;
    const std::string& name = b.node.inputs[i];
    if (b.constant[i]) {
      g.initializers[name] = b.inputs[i];
    } else {
      g.inputs.push_back(ir::ValueInfo{name, b.inputs[i].dtype()});
      feeds[name] = b.inputs[i];
    }
  }
  for (const std::string& o : b.node.outputs)
    if (!o.empty()) g.outputs.push_back(ir::ValueInfo{o});
  g.nodes = {b.node};
  Session s(std::move(g));
  std::map<std::string, Tensor> out = s.Run(feeds);
  std::vector<Tensor> r;
  for (const std::string& o : b.node.outputs) r.push_back(o.empty() ? Tensor() : out.at(o));
  return r;
}

void ExpectClose(const Tensor& a, const Tensor& e, float atol, float rtol,
                 const std::string& what) {
  ASSERT_EQ(a.shape(), e.shape()) << what;
  int bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float x = a.data<float>()[i], y = e.data<float>()[i];
    if (!(std::fabs(x - y) <= atol + rtol * std::fabs(y)) && ++bad <= 3)
      ADD_FAILURE() << what << " element " << i << ": " << x << " vs " << y;
  }
}

void ExpectEqual(const Tensor& a, const Tensor& e, const std::string& what) {
  ASSERT_EQ(a.shape(), e.shape()) << what;
  int bad = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.data<float>()[i] != e.data<float>()[i] && ++bad <= 3)
      ADD_FAILURE() << what << " element " << i << ": " << a.data<float>()[i] << " vs "
                    << e.data<float>()[i];
}

std::vector<Case> Fp32Cases() {
  std::vector<Case> cases;
  for (const char* op : {"LSTM", "GRU"}) {
    Case base;
    base.op = op;
    cases.push_back(base);
    Case c = base;
    c.direction = "reverse";
    c.lens = true;
    c.h0 = c.c0 = true;
    cases.push_back(c);
    c = base;
    c.direction = "bidirectional";
    c.lens = true;
    c.constant = false;
    c.peep = true;
    c.lbr = true;
    cases.push_back(c);
    c = base;
    c.layout = 1;
    c.h0 = true;
    c.bias = false;
    c.clip = 0.7f;
    c.direction = "bidirectional";
    cases.push_back(c);
    c = base;
    c.input_forget = base.op == "LSTM";
    c.B = 1;
    c.T = 9;
    c.H = 17;
    c.I = 33;
    c.outputs = 1;
    if (base.op == "LSTM") {
      c.acts = {"HardSigmoid", "LeakyRelu", "ScaledTanh"};
      c.alpha = {0.3f, 0.05f, 1.5f};
      c.beta = {0.4f, 0.8f};
    } else {
      c.acts = {"Sigmoid", "Softsign"};
    }
    cases.push_back(c);
  }
  return cases;
}

TEST(RnnOps, Fp32FastMatchesReference) {
  uint32_t seed = 10;
  for (const Case& c : Fp32Cases()) {
    SCOPED_TRACE(c.op + " " + c.direction + " layout " + std::to_string(c.layout));
    const Built b = Build(c, seed += 10);
    const std::vector<Tensor> fast = RunSession(b);
    const std::vector<Tensor> ref = RunRnnReference(b.node, b.inputs);
    ASSERT_EQ(fast.size(), ref.size());
    for (size_t i = 0; i < fast.size(); ++i)
      ExpectClose(fast[i], ref[i], 2e-5f, 1e-4f, "output " + std::to_string(i));
  }
}

TEST(RnnOps, SequenceLengthsZeroPadAndHoldState) {
  Case c;
  c.lens = true;
  c.h0 = c.c0 = true;
  c.B = 4;
  for (const char* dir : {"forward", "reverse"}) {
    c.direction = dir;
    const Built b = Build(c, 3);
    const std::vector<Tensor> y = RunSession(b);
    const Tensor& lens = b.inputs[4];
    for (int64_t bb = 0; bb < c.B; ++bb) {
      const int32_t L = lens.data<int32_t>()[bb];
      for (int64_t t = 0; t < c.T; ++t)
        for (int64_t j = 0; j < c.H; ++j) {
          const float v = y[0].data<float>()[(t * c.B + bb) * c.H + j];
          if (t >= L) EXPECT_EQ(v, 0.0f) << "t " << t << " b " << bb;
          // The last step's output is Y_h (forward: t = L - 1; reverse: t = 0).
          const int64_t last = std::string(dir) == "forward" ? L - 1 : 0;
          if (L > 0 && t == last) EXPECT_EQ(v, y[1].data<float>()[bb * c.H + j]);
        }
      if (L == 0)  // no step: the initial state
        for (int64_t j = 0; j < c.H; ++j)
          EXPECT_EQ(y[1].data<float>()[bb * c.H + j], b.inputs[5].data<float>()[bb * c.H + j]);
    }
  }
}

// One LSTM and one GRU step with hidden 1, input 1, computed by hand.
TEST(RnnOps, HandComputedStep) {
  const auto sig = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  {
    ir::Node n;
    n.op_type = "LSTM";
    n.name = "l";
    n.inputs = {"x", "w", "r", "b", "", "h", "c"};
    n.outputs = {"y", "yh", "yc"};
    const Tensor x = Tensor::FromVector<float>({1, 1, 1}, {0.5f});
    const Tensor w = Tensor::FromVector<float>({1, 4, 1}, {0.1f, 0.2f, 0.3f, 0.4f});  // i o f c
    const Tensor r = Tensor::FromVector<float>({1, 4, 1}, {-0.5f, 0.6f, 0.7f, -0.8f});
    const Tensor bias =
        Tensor::FromVector<float>({1, 8}, {0.01f, 0.02f, 0.03f, 0.04f, 0.0f, 0.0f, 0.0f, 0.1f});
    const Tensor h = Tensor::FromVector<float>({1, 1, 1}, {0.3f});
    const Tensor c = Tensor::FromVector<float>({1, 1, 1}, {-0.2f});
    Built b{n, {x, w, r, bias, Tensor(), h, c}, {false, true, true, true, false, false, false}};
    const std::vector<Tensor> y = RunSession(b);
    const double i = sig(0.05 + 0.01 - 0.15), o = sig(0.1 + 0.02 + 0.18);
    const double f = sig(0.15 + 0.03 + 0.21), g = std::tanh(0.2 + 0.04 + 0.1 - 0.24);
    const double C = f * -0.2 + i * g, H = o * std::tanh(C);
    EXPECT_NEAR(y[2].data<float>()[0], C, 1e-6);
    EXPECT_NEAR(y[1].data<float>()[0], H, 1e-6);
    EXPECT_NEAR(y[0].data<float>()[0], H, 1e-6);
  }
  for (int lbr = 0; lbr < 2; ++lbr) {
    ir::Node n;
    n.op_type = "GRU";
    n.name = "g";
    n.inputs = {"x", "w", "r", "b", "", "h"};
    n.outputs = {"", "yh"};
    n.attrs["linear_before_reset"] = int64_t{lbr};
    const Tensor x = Tensor::FromVector<float>({1, 1, 1}, {0.5f});
    const Tensor w = Tensor::FromVector<float>({1, 3, 1}, {0.1f, 0.2f, 0.3f});  // z r h
    const Tensor r = Tensor::FromVector<float>({1, 3, 1}, {-0.5f, 0.6f, 0.7f});
    const Tensor bias =
        Tensor::FromVector<float>({1, 6}, {0.01f, 0.02f, 0.03f, 0.04f, 0.05f, 0.06f});
    const Tensor h = Tensor::FromVector<float>({1, 1, 1}, {0.3f});
    Built b{n, {x, w, r, bias, Tensor(), h}, {false, true, true, true, false, false}};
    const std::vector<Tensor> y = RunSession(b);
    EXPECT_FALSE(y[0].defined());
    const double z = sig(0.05 - 0.15 + 0.01 + 0.04), rr = sig(0.1 + 0.18 + 0.02 + 0.05);
    const double pre = lbr ? 0.15 + 0.03 + rr * (0.21 + 0.06) : 0.15 + 0.03 + rr * 0.3 * 0.7 + 0.06;
    const double H = (1 - z) * std::tanh(pre) + z * 0.3;
    EXPECT_NEAR(y[1].data<float>()[0], H, 1e-6) << "linear_before_reset " << lbr;
  }
}

TEST(RnnOps, QuantizedBitExactWithReference) {
  uint32_t seed = 100;
  for (const char* op : {"LSTM", "GRU"})
    for (int per_row = 0; per_row < 2; ++per_row)
      for (int variant = 0; variant < 3; ++variant) {
        Case c;
        c.op = op;
        c.H = 20;
        c.I = 12;
        if (variant == 1) {
          c.direction = "bidirectional";
          c.lens = c.h0 = c.c0 = true;
          c.peep = true;
          c.constant = false;
          c.lbr = true;
        }
        if (variant == 2) {
          c.direction = "reverse";
          c.B = 1;
          c.bias = false;
          c.layout = per_row ? 1 : 0;
        }
        SCOPED_TRACE(std::string(op) + " per_row " + std::to_string(per_row) + " variant " +
                     std::to_string(variant));
        const Built b = Build(c, seed += 10, true, per_row);
        const std::vector<Tensor> fast = RunSession(b);
        const std::vector<Tensor> ref = RunRnnReference(b.node, b.inputs);
        for (size_t i = 0; i < fast.size(); ++i)
          ExpectEqual(fast[i], ref[i], "output " + std::to_string(i));
      }
}

// uint8 weights with zero point 128 are the same int8 codes + 128: identical results.
TEST(RnnOps, QuantizedUint8WeightsEqualInt8) {
  Case c;
  const Built b = Build(c, 7, true);
  Built u = b;
  for (size_t i : {size_t{1}, size_t{2}}) {
    Tensor t(DType::kU8, b.inputs[i].shape());
    for (int64_t k = 0; k < t.numel(); ++k)
      t.data<uint8_t>()[k] = static_cast<uint8_t>(b.inputs[i].data<int8_t>()[k] + 128);
    u.inputs[i] = t;
  }
  for (size_t i : {size_t{9}, size_t{11}}) {
    Tensor z(DType::kU8, b.inputs[i].shape());
    for (int64_t k = 0; k < z.numel(); ++k) z.data<uint8_t>()[k] = 128;
    u.inputs[i] = z;
  }
  const std::vector<Tensor> a = RunSession(b), e = RunSession(u);
  for (size_t i = 0; i < a.size(); ++i) ExpectEqual(a[i], e[i], "output " + std::to_string(i));
}

// Dynamic int8 vs fp32 on the dequantized weights: only the activations' rounding differs.
TEST(RnnOps, QuantizedCloseToFp32) {
  for (const char* op : {"LSTM", "GRU"}) {
    Case c;
    c.op = op;
    c.H = 32;
    c.I = 16;
    c.T = 8;
    c.h0 = true;
    Tensor dw, dr;
    const Built q = Build(c, 55, true, false, &dw, &dr);
    Built f = Build(c, 55);
    f.inputs[1] = dw;
    f.inputs[2] = dr;
    const std::vector<Tensor> yq = RunSession(q), yf = RunSession(f);
    ExpectClose(yq[0], yf[0], 0.03f, 0.0f, std::string(op) + " Y");
  }
}

std::string ErrorOf(const Built& b) {
  try {
    RunSession(b);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RnnOps, CleanErrors) {
  Case c;
  Built b = Build(c, 1);
  b.node.attrs["activations"] = std::vector<std::string>{"Sigmoid", "Gelu", "Tanh"};
  EXPECT_NE(ErrorOf(b).find("activation 'Gelu' is not supported"), std::string::npos) << ErrorOf(b);
  b = Build(c, 1);
  b.node.attrs["direction"] = std::string("sideways");
  EXPECT_NE(ErrorOf(b).find("direction"), std::string::npos);
  b = Build(c, 1);
  b.node.attrs["hidden_size"] = int64_t{7};
  EXPECT_NE(ErrorOf(b).find("hidden_size 7"), std::string::npos) << ErrorOf(b);
  b = Build(c, 1);
  b.inputs[0] = Random({c.T, c.B, c.I + 1}, 2);
  EXPECT_NE(ErrorOf(b).find("input size"), std::string::npos) << ErrorOf(b);
  Case l = c;
  l.lens = true;
  b = Build(l, 1);
  b.inputs[4].data<int32_t>()[0] = static_cast<int32_t>(c.T + 1);
  EXPECT_NE(ErrorOf(b).find("sequence_lens[0]"), std::string::npos) << ErrorOf(b);
  b = Build(c, 1, true);
  b.inputs[8] = Tensor(DType::kF32, {1, 5});
  EXPECT_NE(ErrorOf(b).find("W_scale"), std::string::npos) << ErrorOf(b);
  b = Build(c, 1, true);
  b.inputs[0].data<float>()[3] = INFINITY;
  EXPECT_NE(ErrorOf(b).find("infinity"), std::string::npos) << ErrorOf(b);
}

}  // namespace
}  // namespace qforge::runtime
