// ONNX QuantizeLinear / DequantizeLinear (per tensor, per axis, per block) on top of the one
// quantization routine in qforge::numerics (round half to even, saturate; see docs/numerics.md),
// and qforge::QuantizeLinear (channels-last output, fused with the transpose).
#include <string>

#include "qforge/kernels/qelementwise.h"
#include "qforge/kernels/transform.h"
#include "qforge/numerics/quant_params.h"
#include "runtime/ops/lambda_op.h"

namespace qforge::runtime {

namespace {

// Quantized dtypes we store, with their integer format.
bool QuantFormat(DType t, numerics::IntFormat& fmt) {
  switch (t) {
    case DType::kU8:
      fmt = numerics::kUInt8;
      return true;
    case DType::kI8:
      fmt = numerics::kInt8;
      return true;
    case DType::kU16:
      fmt = numerics::kUInt16;
      return true;
    case DType::kI16:
      fmt = numerics::kInt16;
      return true;
    case DType::kI32:
      fmt = numerics::kInt32;
      return true;
    default:
      return false;
  }
}

struct QuantAttrs {
  int64_t axis = 1;
  int64_t block_size = 0;
};

// Works out the granularity from the scale's shape (ONNX rules): a scalar or one-element 1-D
// scale is per tensor; a 1-D scale of x.shape[axis] entries is per axis; with block_size > 0,
// the scale has x's rank and ceil(x.shape[axis] / block_size) entries along axis.
numerics::Granularity GranularityFor(const Tensor& x, const Tensor& scale, const QuantAttrs& a,
                                     const std::string& desc) {
  if (a.block_size > 0) {
    const int64_t axis = NormalizeAxis(a.axis, x.rank(), desc);
    auto g = numerics::Granularity::PerGroup(static_cast<int>(axis), a.block_size);
    if (scale.shape() != numerics::ParamShape(x.shape(), g))
      throw Error(desc + ": blocked scale has shape " + ShapeToString(scale.shape()) +
                  ", expected " + ShapeToString(numerics::ParamShape(x.shape(), g)));
    return g;
  }
  if (scale.rank() == 0 || (scale.rank() == 1 && scale.numel() == 1))
    return numerics::Granularity::PerTensor();
  if (scale.rank() != 1)
    throw Error(desc + ": scale must be a scalar or 1-D, got shape " +
                ShapeToString(scale.shape()));
  const int64_t axis = NormalizeAxis(a.axis, x.rank(), desc);
  if (scale.numel() != x.shape()[axis])
    throw Error(desc + ": scale has " + std::to_string(scale.numel()) + " entries, axis " +
                std::to_string(axis) + " of the input has " + std::to_string(x.shape()[axis]));
  return numerics::Granularity::PerChannel(static_cast<int>(axis));
}

// Scale (any float dtype, read as f32) and zero point (same shape as the scale; 0 if absent).
std::vector<numerics::QuantParams> Params(const Tensor& scale, const Tensor& zp,
                                          const std::string& desc) {
  if (!IsFloat(scale.dtype()))
    throw Error(desc + ": scale must be floating point, got " +
                std::string(DTypeName(scale.dtype())));
  if (zp.defined() && zp.shape() != scale.shape() && !(zp.numel() == 1 && scale.numel() == 1))
    throw Error(desc + ": zero point shape " + ShapeToString(zp.shape()) +
                " differs from scale shape " + ShapeToString(scale.shape()));
  std::vector<float> s = scale.ToFloatVector();
  std::vector<numerics::QuantParams> params(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    params[i].scale = s[i];
    params[i].zero_point = zp.defined() ? static_cast<int32_t>(zp.GetAsInt64(i)) : 0;
  }
  return params;
}

std::unique_ptr<OpKernel> MakeQdq(const OpInit& init, bool quantize) {
  const ir::Node& n = init.node;
  CheckArity(n, 2, 3, 1, 1);
  const std::string desc = n.Describe();
  QuantAttrs a;
  a.axis = n.attr_int("axis", 1);
  a.block_size = n.attr_int("block_size", 0);
  if (a.block_size < 0) FailNode(n, "block_size must be >= 0");
  if (quantize && n.attr_int("saturate", 1) == 0)
    FailNode(n, "saturate=0 is only meaningful for float8 outputs, which are not supported");
  // QuantizeLinear-21 may name the output dtype instead of giving a zero point.
  const int64_t output_dtype = n.attr_int("output_dtype", 0);
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    const Tensor& scale = Arg(in, 1, desc);
    const Tensor zp = in.size() > 2 ? in[2] : Tensor();
    const numerics::Granularity g = GranularityFor(x, scale, a, desc);
    const std::vector<numerics::QuantParams> params = Params(scale, zp, desc);
    try {
      if (quantize) {
        DType qt = zp.defined() ? zp.dtype()
                                : (output_dtype ? static_cast<DType>(output_dtype) : DType::kU8);
        numerics::IntFormat fmt;
        if (!QuantFormat(qt, fmt) || qt == DType::kI32)
          throw Error(desc + ": unsupported quantized dtype " + std::string(DTypeName(qt)));
        if (!IsFloat(x.dtype()))
          throw Error(desc + ": input must be floating point, got " +
                      std::string(DTypeName(x.dtype())));
        const Tensor xf = kernels::Cast(x, DType::kF32);
        Tensor y(qt, x.shape());
        const float* xs = xf.data<float>();
        switch (qt) {
          case DType::kU8:
            numerics::Quantize(xs, x.shape(), g, params, fmt, y.data<uint8_t>());
            break;
          case DType::kI8:
            numerics::Quantize(xs, x.shape(), g, params, fmt, y.data<int8_t>());
            break;
          case DType::kU16:
            numerics::Quantize(xs, x.shape(), g, params, fmt, y.data<uint16_t>());
            break;
          default:
            numerics::Quantize(xs, x.shape(), g, params, fmt, y.data<int16_t>());
            break;
        }
        return std::vector<Tensor>{y};
      }
      numerics::IntFormat fmt;
      if (!QuantFormat(x.dtype(), fmt))
        throw Error(desc + ": unsupported quantized input dtype " +
                    std::string(DTypeName(x.dtype())));
      if (zp.defined() && zp.dtype() != x.dtype())
        throw Error(desc + ": zero point dtype " + std::string(DTypeName(zp.dtype())) +
                    " differs from input dtype " + std::string(DTypeName(x.dtype())));
      if (x.dtype() == DType::kI32)
        for (const auto& p : params)
          if (p.zero_point != 0) throw Error(desc + ": an int32 input requires zero point 0");
      Tensor y(DType::kF32, x.shape());
      float* ys = y.data<float>();
      switch (x.dtype()) {
        case DType::kU8:
          numerics::Dequantize(x.data<uint8_t>(), x.shape(), g, params, ys);
          break;
        case DType::kI8:
          numerics::Dequantize(x.data<int8_t>(), x.shape(), g, params, ys);
          break;
        case DType::kU16:
          numerics::Dequantize(x.data<uint16_t>(), x.shape(), g, params, ys);
          break;
        case DType::kI16:
          numerics::Dequantize(x.data<int16_t>(), x.shape(), g, params, ys);
          break;
        default:
          numerics::Dequantize(x.data<int32_t>(), x.shape(), g, params, ys);
          break;
      }
      // The output takes the scale's dtype (f16 / bf16 scales from opset 19).
      return std::vector<Tensor>{kernels::Cast(y, scale.dtype())};
    } catch (const numerics::NumericsError& e) {
      throw Error(desc + ": " + e.what());
    }
  });
}

