// Integer runtime ops: ONNX QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger,
// DynamicQuantizeLinear; ONNX Runtime contrib ops (com.microsoft) QGemm, QLinearAdd, QLinearMul,
// QLinearConcat, QLinearAveragePool, QLinearGlobalAveragePool; and qforge::QLinearConv /
// QLinearMatMul / QGemm (the same ops with an integer output clamp [out_min, out_max], produced by
// the lowering pass to fuse a following Relu / Relu6 / Clip).
//
// Arithmetic contract (docs/int8_kernels.md, docs/numerics.md): int32 accumulation of exact
// integer products, and every 8-bit output goes through numerics::Requantize (round half up of
// acc * M' with the fixed-point multiplier M' of M = s_in * s_w / s_out). ONNX's reference rounds
// the float value acc * s_in * s_w / s_out half to even: the two differ only when that value is
// within |acc| * 2^-31 M of a half-integer (or exactly on one), and then by one step.
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/qconv.h"
#include "qforge/kernels/qdwconv.h"
#include "qforge/kernels/qelementwise.h"
#include "qforge/kernels/qgemm.h"
#include "qforge/kernels/transform.h"
#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/quant_params.h"
#include "qforge/numerics/requantize.h"
#include "runtime/ops/lambda_op.h"

namespace qforge::runtime {

namespace {

using kernels::PackedQConvWeights;
using kernels::PackedQGemmB;
using kernels::QGemmOutput;
using numerics::FixedMultiplier;

bool Is8Bit(DType t) { return t == DType::kU8 || t == DType::kI8; }
int32_t TypeMin(DType t) { return t == DType::kI8 ? -128 : 0; }
int32_t TypeMax(DType t) { return t == DType::kI8 ? 127 : 255; }
std::string TypeText(DType t) { return std::string(DTypeName(t)); }

// Input i of the node, or an undefined tensor when the optional input is absent.
Tensor Opt(std::span<const Tensor> in, size_t i) { return i < in.size() ? in[i] : Tensor(); }

void Require8Bit(const ir::Node& n, const Tensor& t, const char* what) {
  if (!Is8Bit(t.dtype()))
    FailNode(n,
             std::string("input ") + what + " must be uint8 or int8, got " + TypeText(t.dtype()));
}

// A per-tensor scale: a float scalar or one-element tensor, finite and > 0.
float ScalarScale(const ir::Node& n, const Tensor& s, const char* what) {
  if (!s.defined()) FailNode(n, std::string("missing scale ") + what);
  if (!IsFloat(s.dtype()) || s.numel() != 1 || s.rank() > 1)
    FailNode(n, std::string("scale ") + what + " must be a float scalar, got " +
                    TypeText(s.dtype()) + " " + ShapeToString(s.shape()));
  const float v = s.ToFloatVector()[0];
  if (!(v > 0) || !std::isfinite(v))
    FailNode(n, std::string("scale ") + what + " must be finite and > 0, got " + std::to_string(v));
  return v;
}

// A per-tensor zero point of the 8-bit tensor of type `type` (0 when absent). Its dtype must be
// the data's dtype (ONNX: same type T).
int32_t ScalarZp(const ir::Node& n, const Tensor& zp, DType type, const char* what) {
  if (!zp.defined()) return 0;
  if (zp.dtype() != type)
    FailNode(n, std::string("zero point ") + what + " has type " + TypeText(zp.dtype()) +
                    ", expected " + TypeText(type));
  if (zp.numel() != 1 || zp.rank() > 1)
    FailNode(n, std::string("zero point ") + what + " must be a scalar (per tensor), got shape " +
                    ShapeToString(zp.shape()));
  return static_cast<int32_t>(zp.GetAsInt64(0));
}

// Per-channel (or per-tensor) weight scales: 1 entry, or `channels` entries in a tensor whose
// other dims are 1. Returns 1 or `channels` values.
std::vector<float> ChannelScales(const ir::Node& n, const Tensor& s, int64_t channels,
                                 const char* what) {
  if (!s.defined()) FailNode(n, std::string("missing scale ") + what);
  if (!IsFloat(s.dtype()) || (s.numel() != 1 && s.numel() != channels))
    FailNode(n, std::string("scale ") + what + " must be float with 1 or " +
                    std::to_string(channels) + " entries, got " + TypeText(s.dtype()) + " " +
                    ShapeToString(s.shape()));
  std::vector<float> v = s.ToFloatVector();
  for (float x : v)
    if (!(x > 0) || !std::isfinite(x))
      FailNode(n,
               std::string("scale ") + what + " must be finite and > 0, got " + std::to_string(x));
  return v;
}

// Weight codes as int8. A uint8 weight w with zero point zw is stored as w - 128 with zero
// point zw - 128: every difference (w - zw), hence every product, is unchanged.
struct Int8Weights {
  std::vector<int8_t> codes;
  std::vector<int32_t> zero_points;  // 1 or channels entries, already shifted
};

Int8Weights ToInt8Weights(const ir::Node& n, const Tensor& w, const Tensor& zp, int64_t channels,
                          const char* what) {
  Require8Bit(n, w, what);
  const int32_t shift = w.dtype() == DType::kU8 ? 128 : 0;
  Int8Weights r;
  r.codes.resize(w.numel());
  const auto* src = static_cast<const uint8_t*>(w.raw());
  for (int64_t i = 0; i < w.numel(); ++i)
    r.codes[i] = static_cast<int8_t>(src[i] ^ (shift ? 0x80 : 0));
  if (!zp.defined()) {
    r.zero_points = {-shift};
    return r;
  }
  if (zp.dtype() != w.dtype())
    FailNode(n, std::string("zero point of ") + what + " has type " + TypeText(zp.dtype()) +
                    ", expected " + TypeText(w.dtype()));
  if (zp.numel() != 1 && zp.numel() != channels)
    FailNode(n, std::string("zero point of ") + what + " must have 1 or " +
                    std::to_string(channels) + " entries, got shape " + ShapeToString(zp.shape()));
  for (int64_t i = 0; i < zp.numel(); ++i)
    r.zero_points.push_back(static_cast<int32_t>(zp.GetAsInt64(i)) - shift);
  return r;
}

// Output multipliers M[c] = alpha * s_in * s_w[c] / s_out, one per weight scale.
std::vector<FixedMultiplier> Multipliers(const ir::Node& n, double alpha, float s_in,
                                         const std::vector<float>& s_w, float s_out) {
  std::vector<FixedMultiplier> m;
  try {
    for (float sw : s_w) m.push_back(numerics::QuantizeMultiplier(alpha * s_in * sw / s_out));
  } catch (const numerics::NumericsError& e) {
    FailNode(n, std::string("requantization multiplier: ") + e.what());
  }
  return m;
}

// The output clamp of a quantized output of type t: the type's range, intersected with
// [out_min, out_max] for the qforge fused variants.
struct Clamp {
  bool has_min = false, has_max = false;
  int64_t out_min = 0, out_max = 0;

