// Runtime ops Conv, ConvTranspose, Gemm, MatMul (ONNX semantics, fp32) over the fast kernels,
// plus qforge::FusedConv / FusedGemm (the same with a fused Relu / Clip output activation;
// FusedConv also takes an optional 4th input Z, a residual added before the activation).
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "qforge/kernels/conv.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/small_gemm.h"
#include "runtime/op_kernel.h"

namespace qforge::runtime {

namespace {

using kernels::Activation;
using kernels::ConvGeometry;
using kernels::GemmEpilogue;
using kernels::GemmOperand;
using kernels::PackedMatrix;

std::string VecText(const std::vector<int64_t>& v) { return ShapeToString(v); }

// floor(v / 2), also for negative v (as the ONNX reference's Python `//`).
int64_t FloorDiv2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

void RequireF32(const ir::Node& node, const Tensor& t, const char* what) {
  if (t.dtype() != DType::kF32)
    throw Error(node.Describe() + ": input " + what + " has type " +
                std::string(DTypeName(t.dtype())) + "; only float32 is supported");
}

const Tensor& Input(const ir::Node& node, std::span<const Tensor> inputs, size_t i,
                    const char* what) {
  if (i >= inputs.size() || !inputs[i].defined())
    throw Error(node.Describe() + ": missing required input " + what);
  return inputs[i];
}

// Fused activation of qforge::FusedConv / FusedGemm (identity for plain ONNX ops).
Activation ParseActivation(const ir::Node& node) {
  if (node.domain != "qforge") return Activation::None();
  const std::string act = node.attr_string("activation", "");
  if (act.empty()) return Activation::None();
  if (act == "Relu") return Activation::Relu();
  if (act == "Clip") {
    const std::vector<float> p = node.attr_floats("activation_params", {});
    if (p.size() != 2 || !(p[0] <= p[1]))
      throw Error(node.Describe() + ": Clip activation needs activation_params [min, max]");
    return Activation::Clip(p[0], p[1]);
  }
  throw Error(node.Describe() + ": unsupported fused activation '" + act +
              "' (expected Relu or Clip)");
}

// ---------------------------------------------------------------------------------------------
// Convolution attributes shared by Conv and ConvTranspose.

struct ConvAttrs {
  std::string auto_pad;
  int64_t group = 1;
  std::vector<int64_t> kernel_shape, strides, dilations, pads, output_padding, output_shape;

  static ConvAttrs Parse(const ir::Node& node, bool transpose) {
    ConvAttrs a;
    a.auto_pad = node.attr_string("auto_pad", "NOTSET");
    if (a.auto_pad != "NOTSET" && a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER" &&
        a.auto_pad != "VALID")
      throw Error(node.Describe() + ": unknown auto_pad '" + a.auto_pad + "'");
    a.group = node.attr_int("group", 1);
    if (a.group < 1) throw Error(node.Describe() + ": group must be >= 1");
    a.kernel_shape = node.attr_ints("kernel_shape", {});
    a.strides = node.attr_ints("strides", {});
    a.dilations = node.attr_ints("dilations", {});
    a.pads = node.attr_ints("pads", {});
    if (transpose) {
      a.output_padding = node.attr_ints("output_padding", {});
      a.output_shape = node.attr_ints("output_shape", {});
    }
    for (int64_t s : a.strides)
      if (s < 1) throw Error(node.Describe() + ": strides must be >= 1, got " + VecText(a.strides));
    for (int64_t d : a.dilations)
      if (d < 1)
        throw Error(node.Describe() + ": dilations must be >= 1, got " + VecText(a.dilations));
    for (int64_t k : a.kernel_shape)
      if (k < 1)
        throw Error(node.Describe() + ": kernel_shape must be >= 1, got " +
                    VecText(a.kernel_shape));
    return a;
  }

