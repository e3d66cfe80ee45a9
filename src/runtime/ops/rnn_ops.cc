// Recurrent ops: ONNX LSTM and GRU (fp32, opset 7-21 semantics) and their dynamically quantized
// forms, com.microsoft DynamicQuantizeLSTM (ONNX Runtime's contrib op), qforge DynamicQuantizeLSTM
// (the same inputs, plus per_row / layout) and qforge DynamicQuantizeGRU (ONNX Runtime has no
// quantized GRU).
//
// Equations (ONNX operator docs; gate order of W, R, B: LSTM i o f c, GRU z r h; P: i o f):
//   LSTM  i = f(x Wi' + h Ri' + Pi . c + Wbi + Rbi)      f = f(x Wf' + h Rf' + Pf . c + Wbf + Rbf)
//         c~ = g(x Wc' + h Rc' + Wbc + Rbc)             C = f . c + i . c~
//         o = f(x Wo' + h Ro' + Po . C + Wbo + Rbo)      H = o . h(C)
//         input_forget = 1: f = 1 - i.
//   GRU   z = f(x Wz' + h Rz' + Wbz + Rbz)              r = f(x Wr' + h Rr' + Wbr + Rbr)
//         linear_before_reset 0: h~ = g(x Wh' + (r . h) Rh' + Rbh + Wbh)
//         linear_before_reset 1: h~ = g(x Wh' + r . (h Rh' + Rbh) + Wbh)
//         H = (1 - z) . h~ + z . h
// clip (if given) clamps every gate's pre-activation (the arguments of f and g above) to
// [-clip, clip]; h(C) is not clipped (as ONNX Runtime). sequence_lens[b] = L: batch row b runs L
// steps (reverse: over x[L-1] .. x[0]); Y is zero at t >= L and Y_h / Y_c hold the state after its
// last step (the initial state when L = 0). layout 1: X [batch, seq, input], Y [batch, seq,
// dirs, hidden], states [batch, dirs, hidden]; layout 0 (default): [seq, batch, input], [seq,
// dirs, batch, hidden], [dirs, batch, hidden].
//
// Fast path, per direction: the input projection of all time steps is one GEMM
// ([seq * batch, input] x W' -> [seq * batch, G * hidden], biases folded in), then per step the
// recurrent GEMM (h [batch, hidden] x R') added to that step's rows, then the gate math per row.
// fp32 GEMMs are kernels::Sgemm on weights packed once; the quantized ops use the same driver with
// every GEMM an int8 one: A (X for the projection, h / r . h per step) quantized at run time to
// uint8 (per tensor as DynamicQuantizeLinear, or per row with per_row = 1), weights int8 with a
// scale (and zero point) per output column, acc exact in int32 (kernels::DynamicQGemm), y =
// float(acc) * (s_a * s_w[n]) + bias[n], gate math in fp32. The buffers of the recurrence
// (quantized h, its parameters, GEMM outputs) are allocated once per run, not per step.
// Gate math: with the default activations (LSTM without peepholes or input_forget) the cell
// update is one vectorized pass per row (kernels::LstmCellF32 / SigmoidF32 / GruOutputF32,
// AVX2 sigmoid / tanh within 4e-7 of exact); other activations use the scalar Act functions.
//
// Quantized inputs (com.microsoft DynamicQuantizeLSTM; DynamicQuantizeGRU the same without
// initial_c and P, so its scales are inputs 6-9):
//   X, W [dirs, input, 4H] int8/uint8, R [dirs, H, 4H], B, sequence_lens, initial_h, initial_c,
//   P, W_scale [dirs] or [dirs, 4H] fp32, W_zero_point (W's type, W_scale's shape), R_scale,
//   R_zero_point. Weights are K x N (already transposed), unlike the fp32 ops' [dirs, 4H, input].
#include "runtime/ops/rnn_ops.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/ref/dynq_ref.h"
#include "qforge/kernels/dynq.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/qgemm.h"
#include "qforge/kernels/rnn_math.h"
#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/quant_params.h"
#include "runtime/ops/lambda_op.h"

namespace qforge::runtime {

namespace {

using numerics::QuantParams;

// ---- Attributes -------------------------------------------------------------------------------

// One activation function of the activations attribute (names case-insensitive, as ONNX
// Runtime). alpha / beta: from activation_alpha / activation_beta, consumed in order by the
// functions that take them, else the defaults below.
struct Act {
  enum Kind {
    kSigmoid,
    kTanh,
    kRelu,
    kHardSigmoid,
    kLeakyRelu,
    kThresholdedRelu,
    kScaledTanh,
    kAffine,
    kElu,
    kSoftsign,
    kSoftplus
  };
  Kind kind = kSigmoid;
  float alpha = 0.0f, beta = 0.0f;

  float operator()(float x) const {
    switch (kind) {
      case kSigmoid:
        return 1.0f / (1.0f + std::exp(-x));
      case kTanh:
        return std::tanh(x);
      case kRelu:
        return std::max(x, 0.0f);
      case kHardSigmoid:
        return std::max(0.0f, std::min(1.0f, alpha * x + beta));
      case kLeakyRelu:
        return x >= 0.0f ? x : alpha * x;
      case kThresholdedRelu:
        return x > alpha ? x : 0.0f;
      case kScaledTanh:
        return alpha * std::tanh(beta * x);
      case kAffine:
        return alpha * x + beta;
      case kElu:
        return x >= 0.0f ? x : alpha * (std::exp(x) - 1.0f);
      case kSoftsign:
        return x / (1.0f + std::fabs(x));
      case kSoftplus:
        return std::log1p(std::exp(x));
    }
    return x;
  }
};

enum class Cell { kLstm, kGru };

struct RnnSpec {
  Cell cell = Cell::kLstm;
  int gates = 4;          // 4 (LSTM) or 3 (GRU)
  int acts_per_dir = 3;   // f, g, h (LSTM) or f, g (GRU)
  int dirs = 1;           // 1 or 2
  bool reverse = false;   // direction == "reverse"
  int64_t hidden = -1;    // hidden_size attribute, -1 if absent
  std::vector<Act> acts;  // acts_per_dir * dirs
  float clip = std::numeric_limits<float>::infinity();
  bool input_forget = false;
  bool linear_before_reset = false;
  int64_t layout = 0;
  // Quantized forms.
  bool quantized = false;
  bool per_row = false;
  size_t scale_input = 0;  // index of W_scale