  static Clamp Parse(const ir::Node& n) {
    Clamp c;
    if (n.domain != "qforge") return c;
    c.has_min = n.has_attr("out_min");
    c.has_max = n.has_attr("out_max");
    c.out_min = n.attr_int("out_min", 0);
    c.out_max = n.attr_int("out_max", 0);
    if (c.has_min && c.has_max && c.out_min > c.out_max)
      FailNode(n,
               "out_min " + std::to_string(c.out_min) + " > out_max " + std::to_string(c.out_max));
    return c;
  }
  void Range(const ir::Node& n, DType t, int32_t& qmin, int32_t& qmax) const {
    int64_t lo = TypeMin(t), hi = TypeMax(t);
    if (has_min) lo = std::max(lo, out_min);
    if (has_max) hi = std::min(hi, out_max);
    if (lo > hi)
      FailNode(n, "clamp [out_min, out_max] = [" + std::to_string(out_min) + ", " +
                      std::to_string(out_max) + "] is outside the " + TypeText(t) + " range");
    qmin = static_cast<int32_t>(lo);
    qmax = static_cast<int32_t>(hi);
  }
};

// ---------------------------------------------------------------------------------------------
// QLinearConv, ConvInteger, qforge::QLinearConv.

// The integer convolution: QLinearConv (inputs x, x_scale, x_zp, w, w_scale, w_zp, y_scale,
// y_zp[, B]) or ConvInteger (x, w[, x_zp[, w_zp]], int32 output). 1-D and 2-D, NCHW.
class QConvOp final : public OpKernel {
 public:
  QConvOp(const OpInit& init, bool qlinear)
      : node_(init.node), qlinear_(qlinear), clamp_(Clamp::Parse(init.node)) {
    const ir::Node& n = node_;
    if (qlinear_)
      CheckArity(n, 8, 9, 1, 1);
    else
      CheckArity(n, 2, 4, 1, 1);
    auto_pad_ = n.attr_string("auto_pad", "NOTSET");
    if (auto_pad_ != "NOTSET" && auto_pad_ != "SAME_UPPER" && auto_pad_ != "SAME_LOWER" &&
        auto_pad_ != "VALID")
      FailNode(n, "unknown auto_pad '" + auto_pad_ + "'");
    group_ = n.attr_int("group", 1);
    if (group_ < 1) FailNode(n, "group must be >= 1");
    channels_last_ = n.attr_int("channels_last", 0) != 0;
    kernel_shape_ = n.attr_ints("kernel_shape", {});
    strides_ = n.attr_ints("strides", {});
    dilations_ = n.attr_ints("dilations", {});
    pads_ = n.attr_ints("pads", {});
    for (int64_t v : strides_)
      if (v < 1) FailNode(n, "strides must be >= 1");
    for (int64_t v : dilations_)
      if (v < 1) FailNode(n, "dilations must be >= 1");
    for (int64_t v : pads_)
      if (v < 0) FailNode(n, "pads must be >= 0");
    const Tensor& w = init.constant(kW());
    const bool zp_const = !n.has_input(kWZp()) || init.constant(kWZp()).defined();
    if (w.defined() && zp_const) packed_ = Pack(w, init.constant(kWZp()));
    // Constant scales (every lowered model): the output multipliers are computed once here, not
    // per run (QuantizeMultiplier per channel was a visible share of small convolutions).
    if (qlinear_ && packed_ && init.constant(1).defined() && init.constant(4).defined() &&
        init.constant(6).defined()) {
      const Tensor &sx = init.constant(1), &sw = init.constant(4), &sy = init.constant(6);
      try {
        const_mult_ = Multipliers(n, 1.0, ScalarScale(n, sx, "x_scale"),
                                  ChannelScales(n, sw, packed_->out_channels, "w_scale"),
                                  ScalarScale(n, sy, "y_scale"));
      } catch (const Error&) {
        const_mult_.clear();  // bad scales: Run reports them, as for non-constant ones
      }
    }
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const ir::Node& n = node_;
    const std::string& desc = desc_;
    const Tensor& x = Arg(in, 0, desc);
    const Tensor& w = Arg(in, kW(), desc);
    Require8Bit(n, x, "x");
    std::shared_ptr<const Packed> p = packed_;
    if (!p) p = Pack(w, Opt(in, kWZp()));
    const int64_t M = p->out_channels;
    // channels_last (qforge::QLinearConv made by ChannelsLastInt8): x is [N, H, W, C] and y
    // [N, out_h, out_w, M]; 2-D only.
    Shape xs = x.shape();
    if (channels_last_) {
      if (p->rank != 2 || xs.size() != 4)
        FailNode(n, "channels_last needs a 2-D convolution with a rank-4 input, got " +
                        ShapeToString(xs));
      xs = {xs[0], xs[3], xs[1], xs[2]};
    }
    // The geometry and the weights carrying it depend only on the input shape (and, with
    // constant weights, on nothing else): computed once per input shape, not per run (the
    // attribute vectors, Validate and the weights' copy were a visible fixed cost of the 52
    // small convolutions of MobileNetV2 at batch 1).
    const std::shared_ptr<const Geo> geo = GeometryFor(xs, p);
    const kernels::QConvShape& s = geo->shape;
    kernels::QConvInput xin;
    xin.data = x.raw();
    xin.is_signed = x.dtype() == DType::kI8;
    xin.zero_point = ScalarZp(n, Opt(in, kXZp()), x.dtype(), "x_zero_point");

    Shape y_shape = xs;
    y_shape[1] = M;
    y_shape[2] = s.out_h();
    if (p->rank == 1) {
      y_shape[2] = s.out_w();
    } else {
      y_shape[3] = s.out_w();
    }
    if (channels_last_) y_shape = {y_shape[0], y_shape[2], y_shape[3], y_shape[1]};
    QGemmOutput out;
    std::vector<FixedMultiplier> mult;
    DType y_type = DType::kI32;
    if (qlinear_) {
      // Constant scales were parsed and checked once (const_mult_); otherwise per run.
      if (const_mult_.empty()) {
        const float sx = ScalarScale(n, Arg(in, 1, desc), "x_scale");
        const std::vector<float> sw = ChannelScales(n, Arg(in, 4, desc), M, "w_scale");
        const float sy = ScalarScale(n, Arg(in, 6, desc), "y_scale");
        mult = Multipliers(n, 1.0, sx, sw, sy);
      }
      const Tensor& yzp = in.size() > 7 ? in[7] : kNoTensor;
      y_type = yzp.defined() ? yzp.dtype() : x.dtype();
      Require8Bit(n, yzp.defined() ? yzp : x, "y_zero_point");
      const int32_t zy = ScalarZp(n, yzp, y_type, "y_zero_point");
      int32_t qmin, qmax;
      clamp_.Range(n, y_type, qmin, qmax);
      const std::vector<FixedMultiplier>& m = const_mult_.empty() ? mult : const_mult_;
      const int32_t* bias = nullptr;
      const Tensor& b = in.size() > 8 ? in[8] : kNoTensor;
      if (b.defined()) {
        if (b.dtype() != DType::kI32 || b.rank() != 1 || b.dim(0) != M)
          FailNode(n, "bias B must be int32 of shape [" + std::to_string(M) + "], got " +
                          TypeText(b.dtype()) + " " + ShapeToString(b.shape()));
        bias = b.data<int32_t>();
      }
      out = QGemmOutput::Quantized(y_type == DType::kI8, bias, m.data(),
                                   static_cast<int64_t>(m.size()), zy, qmin, qmax);
    } else {
      out = QGemmOutput::Int32();
    }
    // Both kernels write every output element.
    Tensor y = Tensor::Uninitialized(y_type, y_shape);
    if (y.numel() > 0 && channels_last_) {
      if (kernels::QDepthwiseApplies(s) && !p->dw_nhwc.empty()) {
        kernels::QDepthwiseConvNhwc(s, xin, p->dw_nhwc.front(), out, y.raw(), ctx.threads);
      } else if (kernels::QDepthwiseApplies(s)) {
        kernels::QDepthwiseConvNhwc(s, xin, p->codes.data(), p->zero_points.data(),
                                    static_cast<int64_t>(p->zero_points.size()), out, y.raw(),
                                    ctx.threads);
      } else {
        kernels::QConvNhwc(xin, geo->weights, out, y.raw(), ctx.threads);
      }
    } else if (y.numel() > 0) {
      if (kernels::QDepthwiseApplies(s)) {  // depthwise: the direct per-channel kernel
        kernels::QDepthwiseConv(s, xin, p->codes.data(), p->zero_points.data(),
                                static_cast<int64_t>(p->zero_points.size()), out, y.raw(),
                                ctx.threads);
      } else {
        kernels::QConv(xin, geo->weights, out, y.raw(), ctx.threads);
      }
    }
    return {y};
  }