  // Checks attribute lengths against the spatial rank and the weight's kernel dims, and fills
  // defaults (strides/dilations 1, pads 0).
  void Resolve(const ir::Node& node, size_t rank, const std::vector<int64_t>& w_kernel) {
    auto check_len = [&](std::vector<int64_t>& v, size_t len, const char* name, int64_t def) {
      if (v.empty()) v.assign(len, def);
      if (v.size() != len)
        throw Error(node.Describe() + ": attribute " + name + " has " + std::to_string(v.size()) +
                    " values, expected " + std::to_string(len) + " for " + std::to_string(rank) +
                    "-d spatial input");
    };
    if (!kernel_shape.empty() && kernel_shape != w_kernel)
      throw Error(node.Describe() + ": kernel_shape " + VecText(kernel_shape) +
                  " does not match the weight's spatial dims " + VecText(w_kernel));
    kernel_shape = w_kernel;
    check_len(strides, rank, "strides", 1);
    check_len(dilations, rank, "dilations", 1);
    check_len(pads, 2 * rank, "pads", 0);
    if (auto_pad != "NOTSET") std::fill(pads.begin(), pads.end(), 0);  // computed instead
    for (int64_t p : pads)
      if (p < 0) throw Error(node.Describe() + ": pads must be >= 0, got " + VecText(pads));
  }
};

// ---------------------------------------------------------------------------------------------
// Conv.

class ConvOp final : public OpKernel {
 public:
  explicit ConvOp(const OpInit& init)
      : node_(init.node),
        attrs_(ConvAttrs::Parse(init.node, false)),
        act_(ParseActivation(init.node)) {
    const size_t max_inputs = node_.domain == "qforge" ? 4 : 3;
    if (node_.num_inputs() < 2 || node_.num_inputs() > max_inputs)
      throw Error(node_.Describe() + (max_inputs == 4 ? ": expects 2 to 4 inputs (X, W[, B[, Z]])"
                                                      : ": expects 2 or 3 inputs (X, W[, B])"));
    const Tensor& w = init.constant(1);
    const Tensor& b = node_.has_input(2) ? init.constant(2) : Tensor();
    if (w.defined() && (!node_.has_input(2) || b.defined())) conv_ = Prepare(w, b);
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) override {
    const Tensor& x = Input(node_, inputs, 0, "X");
    const Tensor& w = Input(node_, inputs, 1, "W");
    const Tensor b = node_.has_input(2) ? Input(node_, inputs, 2, "B") : Tensor();
    RequireF32(node_, x, "X");
    std::shared_ptr<const kernels::ConvF32> conv = conv_;
    if (!conv) conv = Prepare(w, b);
    const ConvGeometry g = Geometry(x.shape(), w.shape());
    Shape y_shape = {g.batch, g.out_channels};
    y_shape.insert(y_shape.end(), g.out_size.begin(), g.out_size.end());
    // The kernel writes every output element (bias only when the reduction is empty).
    Tensor y = Tensor::Uninitialized(DType::kF32, y_shape);
    // qforge::FusedConv's optional 4th input Z: a residual added before the activation.
    const Tensor z = node_.domain == "qforge" && node_.has_input(3) ? inputs[3] : Tensor();
    if (z.defined()) {
      RequireF32(node_, z, "Z");
      if (z.shape() != y_shape)
        throw Error(node_.Describe() + ": residual input Z has shape " + ShapeToString(z.shape()) +
                    ", expected the output's " + ShapeToString(y_shape));
    }
    conv->Run(g, x.data<float>(), y.data<float>(), act_, ctx.threads,
              z.defined() ? z.data<float>() : nullptr);
    return {y};
  }

 private:
  std::shared_ptr<const kernels::ConvF32> Prepare(const Tensor& w, const Tensor& b) const {
    RequireF32(node_, w, "W");
    if (w.rank() < 3)
      throw Error(node_.Describe() + ": weight W must have rank >= 3, got " +
                  ShapeToString(w.shape()));
    const int64_t m = w.dim(0);
    if (m % attrs_.group != 0)
      throw Error(node_.Describe() + ": output channels " + std::to_string(m) +
                  " not divisible by group " + std::to_string(attrs_.group));
    if (b.defined()) {
      RequireF32(node_, b, "B");
      if (b.rank() != 1 || b.dim(0) != m)
        throw Error(node_.Describe() + ": bias B has shape " + ShapeToString(b.shape()) +
                    ", expected [" + std::to_string(m) + "]");
    }
    const std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
    for (int64_t k : kernel)
      if (k < 1) throw Error(node_.Describe() + ": weight has an empty kernel dim");
    return std::make_shared<kernels::ConvF32>(m, w.dim(1) * attrs_.group, attrs_.group, kernel,
                                              w.data<float>(),
                                              b.defined() ? b.data<float>() : nullptr);
  }