  // Default activations (Sigmoid, Tanh[, Tanh]) in every direction: the vectorized cell math.
  bool default_acts = true;

  bool is_reverse(int d) const { return reverse || d == 1; }
  float Clip(float x) const { return std::min(std::max(x, -clip), clip); }
  const Act* acts_of(int d) const { return acts.data() + d * acts_per_dir; }
};

Act ParseAct(const ir::Node& n, const std::string& name, const std::vector<float>& alphas,
             const std::vector<float>& betas, size_t* ai, size_t* bi) {
  std::string lower = name;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  struct Known {
    const char* name;
    Act::Kind kind;
    int params;  // 0: none, 1: alpha, 2: alpha and beta
    float alpha, beta;
  };
  static const Known kKnown[] = {
      {"sigmoid", Act::kSigmoid, 0, 0, 0},
      {"tanh", Act::kTanh, 0, 0, 0},
      {"relu", Act::kRelu, 0, 0, 0},
      {"hardsigmoid", Act::kHardSigmoid, 2, 0.2f, 0.5f},
      {"leakyrelu", Act::kLeakyRelu, 1, 0.01f, 0},
      {"thresholdedrelu", Act::kThresholdedRelu, 1, 1.0f, 0},
      {"scaledtanh", Act::kScaledTanh, 2, 1.0f, 1.0f},
      {"affine", Act::kAffine, 2, 1.0f, 0.0f},
      {"elu", Act::kElu, 1, 1.0f, 0},
      {"softsign", Act::kSoftsign, 0, 0, 0},
      {"softplus", Act::kSoftplus, 0, 0, 0},
  };
  for (const Known& k : kKnown) {
    if (lower != k.name) continue;
    Act a;
    a.kind = k.kind;
    a.alpha = k.alpha;
    a.beta = k.beta;
    if (k.params >= 1 && *ai < alphas.size()) a.alpha = alphas[(*ai)++];
    if (k.params >= 2 && *bi < betas.size()) a.beta = betas[(*bi)++];
    return a;
  }
  FailNode(n, "activation '" + name +
                  "' is not supported (supported: Sigmoid, Tanh, Relu, HardSigmoid, LeakyRelu, "
                  "ThresholdedRelu, ScaledTanh, Affine, Elu, Softsign, Softplus)");
}

RnnSpec ParseSpec(const ir::Node& n) {
  RnnSpec s;
  const bool lstm = n.op_type == "LSTM" || n.op_type == "DynamicQuantizeLSTM";
  s.cell = lstm ? Cell::kLstm : Cell::kGru;
  s.gates = lstm ? 4 : 3;
  s.acts_per_dir = lstm ? 3 : 2;
  s.quantized = n.op_type.starts_with("DynamicQuantize");
  s.scale_input = lstm ? 8 : 6;
  const size_t max_in = s.quantized ? s.scale_input + 4 : (lstm ? 8 : 6);
  CheckArity(n, 3, max_in, 0, lstm ? 3 : 2);
  if (s.quantized && n.inputs.size() != max_in)
    FailNode(n, "expects " + std::to_string(max_in) + " inputs (optional ones may be empty), got " +
                    std::to_string(n.inputs.size()));
  if (s.quantized)
    for (size_t i : {size_t{1}, size_t{2}, s.scale_input, s.scale_input + 1, s.scale_input + 2,
                     s.scale_input + 3})
      if (!n.has_input(i)) FailNode(n, "required input " + std::to_string(i) + " is missing");

  const std::string dir = n.attr_string("direction", "forward");
  if (dir == "forward") {
    s.dirs = 1;
  } else if (dir == "reverse") {
    s.dirs = 1;
    s.reverse = true;
  } else if (dir == "bidirectional") {
    s.dirs = 2;
  } else {
    FailNode(n, "direction must be forward, reverse or bidirectional, got '" + dir + "'");
  }
  s.hidden = n.attr_int("hidden_size", -1);
  if (n.attrs.count("hidden_size") && s.hidden <= 0)
    FailNode(n, "hidden_size must be positive, got " + std::to_string(s.hidden));
  if (n.attrs.count("clip")) {
    s.clip = n.attr_float("clip");
    if (!(s.clip > 0)) FailNode(n, "clip must be positive, got " + std::to_string(s.clip));
  }
  s.input_forget = n.attr_int("input_forget", 0) != 0;
  if (!lstm && n.attrs.count("input_forget")) FailNode(n, "GRU has no input_forget attribute");
  s.linear_before_reset = n.attr_int("linear_before_reset", 0) != 0;
  if (lstm && n.attrs.count("linear_before_reset"))
    FailNode(n, "LSTM has no linear_before_reset attribute");
  s.layout = n.attr_int("layout", 0);
  if (s.layout != 0 && s.layout != 1)
    FailNode(n, "layout must be 0 or 1, got " + std::to_string(s.layout));
  if (n.domain == "com.microsoft" && n.attrs.count("layout"))
    FailNode(n, "com.microsoft DynamicQuantizeLSTM has no layout attribute");
  const int64_t per_row = n.attr_int("per_row", 0);
  if (per_row != 0 && per_row != 1)
    FailNode(n, "per_row must be 0 or 1, got " + std::to_string(per_row));
  if (per_row && n.domain != "qforge") FailNode(n, "per_row is a qforge-domain attribute");
  s.per_row = per_row == 1;

  std::vector<std::string> names;
  if (n.attrs.count("activations")) {
    names = n.attr_strings("activations");
    if (names.size() != static_cast<size_t>(s.acts_per_dir * s.dirs))
      FailNode(n, "activations must list " + std::to_string(s.acts_per_dir * s.dirs) +
                      " functions (" + std::to_string(s.acts_per_dir) + " per direction), got " +
                      std::to_string(names.size()));
  } else {
    for (int d = 0; d < s.dirs; ++d) {
      names.push_back("Sigmoid");
      names.push_back("Tanh");
      if (lstm) names.push_back("Tanh");
    }
  }
  const std::vector<float> alphas = n.attr_floats("activation_alpha", {});
  const std::vector<float> betas = n.attr_floats("activation_beta", {});
  size_t ai = 0, bi = 0;
  for (const std::string& name : names)
    s.acts.push_back(ParseAct(n, name, alphas, betas, &ai, &bi));
  for (size_t i = 0; i < s.acts.size(); ++i)
    s.default_acts &= s.acts[i].kind == (i % s.acts_per_dir == 0 ? Act::kSigmoid : Act::kTanh);
  return s;
}

// ---- Problem: the inputs, validated, in layout 0 -----------------------------------------------

struct Problem {
  int64_t T = 0, B = 0, I = 0, H = 0, D = 1;
  Tensor X;                     // [T, B, I]
  const float* bias = nullptr;  // [D, 2 G H]
  std::vector<int64_t> lens;    // [B], each in [0, T]
  Tensor h0, c0;                // [D, B, H] or undefined
  const float* P = nullptr;     // [D, 3H]
};

// [a, b, c] -> [b, a, c] (layout 1 <-> layout 0 of X and the states).
Tensor Swap01(const Tensor& t) {
  const int64_t a = t.dim(0), b = t.dim(1), c = t.dim(2);
  Tensor out = Tensor::Uninitialized(t.dtype(), {b, a, c});
  const float* src = t.data<float>();
  float* dst = out.data<float>();
  for (int64_t i = 0; i < a; ++i)
    for (int64_t j = 0; j < b; ++j) std::copy_n(src + (i * b + j) * c, c, dst + (j * a + i) * c);
  return out;
}

void CheckF32(const ir::Node& n, const Tensor& t, const char* what, const Shape& shape) {
  if (t.dtype() != DType::kF32)
    FailNode(n, std::string(what) + " must be float32, got " + std::string(DTypeName(t.dtype())));
  if (t.shape() != shape)
    FailNode(n, std::string(what) + " must have shape " + ShapeToString(shape) + ", got " +
                    ShapeToString(t.shape()));
}

// Reads X, B, sequence_lens, initial_h, initial_c, P; H and D come from the weights.
Problem MakeProblem(const ir::Node& n, const RnnSpec& s, std::span<const Tensor> in, int64_t I,
                    int64_t H) {
  const std::string desc = n.Describe();
  const Tensor& x = Arg(in, 0, desc);
  if (x.dtype() != DType::kF32)
    FailNode(n, "input X must be float32, got " + std::string(DTypeName(x.dtype())));
  if (x.rank() != 3) FailNode(n, "input X must have rank 3, got " + ShapeToString(x.shape()));
  Problem p;
  p.D = s.dirs;
  p.H = H;
  p.I = I;
  p.X = s.layout == 1 ? Swap01(x) : x;
  p.T = p.X.dim(0);
  p.B = p.X.dim(1);
  if (p.X.dim(2) != I)
    FailNode(n, "X " + ShapeToString(x.shape()) + " has input size " + std::to_string(p.X.dim(2)) +
                    " but W expects " + std::to_string(I));
  const auto opt = [&](size_t i) -> const Tensor* {
    return i < in.size() && in[i].defined() ? &in[i] : nullptr;
  };
  const int64_t G = s.gates, D = p.D, B = p.B;
  if (const Tensor* b = opt(3)) {
    CheckF32(n, *b, "B", {D, 2 * G * H});
    p.bias = b->data<float>();
  }
  p.lens.assign(static_cast<size_t>(B), p.T);
  if (const Tensor* l = opt(4)) {
    if ((l->dtype() != DType::kI32 && l->dtype() != DType::kI64) || l->shape() != Shape{B})
      FailNode(n, "sequence_lens must be int32 [" + std::to_string(B) + "], got " +
                      std::string(DTypeName(l->dtype())) + " " + ShapeToString(l->shape()));
    for (int64_t b = 0; b < B; ++b) {
      const int64_t v = l->dtype() == DType::kI32 ? l->data<int32_t>()[b] : l->data<int64_t>()[b];
      if (v < 0 || v > p.T)
        FailNode(n, "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(v) +
                        " is outside [0, " + std::to_string(p.T) + "]");
      p.lens[b] = v;
    }
  }
  const Shape state = s.layout == 1 ? Shape{B, D, H} : Shape{D, B, H};
  if (const Tensor* h = opt(5)) {
    CheckF32(n, *h, "initial_h", state);
    p.h0 = s.layout == 1 ? Swap01(*h) : *h;
  }
  if (s.cell == Cell::kLstm) {
    if (const Tensor* c = opt(6)) {
      CheckF32(n, *c, "initial_c", state);
      p.c0 = s.layout == 1 ? Swap01(*c) : *c;
    }
    if (const Tensor* pp = opt(7)) {
      CheckF32(n, *pp, "P", {D, 3 * H});
      p.P = pp->data<float>();
    }
  }
  return p;
}

// The outputs in layout 0 (zero-initialized: Y stays 0 past each row's sequence length).
struct Outputs {
  Tensor Y, Yh, Yc;  // [T, D, B, H], [D, B, H], [D, B, H]
};

// Converts to the node's layout and returns one tensor per node output.
std::vector<Tensor> Finish(const ir::Node& n, const RnnSpec& s, const Problem& p, Outputs o) {
  std::vector<Tensor> out(n.outputs.size());
  if (s.layout == 1) {
    // Y [T, D, B, H] -> [B, T, D, H]
    const int64_t T = p.T, D = p.D, B = p.B, H = p.H;
    Tensor y = Tensor::Uninitialized(DType::kF32, {B, T, D, H});
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d)
        for (int64_t b = 0; b < B; ++b)
          std::copy_n(o.Y.data<float>() + ((t * D + d) * B + b) * H, H,
                      y.data<float>() + ((b * T + t) * D + d) * H);
    o.Y = y;
    o.Yh = Swap01(o.Yh);
    if (o.Yc.defined()) o.Yc = Swap01(o.Yc);
  }
  const Tensor* all[] = {&o.Y, &o.Yh, &o.Yc};
  for (size_t i = 0; i < n.outputs.size(); ++i)
    if (!n.outputs[i].empty()) out[i] = *all[i];
  return out;
}

// zero_y = false: Y uninitialized (the caller writes every element).
Outputs AllocOutputs(const RnnSpec& s, const Problem& p, bool zero_y = true) {
  Outputs o;
  o.Y = zero_y ? Tensor(DType::kF32, {p.T, p.D, p.B, p.H})
               : Tensor::Uninitialized(DType::kF32, {p.T, p.D, p.B, p.H});
  o.Yh = Tensor(DType::kF32, {p.D, p.B, p.H});
  if (s.cell == Cell::kLstm) o.Yc = Tensor(DType::kF32, {p.D, p.B, p.H});
  return o;
}

// Time index of step `step` of batch row b (caller checks step < len).
inline int64_t TimeOf(bool reverse, int64_t step, int64_t len) {
  return reverse ? len - 1 - step : step;
}

// ---- The cell math (shared by every path) -----------------------------------------------------

// One LSTM row: g holds the 4H pre-activations (i o f c, without peepholes); c: c_{t-1} in, C_t
// out; h: H_t out; p: peepholes (i o f) or null; acts: f, g, h.
void LstmRow(const RnnSpec& s, const Act* acts, int64_t H, const float* g, const float* p, float* c,
             float* h) {
  const Act &f = acts[0], &gf = acts[1], &hf = acts[2];
  for (int64_t j = 0; j < H; ++j) {
    const float cp = c[j];
    float pre_i = g[j], pre_f = g[2 * H + j];
    if (p) {
      pre_i += p[j] * cp;
      pre_f += p[2 * H + j] * cp;
    }
    const float i = f(s.Clip(pre_i));
    const float fg = s.input_forget ? 1.0f - i : f(s.Clip(pre_f));
    const float cand = gf(s.Clip(g[3 * H + j]));
    const float C = fg * cp + i * cand;
    float pre_o = g[H + j];
    if (p) pre_o += p[H + j] * C;
    const float o = f(s.Clip(pre_o));
    c[j] = C;
    h[j] = o * hf(C);
  }
}

// z and r of one GRU row from their pre-activations (in place: zr[0, H) = z, [H, 2H) = r).
void GruGatesRow(const RnnSpec& s, const Act* acts, int64_t H, float* zr) {
  for (int64_t j = 0; j < 2 * H; ++j) zr[j] = acts[0](s.Clip(zr[j]));
}

// H_t = (1 - z) . g(pre_h) + z . h_{t-1}, into h (which holds h_{t-1}).
void GruOutputRow(const RnnSpec& s, const Act* acts, int64_t H, const float* z, const float* pre_h,
                  float* h) {
  for (int64_t j = 0; j < H; ++j) {
    const float cand = acts[1](s.Clip(pre_h[j]));
    h[j] = (1.0f - z[j]) * cand + z[j] * h[j];
  }
}

// ---- fp32 reference: plain loops straight from the equations -----------------------------------

// W [D, G H, I], R [D, G H, H] as in ONNX.
Outputs ReferenceFp32(const RnnSpec& s, const Problem& p, const float* W, const float* R) {
  Outputs o = AllocOutputs(s, p);
  const int64_t B = p.B, I = p.I, H = p.H, G = s.gates;
  for (int64_t d = 0; d < p.D; ++d) {
    const float* Wd = W + d * G * H * I;
    const float* Rd = R + d * G * H * H;
    const float* Wb = p.bias ? p.bias + d * 2 * G * H : nullptr;
    const float* Rb = p.bias ? Wb + G * H : nullptr;
    const float* Pd = p.P ? p.P + d * 3 * H : nullptr;
    const Act* acts = s.acts_of(static_cast<int>(d));
    for (int64_t b = 0; b < B; ++b) {
      std::vector<float> h(H, 0.0f), c(H, 0.0f), g(G * H), rh(H);
      if (p.h0.defined()) std::copy_n(p.h0.data<float>() + (d * B + b) * H, H, h.data());
      if (p.c0.defined()) std::copy_n(p.c0.data<float>() + (d * B + b) * H, H, c.data());
      for (int64_t step = 0; step < p.lens[b]; ++step) {
        const int64_t t = TimeOf(s.is_reverse(static_cast<int>(d)), step, p.lens[b]);
        const float* x = p.X.data<float>() + (t * B + b) * I;
        // x W' + Wb (every gate), and h R' + Rb (all but GRU's h gate).
        for (int64_t j = 0; j < G * H; ++j) {
          float sum = Wb ? Wb[j] : 0.0f;
          for (int64_t k = 0; k < I; ++k) sum += x[k] * Wd[j * I + k];
          g[j] = sum;
        }
        const int64_t recurrent = s.cell == Cell::kLstm ? G * H : 2 * H;
        for (int64_t j = 0; j < recurrent; ++j) {
          float sum = Rb ? Rb[j] : 0.0f;
          for (int64_t k = 0; k < H; ++k) sum += h[k] * Rd[j * H + k];
          g[j] += sum;
        }
        if (s.cell == Cell::kLstm) {
          LstmRow(s, acts, H, g.data(), Pd, c.data(), h.data());
        } else {
          GruGatesRow(s, acts, H, g.data());
          const float* z = g.data();
          const float* r = g.data() + H;
          for (int64_t j = 0; j < H; ++j) {
            const float rbh = Rb ? Rb[2 * H + j] : 0.0f;
            float sum = 0.0f;
            if (s.linear_before_reset) {
              for (int64_t k = 0; k < H; ++k) sum += h[k] * Rd[(2 * H + j) * H + k];
              rh[j] = g[2 * H + j] + r[j] * (sum + rbh);
            } else {
              for (int64_t k = 0; k < H; ++k) sum += r[k] * h[k] * Rd[(2 * H + j) * H + k];
              rh[j] = g[2 * H + j] + sum + rbh;
            }
          }
          GruOutputRow(s, acts, H, z, rh.data(), h.data());
        }
        std::copy_n(h.data(), H, o.Y.data<float>() + ((t * p.D + d) * B + b) * H);
      }
      std::copy_n(h.data(), H, o.Yh.data<float>() + (d * B + b) * H);
      if (o.Yc.defined()) std::copy_n(c.data(), H, o.Yc.data<float>() + (d * B + b) * H);
    }
  }
  return o;
}

// ---- The GEMM-based driver (fast path; with reference matrices, the quantized reference) -------

// Buffers of the quantized GEMMs, owned by one run of the driver and reused by every step
// (grown, never shrunk).
struct Scratch {
  std::vector<uint8_t> q;                     // A quantized, M x K
  std::vector<numerics::QuantParams> params;  // one per row of A
  std::vector<float> y;                       // M x N result before accumulation
};

// One weight matrix as op(B), K x N: c[m, n] = (accumulate ? c[m, n] : 0) + sum_k a[m, k] B[k, n]
// + bias[n] (bias may be null).
class Matrix {
 public:
  virtual ~Matrix() = default;
  virtual void Apply(int64_t M, const float* a, int64_t lda, float* c, int64_t ldc, bool accumulate,
                     const float* bias, int threads, Scratch* scratch) const = 0;
};

class Fp32Matrix final : public Matrix {
 public:
  // w: row-major N x K (an ONNX W / R slice), packed once as op(B) = w'.
  Fp32Matrix(int64_t K, int64_t N, const float* w)
      : packed_(kernels::PackedMatrix::PackB(K, N, w, K, /*trans=*/true)), K_(K), N_(N) {}
  void Apply(int64_t M, const float* a, int64_t lda, float* c, int64_t ldc, bool accumulate,
             const float* bias, int threads, Scratch* /*scratch*/) const override {
    if (M == 0 || N_ == 0) return;
    kernels::GemmEpilogue e;
    e.beta = accumulate ? 1.0f : 0.0f;
    e.col_bias = bias;
    kernels::Sgemm(M, N_, K_, kernels::GemmOperand::Plain(a, lda),
                   kernels::GemmOperand::Packed(packed_), c, ldc, e, threads);
  }