 private:
  struct Packed {
    int64_t rank = 2;  // spatial rank, 1 or 2
    int64_t out_channels = 0, in_per_group = 0, kh = 1, kw = 1;
    PackedQConvWeights weights;
    std::vector<int8_t> codes;         // int8 weight codes (the depthwise kernel reads them)
    std::vector<int32_t> zero_points;  // 1 or M, shifted like the codes
    // Depthwise with channel multiplier 1 (2-D): the channels-last kernel's packed weights,
    // packed once here instead of per run (one element, or empty).
    std::vector<kernels::PackedQDepthwiseNhwc> dw_nhwc;
  };

  // A convolution's geometry for one input shape, and the packed weights carrying it.
  struct Geo {
    Shape xs;  // the input shape (channels first) it was made for
    kernels::QConvShape shape;
    PackedQConvWeights weights;  // p->weights.WithGeometry(shape)
  };

  std::shared_ptr<const Geo> GeometryFor(const Shape& xs, const std::shared_ptr<const Packed>& p) {
    const bool cacheable = p == packed_;  // constant weights: the same Packed every run
    if (cacheable) {
      std::lock_guard<std::mutex> lock(geo_mu_);
      if (geo_ && geo_->xs == xs) return geo_;
    }
    auto g = std::make_shared<Geo>();
    g->xs = xs;
    g->shape = Geometry(xs, *p);
    if (!kernels::QDepthwiseApplies(g->shape)) g->weights = p->weights.WithGeometry(g->shape);
    if (cacheable) {
      std::lock_guard<std::mutex> lock(geo_mu_);
      geo_ = g;
    }
    return g;
  }

  size_t kW() const { return qlinear_ ? 3 : 1; }
  size_t kWZp() const { return qlinear_ ? 5 : 3; }
  size_t kXZp() const { return 2; }
  static inline const Tensor kNoTensor{};

  std::shared_ptr<const Packed> Pack(const Tensor& w, const Tensor& wzp) const {
    const ir::Node& n = node_;
    if (w.rank() != 3 && w.rank() != 4)
      FailNode(n,
               "weight must be [M, C/group, k] or [M, C/group, kH, kW] (1-D or 2-D "
               "convolution), got " +
                   ShapeToString(w.shape()));
    auto p = std::make_shared<Packed>();
    p->rank = w.rank() - 2;
    p->out_channels = w.dim(0);
    p->in_per_group = w.dim(1);
    p->kh = p->rank == 2 ? w.dim(2) : 1;
    p->kw = w.dim(w.rank() - 1);
    if (p->out_channels % group_ != 0)
      FailNode(n, "output channels " + std::to_string(p->out_channels) +
                      " not divisible by group " + std::to_string(group_));
    if (!kernel_shape_.empty() &&
        kernel_shape_ != std::vector<int64_t>(w.shape().begin() + 2, w.shape().end()))
      FailNode(n, "kernel_shape " + ShapeToString(kernel_shape_) + " does not match the weight " +
                      ShapeToString(w.shape()));
    Int8Weights q = ToInt8Weights(n, w, wzp, p->out_channels, "w");
    // Pack for a nominal geometry (the kernel-sized input); Run supplies the real one.
    kernels::QConvShape s;
    s.in_channels = p->in_per_group * group_;
    s.out_channels = p->out_channels;
    s.group = group_;
    s.kernel_h = p->kh;
    s.kernel_w = p->kw;
    s.in_h = p->kh;
    s.in_w = p->kw;
    try {
      p->weights = PackedQConvWeights::Pack(s, q.codes.data(), q.zero_points);
    } catch (const Error& e) {
      FailNode(n, e.what());
    }
    if (channels_last_ && group_ > 1 && p->in_per_group == 1 && p->out_channels == group_ &&
        p->rank == 2) {
      try {
        p->dw_nhwc.push_back(kernels::PackedQDepthwiseNhwc::Pack(
            group_, p->kh, p->kw, q.codes.data(), q.zero_points.data(),
            static_cast<int64_t>(q.zero_points.size())));
      } catch (const Error& e) {
        FailNode(n, e.what());
      }
    }
    if (group_ > 1 && p->in_per_group == 1) {
      p->codes = std::move(q.codes);
      p->zero_points = std::move(q.zero_points);
    }
    return p;
  }