  ConvGeometry Geometry(const Shape& xs, const Shape& ws) const {
    if (xs.size() != ws.size())
      throw Error(node_.Describe() + ": input X " + ShapeToString(xs) + " and weight W " +
                  ShapeToString(ws) + " must have the same rank");
    const size_t rank = xs.size() - 2;
    ConvAttrs a = attrs_;
    a.Resolve(node_, rank, std::vector<int64_t>(ws.begin() + 2, ws.end()));
    ConvGeometry g;
    g.batch = xs[0];
    g.in_channels = xs[1];
    g.out_channels = ws[0];
    g.group = a.group;
    if (g.in_channels != ws[1] * a.group)
      throw Error(node_.Describe() + ": input has " + std::to_string(g.in_channels) +
                  " channels but W " + ShapeToString(ws) + " with group " +
                  std::to_string(a.group) + " expects " + std::to_string(ws[1] * a.group));
    g.in_size.assign(xs.begin() + 2, xs.end());
    g.kernel = a.kernel_shape;
    g.strides = a.strides;
    g.dilations = a.dilations;
    g.pads_begin.assign(a.pads.begin(), a.pads.begin() + rank);
    g.pads_end.assign(a.pads.begin() + rank, a.pads.end());
    g.out_size.resize(rank);
    for (size_t d = 0; d < rank; ++d) {
      const int64_t in = g.in_size[d], s = g.strides[d];
      const int64_t span = g.dilations[d] * (g.kernel[d] - 1) + 1;
      if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
        const int64_t out = (in + s - 1) / s;
        const int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in);
        const int64_t small = total / 2, large = total - total / 2;
        g.pads_begin[d] = a.auto_pad == "SAME_UPPER" ? small : large;
        g.pads_end[d] = a.auto_pad == "SAME_UPPER" ? large : small;
      }
      g.out_size[d] = kernels::ConvOutputSize(in, g.kernel[d], s, g.dilations[d], g.pads_begin[d],
                                              g.pads_end[d]);
      if (g.out_size[d] < 1)
        throw Error(node_.Describe() + ": input " + ShapeToString(xs) + " is smaller than the " +
                    "dilated kernel " + VecText(g.kernel) + " (with pads " + VecText(a.pads) + ")");
    }
    return g;
  }

  ir::Node node_;
  ConvAttrs attrs_;
  Activation act_;
  std::shared_ptr<const kernels::ConvF32> conv_;  // prepacked when W (and B) are constant
};

// ---------------------------------------------------------------------------------------------
// ConvTranspose.

class ConvTransposeOp final : public OpKernel {
 public:
  explicit ConvTransposeOp(const OpInit& init)
      : node_(init.node), attrs_(ConvAttrs::Parse(init.node, true)) {
    if (node_.num_inputs() < 2 || node_.num_inputs() > 3)
      throw Error(node_.Describe() + ": expects 2 or 3 inputs (X, W[, B])");
    const Tensor& w = init.constant(1);
    const Tensor& b = node_.has_input(2) ? init.constant(2) : Tensor();
    if (w.defined() && (!node_.has_input(2) || b.defined())) conv_ = Prepare(w, b);
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) override {
    const Tensor& x = Input(node_, inputs, 0, "X");
    const Tensor& w = Input(node_, inputs, 1, "W");
    const Tensor b = node_.has_input(2) ? Input(node_, inputs, 2, "B") : Tensor();
    RequireF32(node_, x, "X");
    std::shared_ptr<const kernels::ConvTransposeF32> conv = conv_;
    if (!conv) conv = Prepare(w, b);
    const ConvGeometry g = Geometry(x.shape(), w.shape());
    Shape y_shape = {g.batch, g.out_channels};
    y_shape.insert(y_shape.end(), g.out_size.begin(), g.out_size.end());
    Tensor y(DType::kF32, y_shape);
    conv->Run(g, x.data<float>(), y.data<float>(), {}, ctx.threads);
    return {y};
  }

