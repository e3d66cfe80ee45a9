// Elementwise kernels: unary activations/math, binary arithmetic with numpy broadcasting, Where.
//
// Every op has two implementations: a reference that visits one output element at a time with
// explicit index arithmetic (the oracle for tests), and a fast one (contiguous, vectorizable
// inner loops over collapsed dimensions, OpenMP over large outputs). Both give identical results:
// they apply the same scalar function to the same operands.
//
// Dtypes: f32, f64, i8, u8, i16, u16, i32, u32, i64, u64 natively; f16 and bf16 are computed in
// f32 and rounded back (round to nearest even). Bool is accepted where ONNX allows it (Equal,
// Where's condition). Unsupported combinations throw qforge::Error naming the op and the dtype.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

enum class UnaryOp {
  kRelu,         // max(x, 0)
  kLeakyRelu,    // x >= 0 ? x : alpha * x
  kClip,         // min(max(x, lo), hi)
  kSigmoid,      // 1 / (1 + exp(-x))
  kHardSigmoid,  // max(0, min(1, alpha * x + beta))
  kHardSwish,    // x * max(0, min(1, x / 6 + 1 / 2))
  kTanh,
  kErf,
  kGelu,      // x / 2 * (1 + erf(x / sqrt(2)))
  kGeluTanh,  // x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))
  kSqrt,
  kExp,
  kNeg,
  kAbs,
};

std::string_view UnaryOpName(UnaryOp op);

struct UnaryParams {
  double alpha = 0.0;  // LeakyRelu slope, HardSigmoid alpha
  double beta = 0.0;   // HardSigmoid beta
  // Clip bounds; the defaults mean "no bound". Converted to the tensor's dtype.
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
};

// True if the op is defined for dtype t (e.g. Relu/Neg/Abs/Clip on integers, Sigmoid only on
// floating point, Neg only on signed types).
bool UnarySupports(UnaryOp op, DType t);

// y = op(x), same dtype and shape as x. Throws Error for an unsupported dtype.
Tensor Unary(UnaryOp op, const UnaryParams& p, const Tensor& x);
Tensor UnaryRef(UnaryOp op, const UnaryParams& p, const Tensor& x);

// The fp32 inner loop, exposed for fused use by other kernels: y[i] = op(x[i]) for i < n.
// x and y may be the same pointer. Single-threaded.
void UnaryF32(UnaryOp op, const UnaryParams& p, const float* x, float* y, int64_t n);

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,  // integer division truncates toward zero (C semantics); x / 0 throws Error
  kPow,  // result has a's dtype; b may have another numeric dtype
  kMin,
  kMax,    // Min/Max propagate NaN (like numpy.minimum / ONNX Runtime)
  kEqual,  // result dtype bool
};

std::string_view BinaryOpName(BinaryOp op);

// numpy multidirectional broadcasting of two shapes; throws Error naming both shapes.
Shape BroadcastShape(const Shape& a, const Shape& b);

// c = a op b with broadcasting. a and b must have the same dtype (except b for kPow).
Tensor Binary(BinaryOp op, const Tensor& a, const Tensor& b);
Tensor BinaryRef(BinaryOp op, const Tensor& a, const Tensor& b);

// out = cond ? x : y with three-way broadcasting; cond is bool, x and y share a dtype
// (any storable dtype: the values are only copied).
Tensor Where(const Tensor& cond, const Tensor& x, const Tensor& y);
Tensor WhereRef(const Tensor& cond, const Tensor& x, const Tensor& y);

// Broadcasts x to `shape` (numpy rules: the result shape is BroadcastShape(x.shape(), shape),
// as ONNX Expand specifies). Any storable dtype.
Tensor Expand(const Tensor& x, const Shape& shape);

}  // namespace qforge::kernels