  kernels::QConvShape Geometry(const Shape& xs, const Packed& p) const {
    const ir::Node& n = node_;
    const size_t r = static_cast<size_t>(p.rank);
    if (xs.size() != r + 2)
      FailNode(n, "input x " + ShapeToString(xs) + " must have rank " + std::to_string(r + 2) +
                      " for this weight");
    if (xs[1] != p.in_per_group * group_)
      FailNode(n, "input has " + std::to_string(xs[1]) + " channels, the weight with group " +
                      std::to_string(group_) + " expects " +
                      std::to_string(p.in_per_group * group_));
    auto fill = [&](std::vector<int64_t> v, size_t len, int64_t def, const char* name) {
      if (v.empty()) v.assign(len, def);
      if (v.size() != len)
        FailNode(n, std::string("attribute ") + name + " has " + std::to_string(v.size()) +
                        " values, expected " + std::to_string(len));
      return v;
    };
    const std::vector<int64_t> st = fill(strides_, r, 1, "strides");
    const std::vector<int64_t> dl = fill(dilations_, r, 1, "dilations");
    std::vector<int64_t> pd = fill(pads_, 2 * r, 0, "pads");
    const int64_t k[2] = {r == 2 ? p.kh : p.kw, p.kw};
    if (auto_pad_ != "NOTSET") {
      for (size_t d = 0; d < r; ++d) {
        int64_t lo = 0, hi = 0;
        if (auto_pad_ != "VALID") {
          const int64_t in = xs[2 + d], s = st[d], span = dl[d] * (k[d] - 1) + 1;
          const int64_t out = (in + s - 1) / s;
          const int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in);
          lo = auto_pad_ == "SAME_UPPER" ? total / 2 : total - total / 2;
          hi = total - lo;
        }
        pd[d] = lo;
        pd[d + r] = hi;
      }
    }
    kernels::QConvShape s;
    s.batch = xs[0];
    s.in_channels = xs[1];
    s.out_channels = p.out_channels;
    s.group = group_;
    s.kernel_h = p.kh;
    s.kernel_w = p.kw;
    if (r == 2) {
      s.in_h = xs[2];
      s.in_w = xs[3];
      s.stride_h = st[0];
      s.stride_w = st[1];
      s.dilation_h = dl[0];
      s.dilation_w = dl[1];
      s.pad_top = pd[0];
      s.pad_left = pd[1];
      s.pad_bottom = pd[2];
      s.pad_right = pd[3];
    } else {
      s.in_h = 1;
      s.in_w = xs[2];
      s.stride_w = st[0];
      s.dilation_w = dl[0];
      s.pad_left = pd[0];
      s.pad_right = pd[1];
    }
    try {
      s.Validate();
    } catch (const Error& e) {
      FailNode(n, std::string(e.what()) + " (input " + ShapeToString(xs) + ")");
    }
    return s;
  }

  ir::Node node_;
  bool qlinear_;
  Clamp clamp_;
  std::string auto_pad_;
  int64_t group_ = 1;
  bool channels_last_ = false;
  std::vector<int64_t> kernel_shape_, strides_, dilations_, pads_;
  std::shared_ptr<const Packed> packed_;     // when w (and its zero point) are constant
  std::vector<FixedMultiplier> const_mult_;  // when x_scale, w_scale, y_scale are constant
  std::string desc_ = node_.Describe();      // for Arg's messages, made once
  std::mutex geo_mu_;                        // guards geo_ (Run may be called concurrently)
  std::shared_ptr<const Geo> geo_;           // the last input shape's geometry (constant weights)
};

// ---------------------------------------------------------------------------------------------
// QLinearMatMul, MatMulInteger, com.microsoft QGemm, qforge::QLinearMatMul / QGemm.

enum class MatMulKind { kQLinear, kInteger, kQGemm };

class QMatMulOp final : public OpKernel {
 public:
  QMatMulOp(const OpInit& init, MatMulKind kind)
      : node_(init.node), kind_(kind), clamp_(Clamp::Parse(init.node)) {
    const ir::Node& n = node_;
    switch (kind_) {
      case MatMulKind::kQLinear:
        CheckArity(n, 8, 8, 1, 1);
        break;
      case MatMulKind::kInteger:
        CheckArity(n, 2, 4, 1, 1);
        break;
      case MatMulKind::kQGemm:
        CheckArity(n, 6, 9, 1, 1);
        alpha_ = n.attr_float("alpha", 1.0f);
        trans_a_ = n.attr_int("transA", 0) != 0;
        trans_b_ = n.attr_int("transB", 0) != 0;
        break;
    }
    const Tensor& b = init.constant(kB());
    const bool zp_const = !n.has_input(kBZp()) || init.constant(kBZp()).defined();
    if (b.defined() && zp_const) packed_ = PackB(b, init.constant(kBZp()));
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const ir::Node& n = node_;
    const std::string desc = n.Describe();
    const Tensor& a = Arg(in, 0, desc);
    const Tensor& b = Arg(in, kB(), desc);
    Require8Bit(n, a, "A");
    std::shared_ptr<const PackedB> pb = packed_;
    if (!pb) pb = PackB(b, Opt(in, kBZp()));
    const int64_t K = pb->K, N = pb->N;

    // A as a stack of [M, K] matrices.
    Shape a_shape = a.shape();
    Tensor a_t = a;
    if (kind_ == MatMulKind::kQGemm) {
      if (a.rank() != 2) FailNode(n, "A must be 2-D, got " + ShapeToString(a.shape()));
      if (trans_a_) {
        const int64_t perm[2] = {1, 0};
        a_t = kernels::Transpose(a, perm);
        a_shape = a_t.shape();
      }
    }
    const bool a_vec = a_shape.size() == 1;
    if (a_vec) a_shape.insert(a_shape.begin(), 1);
    if (a_shape.size() < 2) FailNode(n, "A must have rank >= 1");
    const int64_t M = a_shape[a_shape.size() - 2];
    if (a_shape.back() != K)
      FailNode(n, "A " + ShapeToString(a.shape()) + " and B " + ShapeToString(b.shape()) +
                      " do not agree on K");
    const Shape a_batch(a_shape.begin(), a_shape.end() - 2);
    Shape batch;
    try {
      batch = kernels::BroadcastShape(a_batch, pb->batch);
    } catch (const Error& e) {
      FailNode(n, e.what());
    }
    Shape y_shape = batch;
    if (!a_vec) y_shape.push_back(M);
    if (!pb->b_vec) y_shape.push_back(N);

    kernels::QGemmA qa;
    qa.is_signed = a.dtype() == DType::kI8;
    qa.ld = K;
    qa.zero_point = ScalarZp(n, Opt(in, 2), a.dtype(), "a_zero_point");

    // The output stage.
    QGemmOutput out = QGemmOutput::Int32();
    std::vector<FixedMultiplier> mult;
    std::vector<float> fscale;
    DType y_type = DType::kI32;
    Tensor bias_t;  // int32, QGemm's C
    if (kind_ != MatMulKind::kInteger) {
      const float sa = ScalarScale(n, Arg(in, 1, desc), "a_scale");
      const std::vector<float> sb = ChannelScales(n, Arg(in, 4, desc), N, "b_scale");
      const size_t ys_i = kind_ == MatMulKind::kQGemm ? 7 : 6;
      const Tensor ys = Opt(in, ys_i), yzp = Opt(in, ys_i + 1);
      if (kind_ == MatMulKind::kQGemm) bias_t = Opt(in, 6);
      if (ys.defined()) {
        const float sy = ScalarScale(n, ys, "y_scale");
        y_type = yzp.defined() ? yzp.dtype() : a.dtype();
        Require8Bit(n, yzp.defined() ? yzp : a, "y_zero_point");
        const int32_t zy = ScalarZp(n, yzp, y_type, "y_zero_point");
        int32_t qmin, qmax;
        clamp_.Range(n, y_type, qmin, qmax);
        mult = Multipliers(n, alpha_, sa, sb, sy);
        out = QGemmOutput::Quantized(y_type == DType::kI8, nullptr, mult.data(),
                                     static_cast<int64_t>(mult.size()), zy, qmin, qmax);
      } else {
        // com.microsoft QGemm without y_scale: float output alpha * s_a * s_b * (acc + C).
        if (yzp.defined()) FailNode(n, "y_zero_point given without y_scale");
        y_type = DType::kF32;
        for (float s : sb) fscale.push_back(static_cast<float>(double(alpha_) * sa * s));
        out = QGemmOutput::Float(nullptr, fscale.data(), static_cast<int64_t>(fscale.size()));
      }
    }
    Tensor y(y_type, y_shape);
    if (y.numel() == 0) return {y};

    // QGemm's bias C: [N] / [1, N] / scalar go to the kernel's per-column bias; [M, 1] and
    // [M, N] are added to the int32 accumulators before the output stage.
    std::vector<int32_t> col_bias;
    Tensor full_bias;  // [M, N] int32 when C varies along M
    if (bias_t.defined()) {
      if (bias_t.dtype() != DType::kI32)
        FailNode(n, "C must be int32, got " + TypeText(bias_t.dtype()));
      const Shape& cs = bias_t.shape();
      const bool per_col = bias_t.numel() == 1 || (cs.size() == 1 && cs[0] == N) ||
                           (cs.size() == 2 && cs[0] == 1 && cs[1] == N);
      if (per_col) {
        col_bias.resize(N);
        for (int64_t j = 0; j < N; ++j)
          col_bias[j] = bias_t.data<int32_t>()[bias_t.numel() == 1 ? 0 : j];
        out.bias = col_bias.data();
      } else if (cs.size() == 2 && cs[0] == M && (cs[1] == 1 || cs[1] == N)) {
        full_bias = kernels::Expand(bias_t, {M, N});
      } else {
        FailNode(n, "C " + ShapeToString(cs) + " does not broadcast to [" + std::to_string(M) +
                        ", " + std::to_string(N) + "]");
      }
    }

    const int64_t esize = static_cast<int64_t>(DTypeSize(y_type));
    const int64_t a_batches = [&] {
      int64_t p = 1;
      for (int64_t d : a_batch) p *= d;
      return p;
    }();
    const auto* a_data = static_cast<const uint8_t*>(a_t.raw());
    auto* y_data = static_cast<uint8_t*>(y.raw());
    if (!full_bias.defined() && pb->slices.size() == 1) {
      // One B for every batch: all rows of A in one GEMM (A's batch is the output's batch).
      qa.data = a_data;
      kernels::QGemm(a_batches * M, qa, pb->slices[0], out, y_data, N, ctx.threads);
      return {y};
    }
    if (full_bias.defined()) {
      // int32 accumulators + C, then the same output stage per element (numerics::Requantize).
      Tensor acc(DType::kI32, {M, N});
      qa.data = a_data;
      kernels::QGemm(M, qa, pb->slices[0], QGemmOutput::Int32(), acc.raw(), N, ctx.threads);
      int32_t* accp = acc.data<int32_t>();
      const int32_t* cb = full_bias.data<int32_t>();
      for (int64_t i = 0; i < M * N; ++i)
        accp[i] =
            static_cast<int32_t>(static_cast<uint32_t>(accp[i]) + static_cast<uint32_t>(cb[i]));
      for (int64_t i = 0; i < M; ++i) {
        for (int64_t j = 0; j < N; ++j) {
          const int32_t v = accp[i * N + j];
          if (y_type == DType::kF32) {
            y.data<float>()[i * N + j] = static_cast<float>(v) * fscale[fscale.size() == 1 ? 0 : j];
          } else {
            const int32_t q = numerics::Requantize(v, mult[mult.size() == 1 ? 0 : j],
                                                   out.zero_point, out.qmin, out.qmax);
            if (y_type == DType::kI8)
              y.data<int8_t>()[i * N + j] = static_cast<int8_t>(q);
            else
              y.data<uint8_t>()[i * N + j] = static_cast<uint8_t>(q);
          }
        }
      }
      return {y};
    }
    // Broadcast batches: output batch index -> A's and B's batch index.
    const size_t br = batch.size();
    auto index_of = [&](int64_t flat, const Shape& s) {
      // s is right-aligned against batch; broadcast dims (size 1) contribute 0.
      int64_t idx = 0, stride = 1;
      for (size_t d = 0; d < br; ++d) {
        const size_t bd = br - 1 - d;
        const int64_t coord = flat % batch[bd];
        flat /= batch[bd];
        if (d < s.size()) {
          const int64_t sd = s[s.size() - 1 - d];
          idx += (sd == 1 ? 0 : coord) * stride;
          stride *= sd;
        }
      }
      return idx;
    };
    int64_t total = 1;
    for (int64_t d : batch) total *= d;
    for (int64_t t = 0; t < total; ++t) {
      qa.data = a_data + index_of(t, a_batch) * M * K * DTypeSize(a.dtype());
      const PackedB::Slice& slice = pb->slices[index_of(t, pb->batch)];
      kernels::QGemm(M, qa, slice, out, y_data + t * M * N * esize, N, ctx.threads);
    }
    return {y};
  }