 private:
  std::shared_ptr<const kernels::ConvTransposeF32> Prepare(const Tensor& w, const Tensor& b) const {
    RequireF32(node_, w, "W");
    if (w.rank() < 3)
      throw Error(node_.Describe() + ": weight W must have rank >= 3, got " +
                  ShapeToString(w.shape()));
    const int64_t c = w.dim(0), m = w.dim(1) * attrs_.group;
    if (c % attrs_.group != 0)
      throw Error(node_.Describe() + ": input channels " + std::to_string(c) +
                  " not divisible by group " + std::to_string(attrs_.group));
    if (b.defined()) {
      RequireF32(node_, b, "B");
      if (b.rank() != 1 || b.dim(0) != m)
        throw Error(node_.Describe() + ": bias B has shape " + ShapeToString(b.shape()) +
                    ", expected [" + std::to_string(m) + "]");
    }
    const std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
    for (int64_t k : kernel)
      if (k < 1) throw Error(node_.Describe() + ": weight has an empty kernel dim");
    return std::make_shared<kernels::ConvTransposeF32>(c, m, attrs_.group, kernel, w.data<float>(),
                                                       b.defined() ? b.data<float>() : nullptr);
  }

  // ONNX ConvTranspose shapes: with output_shape (or SAME_*), the pads are derived from
  //   total_pad = stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - out,
  // SAME_UPPER putting the larger half at the end, otherwise at the beginning; without, out =
  //   stride * (in - 1) + output_padding + (kernel - 1) * dilation + 1 - pad_begin - pad_end.
  ConvGeometry Geometry(const Shape& xs, const Shape& ws) const {
    if (xs.size() != ws.size())
      throw Error(node_.Describe() + ": input X " + ShapeToString(xs) + " and weight W " +
                  ShapeToString(ws) + " must have the same rank");
    const size_t rank = xs.size() - 2;
    ConvAttrs a = attrs_;
    a.Resolve(node_, rank, std::vector<int64_t>(ws.begin() + 2, ws.end()));
    if (a.output_padding.empty()) a.output_padding.assign(rank, 0);
    if (a.output_padding.size() != rank)
      throw Error(node_.Describe() + ": output_padding " + VecText(a.output_padding) +
                  " must have " + std::to_string(rank) + " values");
    std::vector<int64_t> out_shape = a.output_shape;
    if (out_shape.size() == rank + 2) out_shape.erase(out_shape.begin(), out_shape.begin() + 2);
    if (!out_shape.empty() && out_shape.size() != rank)
      throw Error(node_.Describe() + ": output_shape " + VecText(a.output_shape) + " must have " +
                  std::to_string(rank) + " spatial values");

    ConvGeometry g;
    g.batch = xs[0];
    g.in_channels = xs[1];
    g.out_channels = ws[1] * a.group;
    g.group = a.group;
    if (g.in_channels != ws[0])
      throw Error(node_.Describe() + ": input has " + std::to_string(g.in_channels) +
                  " channels but W " + ShapeToString(ws) + " expects " + std::to_string(ws[0]));
    g.in_size.assign(xs.begin() + 2, xs.end());
    g.kernel = a.kernel_shape;
    g.strides = a.strides;
    g.dilations = a.dilations;
    g.pads_begin.assign(a.pads.begin(), a.pads.begin() + rank);
    g.pads_end.assign(a.pads.begin() + rank, a.pads.end());
    g.out_size.resize(rank);
    const bool same = a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER";
    for (size_t d = 0; d < rank; ++d) {
      const int64_t s = g.strides[d];
      const int64_t full =
          s * (g.in_size[d] - 1) + a.output_padding[d] + (g.kernel[d] - 1) * g.dilations[d] + 1;
      if (!out_shape.empty() || same) {
        const int64_t out = !out_shape.empty() ? out_shape[d] : g.in_size[d] * s;
        const int64_t total = full - out;  // may be negative (output_shape beyond full)
        const int64_t small = FloorDiv2(total), large = total - small;
        g.pads_begin[d] = a.auto_pad == "SAME_UPPER" ? small : large;
        g.pads_end[d] = a.auto_pad == "SAME_UPPER" ? large : small;
        g.out_size[d] = out;
      } else {
        g.out_size[d] = full - g.pads_begin[d] - g.pads_end[d];
      }
      if (g.out_size[d] < 1)
        throw Error(node_.Describe() + ": output size along spatial axis " + std::to_string(d) +
                    " would be " + std::to_string(g.out_size[d]));
    }
    return g;
  }