// qforge::QuantizeLinear (channels_last = 1, made by the ChannelsLastInt8 pass): x float32
// [N, C, H, W], per-tensor scale and an 8-bit zero point (uint8 when absent); y [N, H, W, C]
// holding exactly what QuantizeLinear followed by Transpose(0, 2, 3, 1) gives, in one pass.
std::unique_ptr<OpKernel> MakeQuantizeNhwc(const OpInit& init) {
  const ir::Node& n = init.node;
  CheckArity(n, 2, 3, 1, 1);
  if (n.attr_int("channels_last", 0) != 1)
    FailNode(n, "qforge::QuantizeLinear needs channels_last = 1");
  const std::string desc = n.Describe();
  return MakeLambdaOp([n, desc](const OpContext& ctx, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    const Tensor& scale = Arg(in, 1, desc);
    const Tensor zp = in.size() > 2 ? in[2] : Tensor();
    if (x.dtype() != DType::kF32 || x.rank() != 4)
      FailNode(n, "x must be float32 of rank 4, got " + std::string(DTypeName(x.dtype())) + " " +
                      ShapeToString(x.shape()));
    if (scale.numel() != 1) FailNode(n, "needs a per-tensor scale");
    const DType qt = zp.defined() ? zp.dtype() : DType::kU8;
    if (qt != DType::kU8 && qt != DType::kI8)
      FailNode(n, "zero point must be uint8 or int8, got " + std::string(DTypeName(qt)));
    const std::vector<numerics::QuantParams> params = Params(scale, zp, desc);
    try {
      numerics::CheckQuantParams(params[0], qt == DType::kI8 ? numerics::kInt8 : numerics::kUInt8);
    } catch (const numerics::NumericsError& e) {
      FailNode(n, e.what());
    }
    Tensor y = Tensor::Uninitialized(qt, {x.dim(0), x.dim(2), x.dim(3), x.dim(1)});
    kernels::QuantizeToNhwc(x.data<float>(), x.dim(0), x.dim(1), x.dim(2) * x.dim(3), params[0],
                            qt == DType::kI8, y.raw(), kernels::ActiveIsa(), ctx.threads);
    return std::vector<Tensor>{y};
  });
}

}  // namespace

std::unique_ptr<OpKernel> MakeQuantizeLinear(const OpInit& init) { return MakeQdq(init, true); }
std::unique_ptr<OpKernel> MakeQuantizeLinearNhwc(const OpInit& init) {
  return MakeQuantizeNhwc(init);
}
std::unique_ptr<OpKernel> MakeDequantizeLinear(const OpInit& init) { return MakeQdq(init, false); }

}  // namespace qforge::runtime