 private:
  kernels::PackedMatrix packed_;
  int64_t K_, N_;
};

// int8 weights of one direction: codes K x N_total (row-major), zero point and scale per column.
struct QWeights {
  int64_t K = 0, N = 0;
  std::vector<int8_t> codes;
  std::vector<int32_t> zero_points;
  std::vector<float> scales;
};

// Quantization parameters of the whole M x K matrix a (row stride lda), computed as ONNX
// DynamicQuantizeLinear: lo = min(0, min a), hi = max(0, max a), s = (hi - lo) / 255,
// z = clamp(round_half_even(0 - lo / s), 0, 255). All zeros (s = 0): {1, 0}, every code 0.
// An infinity or NaN throws (its range is unusable).
// reference: plain loops; else kernels::FiniteMinMax per row (exact either way).
QuantParams TensorParams(int64_t M, int64_t K, const float* a, int64_t lda, bool reference) {
  float lo = 0.0f, hi = 0.0f;
  bool bad = false;
  for (int64_t m = 0; m < M && K > 0; ++m) {
    if (reference) {
      for (int64_t k = 0; k < K; ++k) {
        const float v = a[m * lda + k];
        bad |= !std::isfinite(v);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    } else {
      // Contiguous rows are one run.
      const int64_t run = lda == K ? M * K : K;
      float rlo, rhi;
      bad |= !kernels::FiniteMinMax(a + m * lda, run, &rlo, &rhi);
      lo = std::min(lo, rlo);
      hi = std::max(hi, rhi);
      if (lda == K) break;
    }
  }
  if (bad) throw Error("activations contain NaN or an infinity");
  const float scale = (hi - lo) / 255.0f;
  if (!(scale > 0)) return {1.0f, 0};
  const float z = std::clamp(numerics::RoundHalfEven(0.0f - lo / scale), 0.0f, 255.0f);
  return {scale, static_cast<int32_t>(z)};
}

// Columns [c0, c0 + n) of a direction's QWeights; fast (packed, kernels::DynamicQGemm) or
// reference (kernels::ref). Activations quantized to uint8 per tensor or per row.
class QMatrix final : public Matrix {
 public:
  QMatrix(std::shared_ptr<const QWeights> w, int64_t c0, int64_t n, bool per_row, bool reference)
      : w_(std::move(w)), c0_(c0), n_(n), per_row_(per_row), reference_(reference) {
    if (!reference_) {
      const std::vector<int32_t> zp(w_->zero_points.begin() + c0, w_->zero_points.begin() + c0 + n);
      packed_ = kernels::PackedQGemmB::Pack(w_->K, n, w_->codes.data() + c0, w_->N,
                                            /*trans=*/false, zp);
    }
  }
  void Apply(int64_t M, const float* a, int64_t lda, float* c, int64_t ldc, bool accumulate,
             const float* bias, int threads, Scratch* scratch) const override {
    const int64_t K = w_->K, N = n_;
    if (M == 0 || N == 0) return;
    if (scratch->q.size() < static_cast<size_t>(M * K)) scratch->q.resize(M * K);
    if (scratch->params.size() < static_cast<size_t>(M)) scratch->params.resize(M);
    uint8_t* q = scratch->q.data();
    QuantParams* params = scratch->params.data();
    if (per_row_) {
      if (reference_)
        kernels::ref::DynamicQuantizeRows(M, K, a, lda, numerics::kUInt8, {}, q, K, params);
      else
        kernels::DynamicQuantizeRows(M, K, a, lda, numerics::kUInt8, {}, q, K, params);
    } else {
      const QuantParams tp = TensorParams(M, K, a, lda, reference_);
      std::fill_n(params, M, tp);
      if (reference_) {
        for (int64_t m = 0; m < M; ++m)
          for (int64_t k = 0; k < K; ++k)
            q[m * K + k] =
                static_cast<uint8_t>(numerics::QuantizeValue(a[m * lda + k], tp, 0, 255));
      } else if (lda == K) {
        kernels::QuantizeWithParams(a, M * K, tp, 0, 255, /*is_signed=*/false, q);
      } else {
        for (int64_t m = 0; m < M; ++m)
          kernels::QuantizeWithParams(a + m * lda, K, tp, 0, 255, false, q + m * K);
      }
    }
    // Straight into c when not accumulating.
    float* y = c;
    int64_t ldy = ldc;
    if (accumulate) {
      if (scratch->y.size() < static_cast<size_t>(M * N)) scratch->y.resize(M * N);
      y = scratch->y.data();
      ldy = N;
    }
    const float* scales = w_->scales.data() + c0_;
    if (reference_)
      kernels::ref::DynamicQGemm(M, N, K, q, K, /*a_signed=*/false, params, w_->codes.data() + c0_,
                                 w_->N, w_->zero_points.data() + c0_, scales, bias, y, ldy);
    else
      kernels::DynamicQGemm(M, q, K, /*a_signed=*/false, params, packed_, scales, bias, y, ldy,
                            threads);
    if (!accumulate) return;
    for (int64_t m = 0; m < M; ++m) {
      float* cr = c + m * ldc;
      const float* yr = y + m * N;
      for (int64_t j = 0; j < N; ++j) cr[j] += yr[j];
    }
  }

 private:
  std::shared_ptr<const QWeights> w_;
  int64_t c0_, n_;
  bool per_row_, reference_;
  kernels::PackedQGemmB packed_;
};

// The matrices of one direction. LSTM: W (N = 4H), R (4H). GRU: W (3H), R_zr (2H), R_h (H).
struct DirMatrices {
  std::shared_ptr<Matrix> W, R, Rh;
};

struct Weights {
  int64_t I = 0, H = 0;
  std::vector<DirMatrices> dirs;
};

// Buffers of one op reused across runs (no per-run page faults for the projection), grown on
// demand; the op's mutex guards them.
struct Workspace {
  std::vector<float> proj;   // [T, B, G H]: x W' + biases, then (in place) the gate sums
  std::vector<float> gates;  // [B, G H]: a step's gate sums when rows have different lengths
  std::vector<float> rh;     // GRU [B, H]: r . h, or h R_h' + Rbh
  std::vector<float> pre_h;  // GRU [B, H]: the candidate's pre-activation
  Scratch scratch;
};

template <typename T>
T* Grow(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

Outputs RunDriver(const RnnSpec& s, const Problem& p, const Weights& w, int threads,
                  Workspace* ws) {
  // Every row runs all T steps: Y is written everywhere, and each step's gate sums are computed
  // in place in that step's projection rows (no copies).
  const bool uniform =
      std::all_of(p.lens.begin(), p.lens.end(), [&](int64_t l) { return l == p.T; });
  Outputs o = AllocOutputs(s, p, /*zero_y=*/!uniform);
  const int64_t T = p.T, B = p.B, H = p.H, G = s.gates, GH = G * H;
  if (B == 0 || H == 0) return o;
  float* proj = Grow(ws->proj, T * B * GH);
  float* gates = Grow(ws->gates, B * GH);
  float* rh = Grow(ws->rh, B * H);
  float* pre_h_buf = Grow(ws->pre_h, B * H);
  std::vector<float> proj_bias(static_cast<size_t>(GH)), rbh(static_cast<size_t>(H));
  Scratch* scratch = &ws->scratch;
  // The vectorized cell math: default activations (and for LSTM no peepholes, no input_forget).
  const bool fast_cell = s.default_acts && (s.cell == Cell::kGru || (!p.P && !s.input_forget));
  const bool clip = std::isfinite(s.clip);
  const auto clip_row = [&](float* x, int64_t n) {
    for (int64_t j = 0; j < n; ++j) x[j] = s.Clip(x[j]);
  };
  for (int64_t d = 0; d < p.D; ++d) {
    const DirMatrices& m = w.dirs[d];
    const bool reverse = s.is_reverse(static_cast<int>(d));
    const Act* acts = s.acts_of(static_cast<int>(d));
    const float* Pd = p.P ? p.P + d * 3 * H : nullptr;
    // Biases folded into the projection: Wb + Rb, except GRU linear_before_reset's Rbh (applied
    // inside r . (h R_h' + Rbh)).
    const bool lbr = s.cell == Cell::kGru && s.linear_before_reset;
    std::fill(proj_bias.begin(), proj_bias.end(), 0.0f);
    std::fill(rbh.begin(), rbh.end(), 0.0f);
    if (p.bias) {
      const float* Wb = p.bias + d * 2 * GH;
      const float* Rb = Wb + GH;
      for (int64_t j = 0; j < GH; ++j) proj_bias[j] = Wb[j] + (lbr && j >= 2 * H ? 0.0f : Rb[j]);
      if (lbr) std::copy_n(Rb + 2 * H, H, rbh.data());
    }
    m.W->Apply(T * B, p.X.data<float>(), p.I, proj, GH, false, proj_bias.data(), threads, scratch);

    float* h = o.Yh.data<float>() + d * B * H;  // the running state lives in the outputs
    float* c = o.Yc.defined() ? o.Yc.data<float>() + d * B * H : nullptr;
    if (p.h0.defined())
      std::copy_n(p.h0.data<float>() + d * B * H, B * H, h);
    else
      std::fill_n(h, B * H, 0.0f);
    if (c) {
      if (p.c0.defined())
        std::copy_n(p.c0.data<float>() + d * B * H, B * H, c);
      else
        std::fill_n(c, B * H, 0.0f);
    }
    // Projection row of batch row b at this step.
    const auto x_row = [&](int64_t step, int64_t b) {
      return proj + (TimeOf(reverse, step, p.lens[b]) * B + b) * GH;
    };
    for (int64_t step = 0; step < T; ++step) {
      // The recurrent GEMM adds h R' into g (row stride ld): the projection rows themselves when
      // uniform, else a copy (zero for finished rows, whose results are discarded).
      const int64_t width = s.cell == Cell::kLstm ? GH : 2 * H;
      float* g = gates;
      int64_t ld = width;
      if (uniform) {
        g = x_row(step, 0);
        ld = GH;
      } else {
        for (int64_t b = 0; b < B; ++b) {
          if (step < p.lens[b])
            std::copy_n(x_row(step, b), width, g + b * ld);
          else
            std::fill_n(g + b * ld, width, 0.0f);
        }
      }
      m.R->Apply(B, h, H, g, ld, true, nullptr, threads, scratch);
      if (s.cell == Cell::kLstm) {
        for (int64_t b = 0; b < B; ++b) {
          if (step >= p.lens[b]) continue;
          float* gb = g + b * ld;
          if (fast_cell) {
            if (clip) clip_row(gb, GH);
            kernels::LstmCellF32(H, gb, c + b * H, h + b * H);
          } else {
            LstmRow(s, acts, H, gb, Pd, c + b * H, h + b * H);
          }
        }
      } else {
        for (int64_t b = 0; b < B; ++b) {
          if (step >= p.lens[b]) continue;
          float* zr = g + b * ld;
          if (fast_cell) {
            if (clip) clip_row(zr, 2 * H);
            kernels::SigmoidF32(zr, zr, 2 * H);
          } else {
            GruGatesRow(s, acts, H, zr);
          }
        }
        // The candidate's pre-activation: in place in the projection rows (uniform, without
        // linear_before_reset) or in pre_h_buf.
        float* pre_h = pre_h_buf;
        int64_t ldp = H;
        if (lbr) {
          m.Rh->Apply(B, h, H, rh, H, false, rbh.data(), threads, scratch);
          for (int64_t b = 0; b < B; ++b) {
            if (step >= p.lens[b]) continue;
            const float* x = x_row(step, b) + 2 * H;
            const float* r = g + b * ld + H;
            for (int64_t j = 0; j < H; ++j) pre_h[b * H + j] = x[j] + r[j] * rh[b * H + j];
          }
        } else {
          if (uniform) {
            pre_h = x_row(step, 0) + 2 * H;
            ldp = GH;
          }
          for (int64_t b = 0; b < B; ++b) {
            float* rr = rh + b * H;
            if (step >= p.lens[b]) {
              std::fill_n(rr, H, 0.0f);
              std::fill_n(pre_h + b * ldp, H, 0.0f);
              continue;
            }
            const float* r = g + b * ld + H;
            for (int64_t j = 0; j < H; ++j) rr[j] = r[j] * h[b * H + j];
            if (!uniform) std::copy_n(x_row(step, b) + 2 * H, H, pre_h + b * ldp);
          }
          m.Rh->Apply(B, rh, H, pre_h, ldp, true, nullptr, threads, scratch);
        }
        for (int64_t b = 0; b < B; ++b) {
          if (step >= p.lens[b]) continue;
          const float* z = g + b * ld;
          float* pb = pre_h + b * ldp;
          if (fast_cell) {
            if (clip) clip_row(pb, H);
            kernels::GruOutputF32(H, z, pb, h + b * H);
          } else {
            GruOutputRow(s, acts, H, z, pb, h + b * H);
          }
        }
      }
      for (int64_t b = 0; b < B; ++b)
        if (step < p.lens[b])
          std::copy_n(
              h + b * H, H,
              o.Y.data<float>() + ((TimeOf(reverse, step, p.lens[b]) * p.D + d) * B + b) * H);
    }
  }
  return o;
}

// ---- Weights: validation and preparation ------------------------------------------------------

// fp32: W [D, G H, I], R [D, G H, H]. Returns (I, H) after checking shapes.
std::pair<int64_t, int64_t> CheckFp32Weights(const ir::Node& n, const RnnSpec& s, const Tensor& W,
                                             const Tensor& R) {
  if (W.dtype() != DType::kF32 || R.dtype() != DType::kF32) FailNode(n, "W and R must be float32");
  if (W.rank() != 3 || R.rank() != 3)
    FailNode(n, "W and R must have rank 3, got " + ShapeToString(W.shape()) + " and " +
                    ShapeToString(R.shape()));
  const int64_t H = R.dim(2), I = W.dim(2), G = s.gates, D = s.dirs;
  if (s.hidden >= 0 && s.hidden != H)
    FailNode(n, "hidden_size " + std::to_string(s.hidden) + " but R has " + std::to_string(H));
  if (W.shape() != Shape{D, G * H, I} || R.shape() != Shape{D, G * H, H})
    FailNode(n, "W " + ShapeToString(W.shape()) + " / R " + ShapeToString(R.shape()) +
                    " do not match " + std::to_string(D) + " direction(s), " + std::to_string(G) +
                    " gates, hidden " + std::to_string(H));
  return {I, H};
}

Weights PrepareFp32(const ir::Node& n, const RnnSpec& s, const Tensor& W, const Tensor& R) {
  const auto [I, H] = CheckFp32Weights(n, s, W, R);
  Weights w;
  w.I = I;
  w.H = H;
  const int64_t GH = s.gates * H;
  for (int d = 0; d < s.dirs; ++d) {
    DirMatrices m;
    const float* Wd = W.data<float>() + d * GH * I;
    const float* Rd = R.data<float>() + d * GH * H;
    m.W = std::make_shared<Fp32Matrix>(I, GH, Wd);
    if (s.cell == Cell::kLstm) {
      m.R = std::make_shared<Fp32Matrix>(H, GH, Rd);
    } else {
      m.R = std::make_shared<Fp32Matrix>(H, 2 * H, Rd);
      m.Rh = std::make_shared<Fp32Matrix>(H, H, Rd + 2 * H * H);
    }
    w.dirs.push_back(m);
  }
  return w;
}

// Quantized: W [D, K, G H] int8 / uint8 with scale [D] or [D, G H] and zero point alike. uint8
// codes become int8 codes c - 128 with zero point z - 128 (every c - z unchanged).
std::vector<std::shared_ptr<const QWeights>> ReadQWeights(const ir::Node& n, const RnnSpec& s,
                                                          const char* what, const Tensor& w,
                                                          const Tensor& scale, const Tensor& zp,
                                                          int64_t N) {
  const std::string name = what;
  if ((w.dtype() != DType::kI8 && w.dtype() != DType::kU8) || w.rank() != 3 || w.dim(0) != s.dirs ||
      w.dim(2) != N)
    FailNode(n, name + " must be int8 or uint8 [" + std::to_string(s.dirs) + ", K, " +
                    std::to_string(N) + "], got " + std::string(DTypeName(w.dtype())) + " " +
                    ShapeToString(w.shape()));
  const int64_t D = s.dirs, K = w.dim(1);
  if (K > kernels::kMaxQGemmK)
    FailNode(n, name + ": K = " + std::to_string(K) + " exceeds the int8 GEMM limit");
  const bool per_col = scale.rank() == 2;
  if (scale.dtype() != DType::kF32 || !(scale.shape() == Shape{D} || scale.shape() == Shape{D, N}))
    FailNode(n, name + "_scale must be float32 [" + std::to_string(D) + "] or [" +
                    std::to_string(D) + ", " + std::to_string(N) + "], got " +
                    ShapeToString(scale.shape()));
  if (zp.dtype() != w.dtype() || zp.shape() != scale.shape())
    FailNode(n, name + "_zero_point must have " + name + "'s type and " + name +
                    "_scale's shape, got " + std::string(DTypeName(zp.dtype())) + " " +
                    ShapeToString(zp.shape()));
  const bool u8 = w.dtype() == DType::kU8;
  std::vector<std::shared_ptr<const QWeights>> out;
  for (int64_t d = 0; d < D; ++d) {
    auto q = std::make_shared<QWeights>();
    q->K = K;
    q->N = N;
    q->codes.resize(static_cast<size_t>(K * N));
    for (int64_t i = 0; i < K * N; ++i)
      q->codes[i] = u8 ? static_cast<int8_t>(w.data<uint8_t>()[d * K * N + i] ^ 0x80)
                       : w.data<int8_t>()[d * K * N + i];
    for (int64_t j = 0; j < N; ++j) {
      const int64_t at = per_col ? d * N + j : d;
      const float sc = scale.data<float>()[at];
      if (!(sc > 0) || !std::isfinite(sc))
        FailNode(n, name + "_scale must be positive and finite, got " + std::to_string(sc));
      q->scales.push_back(sc);
      q->zero_points.push_back(u8 ? int32_t{zp.data<uint8_t>()[at]} - 128
                                  : int32_t{zp.data<int8_t>()[at]});
    }
    out.push_back(q);
  }
  return out;
}

// in: the node's inputs (W, R, scales, zero points must be present).
Weights PrepareQuantized(const ir::Node& n, const RnnSpec& s, std::span<const Tensor> in,
                         bool reference) {
  const std::string desc = n.Describe();
  const Tensor& W = Arg(in, 1, desc);
  const Tensor& R = Arg(in, 2, desc);
  if (R.rank() != 3) FailNode(n, "R must have rank 3, got " + ShapeToString(R.shape()));
  const int64_t H = R.dim(1), G = s.gates;
  if (s.hidden >= 0 && s.hidden != H)
    FailNode(n, "hidden_size " + std::to_string(s.hidden) + " but R has " + std::to_string(H));
  const size_t si = s.scale_input;
  auto qw = ReadQWeights(n, s, "W", W, Arg(in, si, desc), Arg(in, si + 1, desc), G * H);
  auto qr = ReadQWeights(n, s, "R", R, Arg(in, si + 2, desc), Arg(in, si + 3, desc), G * H);
  if (qr[0]->K != H)
    FailNode(n, "R must be [dirs, hidden, G * hidden], got " + ShapeToString(R.shape()));
  Weights w;
  w.I = qw[0]->K;
  w.H = H;
  try {
    for (int d = 0; d < s.dirs; ++d) {
      DirMatrices m;
      m.W = std::make_shared<QMatrix>(qw[d], 0, G * H, s.per_row, reference);
      if (s.cell == Cell::kLstm) {
        m.R = std::make_shared<QMatrix>(qr[d], 0, G * H, s.per_row, reference);
      } else {
        m.R = std::make_shared<QMatrix>(qr[d], 0, 2 * H, s.per_row, reference);
        m.Rh = std::make_shared<QMatrix>(qr[d], 2 * H, H, s.per_row, reference);
      }
      w.dirs.push_back(m);
    }
  } catch (const Error& e) {
    FailNode(n, e.what());
  }
  return w;
}

// ---- The op -----------------------------------------------------------------------------------

class RnnOp final : public OpKernel {
 public:
  explicit RnnOp(const OpInit& init) : node_(init.node), spec_(ParseSpec(init.node)) {
    // Prepare (pack) the weights once when they are constants.
    std::vector<size_t> needed = {1, 2};
    if (spec_.quantized)
      for (size_t i = 0; i < 4; ++i) needed.push_back(spec_.scale_input + i);
    bool constant = true;
    for (size_t i : needed) constant = constant && init.constant(i).defined();
    if (!constant) return;
    std::vector<Tensor> in(node_.inputs.size());
    for (size_t i : needed) in[i] = init.constant(i);
    weights_ = std::make_shared<const Weights>(Prepare(in, /*reference=*/false));
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    std::shared_ptr<const Weights> w = weights_;
    if (!w) w = std::make_shared<const Weights>(Prepare(in, false));
    const Problem p = MakeProblem(node_, spec_, in, w->I, w->H);
    Outputs o;
    try {
      std::lock_guard<std::mutex> lock(mu_);
      o = RunDriver(spec_, p, *w, ctx.threads, &ws_);
    } catch (const Error& e) {
      FailNode(node_, e.what());
    }
    return Finish(node_, spec_, p, o);
  }

  std::vector<Tensor> RunReference(std::span<const Tensor> in) const {
    if (spec_.quantized) {
      const Weights w = Prepare(in, /*reference=*/true);
      const Problem p = MakeProblem(node_, spec_, in, w.I, w.H);
      Outputs o;
      try {
        Workspace ws;
        o = RunDriver(spec_, p, w, 1, &ws);
      } catch (const Error& e) {
        FailNode(node_, e.what());
      }
      return Finish(node_, spec_, p, o);
    }
    const std::string desc = node_.Describe();
    const Tensor& W = Arg(in, 1, desc);
    const Tensor& R = Arg(in, 2, desc);
    const auto [I, H] = CheckFp32Weights(node_, spec_, W, R);
    const Problem p = MakeProblem(node_, spec_, in, I, H);
    return Finish(node_, spec_, p, ReferenceFp32(spec_, p, W.data<float>(), R.data<float>()));
  }

 private:
  Weights Prepare(std::span<const Tensor> in, bool reference) const {
    if (spec_.quantized) return PrepareQuantized(node_, spec_, in, reference);
    const std::string desc = node_.Describe();
    return PrepareFp32(node_, spec_, Arg(in, 1, desc), Arg(in, 2, desc));
  }

  ir::Node node_;
  RnnSpec spec_;
  std::shared_ptr<const Weights> weights_;
  std::mutex mu_;  // guards ws_
  Workspace ws_;
};

}  // namespace

std::unique_ptr<OpKernel> MakeRnn(const OpInit& init) { return std::make_unique<RnnOp>(init); }

std::vector<Tensor> RunRnnReference(const ir::Node& node, std::span<const Tensor> inputs) {
  OpInit init{node, {}, 0};
  return RnnOp(init).RunReference(inputs);
}

}  // namespace qforge::runtime