  ir::Node node_;
  ConvAttrs attrs_;
  std::shared_ptr<const kernels::ConvTransposeF32> conv_;
};

// ---------------------------------------------------------------------------------------------
// Gemm: Y = alpha * op(A) op(B) + beta * C, C unidirectionally broadcast to [M, N].

class GemmOp final : public OpKernel {
 public:
  explicit GemmOp(const OpInit& init)
      : node_(init.node),
        alpha_(init.node.attr_float("alpha", 1.0f)),
        beta_(init.node.attr_float("beta", 1.0f)),
        trans_a_(init.node.attr_int("transA", 0) != 0),
        trans_b_(init.node.attr_int("transB", 0) != 0),
        act_(ParseActivation(init.node)) {
    const size_t n = node_.num_inputs();
    // C became optional in opset 11.
    const size_t min_inputs = (init.opset != 0 && init.opset < 11) ? 3 : 2;
    if (n < min_inputs || n > 3)
      throw Error(node_.Describe() + ": expects " + (min_inputs == 3 ? "3" : "2 or 3") +
                  " inputs (A, B" + (min_inputs == 3 ? ", C)" : "[, C])") + " at opset " +
                  std::to_string(init.opset));
    const Tensor& b = init.constant(1);
    if (b.defined()) {
      RequireF32(node_, b, "B");
      if (b.rank() != 2)
        throw Error(node_.Describe() + ": B must be 2-D, got " + ShapeToString(b.shape()));
      const int64_t k = trans_b_ ? b.dim(1) : b.dim(0), nn = trans_b_ ? b.dim(0) : b.dim(1);
      packed_b_ = PackedMatrix::PackB(k, nn, b.data<float>(), b.dim(1), trans_b_);
    }
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) override {
    const Tensor& a = Input(node_, inputs, 0, "A");
    const Tensor& b = Input(node_, inputs, 1, "B");
    RequireF32(node_, a, "A");
    RequireF32(node_, b, "B");
    if (a.rank() != 2 || b.rank() != 2)
      throw Error(node_.Describe() + ": A " + ShapeToString(a.shape()) + " and B " +
                  ShapeToString(b.shape()) + " must both be 2-D");
    const int64_t m = trans_a_ ? a.dim(1) : a.dim(0), k = trans_a_ ? a.dim(0) : a.dim(1);
    const int64_t kb = trans_b_ ? b.dim(1) : b.dim(0), n = trans_b_ ? b.dim(0) : b.dim(1);
    if (k != kb)
      throw Error(node_.Describe() + ": inner dimensions differ: op(A) is " + std::to_string(m) +
                  "x" + std::to_string(k) + ", op(B) is " + std::to_string(kb) + "x" +
                  std::to_string(n));
    // The GEMM writes every element when the reduction is not empty.
    Tensor y = k > 0 ? Tensor::Uninitialized(DType::kF32, {m, n}) : Tensor(DType::kF32, {m, n});
    float* yd = y.data<float>();
    GemmEpilogue epi;
    epi.alpha = alpha_;
    epi.activation = act_;
    std::vector<float> bias;
    const Tensor c = node_.has_input(2) ? inputs[2] : Tensor();
    if (c.defined() && beta_ != 0.0f) {
      RequireF32(node_, c, "C");
      // Unidirectional (numpy) broadcast of C to [m, n].
      const Shape& cs = c.shape();
      if (cs.size() > 2)
        throw Error(node_.Describe() + ": C " + ShapeToString(cs) + " has rank > 2");
      const int64_t c_cols = cs.empty() ? 1 : cs.back();
      const int64_t c_rows = cs.size() == 2 ? cs[0] : 1;
      if ((c_cols != 1 && c_cols != n) || (c_rows != 1 && c_rows != m))
        throw Error(node_.Describe() + ": C " + ShapeToString(cs) +
                    " cannot be broadcast to the output [" + std::to_string(m) + ", " +
                    std::to_string(n) + "]");
      const float* cd = c.data<float>();
      if (c_rows == 1) {
        // One row (or scalar): a column bias, scaled by beta.
        bias.resize(n);
        for (int64_t j = 0; j < n; ++j) bias[j] = beta_ * cd[c_cols == 1 ? 0 : j];
        epi.col_bias = bias.data();
      } else if (c_cols == 1) {
        bias.resize(m);
        for (int64_t i = 0; i < m; ++i) bias[i] = beta_ * cd[i];
        epi.row_bias = bias.data();
      } else {
        std::copy(cd, cd + m * n, yd);
        epi.beta = beta_;
      }
    }
    const GemmOperand a_op = GemmOperand::Plain(a.data<float>(), a.dim(1), trans_a_);
    const bool use_packed = !packed_b_.empty() && packed_b_.rows() == k && packed_b_.cols() == n;
    const GemmOperand b_op = use_packed ? GemmOperand::Packed(packed_b_)
                                        : GemmOperand::Plain(b.data<float>(), b.dim(1), trans_b_);
    kernels::Sgemm(m, n, k, a_op, b_op, yd, n, epi, ctx.threads);
    return {y};
  }

