// Neural-network ops with ONNX semantics: BatchNormalization, pooling, Softmax / LogSoftmax,
// LayerNormalization, Resize and Pad, plus qforge::FusedMatMul (MatMul + bias [+ Gelu]). Each
// factory parses and validates the node's attributes once; Run() checks shapes and calls the
// kernels in qforge/kernels/.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/gemm.h"
#include "qforge/kernels/norm.h"
#include "qforge/kernels/pad.h"
#include "qforge/kernels/pool.h"
#include "qforge/kernels/resize.h"
#include "qforge/kernels/softmax.h"
#include "qforge/kernels/transform.h"
#include "runtime/op_kernel.h"

namespace qforge::runtime {

namespace {

[[noreturn]] void Fail(const std::string& node, const std::string& msg) {
  throw Error(node + ": " + msg);
}

void RequireDType(const std::string& node, const Tensor& t, DType want, const std::string& what) {
  if (t.dtype() != want)
    Fail(node, what + " has type " + std::string(DTypeName(t.dtype())) + ", expected " +
                   std::string(DTypeName(want)));
}

// An input that must be given; throws naming the node otherwise.
const Tensor& Input(const std::string& node, std::span<const Tensor> in, size_t i,
                    const std::string& what) {
  if (i >= in.size() || !in[i].defined()) Fail(node, "missing input " + what);
  return in[i];
}

// Normalizes axis into [0, rank); throws naming the node when out of range.
int64_t NormalizeAxis(const std::string& node, int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    Fail(node,
         "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

// Rejects non-empty outputs from index `first` on (optional outputs we do not produce).
void RejectOutputsFrom(const ir::Node& node, size_t first, const std::string& why) {
  for (size_t i = first; i < node.outputs.size(); ++i)
    if (!node.outputs[i].empty())
      Fail(node.Describe(),
           "output " + std::to_string(i) + " ('" + node.outputs[i] + "') is not supported: " + why);
}

std::string JoinInts(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// ============================== BatchNormalization ==============================

class BatchNormOp final : public OpKernel {
 public:
  explicit BatchNormOp(const OpInit& init) : desc_(init.node.Describe()) {
    const ir::Node& n = init.node;
    epsilon_ = n.attr_float("epsilon", 1e-5f);
    if (!(epsilon_ >= 0.0f)) Fail(desc_, "epsilon must be >= 0");
    if (n.attr_int("training_mode", 0) != 0)
      Fail(desc_,
           "training_mode=1 is not supported (qforge runs BatchNormalization for inference)");
    // Opset < 9 had a 'spatial' attribute: 0 means one statistic per (channel, position).
    spatial_ = n.attr_int("spatial", 1) != 0;
    if (n.num_inputs() != 5)
      Fail(desc_, "expects 5 inputs (X, scale, B, input_mean, input_var), got " +
                      std::to_string(n.num_inputs()));
    RejectOutputsFrom(n, 1, "training statistics (running / saved mean and variance)");
    num_outputs_ = std::max<size_t>(1, n.outputs.size());
    bool all_const = true;
    for (size_t i = 1; i < 5; ++i) all_const = all_const && init.constant(i).defined();
    if (all_const) {
      std::vector<Tensor> p(init.constants.begin() + 1, init.constants.begin() + 5);
      Fold(p[0], p[1], p[2], p[3]);
      prepared_ = true;
    }
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const Tensor& x = Input(desc_, in, 0, "X");
    RequireDType(desc_, x, DType::kF32, "X");
    if (x.rank() < 2)
      Fail(desc_, "X must have rank >= 2 (N, C, ...), got shape " + ShapeToString(x.shape()));
    const int64_t n = x.shape()[0];
    int64_t c = x.shape()[1], s = x.numel() / std::max<int64_t>(1, n * c);
    if (n * c == 0) s = 0;
    if (!spatial_) {  // statistics per (channel, position): treat every position as a channel
      c *= s;
      s = 1;
    }
    if (!prepared_) Fold(in[1], in[2], in[3], in[4]);
    if (static_cast<int64_t>(a_.size()) != c)
      Fail(desc_, "scale/B/mean/var have " + std::to_string(a_.size()) + " values but X " +
                      ShapeToString(x.shape()) + " needs " + std::to_string(c));
    Tensor y = Tensor::Uninitialized(DType::kF32, x.shape());
    kernels::ChannelScaleShiftF32(n, c, s, x.data<float>(), a_.data(), b_.data(), y.data<float>(),
                                  ctx.threads);
    std::vector<Tensor> out{y};
    out.resize(num_outputs_);  // unnamed training outputs stay undefined
    return out;
  }

 private:
  // a = scale / sqrt(var + eps), b = B - mean * a.
  void Fold(const Tensor& scale, const Tensor& bias, const Tensor& mean, const Tensor& var) {
    const char* names[] = {"scale", "B", "input_mean", "input_var"};
    const Tensor* t[] = {&scale, &bias, &mean, &var};
    for (int i = 0; i < 4; ++i) {
      if (!t[i]->defined()) Fail(desc_, std::string("missing input ") + names[i]);
      RequireDType(desc_, *t[i], DType::kF32, names[i]);
      if (t[i]->numel() != scale.numel())
        Fail(desc_, std::string(names[i]) + " has " + std::to_string(t[i]->numel()) +
                        " values, scale has " + std::to_string(scale.numel()));
    }
    const int64_t c = scale.numel();
    a_.resize(c);
    b_.resize(c);
    kernels::BatchNormFold(c, scale.data<float>(), bias.data<float>(), mean.data<float>(),
                           var.data<float>(), epsilon_, a_.data(), b_.data());
  }

  std::string desc_;
  float epsilon_ = 1e-5f;
  bool spatial_ = true;
  bool prepared_ = false;
  size_t num_outputs_ = 1;
  std::vector<float> a_, b_;
};

// ============================== MaxPool / AveragePool ==============================

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

class PoolOp final : public OpKernel {
 public:
  PoolOp(const OpInit& init, bool is_max) : desc_(init.node.Describe()), is_max_(is_max) {
    const ir::Node& n = init.node;
    kernel_ = n.attr_ints("kernel_shape");
    const size_t nd = kernel_.size();
    if (nd == 0) Fail(desc_, "kernel_shape must not be empty");
    strides_ = n.attr_ints("strides", std::vector<int64_t>(nd, 1));
    dilations_ = n.attr_ints("dilations", std::vector<int64_t>(nd, 1));
    pads_ = n.attr_ints("pads", std::vector<int64_t>(2 * nd, 0));
    if (strides_.size() != nd || dilations_.size() != nd || pads_.size() != 2 * nd)
      Fail(desc_, "kernel_shape has " + std::to_string(nd) +
                      " dims, so strides and dilations need " + std::to_string(nd) +
                      " values and pads " + std::to_string(2 * nd) + " (got strides [" +
                      JoinInts(strides_) + "], dilations [" + JoinInts(dilations_) + "], pads [" +
                      JoinInts(pads_) + "])");
    for (size_t i = 0; i < nd; ++i) {
      if (kernel_[i] <= 0 || strides_[i] <= 0 || dilations_[i] <= 0)
        Fail(desc_, "kernel_shape, strides and dilations must be positive");
      if (pads_[i] < 0 || pads_[i + nd] < 0) Fail(desc_, "pads must be >= 0");
      // Bounds that keep all window arithmetic far from int64 overflow.
      constexpr int64_t kMax = int64_t{1} << 30;
      if (kernel_[i] > kMax || strides_[i] > kMax || dilations_[i] > kMax || pads_[i] > kMax ||
          pads_[i + nd] > kMax)
        Fail(desc_, "kernel_shape, strides, dilations or pads value is too large");
    }
    const std::string ap = n.attr_string("auto_pad", "NOTSET");
    if (ap == "NOTSET" || ap.empty())
      auto_pad_ = AutoPad::kNotSet;
    else if (ap == "SAME_UPPER")
      auto_pad_ = AutoPad::kSameUpper;
    else if (ap == "SAME_LOWER")
      auto_pad_ = AutoPad::kSameLower;
    else if (ap == "VALID")
      auto_pad_ = AutoPad::kValid;
    else
      Fail(desc_, "unknown auto_pad '" + ap + "' (NOTSET, SAME_UPPER, SAME_LOWER, VALID)");
    ceil_mode_ = n.attr_int("ceil_mode", 0) != 0;
    if (is_max_) {
      storage_order_ = static_cast<int>(n.attr_int("storage_order", 0));
      if (storage_order_ != 0 && storage_order_ != 1)
        Fail(desc_, "storage_order must be 0 (row major) or 1 (column major)");
      want_indices_ = n.outputs.size() > 1 && !n.outputs[1].empty();
      num_outputs_ = std::max<size_t>(1, n.outputs.size());
      RejectOutputsFrom(n, 2, "MaxPool has at most 2 outputs");
    } else {
      count_include_pad_ = n.attr_int("count_include_pad", 0) != 0;
      RejectOutputsFrom(n, 1, "AveragePool has one output");
    }
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const Tensor& x = Input(desc_, in, 0, "X");
    const size_t nd = kernel_.size();
    if (x.rank() != static_cast<int64_t>(nd) + 2)
      Fail(desc_, "X " + ShapeToString(x.shape()) + " must have rank " + std::to_string(nd + 2) +
                      " (N, C and the " + std::to_string(nd) + " dims of kernel_shape)");
    if (is_max_) {
      if (x.dtype() != DType::kF32 && x.dtype() != DType::kU8 && x.dtype() != DType::kI8)
        Fail(desc_,
             "X has type " + std::string(DTypeName(x.dtype())) + "; MaxPool supports f32, u8, i8");
    } else {
      RequireDType(desc_, x, DType::kF32, "X");
    }
    kernels::PoolGeometry g = Geometry(x.shape());
    Shape y_shape = {g.batch, g.channels};
    y_shape.insert(y_shape.end(), g.out.begin(), g.out.end());
    Tensor y(x.dtype(), y_shape);
    if (!is_max_) {
      if (nd == 2)
        kernels::AveragePool2dF32(g, count_include_pad_, x.data<float>(), y.data<float>(),
                                  ctx.threads);
      else
        kernels::AveragePoolRef(g, count_include_pad_, x.data<float>(), y.data<float>());
      return {y};
    }
    Tensor indices;
    if (want_indices_) indices = Tensor(DType::kI64, y_shape);
    int64_t* idx = want_indices_ ? indices.data<int64_t>() : nullptr;
    if (x.dtype() == DType::kF32 && nd == 2 && !want_indices_)
      kernels::MaxPool2dF32(g, x.data<float>(), y.data<float>(), ctx.threads);
    else if (x.dtype() == DType::kF32)
      kernels::MaxPoolRef<float>(g, x.data<float>(), y.data<float>(), idx, storage_order_);
    else if (x.dtype() == DType::kU8 && nd == 2 && !want_indices_)
      kernels::MaxPool2d<uint8_t>(g, x.data<uint8_t>(), y.data<uint8_t>(), ctx.threads);
    else if (x.dtype() == DType::kI8 && nd == 2 && !want_indices_)
      kernels::MaxPool2d<int8_t>(g, x.data<int8_t>(), y.data<int8_t>(), ctx.threads);
    else if (x.dtype() == DType::kU8)
      kernels::MaxPoolRef<uint8_t>(g, x.data<uint8_t>(), y.data<uint8_t>(), idx, storage_order_);
    else
      kernels::MaxPoolRef<int8_t>(g, x.data<int8_t>(), y.data<int8_t>(), idx, storage_order_);
    std::vector<Tensor> out{y};
    if (num_outputs_ > 1) out.push_back(indices);  // undefined when the name is empty
    return out;
  }

 private:
  // ONNX output-size rules, per spatial axis (eff = effective kernel = (k - 1) * d + 1):
  //   NOTSET      out = floor_or_ceil((in + pb + pe - eff) / s) + 1; with ceil_mode a last
  //               window that would start in the end padding is dropped (PyTorch / ONNX rule)
  //   VALID       pads 0, out = floor((in - eff) / s) + 1
  //   SAME_*      out = ceil(in / s), total pad = max(0, (out - 1) * s + eff - in), split evenly
  //               with the odd one at the end (SAME_UPPER) or the beginning (SAME_LOWER)
  kernels::PoolGeometry Geometry(const Shape& xs) const {
    const size_t nd = kernel_.size();
    kernels::PoolGeometry g;
    g.batch = xs[0];
    g.channels = xs[1];
    g.kernel = kernel_;
    g.strides = strides_;
    g.dilations = dilations_;
    for (size_t i = 0; i < nd; ++i) {
      const int64_t in = xs[2 + i], k = kernel_[i], s = strides_[i], d = dilations_[i];
      const int64_t eff = (k - 1) * d + 1;
      int64_t pb = 0, pe = 0, out = 0;
      switch (auto_pad_) {
        case AutoPad::kNotSet: {
          pb = pads_[i];
          pe = pads_[i + nd];
          const int64_t span = in + pb + pe - eff;
          if (span < 0)
            Fail(desc_, "kernel extent " + std::to_string(eff) + " exceeds the padded input " +
                            std::to_string(in + pb + pe) + " on spatial axis " + std::to_string(i));
          out = (ceil_mode_ ? (span + s - 1) / s : span / s) + 1;
          if (ceil_mode_ && (out - 1) * s >= in + pb) --out;
          break;
        }
        case AutoPad::kValid:
          if (in < eff)
            Fail(desc_, "kernel extent " + std::to_string(eff) + " exceeds input size " +
                            std::to_string(in) + " on spatial axis " + std::to_string(i));
          out = (in - eff) / s + 1;
          break;
        case AutoPad::kSameUpper:
        case AutoPad::kSameLower: {
          out = (in + s - 1) / s;
          const int64_t total = std::max<int64_t>(0, (out - 1) * s + eff - in);
          pb = auto_pad_ == AutoPad::kSameUpper ? total / 2 : total - total / 2;
          pe = total - pb;
          break;
        }
      }
      g.in.push_back(in);
      g.out.push_back(out);
      g.pads_begin.push_back(pb);
      g.pads_end.push_back(pe);
    }
    return g;
  }

  std::string desc_;
  bool is_max_;
  std::vector<int64_t> kernel_, strides_, dilations_, pads_;
  AutoPad auto_pad_ = AutoPad::kNotSet;
  bool ceil_mode_ = false;
  bool count_include_pad_ = false;
  int storage_order_ = 0;
  bool want_indices_ = false;
  size_t num_outputs_ = 1;
};

class GlobalAveragePoolOp final : public OpKernel {
 public:
  explicit GlobalAveragePoolOp(const OpInit& init) : desc_(init.node.Describe()) {}
  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const Tensor& x = Input(desc_, in, 0, "X");
    RequireDType(desc_, x, DType::kF32, "X");
    if (x.rank() < 2)
      Fail(desc_, "X must have rank >= 2 (N, C, ...), got shape " + ShapeToString(x.shape()));
    Shape y_shape(x.rank(), 1);
    y_shape[0] = x.shape()[0];
    y_shape[1] = x.shape()[1];
    int64_t plane = 1;
    for (int64_t a = 2; a < x.rank(); ++a) plane *= x.shape()[a];
    Tensor y = Tensor::Uninitialized(DType::kF32, y_shape);
    kernels::GlobalAveragePoolF32(y_shape[0] * y_shape[1], plane, x.data<float>(), y.data<float>(),
                                  ctx.threads);
    return {y};
  }

 private:
  std::string desc_;
};

// ============================== Softmax / LogSoftmax ==============================

class SoftmaxOp final : public OpKernel {
 public:
  SoftmaxOp(const OpInit& init, bool log) : desc_(init.node.Describe()), log_(log) {
    // Opset < 13: default axis 1 and the input is coerced to 2-D [prod(d[:axis]), prod(d[axis:])].
    // Opset >= 13 (and unknown opset 0, treated as current): default axis -1, one true axis.
    coerce_2d_ = init.opset > 0 && init.opset < 13;
    axis_ = init.node.attr_int("axis", coerce_2d_ ? 1 : -1);
  }
  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const Tensor& x = Input(desc_, in, 0, "input");
    RequireDType(desc_, x, DType::kF32, "input");
    if (x.rank() == 0) Fail(desc_, "input must have rank >= 1");
    const int64_t axis = NormalizeAxis(desc_, axis_, x.rank());
    int64_t outer = 1, len = 1, inner = 1;
    for (int64_t a = 0; a < x.rank(); ++a) {
      const int64_t d = x.shape()[a];
      if (a < axis)
        outer *= d;
      else if (a == axis || coerce_2d_)
        len *= d;
      else
        inner *= d;
    }
    Tensor y = Tensor::Uninitialized(DType::kF32, x.shape());
    kernels::SoftmaxF32(outer, len, inner, x.data<float>(), y.data<float>(), log_, ctx.threads);
    return {y};
  }

 private:
  std::string desc_;
  bool log_;
  bool coerce_2d_ = false;
  int64_t axis_ = -1;
};

// ============================== LayerNormalization ==============================

class LayerNormOp final : public OpKernel {
 public:
  explicit LayerNormOp(const OpInit& init) : desc_(init.node.Describe()) {
    const ir::Node& n = init.node;
    axis_ = n.attr_int("axis", -1);
    epsilon_ = n.attr_float("epsilon", 1e-5f);
    // stash_type selects the precision of mean / variance; we always use double, which is at
    // least as precise as any value ONNX allows.
    if (n.num_inputs() < 2) Fail(desc_, "expects inputs X and Scale (B optional)");
    RejectOutputsFrom(n, 3, "LayerNormalization has at most 3 outputs");
    for (size_t i = 0; i < 3; ++i) want_[i] = i < n.outputs.size() && !n.outputs[i].empty();
    num_outputs_ = std::max<size_t>(1, n.outputs.size());
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const Tensor& x = Input(desc_, in, 0, "X");
    const Tensor& scale = Input(desc_, in, 1, "Scale");
    RequireDType(desc_, x, DType::kF32, "X");
    RequireDType(desc_, scale, DType::kF32, "Scale");
    const bool has_bias = in.size() > 2 && in[2].defined();
    if (has_bias) RequireDType(desc_, in[2], DType::kF32, "B");
    if (x.rank() == 0) Fail(desc_, "X must have rank >= 1");
    const int64_t axis = NormalizeAxis(desc_, axis_, x.rank());
    const Shape norm_shape(x.shape().begin() + axis, x.shape().end());
    int64_t rows = 1, cols = 1;
    for (int64_t a = 0; a < x.rank(); ++a) (a < axis ? rows : cols) *= x.shape()[a];
    const std::vector<float> s = Broadcast(scale, norm_shape, "Scale");
    const std::vector<float> b =
        has_bias ? Broadcast(in[2], norm_shape, "B") : std::vector<float>();
    Tensor y = Tensor::Uninitialized(DType::kF32, x.shape());
    Shape stat_shape = x.shape();
    for (int64_t a = axis; a < x.rank(); ++a) stat_shape[a] = 1;
    Tensor mean(DType::kF32, stat_shape), inv_std(DType::kF32, stat_shape);
    kernels::LayerNormF32(rows, cols, x.data<float>(), s.data(), has_bias ? b.data() : nullptr,
                          epsilon_, y.data<float>(), mean.data<float>(), inv_std.data<float>(),
                          ctx.threads);
    std::vector<Tensor> out{y, want_[1] ? mean : Tensor(), want_[2] ? inv_std : Tensor()};
    out.resize(num_outputs_);
    return out;
  }

 private:
  // Unidirectional (numpy) broadcast of t to `shape`, flattened.
  std::vector<float> Broadcast(const Tensor& t, const Shape& shape, const std::string& what) {
    const int64_t r = static_cast<int64_t>(shape.size()), tr = t.rank();
    bool ok = tr <= r;
    for (int64_t i = 0; ok && i < tr; ++i) {
      const int64_t td = t.shape()[tr - 1 - i];
      ok = td == 1 || td == shape[r - 1 - i];
    }
    if (!ok)
      Fail(desc_, what + " " + ShapeToString(t.shape()) +
                      " does not broadcast to the normalized shape " + ShapeToString(shape));
    const int64_t total = NumElements(shape);
    std::vector<float> out(total);
    const float* src = t.data<float>();
    const std::vector<int64_t> out_strides = RowMajorStrides(shape);
    const std::vector<int64_t> t_strides = RowMajorStrides(t.shape());
    for (int64_t flat = 0; flat < total; ++flat) {
      int64_t off = 0;
      for (int64_t i = 0; i < tr; ++i) {
        const int64_t a = r - tr + i;
        const int64_t coord = (flat / out_strides[a]) % shape[a];
        off += (t.shape()[i] == 1 ? 0 : coord) * t_strides[i];
      }
      out[flat] = src[off];
    }
    return out;
  }

  std::string desc_;
  int64_t axis_ = -1;
  float epsilon_ = 1e-5f;
  bool want_[3] = {true, false, false};
  size_t num_outputs_ = 1;
};

// ============================== Resize ==============================

class ResizeOp final : public OpKernel {
 public:
  explicit ResizeOp(const OpInit& init) : desc_(init.node.Describe()), opset_(init.opset) {
    const ir::Node& n = init.node;
    const std::string mode = n.attr_string("mode", "nearest");
    if (mode == "nearest")
      p_.mode = kernels::ResizeMode::kNearest;
    else if (mode == "linear" || mode == "bilinear" || mode == "trilinear")
      p_.mode = kernels::ResizeMode::kLinear;
    else if (mode == "cubic")
      p_.mode = kernels::ResizeMode::kCubic;
    else
      Fail(desc_, "unknown mode '" + mode + "' (nearest, linear, cubic)");
    if (opset_ > 0 && opset_ < 11) {
      // Resize-10 has no coordinate attributes; it maps o -> o / scale (asymmetric) and picks
      // the floor for nearest, as Upsample does.
      if (p_.mode == kernels::ResizeMode::kCubic) Fail(desc_, "mode 'cubic' needs opset >= 11");
      p_.coord = kernels::ResizeCoord::kAsymmetric;
      p_.nearest = kernels::NearestMode::kFloor;
      if (n.num_inputs() != 2) Fail(desc_, "Resize-10 expects inputs X and scales");
      return;
    }
    const std::string coord = n.attr_string("coordinate_transformation_mode", "half_pixel");
    using C = kernels::ResizeCoord;
    if (coord == "half_pixel")
      p_.coord = C::kHalfPixel;
    else if (coord == "half_pixel_symmetric")
      p_.coord = C::kHalfPixelSymmetric;
    else if (coord == "pytorch_half_pixel")
      p_.coord = C::kPytorchHalfPixel;
    else if (coord == "align_corners")
      p_.coord = C::kAlignCorners;
    else if (coord == "asymmetric")
      p_.coord = C::kAsymmetric;
    else if (coord == "tf_half_pixel_for_nearest" ||
             coord == "tf_half_pixel_for_nn")  // ONNX tests spell it "_nn"
      p_.coord = C::kTfHalfPixelForNearest;
    else if (coord == "tf_crop_and_resize")
      p_.coord = C::kTfCropAndResize;
    else
      Fail(desc_, "unknown coordinate_transformation_mode '" + coord + "'");
    const std::string nearest = n.attr_string("nearest_mode", "round_prefer_floor");
    using N = kernels::NearestMode;
    if (nearest == "round_prefer_floor")
      p_.nearest = N::kRoundPreferFloor;
    else if (nearest == "round_prefer_ceil")
      p_.nearest = N::kRoundPreferCeil;
    else if (nearest == "floor")
      p_.nearest = N::kFloor;
    else if (nearest == "ceil")
      p_.nearest = N::kCeil;
    else
      Fail(desc_, "unknown nearest_mode '" + nearest + "'");
    p_.cubic_coeff_a = n.attr_float("cubic_coeff_a", -0.75f);
    p_.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
    p_.extrapolation_value = n.attr_float("extrapolation_value", 0.0f);
    if (n.attr_int("antialias", 0) != 0) Fail(desc_, "antialias=1 is not supported");
    axes_ = n.attr_ints("axes", {});
    const std::string policy = n.attr_string("keep_aspect_ratio_policy", "stretch");
    if (policy == "stretch")
      policy_ = 0;
    else if (policy == "not_larger")
      policy_ = 1;
    else if (policy == "not_smaller")
      policy_ = 2;
    else
      Fail(desc_, "unknown keep_aspect_ratio_policy '" + policy + "'");
    if (n.num_inputs() < 1) Fail(desc_, "missing input X");
  }

  std::vector<Tensor> Run(const OpContext&, std::span<const Tensor> in) override {
    const Tensor& x_in = Input(desc_, in, 0, "X");
    // 8-bit codes (the integer path): nearest only selects elements, so it runs on the exactly
    // converted fp32 values and converts the result back (exact).
    const bool q8 = (x_in.dtype() == DType::kU8 || x_in.dtype() == DType::kI8) &&
                    p_.mode == kernels::ResizeMode::kNearest;
    const Tensor x = q8 ? kernels::Cast(x_in, DType::kF32) : x_in;
    RequireDType(desc_, x, DType::kF32, "X");
    const int64_t rank = x.rank();
    const bool v10 = opset_ > 0 && opset_ < 11;
    auto given = [&](size_t i) { return i < in.size() && in[i].defined() && in[i].numel() > 0; };
    const size_t scales_i = v10 ? 1 : 2, sizes_i = 3, roi_i = 1;
    const bool has_scales = given(scales_i), has_sizes = !v10 && given(sizes_i);
    if (has_scales == has_sizes)
      Fail(desc_, "exactly one of 'scales' and 'sizes' must be given (non-empty)");

    // Axes the scales / sizes / roi refer to (all axes unless the 'axes' attribute says).
    std::vector<int64_t> axes;
    if (axes_.empty()) {
      for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
    } else {
      for (int64_t a : axes_) {
        const int64_t na = NormalizeAxis(desc_, a, rank);
        if (std::find(axes.begin(), axes.end(), na) != axes.end())
          Fail(desc_, "axes has a repeated axis " + std::to_string(a));
        axes.push_back(na);
      }
    }
    const size_t k = axes.size();
    kernels::ResizeParams p = p_;
    p.scales.assign(rank, 1.0);
    Shape out_shape = x.shape();
    if (has_scales) {
      const Tensor& st = in[scales_i];
      RequireDType(desc_, st, DType::kF32, "scales");
      if (static_cast<size_t>(st.numel()) != k)
        Fail(desc_,
             "scales has " + std::to_string(st.numel()) + " values, expected " + std::to_string(k));
      for (size_t i = 0; i < k; ++i) {
        const double s = st.data<float>()[i];
        if (!(s > 0.0) || !std::isfinite(s))
          Fail(desc_, "scales must be positive and finite, got " + std::to_string(s));
        p.scales[axes[i]] = s;
        const double len = static_cast<double>(x.shape()[axes[i]]) * s;
        if (len > 1e12) Fail(desc_, "output size too large");
        out_shape[axes[i]] = static_cast<int64_t>(std::floor(len));
      }
    } else {
      const Tensor& zt = in[sizes_i];
      RequireDType(desc_, zt, DType::kI64, "sizes");
      if (static_cast<size_t>(zt.numel()) != k)
        Fail(desc_,
             "sizes has " + std::to_string(zt.numel()) + " values, expected " + std::to_string(k));
      const int64_t* z = zt.data<int64_t>();
      for (size_t i = 0; i < k; ++i)
        if (z[i] < 0 || (z[i] > 0 && x.shape()[axes[i]] == 0))
          Fail(desc_,
               "bad sizes value " + std::to_string(z[i]) + " for axis " + std::to_string(axes[i]));
      if (policy_ == 0) {
        for (size_t i = 0; i < k; ++i) {
          const int64_t a = axes[i];
          out_shape[a] = z[i];
          p.scales[a] = x.shape()[a] ? static_cast<double>(z[i]) / x.shape()[a] : 1.0;
        }
      } else {
        // keep_aspect_ratio_policy: one scale for all the given axes, the largest that fits
        // (not_larger) or the smallest that covers (not_smaller); out = round(scale * in).
        double scale = policy_ == 1 ? INFINITY : 0.0;
        for (size_t i = 0; i < k; ++i) {
          const double r = static_cast<double>(z[i]) / x.shape()[axes[i]];
          scale = policy_ == 1 ? std::min(scale, r) : std::max(scale, r);
        }
        for (size_t i = 0; i < k; ++i) {
          p.scales[axes[i]] = scale;
          out_shape[axes[i]] = static_cast<int64_t>(std::floor(scale * x.shape()[axes[i]] + 0.5));
        }
      }
    }
    if (p.coord == kernels::ResizeCoord::kTfCropAndResize) {
      if (!given(roi_i))
        Fail(desc_, "coordinate_transformation_mode tf_crop_and_resize needs the roi input");
      const Tensor& roi = in[roi_i];
      if (roi.dtype() != DType::kF32 && roi.dtype() != DType::kF64)
        Fail(desc_, "roi must be f32 or f64");
      if (static_cast<size_t>(roi.numel()) != 2 * k)
        Fail(desc_, "roi has " + std::to_string(roi.numel()) + " values, expected " +
                        std::to_string(2 * k));
      p.roi_start.assign(rank, 0.0);
      p.roi_end.assign(rank, 1.0);
      for (size_t i = 0; i < k; ++i) {
        p.roi_start[axes[i]] = roi.GetAsDouble(i);
        p.roi_end[axes[i]] = roi.GetAsDouble(i + k);
        if (!std::isfinite(p.roi_start[axes[i]]) || !std::isfinite(p.roi_end[axes[i]]))
          Fail(desc_, "roi values must be finite");
      }
      if (has_scales)  // the output covers the roi: out = floor(in * (end - start) * scale)
        for (size_t i = 0; i < k; ++i) {
          const int64_t a = axes[i];
          out_shape[a] = static_cast<int64_t>(
              std::floor(x.shape()[a] * (p.roi_end[a] - p.roi_start[a]) * p.scales[a]));
          if (out_shape[a] < 0) Fail(desc_, "roi end is before roi start");
        }
    }
    Tensor y = kernels::ResizeRef(x, out_shape, p);
    return {q8 ? kernels::Cast(y, x_in.dtype()) : y};
  }

 private:
  std::string desc_;
  int opset_;
  kernels::ResizeParams p_;
  std::vector<int64_t> axes_;
  int policy_ = 0;  // 0 stretch, 1 not_larger, 2 not_smaller
};

// ============================== Pad ==============================

class PadOp final : public OpKernel {
 public:
  explicit PadOp(const OpInit& init) : desc_(init.node.Describe()) {
    const ir::Node& n = init.node;
    const std::string mode = n.attr_string("mode", "constant");
    if (mode == "constant")
      mode_ = kernels::PadMode::kConstant;
    else if (mode == "reflect")
      mode_ = kernels::PadMode::kReflect;
    else if (mode == "edge")
      mode_ = kernels::PadMode::kEdge;
    else if (mode == "wrap")
      mode_ = kernels::PadMode::kWrap;
    else
      Fail(desc_, "unknown mode '" + mode + "' (constant, reflect, edge, wrap)");
    // Opset < 11: pads and value are attributes; from 11 on they are inputs.
    pads_from_attr_ = init.opset > 0 && init.opset < 11;
    if (pads_from_attr_) {
      attr_pads_ = n.attr_ints("pads");
      attr_value_ = n.attr_float("value", 0.0f);
    } else if (n.num_inputs() < 2) {
      Fail(desc_, "expects inputs data and pads");
    }
  }

  std::vector<Tensor> Run(const OpContext&, std::span<const Tensor> in) override {
    const Tensor& x = Input(desc_, in, 0, "data");
    const int64_t rank = x.rank();
    std::vector<int64_t> pads = attr_pads_;
    std::vector<int64_t> axes;
    std::vector<uint8_t> value(16, 0);  // one element of x's dtype
    const size_t elem = DTypeSize(x.dtype());
    if (pads_from_attr_) {
      if (x.dtype() == DType::kF32) {
        std::memcpy(value.data(), &attr_value_, sizeof(float));
      } else if (x.dtype() == DType::kF64) {
        const double v = attr_value_;
        std::memcpy(value.data(), &v, sizeof(double));
      } else if (attr_value_ != 0.0f) {
        Fail(desc_, "the 'value' attribute needs f32 or f64 data, got " +
                        std::string(DTypeName(x.dtype())));
      }
    } else {
      const Tensor& pt = Input(desc_, in, 1, "pads");
      if (pt.dtype() != DType::kI64) Fail(desc_, "pads must be int64");
      pads = pt.ToInt64Vector();
      if (in.size() > 2 && in[2].defined() && in[2].numel() > 0) {
        const Tensor& cv = in[2];
        if (cv.dtype() != x.dtype())
          Fail(desc_, "constant_value has type " + std::string(DTypeName(cv.dtype())) +
                          ", data has " + std::string(DTypeName(x.dtype())));
        if (cv.numel() != 1) Fail(desc_, "constant_value must hold one value");
        std::memcpy(value.data(), cv.raw(), elem);
      }
      if (in.size() > 3 && in[3].defined()) {
        if (!IsInteger(in[3].dtype())) Fail(desc_, "axes must be an integer tensor");
        for (int64_t a : in[3].ToInt64Vector()) {
          const int64_t na = NormalizeAxis(desc_, a, rank);
          if (std::find(axes.begin(), axes.end(), na) != axes.end())
            Fail(desc_, "axes has a repeated axis " + std::to_string(a));
          axes.push_back(na);
        }
      }
    }
    if (axes.empty() && !(in.size() > 3 && in[3].defined()))
      for (int64_t a = 0; a < rank; ++a) axes.push_back(a);
    const size_t k = axes.size();
    if (pads.size() != 2 * k)
      Fail(desc_, "pads has " + std::to_string(pads.size()) + " values, expected " +
                      std::to_string(2 * k) + " for data " + ShapeToString(x.shape()));
    std::vector<int64_t> begin(rank, 0), end(rank, 0);
    for (size_t i = 0; i < k; ++i) {
      begin[axes[i]] = pads[i];
      end[axes[i]] = pads[i + k];
    }
    try {
      return {kernels::PadRef(x, begin, end, mode_, value.data())};
    } catch (const Error& e) {
      Fail(desc_, e.what());
    }
  }

 private:
  std::string desc_;
  kernels::PadMode mode_ = kernels::PadMode::kConstant;
  bool pads_from_attr_ = false;
  std::vector<int64_t> attr_pads_;
  float attr_value_ = 0.0f;
};

// ============================== qforge::FusedMatMul ==============================

// Y = act(A W + bias): A [..., K] (rank >= 1), W [K, N], bias N values, act = identity or the
// exact Gelu (attribute activation = "" | "Gelu"). Made by passes::FuseMatMulBias from MatMul +
// Add [+ Gelu]; W and bias are normally constants (W prepacked once), but inputs work too.
class FusedMatMulOp final : public OpKernel {
 public:
  explicit FusedMatMulOp(const OpInit& init) : desc_(init.node.Describe()) {
    const ir::Node& n = init.node;
    if (n.num_inputs() != 3) Fail(desc_, "expects 3 inputs (A, W, bias)");
    RejectOutputsFrom(n, 1, "FusedMatMul has one output");
    const std::string act = n.attr_string("activation", "");
    if (act != "" && act != "Gelu")
      Fail(desc_, "unsupported activation '" + act + "' (expected none or Gelu)");
    gelu_ = act == "Gelu";
    const Tensor& w = init.constant(1);
    if (w.defined() && w.dtype() == DType::kF32 && w.rank() == 2)
      packed_ = kernels::PackedMatrix::PackB(w.dim(0), w.dim(1), w.data<float>(), w.dim(1), false);
  }

  std::vector<Tensor> Run(const OpContext& ctx, std::span<const Tensor> in) override {
    const Tensor& a = Input(desc_, in, 0, "A");
    const Tensor& w = Input(desc_, in, 1, "W");
    const Tensor& bias = Input(desc_, in, 2, "bias");
    RequireDType(desc_, a, DType::kF32, "A");
    RequireDType(desc_, w, DType::kF32, "W");
    RequireDType(desc_, bias, DType::kF32, "bias");
    if (w.rank() != 2) Fail(desc_, "W must be 2-D, got " + ShapeToString(w.shape()));
    const int64_t k = w.dim(0), n = w.dim(1);
    if (a.rank() < 1 || a.shape().back() != k)
      Fail(desc_, "A " + ShapeToString(a.shape()) + " does not match W " +
                      ShapeToString(w.shape()) + " (A needs last dim K)");
    if (bias.numel() != n)
      Fail(desc_, "bias has " + std::to_string(bias.numel()) + " values, W has " +
                      std::to_string(n) + " columns");
    Shape ys = a.shape();  // MatMul shape rules: [..., M, K] x [K, N] -> [..., M, N]; [K] -> [N]
    ys.back() = n;
    Tensor y = Tensor::Uninitialized(DType::kF32, ys);
    const int64_t rows = k > 0 ? a.numel() / k : NumElements(ys) / std::max<int64_t>(n, 1);
    if (rows == 0 || n == 0) return {y};
    float* yd = y.data<float>();
    kernels::GemmEpilogue epi;
    epi.col_bias = bias.data<float>();
    const bool use_packed = !packed_.empty() && packed_.rows() == k && packed_.cols() == n;
    const kernels::GemmOperand b = use_packed ? kernels::GemmOperand::Packed(packed_)
                                              : kernels::GemmOperand::Plain(w.data<float>(), n);
    if (k == 0) {  // empty reduction: y = bias
      for (int64_t r = 0; r < rows; ++r) std::memcpy(yd + r * n, epi.col_bias, n * sizeof(float));
    } else {
      kernels::Sgemm(rows, n, k, kernels::GemmOperand::Plain(a.data<float>(), k), b, yd, n, epi,
                     ctx.threads);
    }
    if (gelu_) {
      const int t = rows * n > 65536 ? kernels::ResolveThreads(ctx.threads) : 1;
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1)
      for (int c = 0; c < t; ++c) {
        const int64_t r0 = rows * c / t, r1 = rows * (c + 1) / t;
        kernels::UnaryF32(kernels::UnaryOp::kGelu, {}, yd + r0 * n, yd + r0 * n, (r1 - r0) * n);
      }
    }
    return {y};
  }

 private:
  std::string desc_;
  bool gelu_ = false;
  kernels::PackedMatrix packed_;
};

}  // namespace

std::unique_ptr<OpKernel> MakeFusedMatMul(const OpInit& init) {
  return std::make_unique<FusedMatMulOp>(init);
}

std::unique_ptr<OpKernel> MakeBatchNormalization(const OpInit& init) {
  return std::make_unique<BatchNormOp>(init);
}
std::unique_ptr<OpKernel> MakeMaxPool(const OpInit& init) {
  return std::make_unique<PoolOp>(init, /*is_max=*/true);
}
std::unique_ptr<OpKernel> MakeAveragePool(const OpInit& init) {
  return std::make_unique<PoolOp>(init, /*is_max=*/false);
}
std::unique_ptr<OpKernel> MakeGlobalAveragePool(const OpInit& init) {
  return std::make_unique<GlobalAveragePoolOp>(init);
}
std::unique_ptr<OpKernel> MakeSoftmax(const OpInit& init) {
  return std::make_unique<SoftmaxOp>(init, /*log=*/false);
}
std::unique_ptr<OpKernel> MakeLogSoftmax(const OpInit& init) {
  return std::make_unique<SoftmaxOp>(init, /*log=*/true);
}
std::unique_ptr<OpKernel> MakeLayerNormalization(const OpInit& init) {
  return std::make_unique<LayerNormOp>(init);
}
std::unique_ptr<OpKernel> MakeResize(const OpInit& init) {
  return std::make_unique<ResizeOp>(init);
}
std::unique_ptr<OpKernel> MakePad(const OpInit& init) { return std::make_unique<PadOp>(init); }

}  // namespace qforge::runtime
