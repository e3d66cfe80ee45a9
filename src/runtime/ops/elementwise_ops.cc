// ONNX elementwise ops: activations and math (unary), broadcasting arithmetic, Min/Max, Where,
// and the reductions ReduceSum/ReduceMean/ReduceMax.
#include <cmath>
#include <limits>
#include <string>

#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/reduce.h"
#include "runtime/ops/lambda_op.h"

namespace qforge::runtime {

using kernels::BinaryOp;
using kernels::UnaryOp;
using kernels::UnaryParams;

namespace {

std::unique_ptr<OpKernel> MakeUnary(const OpInit& init, UnaryOp op, UnaryParams p) {
  CheckArity(init.node, 1, 1, 1, 1);
  const std::string desc = init.node.Describe();
  return MakeLambdaOp([op, p, desc](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    if (!kernels::UnarySupports(op, x.dtype()))
      throw Error(desc + ": unsupported input dtype " + std::string(DTypeName(x.dtype())));
    return std::vector<Tensor>{kernels::Unary(op, p, x)};
  });
}

std::unique_ptr<OpKernel> MakeBinary(const OpInit& init, BinaryOp op) {
  CheckArity(init.node, 2, 2, 1, 1);
  if (init.node.attr_int("broadcast", 0) != 0 || init.node.has_attr("axis"))
    FailNode(init.node, "legacy (opset < 7) broadcast attributes are not supported");
  const std::string desc = init.node.Describe();
  return MakeLambdaOp([op, desc](const OpContext&, std::span<const Tensor> in) {
    return std::vector<Tensor>{kernels::Binary(op, Arg(in, 0, desc), Arg(in, 1, desc))};
  });
}

// Min / Max: variadic, folded pairwise (pairwise broadcasting composes to the n-way one).
std::unique_ptr<OpKernel> MakeVariadic(const OpInit& init, BinaryOp op) {
  CheckArity(init.node, 1, 1 << 20, 1, 1);
  const std::string desc = init.node.Describe();
  return MakeLambdaOp([op, desc](const OpContext&, std::span<const Tensor> in) {
    Tensor acc = Arg(in, 0, desc);
    for (size_t i = 1; i < in.size(); ++i) acc = kernels::Binary(op, acc, Arg(in, i, desc));
    return std::vector<Tensor>{acc};
  });
}

// Reductions: `axes` is an attribute before `axes_input_opset` and an optional input from it on.
// No axes (or an empty list) reduces everything, unless noop_with_empty_axes=1 (input form
// only), which makes the op an identity.
std::unique_ptr<OpKernel> MakeReduce(const OpInit& init, kernels::ReduceOp op,
                                     int axes_input_opset) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  const bool axes_as_input = init.opset <= 0 || init.opset >= axes_input_opset;
  const bool keepdims = n.attr_int("keepdims", 1) != 0;
  const bool noop = n.attr_int("noop_with_empty_axes", 0) != 0;
  // Models in the wild mix conventions, so the attribute is honoured in the input form too
  // (an axes input, when given, wins).
  CheckArity(n, 1, axes_as_input ? 2 : 1, 1, 1);
  const std::vector<int64_t> attr_axes = n.attr_ints("axes", {});
  return MakeLambdaOp(
      [op, desc, keepdims, noop, attr_axes](const OpContext&, std::span<const Tensor> in) {
        const Tensor& x = Arg(in, 0, desc);
        std::vector<int64_t> axes = attr_axes;
        if (in.size() > 1 && in[1].defined()) {
          if (in[1].dtype() != DType::kI64 || in[1].rank() > 1)
            throw Error(desc + ": axes must be a 1-D i64 tensor");
          axes = in[1].ToInt64Vector();
        }
        if (axes.empty()) {
          if (noop) return std::vector<Tensor>{x};
          for (int64_t d = 0; d < x.rank(); ++d) axes.push_back(d);
        }
        for (int64_t& a : axes) a = NormalizeAxis(a, x.rank(), desc);
        return std::vector<Tensor>{kernels::Reduce(op, x, axes, keepdims)};
      });
}
}  // namespace

std::unique_ptr<OpKernel> MakeRelu(const OpInit& init) {
  return MakeUnary(init, UnaryOp::kRelu, {});
}

std::unique_ptr<OpKernel> MakeLeakyRelu(const OpInit& init) {
  UnaryParams p;
  p.alpha = init.node.attr_float("alpha", 0.01f);
  return MakeUnary(init, UnaryOp::kLeakyRelu, p);
}

std::unique_ptr<OpKernel> MakeSigmoid(const OpInit& init) {
  return MakeUnary(init, UnaryOp::kSigmoid, {});
}

std::unique_ptr<OpKernel> MakeHardSigmoid(const OpInit& init) {
  UnaryParams p;
  p.alpha = init.node.attr_float("alpha", 0.2f);
  p.beta = init.node.attr_float("beta", 0.5f);
  return MakeUnary(init, UnaryOp::kHardSigmoid, p);
}

std::unique_ptr<OpKernel> MakeHardSwish(const OpInit& init) {
  return MakeUnary(init, UnaryOp::kHardSwish, {});
}