 private:
  ir::Node node_;
  float alpha_, beta_;
  bool trans_a_, trans_b_;
  Activation act_;
  PackedMatrix packed_b_;  // when B is constant
};

// ---------------------------------------------------------------------------------------------
// MatMul: numpy matmul semantics (1-D operands promoted and the added dim removed; batch dims
// broadcast).

class MatMulOp final : public OpKernel {
 public:
  explicit MatMulOp(const OpInit& init) : node_(init.node) {
    if (node_.num_inputs() != 2) throw Error(node_.Describe() + ": expects 2 inputs (A, B)");
    const Tensor& b = init.constant(1);
    if (b.defined() && b.dtype() == DType::kF32 && (b.rank() == 1 || b.rank() == 2)) {
      const int64_t k = b.dim(0), n = b.rank() == 2 ? b.dim(1) : 1;
      packed_b_ = PackedMatrix::PackB(k, n, b.data<float>(), n, false);
    }
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> inputs) override {
    const Tensor& a = Input(node_, inputs, 0, "A");
    const Tensor& b = Input(node_, inputs, 1, "B");
    RequireF32(node_, a, "A");
    RequireF32(node_, b, "B");
    if (a.rank() == 0 || b.rank() == 0)
      throw Error(node_.Describe() + ": MatMul operands must have rank >= 1, got " +
                  ShapeToString(a.shape()) + " and " + ShapeToString(b.shape()));
    Shape as = a.shape(), bs = b.shape();
    const bool a_vec = as.size() == 1, b_vec = bs.size() == 1;
    if (a_vec) as.insert(as.begin(), 1);
    if (b_vec) bs.push_back(1);
    const int64_t m = as[as.size() - 2], k = as.back();
    const int64_t kb = bs[bs.size() - 2], n = bs.back();
    if (k != kb)
      throw Error(node_.Describe() + ": inner dimensions differ: A " + ShapeToString(a.shape()) +
                  " x B " + ShapeToString(b.shape()));
    // Broadcast batch dims (right-aligned).
    const size_t a_batch_rank = as.size() - 2, b_batch_rank = bs.size() - 2;
    const size_t batch_rank = std::max(a_batch_rank, b_batch_rank);
    Shape batch(batch_rank);
    for (size_t d = 0; d < batch_rank; ++d) {
      const int64_t da = d + a_batch_rank >= batch_rank ? as[d + a_batch_rank - batch_rank] : 1;
      const int64_t db = d + b_batch_rank >= batch_rank ? bs[d + b_batch_rank - batch_rank] : 1;
      if (da != db && da != 1 && db != 1)
        throw Error(node_.Describe() + ": batch dimensions of A " + ShapeToString(a.shape()) +
                    " and B " + ShapeToString(b.shape()) + " do not broadcast");
      batch[d] = std::max(da, db);
      if (da == 0 || db == 0) batch[d] = 0;
    }
    Shape y_shape = batch;
    if (!a_vec) y_shape.push_back(m);
    if (!b_vec) y_shape.push_back(n);
    Tensor y = k > 0 ? Tensor::Uninitialized(DType::kF32, y_shape) : Tensor(DType::kF32, y_shape);
    const int64_t batches = NumElements(batch);
    if (batches == 0 || m == 0 || n == 0) return {y};

    const float* ad = a.data<float>();
    const float* bd = b.data<float>();
    float* yd = y.data<float>();
    const bool use_packed =
        !packed_b_.empty() && b_batch_rank == 0 && packed_b_.rows() == k && packed_b_.cols() == n;
    const GemmOperand b_whole =
        use_packed ? GemmOperand::Packed(packed_b_) : GemmOperand::Plain(bd, n);
    if (b_batch_rank == 0) {
      // B shared by every batch: the A batches stack into one (batches * m) x k GEMM.
      kernels::Sgemm(batches * m, n, k, GemmOperand::Plain(ad, k), b_whole, yd, n, {}, ctx.threads);
      return {y};
    }
    // Offsets of each batch's A and B matrices under broadcasting.
    const std::vector<int64_t> a_off = BatchOffsets(batch, as, a_batch_rank, m * k);
    const std::vector<int64_t> b_off = BatchOffsets(batch, bs, b_batch_rank, k * n);
    const int t = kernels::ResolveThreads(ctx.threads);
    const bool parallel_batches = t > 1 && batches >= t;
    const bool small = kernels::SmallMatMulApplies(m, n, k);
#pragma omp parallel for num_threads(t) schedule(static) if (parallel_batches)
    for (int64_t i = 0; i < batches; ++i) {
      if (small) {  // attention-sized products: a direct kernel (kernels/small_gemm.h)
        kernels::SmallMatMulF32(m, n, k, ad + a_off[i], k, bd + b_off[i], n, yd + i * m * n, n);
        continue;
      }
      kernels::Sgemm(m, n, k, GemmOperand::Plain(ad + a_off[i], k),
                     GemmOperand::Plain(bd + b_off[i], n), yd + i * m * n, n, {},
                     parallel_batches ? 1 : t);
    }
    return {y};
  }