 private:
  struct PackedB {
    using Slice = PackedQGemmB;
    int64_t K = 0, N = 0;
    bool b_vec = false;  // B was 1-D [K] (MatMul): the output drops N
    Shape batch;         // B's batch dims
    std::vector<PackedQGemmB> slices;
  };

  size_t kB() const { return kind_ == MatMulKind::kInteger ? 1 : 3; }
  size_t kBZp() const { return kind_ == MatMulKind::kInteger ? 3 : 5; }

  std::shared_ptr<const PackedB> PackB(const Tensor& b, const Tensor& bzp) const {
    const ir::Node& n = node_;
    auto p = std::make_shared<PackedB>();
    Shape bs = b.shape();
    bool trans = false;
    if (kind_ == MatMulKind::kQGemm) {
      if (bs.size() != 2) FailNode(n, "B must be 2-D, got " + ShapeToString(bs));
      trans = trans_b_;
      p->K = trans ? bs[1] : bs[0];
      p->N = trans ? bs[0] : bs[1];
    } else {
      if (bs.empty()) FailNode(n, "B must have rank >= 1");
      if (bs.size() == 1) {
        p->b_vec = true;
        bs.push_back(1);
      }
      p->K = bs[bs.size() - 2];
      p->N = bs.back();
      p->batch.assign(bs.begin(), bs.end() - 2);
    }
    if (p->K > kernels::kMaxQGemmK)
      FailNode(n, "K = " + std::to_string(p->K) + " exceeds the int8 GEMM limit " +
                      std::to_string(kernels::kMaxQGemmK));
    const Int8Weights q = ToInt8Weights(n, b, bzp, p->N, "B");
    int64_t slices = 1;
    for (int64_t d : p->batch) slices *= d;
    const int64_t kn = p->K * p->N;
    try {
      for (int64_t s = 0; s < slices; ++s)
        p->slices.push_back(PackedQGemmB::Pack(p->K, p->N, q.codes.data() + s * kn,
                                               trans ? p->K : p->N, trans, q.zero_points));
    } catch (const Error& e) {
      FailNode(n, e.what());
    }
    if (slices == 0) p->slices.push_back(PackedQGemmB());
    return p;
  }