std::unique_ptr<OpKernel> MakeTanh(const OpInit& init) {
  return MakeUnary(init, UnaryOp::kTanh, {});
}

std::unique_ptr<OpKernel> MakeErf(const OpInit& init) { return MakeUnary(init, UnaryOp::kErf, {}); }

std::unique_ptr<OpKernel> MakeGelu(const OpInit& init) {
  const std::string approx = init.node.attr_string("approximate", "none");
  if (approx != "none" && approx != "tanh")
    FailNode(init.node,
             "attribute 'approximate' must be \"none\" or \"tanh\", got \"" + approx + "\"");
  return MakeUnary(init, approx == "tanh" ? UnaryOp::kGeluTanh : UnaryOp::kGelu, {});
}

std::unique_ptr<OpKernel> MakeSqrt(const OpInit& init) {
  return MakeUnary(init, UnaryOp::kSqrt, {});
}

std::unique_ptr<OpKernel> MakeExp(const OpInit& init) { return MakeUnary(init, UnaryOp::kExp, {}); }

std::unique_ptr<OpKernel> MakeNeg(const OpInit& init) { return MakeUnary(init, UnaryOp::kNeg, {}); }

std::unique_ptr<OpKernel> MakeAbs(const OpInit& init) { return MakeUnary(init, UnaryOp::kAbs, {}); }

// Clip: bounds are attributes before opset 11 and optional scalar inputs from opset 11 on.
std::unique_ptr<OpKernel> MakeClip(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  if (init.opset > 0 && init.opset < 11) {
    CheckArity(n, 1, 1, 1, 1);
    UnaryParams p;
    // Clip-6 defaults are +-FLT_MAX, which bound nothing a float can hold except +-Inf.
    p.lo = n.attr_float("min", std::numeric_limits<float>::lowest());
    p.hi = n.attr_float("max", std::numeric_limits<float>::max());
    return MakeUnary(init, UnaryOp::kClip, p);
  }
  CheckArity(n, 1, 3, 1, 1);
  if (n.has_attr("min") || n.has_attr("max"))
    FailNode(n, "min/max are inputs from opset 11 on, not attributes");
  return MakeLambdaOp([desc](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    UnaryParams p;
    auto bound = [&](size_t i, double& out, const char* which) {
      if (i >= in.size() || !in[i].defined()) return;
      const Tensor& b = in[i];
      if (b.dtype() != x.dtype())
        throw Error(desc + ": " + which + " has dtype " + std::string(DTypeName(b.dtype())) +
                    ", input has " + std::string(DTypeName(x.dtype())));
      if (b.numel() != 1)
        throw Error(desc + ": " + which + " must be a scalar, got shape " +
                    ShapeToString(b.shape()));
      out = b.GetAsDouble(0);
    };
    bound(1, p.lo, "min");
    bound(2, p.hi, "max");
    if (!kernels::UnarySupports(UnaryOp::kClip, x.dtype()))
      throw Error(desc + ": unsupported input dtype " + std::string(DTypeName(x.dtype())));
    return std::vector<Tensor>{kernels::Unary(UnaryOp::kClip, p, x)};
  });
}

std::unique_ptr<OpKernel> MakeAdd(const OpInit& init) { return MakeBinary(init, BinaryOp::kAdd); }
std::unique_ptr<OpKernel> MakeSub(const OpInit& init) { return MakeBinary(init, BinaryOp::kSub); }
std::unique_ptr<OpKernel> MakeMul(const OpInit& init) { return MakeBinary(init, BinaryOp::kMul); }
std::unique_ptr<OpKernel> MakeDiv(const OpInit& init) { return MakeBinary(init, BinaryOp::kDiv); }
std::unique_ptr<OpKernel> MakePow(const OpInit& init) { return MakeBinary(init, BinaryOp::kPow); }
std::unique_ptr<OpKernel> MakeEqual(const OpInit& init) {
  return MakeBinary(init, BinaryOp::kEqual);
}
std::unique_ptr<OpKernel> MakeMin(const OpInit& init) { return MakeVariadic(init, BinaryOp::kMin); }
std::unique_ptr<OpKernel> MakeMax(const OpInit& init) { return MakeVariadic(init, BinaryOp::kMax); }

std::unique_ptr<OpKernel> MakeWhere(const OpInit& init) {
  CheckArity(init.node, 3, 3, 1, 1);
  const std::string desc = init.node.Describe();
  return MakeLambdaOp([desc](const OpContext&, std::span<const Tensor> in) {
    return std::vector<Tensor>{
        kernels::Where(Arg(in, 0, desc), Arg(in, 1, desc), Arg(in, 2, desc))};
  });
}

std::unique_ptr<OpKernel> MakeReduceSum(const OpInit& init) {
  return MakeReduce(init, kernels::ReduceOp::kSum, 13);
}
std::unique_ptr<OpKernel> MakeReduceMean(const OpInit& init) {
  return MakeReduce(init, kernels::ReduceOp::kMean, 18);
}
std::unique_ptr<OpKernel> MakeReduceMax(const OpInit& init) {
  return MakeReduce(init, kernels::ReduceOp::kMax, 18);
}

}  // namespace qforge::runtime