 private:
  // For every flat index into the broadcast batch shape, the element offset of the operand's
  // matrix (operand batch dims are right-aligned; size-1 dims repeat).
  static std::vector<int64_t> BatchOffsets(const Shape& batch, const Shape& op_shape,
                                           size_t op_batch_rank, int64_t matrix_size) {
    const int64_t total = NumElements(batch);
    std::vector<int64_t> offsets(total);
    const size_t lead = batch.size() - op_batch_rank;
    for (int64_t flat = 0; flat < total; ++flat) {
      int64_t rest = flat, offset = 0, stride = matrix_size;
      for (size_t d = batch.size(); d-- > 0;) {
        const int64_t idx = rest % batch[d];
        rest /= batch[d];
        if (d >= lead) {
          const int64_t dim = op_shape[d - lead];
          if (dim != 1) offset += idx * stride;
          stride *= dim;
        }
      }
      offsets[flat] = offset;
    }
    return offsets;
  }

  ir::Node node_;
  PackedMatrix packed_b_;  // when B is a constant 1-D / 2-D matrix
};

}  // namespace

std::unique_ptr<OpKernel> MakeConv(const OpInit& init) { return std::make_unique<ConvOp>(init); }
std::unique_ptr<OpKernel> MakeConvTranspose(const OpInit& init) {
  return std::make_unique<ConvTransposeOp>(init);
}
std::unique_ptr<OpKernel> MakeGemm(const OpInit& init) { return std::make_unique<GemmOp>(init); }
std::unique_ptr<OpKernel> MakeMatMul(const OpInit& init) {
  return std::make_unique<MatMulOp>(init);
}

}  // namespace qforge::runtime