  ir::Node node_;
  MatMulKind kind_;
  Clamp clamp_;
  float alpha_ = 1.0f;
  bool trans_a_ = false, trans_b_ = false;
  std::shared_ptr<const PackedB> packed_;
};

// ---------------------------------------------------------------------------------------------
// DynamicQuantizeLinear (ONNX): uint8 with a scale and zero point from the data's range.
//   lo = min(0, min(x)), hi = max(0, max(x)), y_scale = (hi - lo) / 255   (float arithmetic)
//   y_zero_point = saturate(round_half_even(0 - lo / y_scale))
//   y = saturate(round_half_even(x / y_scale) + y_zero_point)            (numerics::QuantizeValue)
// An all-zero input (hi == lo == 0) gives y_scale = 0 as the formula does; its zero point and
// every y are then 0 (ONNX leaves 0 / 0 undefined; this is the value that dequantizes to 0).
// NaN inputs: min/max ignore them and they quantize to the zero point.
std::vector<Tensor> RunDynamicQuantizeLinear(const ir::Node& n, std::span<const Tensor> in) {
  const Tensor& x = Arg(in, 0, n.Describe());
  if (x.dtype() != DType::kF32) FailNode(n, "input x must be float32, got " + TypeText(x.dtype()));
  const float* xs = x.data<float>();
  float lo = 0.0f, hi = 0.0f;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::isinf(xs[i])) FailNode(n, "input x contains an infinity");
    lo = std::min(lo, xs[i]);
    hi = std::max(hi, xs[i]);
  }
  const float scale = (hi - lo) / 255.0f;
  Tensor y(DType::kU8, x.shape());
  uint8_t* ys = y.data<uint8_t>();
  int32_t zp = 0;
  if (scale > 0) {
    zp = static_cast<int32_t>(std::clamp(numerics::RoundHalfEven(0.0f - lo / scale), 0.0f, 255.0f));
    const numerics::QuantParams p{scale, zp};
    for (int64_t i = 0; i < x.numel(); ++i)
      ys[i] = static_cast<uint8_t>(numerics::QuantizeValue(xs[i], p, 0, 255));
  } else {
    std::fill(ys, ys + x.numel(), uint8_t{0});
  }
  return {y, Tensor::Scalar(scale), Tensor::Scalar(static_cast<uint8_t>(zp))};
}

// ---------------------------------------------------------------------------------------------
// com.microsoft QLinearAdd / QLinearMul: C = quantize(dequantize(A) op dequantize(B)) with numpy
// broadcasting. Inputs A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale,
// C_zero_point?; A, B and C share one 8-bit type. Integer arithmetic: kernels/qelementwise.h.
std::unique_ptr<OpKernel> MakeQLinearBinary(const OpInit& init, bool add) {
  const ir::Node& n = init.node;
  CheckArity(n, 7, 8, 1, 1);
  return MakeLambdaOp([n, add](const OpContext& ctx, std::span<const Tensor> in) {
    const std::string desc = n.Describe();
    const Tensor& a = Arg(in, 0, desc);
    const Tensor& b = Arg(in, 3, desc);
    Require8Bit(n, a, "A");
    if (b.dtype() != a.dtype())
      FailNode(n, "A and B must have the same type, got " + TypeText(a.dtype()) + " and " +
                      TypeText(b.dtype()));
    const DType t = a.dtype();
    const float sa = ScalarScale(n, Arg(in, 1, desc), "A_scale");
    const int32_t za = ScalarZp(n, Opt(in, 2), t, "A_zero_point");
    const float sb = ScalarScale(n, Arg(in, 4, desc), "B_scale");
    const int32_t zb = ScalarZp(n, Opt(in, 5), t, "B_zero_point");
    const float sc = ScalarScale(n, Arg(in, 6, desc), "C_scale");
    const int32_t zc = ScalarZp(n, Opt(in, 7), t, "C_zero_point");
    Shape out_shape;
    try {
      out_shape = kernels::BroadcastShape(a.shape(), b.shape());
    } catch (const Error& e) {
      FailNode(n, e.what());
    }
    Tensor y = Tensor::Uninitialized(t, out_shape);  // QAdd / QMul write every element
    const int64_t total = y.numel();
    if (total == 0) return std::vector<Tensor>{y};
    // Same shape: element by element; a one-element operand: broadcast scalar; otherwise the
    // operands are expanded to the output shape first.
    auto operand = [&](const Tensor& x, int64_t& step) {
      if (x.numel() == 1) {
        step = 0;
        return x;
      }
      step = 1;
      return x.shape() == out_shape ? x : kernels::Expand(x, out_shape);
    };
    int64_t as = 1, bs = 1;
    const Tensor ax = operand(a, as), bx = operand(b, bs);
    const bool is_signed = t == DType::kI8;
    if (add) {
      kernels::QAdd(is_signed, ax.raw(), as, bx.raw(), bs, y.raw(), total,
                    kernels::QAddParams::Make(sa, za, sb, zb, sc, zc, TypeMin(t), TypeMax(t)),
                    kernels::ActiveIsa(), ctx.threads);
    } else {
      kernels::QMul(is_signed, ax.raw(), as, bx.raw(), bs, y.raw(), total,
                    kernels::QMulParams::Make(sa, za, sb, zb, sc, zc, TypeMin(t), TypeMax(t)),
                    kernels::ActiveIsa(), ctx.threads);
    }
    return std::vector<Tensor>{y};
  });
}

// com.microsoft QLinearConcat: inputs Y_scale, Y_zero_point, then (X_i, X_i_scale,
// X_i_zero_point) triples; attribute axis. Each input is requantized to Y's parameters,
// y = Requantize(x - z_i, M_i = s_i / s_y, z_y) (copied when its parameters equal Y's), then
// concatenated.
std::unique_ptr<OpKernel> QLinearConcat(const OpInit& init) {
  const ir::Node& n = init.node;
  if (n.inputs.size() < 5 || (n.inputs.size() - 2) % 3 != 0)
    FailNode(n, "expects Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples, got " +
                    std::to_string(n.inputs.size()) + " inputs");
  CheckArity(n, 0, n.inputs.size(), 1, 1);
  const int64_t axis = n.attr_int("axis");
  return MakeLambdaOp([n, axis](const OpContext&, std::span<const Tensor> in) {
    const std::string desc = n.Describe();
    const size_t count = (in.size() - 2) / 3;
    const float sy = ScalarScale(n, Arg(in, 0, desc), "Y_scale");
    const Tensor& first = Arg(in, 2, desc);
    Require8Bit(n, first, "X0");
    const DType t = first.dtype();
    const int32_t zy = ScalarZp(n, Arg(in, 1, desc), t, "Y_zero_point");
    std::vector<Tensor> parts;
    for (size_t i = 0; i < count; ++i) {
      const Tensor& x = Arg(in, 2 + 3 * i, desc);
      if (x.dtype() != t)
        FailNode(n, "input " + std::to_string(i) + " has type " + TypeText(x.dtype()) +
                        ", expected " + TypeText(t));
      const float sx = ScalarScale(n, Arg(in, 3 + 3 * i, desc), "X_scale");
      const int32_t zx = ScalarZp(n, Opt(in, 4 + 3 * i), t, "X_zero_point");
      if (sx == sy && zx == zy) {
        parts.push_back(x);
        continue;
      }
      const FixedMultiplier m = Multipliers(n, 1.0, sx, {1.0f}, sy)[0];
      Tensor r(t, x.shape());
      for (int64_t j = 0; j < x.numel(); ++j) {
        const int32_t v = static_cast<int32_t>(x.GetAsInt64(j)) - zx;  // |v| <= 255
        const int32_t q = numerics::Requantize(v, m, zy, TypeMin(t), TypeMax(t));
        if (t == DType::kI8)
          r.data<int8_t>()[j] = static_cast<int8_t>(q);
        else
          r.data<uint8_t>()[j] = static_cast<uint8_t>(q);
      }
      parts.push_back(r);
    }
    const int64_t ax = NormalizeAxis(axis, first.rank(), desc);
    for (const Tensor& p : parts) {
      if (p.rank() != first.rank())
        FailNode(n, "inputs must have the same rank, got " + ShapeToString(first.shape()) +
                        " and " + ShapeToString(p.shape()));
      for (int64_t d = 0; d < p.rank(); ++d)
        if (d != ax && p.dim(d) != first.dim(d))
          FailNode(n, "input shapes " + ShapeToString(first.shape()) + " and " +
                          ShapeToString(p.shape()) + " differ outside axis " + std::to_string(ax));
    }
    return std::vector<Tensor>{kernels::Concat(parts, ax)};
  });
}

// com.microsoft QLinearAveragePool (2-D, or 1-D as H = 1) and QLinearGlobalAveragePool: inputs
// X, x_scale, x_zero_point?, y_scale, y_zero_point?; channels_last = 1 means NHWC. The window
// sums (x - z_x) exactly and divides by the count through Requantize (M = s_x / (s_y count)).
std::unique_ptr<OpKernel> MakeQLinearPool(const OpInit& init, bool global) {
  const ir::Node& n = init.node;
  CheckArity(n, 4, 5, 1, 1);
  struct Attrs {
    bool channels_last = false, ceil_mode = false, count_include_pad = false;
    std::string auto_pad;
    std::vector<int64_t> kernel, strides, pads;
  } at;
  at.channels_last = n.attr_int("channels_last", 0) != 0;
  if (!global) {
    at.auto_pad = n.attr_string("auto_pad", "NOTSET");
    if (at.auto_pad != "NOTSET" && at.auto_pad != "VALID" && at.auto_pad != "SAME_UPPER" &&
        at.auto_pad != "SAME_LOWER")
      FailNode(n, "unknown auto_pad '" + at.auto_pad + "'");
    at.ceil_mode = n.attr_int("ceil_mode", 0) != 0;
    at.count_include_pad = n.attr_int("count_include_pad", 0) != 0;
    at.kernel = n.attr_ints("kernel_shape");
    at.strides = n.attr_ints("strides", {});
    at.pads = n.attr_ints("pads", {});
    if (at.kernel.empty() || at.kernel.size() > 2)
      FailNode(n, "kernel_shape must have 1 or 2 values (1-D or 2-D pooling)");
    for (int64_t k : at.kernel)
      if (k < 1) FailNode(n, "kernel_shape must be >= 1");
    for (int64_t s : at.strides)
      if (s < 1) FailNode(n, "strides must be >= 1");
    for (int64_t p : at.pads)
      if (p < 0) FailNode(n, "pads must be >= 0");
  }
  return MakeLambdaOp([n, at, global](const OpContext& ctx, std::span<const Tensor> in) {
    const std::string desc = n.Describe();
    Tensor x = Arg(in, 0, desc);
    Require8Bit(n, x, "X");
    const DType t = x.dtype();
    kernels::QPoolParams p;
    p.x_scale = ScalarScale(n, Arg(in, 1, desc), "x_scale");
    p.zx = ScalarZp(n, Opt(in, 2), t, "x_zero_point");
    p.y_scale = ScalarScale(n, Arg(in, 3, desc), "y_scale");
    p.zy = ScalarZp(n, Opt(in, 4), t, "y_zero_point");
    p.qmin = TypeMin(t);
    p.qmax = TypeMax(t);
    const bool is_signed = t == DType::kI8;
    if (x.rank() < 3) FailNode(n, "X must have rank >= 3, got " + ShapeToString(x.shape()));
    if (global && at.channels_last) {  // [N, spatial..., C]: per-channel sums, no transpose
      Shape ys(x.rank(), 1);
      ys[0] = x.dim(0);
      ys.back() = x.dim(x.rank() - 1);
      Tensor y(t, ys);
      if (y.numel() > 0)
        kernels::QGlobalAveragePoolNhwc(is_signed, x.dim(0), x.numel() / y.numel(), ys.back(), p,
                                        x.raw(), y.raw());
      return std::vector<Tensor>{y};
    }
    // Work in channels-first layout.
    std::vector<int64_t> to_first, to_last;
    if (at.channels_last) {
      to_first = {0, x.rank() - 1};
      to_last = {0};
      for (int64_t d = 1; d < x.rank() - 1; ++d) to_first.push_back(d);
      for (int64_t d = 2; d < x.rank(); ++d) to_last.push_back(d);
      to_last.push_back(1);
      x = kernels::Transpose(x, to_first);
    }
    const int64_t planes = x.dim(0) * x.dim(1);
    Tensor y;
    if (global) {
      int64_t hw = 1;
      for (int64_t d = 2; d < x.rank(); ++d) hw *= x.dim(d);
      Shape ys(x.rank(), 1);
      ys[0] = x.dim(0);
      ys[1] = x.dim(1);
      y = Tensor(t, ys);
      if (planes > 0)
        kernels::QGlobalAveragePool(is_signed, planes, hw, p, x.raw(), y.raw(), ctx.threads);
    } else {
      const size_t r = at.kernel.size();
      if (static_cast<size_t>(x.rank()) != r + 2)
        FailNode(n, "X " + ShapeToString(x.shape()) + " does not match kernel_shape of " +
                        std::to_string(r) + " values");
      std::vector<int64_t> st = at.strides.empty() ? std::vector<int64_t>(r, 1) : at.strides;
      std::vector<int64_t> pd = at.pads.empty() ? std::vector<int64_t>(2 * r, 0) : at.pads;
      if (st.size() != r || pd.size() != 2 * r)
        FailNode(n, "strides / pads do not match kernel_shape");
      std::vector<int64_t> out(r);
      for (size_t d = 0; d < r; ++d) {
        const int64_t in_d = x.dim(2 + d), k = at.kernel[d], s = st[d];
        if (at.auto_pad == "SAME_UPPER" || at.auto_pad == "SAME_LOWER") {
          out[d] = (in_d + s - 1) / s;
          const int64_t total = std::max<int64_t>(0, (out[d] - 1) * s + k - in_d);
          pd[d] = at.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
          pd[d + r] = total - pd[d];
        } else {
          if (at.auto_pad == "VALID") pd[d] = pd[d + r] = 0;
          const int64_t span = in_d + pd[d] + pd[d + r] - k;
          if (span < 0) FailNode(n, "kernel is larger than the padded input");
          out[d] = (at.ceil_mode ? (span + s - 1) / s : span / s) + 1;
          // ceil_mode: the last window must start inside the input or the left padding.
          if (at.ceil_mode && (out[d] - 1) * s >= in_d + pd[d]) --out[d];
        }
      }
      kernels::QPoolShape s;
      s.planes = planes;
      s.in_h = r == 2 ? x.dim(2) : 1;
      s.in_w = x.dim(x.rank() - 1);
      s.out_h = r == 2 ? out[0] : 1;
      s.out_w = out[r - 1];
      s.kernel_h = r == 2 ? at.kernel[0] : 1;
      s.kernel_w = at.kernel[r - 1];
      s.stride_h = r == 2 ? st[0] : 1;
      s.stride_w = st[r - 1];
      s.pad_top = r == 2 ? pd[0] : 0;
      s.pad_bottom = r == 2 ? pd[2] : 0;
      s.pad_left = r == 2 ? pd[1] : pd[0];
      s.pad_right = r == 2 ? pd[3] : pd[1];
      s.count_include_pad = at.count_include_pad;
      Shape ys = {x.dim(0), x.dim(1)};
      ys.insert(ys.end(), out.begin(), out.end());
      y = Tensor(t, ys);
      if (y.numel() > 0) {
        try {
          kernels::QAveragePool(is_signed, s, p, x.raw(), y.raw(), ctx.threads);
        } catch (const Error& e) {
          FailNode(n, e.what());
        }
      }
    }
    if (at.channels_last) y = kernels::Transpose(y, to_last);
    return std::vector<Tensor>{y};
  });
}

// qforge::MaxPool (channels_last = 1, made by the ChannelsLastInt8 pass): ONNX MaxPool on an
// 8-bit [N, H, W, C] tensor, 2-D, explicit pads (auto_pad NOTSET), ceil_mode 0, dilations 1, one
// output. out = (in + pad_begin + pad_end - k) / stride + 1 per spatial axis.
std::unique_ptr<OpKernel> MakeMaxPoolNhwc(const OpInit& init) {
  const ir::Node& n = init.node;
  CheckArity(n, 1, 1, 1, 1);
  if (n.attr_int("channels_last", 0) != 1) FailNode(n, "qforge::MaxPool needs channels_last = 1");
  const std::vector<int64_t> k = n.attr_ints("kernel_shape");
  const std::vector<int64_t> st = n.attr_ints("strides", {1, 1});
  const std::vector<int64_t> pd = n.attr_ints("pads", {0, 0, 0, 0});
  if (k.size() != 2 || st.size() != 2 || pd.size() != 4)
    FailNode(n, "needs 2-D kernel_shape, strides and 4 pads");
  if (n.attr_string("auto_pad", "NOTSET") != "NOTSET" || n.attr_int("ceil_mode", 0) != 0 ||
      n.attr_ints("dilations", {1, 1}) != std::vector<int64_t>{1, 1})
    FailNode(n, "supports auto_pad NOTSET, ceil_mode 0 and dilations 1 only");
  for (int64_t v : k)
    if (v < 1) FailNode(n, "kernel_shape must be >= 1");
  for (int64_t v : st)
    if (v < 1) FailNode(n, "strides must be >= 1");
  for (int64_t v : pd)
    if (v < 0) FailNode(n, "pads must be >= 0");
  return MakeLambdaOp([n, k, st, pd](const OpContext& ctx, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, n.Describe());
    Require8Bit(n, x, "X");
    if (x.rank() != 4) FailNode(n, "X must be [N, H, W, C], got " + ShapeToString(x.shape()));
    kernels::QPoolShape s;
    s.planes = x.dim(0);
    s.in_h = x.dim(1);
    s.in_w = x.dim(2);
    s.kernel_h = k[0];
    s.kernel_w = k[1];
    s.stride_h = st[0];
    s.stride_w = st[1];
    s.pad_top = pd[0];
    s.pad_left = pd[1];
    s.pad_bottom = pd[2];
    s.pad_right = pd[3];
    const int64_t span_h = s.in_h + pd[0] + pd[2] - k[0], span_w = s.in_w + pd[1] + pd[3] - k[1];
    if (span_h < 0 || span_w < 0) FailNode(n, "kernel is larger than the padded input");
    s.out_h = span_h / st[0] + 1;
    s.out_w = span_w / st[1] + 1;
    Tensor y = Tensor::Uninitialized(x.dtype(), {x.dim(0), s.out_h, s.out_w, x.dim(3)});
    if (y.numel() > 0 && s.in_h > 0 && s.in_w > 0)
      kernels::QMaxPoolNhwc(x.dtype() == DType::kI8, s, x.dim(3), x.raw(), y.raw(), ctx.threads);
    return std::vector<Tensor>{y};
  });
}

}  // namespace

std::unique_ptr<OpKernel> MakeMaxPoolNhwc8(const OpInit& init) { return MakeMaxPoolNhwc(init); }
std::unique_ptr<OpKernel> MakeQLinearAdd(const OpInit& init) {
  return MakeQLinearBinary(init, true);
}
std::unique_ptr<OpKernel> MakeQLinearMul(const OpInit& init) {
  return MakeQLinearBinary(init, false);
}
std::unique_ptr<OpKernel> MakeQLinearConcat(const OpInit& init) { return QLinearConcat(init); }
std::unique_ptr<OpKernel> MakeQLinearAveragePool(const OpInit& init) {
  return MakeQLinearPool(init, false);
}
std::unique_ptr<OpKernel> MakeQLinearGlobalAveragePool(const OpInit& init) {
  return MakeQLinearPool(init, true);
}
std::unique_ptr<OpKernel> MakeDynamicQuantizeLinear(const OpInit& init) {
  CheckArity(init.node, 1, 1, 3, 3);
  return MakeSimpleOp(init.node, RunDynamicQuantizeLinear);
}
std::unique_ptr<OpKernel> MakeQLinearConv(const OpInit& init) {
  return std::make_unique<QConvOp>(init, true);
}
std::unique_ptr<OpKernel> MakeConvInteger(const OpInit& init) {
  return std::make_unique<QConvOp>(init, false);
}
std::unique_ptr<OpKernel> MakeQLinearMatMul(const OpInit& init) {
  return std::make_unique<QMatMulOp>(init, MatMulKind::kQLinear);
}
std::unique_ptr<OpKernel> MakeMatMulInteger(const OpInit& init) {
  return std::make_unique<QMatMulOp>(init, MatMulKind::kInteger);
}
std::unique_ptr<OpKernel> MakeQGemm(const OpInit& init) {
  return std::make_unique<QMatMulOp>(init, MatMulKind::kQGemm);
}

}  // namespace qforge::runtime
