// ONNX shape and data-movement ops: Flatten, Reshape, Transpose, Concat, Split, Slice, Squeeze,
// Unsqueeze, Shape, Gather, Cast, Constant, ConstantOfShape, Expand, Identity, Dropout.
//
// Ops that only change the shape (Reshape, Flatten, Squeeze, Unsqueeze, Identity, inference
// Dropout) return a tensor sharing the input's storage; no data is copied.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/transform.h"
#include "runtime/ops/lambda_op.h"

namespace qforge::runtime {

namespace {

// A shape-like input (Reshape's shape, Expand's shape, axes, starts...): integer, rank <= 1.
std::vector<int64_t> IntList(const Tensor& t, const std::string& desc, const char* what) {
  if (!IsInteger(t.dtype()))
    throw Error(desc + ": " + what + " must be an integer tensor, got " +
                std::string(DTypeName(t.dtype())));
  if (t.rank() > 1)
    throw Error(desc + ": " + what + " must be 1-D, got shape " + ShapeToString(t.shape()));
  return t.ToInt64Vector();
}

Tensor I64Vector(const std::vector<int64_t>& v) {
  return Tensor::FromVector<int64_t>({static_cast<int64_t>(v.size())}, v);
}

// Normalizes axes against `rank`, rejecting duplicates.
std::vector<int64_t> NormalizeAxes(std::vector<int64_t> axes, int64_t rank,
                                   const std::string& desc) {
  std::vector<bool> seen(rank, false);
  for (int64_t& a : axes) {
    a = NormalizeAxis(a, rank, desc);
    if (seen[a]) throw Error(desc + ": axis " + std::to_string(a) + " given twice");
    seen[a] = true;
  }
  return axes;
}

std::unique_ptr<OpKernel> Identity1(const OpInit& init) {
  const std::string desc = init.node.Describe();
  return MakeLambdaOp([desc](const OpContext&, std::span<const Tensor> in) {
    return std::vector<Tensor>{Arg(in, 0, desc)};
  });
}

// ceil(dist / |step|) for dist > 0 without overflow, even for step = INT64_MIN.
int64_t CeilDiv(int64_t dist, int64_t step) {
  const uint64_t mag = step > 0 ? static_cast<uint64_t>(step) : 0 - static_cast<uint64_t>(step);
  return static_cast<int64_t>(1 + (static_cast<uint64_t>(dist) - 1) / mag);
}

// Reshape's target shape: 0 copies the input dim (unless allowzero), -1 is inferred.
Shape ResolveReshape(const Shape& in, const std::vector<int64_t>& spec, bool allowzero,
                     const std::string& desc) {
  Shape out(spec.size());
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < spec.size(); ++i) {
    int64_t s = spec[i];
    if (s == -1) {
      if (infer >= 0) throw Error(desc + ": more than one -1 in shape");
      infer = static_cast<int>(i);
      continue;
    }
    if (s == 0 && !allowzero) {
      if (i >= in.size())
        throw Error(desc + ": shape entry " + std::to_string(i) + " is 0 but the input has rank " +
                    std::to_string(in.size()));
      s = in[i];
    }
    if (s < 0) throw Error(desc + ": invalid shape entry " + std::to_string(s));
    out[i] = s;
    if (__builtin_mul_overflow(known, s, &known))
      throw Error(desc + ": shape " + ShapeToString(Shape(spec.begin(), spec.end())) +
                  " has too many elements");
  }
  const int64_t total = NumElements(in);
  if (infer >= 0) {
    if (known == 0 || total % known != 0)
      throw Error(desc + ": cannot reshape " + ShapeToString(in) + " (" + std::to_string(total) +
                  " elements) with -1 in the shape");
    out[infer] = total / known;
  }
  if (NumElements(out) != total)
    throw Error(desc + ": cannot reshape " + ShapeToString(in) + " to " + ShapeToString(out));
  return out;
}

}  // namespace

std::unique_ptr<OpKernel> MakeIdentity(const OpInit& init) {
  CheckArity(init.node, 1, 1, 1, 1);
  return Identity1(init);
}

std::unique_ptr<OpKernel> MakeFlatten(const OpInit& init) {
  CheckArity(init.node, 1, 1, 1, 1);
  const std::string desc = init.node.Describe();
  const int64_t axis_attr = init.node.attr_int("axis", 1);
  return MakeLambdaOp([desc, axis_attr](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    // axis is in [-r, r]; r itself is allowed (output [N, 1]).
    const int64_t r = x.rank();
    if (axis_attr < -r || axis_attr > r)
      throw Error(desc + ": axis " + std::to_string(axis_attr) + " out of range for rank " +
                  std::to_string(r));
    const int64_t axis = axis_attr < 0 ? axis_attr + r : axis_attr;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < r; ++d) (d < axis ? outer : inner) *= x.shape()[d];
    return std::vector<Tensor>{x.Reshaped({outer, inner})};
  });
}

std::unique_ptr<OpKernel> MakeReshape(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  const bool allowzero = n.attr_int("allowzero", 0) != 0;
  if (init.opset > 0 && init.opset < 5) {  // Reshape-1: shape is an attribute
    CheckArity(n, 1, 1, 1, 1);
    std::vector<int64_t> spec = n.attr_ints("shape");
    return MakeLambdaOp([desc, spec](const OpContext&, std::span<const Tensor> in) {
      const Tensor& x = Arg(in, 0, desc);
      return std::vector<Tensor>{x.Reshaped(ResolveReshape(x.shape(), spec, false, desc))};
    });
  }
  CheckArity(n, 2, 2, 1, 1);
  return MakeLambdaOp([desc, allowzero](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    std::vector<int64_t> spec = IntList(Arg(in, 1, desc), desc, "shape");
    if (allowzero && std::count(spec.begin(), spec.end(), 0) > 0 &&
        std::count(spec.begin(), spec.end(), -1) > 0)
      throw Error(desc + ": shape has both 0 and -1 with allowzero=1");
    return std::vector<Tensor>{x.Reshaped(ResolveReshape(x.shape(), spec, allowzero, desc))};
  });
}

// Transpose of 4-byte elements whose innermost output run is contiguous in the input (e.g.
// attention's [N,T,3,H,D] -> [3,N,H,T,D] and [N,H,T,D] -> [N,T,H,D]): the same element mapping
// as kernels::Transpose (tested against it), but each run of D elements is copied by an inline
// loop instead of a memcpy call per run (runs of 16 floats there: the call dominated).
// Returns false (y untouched) when the shape is not of that kind.
bool TransposeContiguousRuns32(const Tensor& x, std::span<const int64_t> perm, Tensor* y) {
  if (DTypeSize(x.dtype()) != 4 || x.numel() == 0) return false;
  const Shape& xs = x.shape();
  const int64_t rank = static_cast<int64_t>(xs.size());
  std::vector<int64_t> in_strides(rank, 1);
  for (int64_t d = rank - 2; d >= 0; --d) in_strides[d] = in_strides[d + 1] * xs[d + 1];
  // Output dims inner-first, collapsed where adjacent output dims stay adjacent in the input.
  std::vector<int64_t> cd, cs;
  for (int64_t i = rank - 1; i >= 0; --i) {
    const int64_t dim = xs[perm[i]], stride = in_strides[perm[i]];
    if (dim == 1) continue;
    if (!cd.empty() && stride == cs.back() * cd.back()) {
      cd.back() *= dim;
      continue;
    }
    cd.push_back(dim);
    cs.push_back(stride);
  }
  if (cd.size() < 2 || cs[0] != 1) return false;
  Shape out_shape(rank);
  for (int64_t i = 0; i < rank; ++i) out_shape[i] = xs[perm[i]];
  *y = Tensor::Uninitialized(x.dtype(), out_shape);
  const auto* src = static_cast<const uint32_t*>(x.raw());
  auto* dst = static_cast<uint32_t*>(y->raw());
  const int64_t n = cd[0], rows = x.numel() / n, r = static_cast<int64_t>(cd.size());
  std::vector<int64_t> idx(r, 0);
  int64_t off = 0;
  for (int64_t row = 0; row < rows; ++row) {
    const uint32_t* in = src + off;
    uint32_t* out = dst + row * n;
    for (int64_t j = 0; j < n; ++j) out[j] = in[j];
    for (int64_t d = 1; d < r; ++d) {  // odometer over the outer collapsed dims
      off += cs[d];
      if (++idx[d] < cd[d]) break;
      off -= cs[d] * cd[d];
      idx[d] = 0;
    }
  }
  return true;
}

std::unique_ptr<OpKernel> MakeTranspose(const OpInit& init) {
  CheckArity(init.node, 1, 1, 1, 1);
  const std::string desc = init.node.Describe();
  const bool has_perm = init.node.has_attr("perm");
  const std::vector<int64_t> perm_attr = init.node.attr_ints("perm", {});
  return MakeLambdaOp([desc, has_perm, perm_attr](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    std::vector<int64_t> perm = perm_attr;
    if (!has_perm)  // default: reverse the dimensions
      for (int64_t d = x.rank() - 1; d >= 0; --d) perm.push_back(d);
    if (static_cast<int64_t>(perm.size()) != x.rank())
      throw Error(desc + ": perm has " + std::to_string(perm.size()) + " entries, input rank is " +
                  std::to_string(x.rank()));
    bool identity = true;
    for (size_t i = 0; i < perm.size(); ++i) identity &= perm[i] == static_cast<int64_t>(i);
    if (identity) return std::vector<Tensor>{x};
    std::vector<bool> seen(perm.size(), false);
    bool valid = true;
    for (int64_t p : perm) {
      valid = valid && p >= 0 && p < x.rank() && !seen[p];
      if (valid) seen[p] = true;
    }
    Tensor y;  // an invalid perm goes to kernels::Transpose, which names the problem
    if (valid && TransposeContiguousRuns32(x, perm, &y)) return std::vector<Tensor>{y};
    return std::vector<Tensor>{kernels::Transpose(x, perm)};
  });
}

std::unique_ptr<OpKernel> MakeConcat(const OpInit& init) {
  CheckArity(init.node, 1, 1 << 20, 1, 1);
  const std::string desc = init.node.Describe();
  const int64_t axis_attr = init.node.attr_int("axis");
  return MakeLambdaOp([desc, axis_attr](const OpContext&, std::span<const Tensor> in) {
    std::vector<Tensor> xs;
    for (size_t i = 0; i < in.size(); ++i) xs.push_back(Arg(in, i, desc));
    const int64_t axis = NormalizeAxis(axis_attr, xs[0].rank(), desc);
    if (xs.size() == 1) return std::vector<Tensor>{xs[0]};
    return std::vector<Tensor>{kernels::Concat(xs, axis)};
  });
}

// Split: sizes from the `split` attribute (< 13) or input (>= 13); otherwise equal parts, one
// per output, the last one smaller when num_outputs (opset 18) does not divide the dim.
std::unique_ptr<OpKernel> MakeSplit(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  const bool split_input = init.opset <= 0 || init.opset >= 13;
  CheckArity(n, 1, split_input ? 2 : 1, 1, 1 << 20);
  const int64_t axis_attr = n.attr_int("axis", 0);
  const bool has_split_attr = n.has_attr("split");
  const std::vector<int64_t> split_attr = n.attr_ints("split", {});
  const int64_t num_outputs = static_cast<int64_t>(n.outputs.size());
  const bool uneven_ok = n.has_attr("num_outputs");
  if (uneven_ok && n.attr_int("num_outputs") != num_outputs)
    FailNode(n, "num_outputs=" + std::to_string(n.attr_int("num_outputs")) + " but the node has " +
                    std::to_string(num_outputs) + " outputs");
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    const int64_t axis = NormalizeAxis(axis_attr, x.rank(), desc);
    const int64_t dim = x.shape()[axis];
    std::vector<int64_t> sizes;
    if (in.size() > 1 && in[1].defined()) {
      sizes = IntList(in[1], desc, "split");
    } else if (has_split_attr) {
      sizes = split_attr;
    } else if (dim % num_outputs == 0) {
      sizes.assign(num_outputs, dim / num_outputs);
    } else if (uneven_ok) {
      const int64_t chunk = (dim + num_outputs - 1) / num_outputs;
      for (int64_t k = 0; k < num_outputs; ++k)
        sizes.push_back(std::max<int64_t>(0, std::min(chunk, dim - k * chunk)));
    } else {
      throw Error(desc + ": axis " + std::to_string(axis) + " of size " + std::to_string(dim) +
                  " cannot be split into " + std::to_string(num_outputs) + " equal parts");
    }
    if (static_cast<int64_t>(sizes.size()) != num_outputs)
      throw Error(desc + ": split has " + std::to_string(sizes.size()) + " entries for " +
                  std::to_string(num_outputs) + " outputs");
    try {
      return kernels::Split(x, axis, sizes);
    } catch (const Error& e) {
      throw Error(desc + ": " + e.what());
    }
  });
}

// Slice: starts/ends/axes as attributes (< 10) or inputs with optional axes/steps (>= 10).
// Out-of-range starts/ends are clamped as numpy does: to [0, dim] for a positive step and to
// [-1, dim - 1] (where -1 means "before the first element") for a negative one.
std::unique_ptr<OpKernel> MakeSlice(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  const bool attrs = init.opset > 0 && init.opset < 10;
  if (attrs) {
    CheckArity(n, 1, 1, 1, 1);
  } else {
    CheckArity(n, 3, 5, 1, 1);
  }
  const std::vector<int64_t> a_starts = attrs ? n.attr_ints("starts") : std::vector<int64_t>{};
  const std::vector<int64_t> a_ends = attrs ? n.attr_ints("ends") : std::vector<int64_t>{};
  const std::vector<int64_t> a_axes = attrs ? n.attr_ints("axes", {}) : std::vector<int64_t>{};
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    std::vector<int64_t> starts = a_starts, ends = a_ends, axes = a_axes, steps;
    if (!attrs) {
      starts = IntList(Arg(in, 1, desc), desc, "starts");
      ends = IntList(Arg(in, 2, desc), desc, "ends");
      if (in.size() > 3 && in[3].defined()) axes = IntList(in[3], desc, "axes");
      if (in.size() > 4 && in[4].defined()) steps = IntList(in[4], desc, "steps");
    }
    const size_t k = starts.size();
    if (axes.empty())
      for (size_t i = 0; i < k; ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(k, 1);
    if (ends.size() != k || axes.size() != k || steps.size() != k)
      throw Error(desc + ": starts, ends, axes and steps must have the same length");
    axes = NormalizeAxes(axes, x.rank(), desc);
    const int64_t r = x.rank();
    std::vector<int64_t> st(r, 0), sp(r, 1);
    Shape out = x.shape();
    for (size_t i = 0; i < k; ++i) {
      const int64_t a = axes[i], dim = x.shape()[a], step = steps[i];
      if (step == 0) throw Error(desc + ": step 0 on axis " + std::to_string(a));
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s = s < -dim ? -dim - 1 : s + dim;  // keeps "far before the start" below 0
      if (e < 0) e = e < -dim ? -dim - 1 : e + dim;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, dim);
        e = std::clamp<int64_t>(e, 0, dim);
        out[a] = e > s ? CeilDiv(e - s, step) : 0;
      } else {
        s = std::clamp<int64_t>(s, -1, dim - 1);
        e = std::clamp<int64_t>(e, -1, dim - 1);
        out[a] = s > e ? CeilDiv(s - e, step) : 0;
      }
      st[a] = out[a] > 0 ? s : 0;
      sp[a] = step;
    }
    return std::vector<Tensor>{kernels::Slice(x, st, sp, out)};
  });
}

// Squeeze / Unsqueeze: axes are an attribute before opset 13 and an input from 13 on.
std::unique_ptr<OpKernel> MakeSqueeze(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  const bool axes_input = init.opset <= 0 || init.opset >= 13;
  CheckArity(n, 1, axes_input ? 2 : 1, 1, 1);
  const std::vector<int64_t> attr_axes = n.attr_ints("axes", {});
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    std::vector<int64_t> axes = attr_axes;
    if (in.size() > 1 && in[1].defined()) axes = IntList(in[1], desc, "axes");
    std::vector<bool> drop(x.rank(), false);
    if (axes.empty()) {
      for (int64_t d = 0; d < x.rank(); ++d) drop[d] = x.shape()[d] == 1;
    } else {
      for (int64_t a : NormalizeAxes(axes, x.rank(), desc)) {
        if (x.shape()[a] != 1)
          throw Error(desc + ": cannot squeeze axis " + std::to_string(a) + " of size " +
                      std::to_string(x.shape()[a]));
        drop[a] = true;
      }
    }
    Shape out;
    for (int64_t d = 0; d < x.rank(); ++d)
      if (!drop[d]) out.push_back(x.shape()[d]);
    return std::vector<Tensor>{x.Reshaped(out)};
  });
}

std::unique_ptr<OpKernel> MakeUnsqueeze(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  const bool axes_input = init.opset <= 0 || init.opset >= 13;
  CheckArity(n, axes_input ? 2 : 1, axes_input ? 2 : 1, 1, 1);
  const std::vector<int64_t> attr_axes = axes_input ? std::vector<int64_t>{} : n.attr_ints("axes");
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    std::vector<int64_t> axes = axes_input ? IntList(Arg(in, 1, desc), desc, "axes") : attr_axes;
    const int64_t out_rank = x.rank() + static_cast<int64_t>(axes.size());
    std::vector<bool> is_new(out_rank, false);
    for (int64_t a : NormalizeAxes(axes, out_rank, desc)) is_new[a] = true;
    Shape out;
    size_t src = 0;
    for (int64_t d = 0; d < out_rank; ++d) out.push_back(is_new[d] ? 1 : x.shape()[src++]);
    return std::vector<Tensor>{x.Reshaped(out)};
  });
}

// Shape: the input's dims [start, end) as a 1-D i64 tensor (start/end clamped, opset 15).
std::unique_ptr<OpKernel> MakeShape(const OpInit& init) {
  CheckArity(init.node, 1, 1, 1, 1);
  const std::string desc = init.node.Describe();
  const int64_t a_start = init.node.attr_int("start", 0);
  const bool has_end = init.node.has_attr("end");
  const int64_t a_end = init.node.attr_int("end", 0);
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    const int64_t r = x.rank();
    int64_t s = a_start < 0 ? a_start + r : a_start;
    int64_t e = has_end ? (a_end < 0 ? a_end + r : a_end) : r;
    s = std::clamp<int64_t>(s, 0, r);
    e = std::clamp<int64_t>(e, 0, r);
    std::vector<int64_t> dims;
    for (int64_t d = s; d < e; ++d) dims.push_back(x.shape()[d]);
    return std::vector<Tensor>{I64Vector(dims)};
  });
}

std::unique_ptr<OpKernel> MakeGather(const OpInit& init) {
  CheckArity(init.node, 2, 2, 1, 1);
  const std::string desc = init.node.Describe();
  const int64_t axis_attr = init.node.attr_int("axis", 0);
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& data = Arg(in, 0, desc);
    return std::vector<Tensor>{
        kernels::Gather(data, Arg(in, 1, desc), NormalizeAxis(axis_attr, data.rank(), desc))};
  });
}

std::unique_ptr<OpKernel> MakeCast(const OpInit& init) {
  CheckArity(init.node, 1, 1, 1, 1);
  const std::string desc = init.node.Describe();
  const auto to = static_cast<DType>(init.node.attr_int("to"));
  if (!IsStorable(to))
    FailNode(init.node, "cannot cast to " + std::string(DTypeName(to)) + " (ONNX type " +
                            std::to_string(static_cast<int>(to)) + ")");
  const bool saturate = init.node.attr_int("saturate", 1) != 0;
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    return std::vector<Tensor>{kernels::Cast(Arg(in, 0, desc), to, saturate)};
  });
}

// Constant: exactly one of value, value_float(s), value_int(s); strings and sparse tensors are
// not supported.
std::unique_ptr<OpKernel> MakeConstant(const OpInit& init) {
  const ir::Node& n = init.node;
  CheckArity(n, 0, 0, 1, 1);
  if (n.attrs.size() != 1)
    FailNode(n, "needs exactly one value attribute, got " + std::to_string(n.attrs.size()));
  const std::string& key = n.attrs.begin()->first;
  Tensor value;
  if (key == "value") {
    value = n.attr_tensor("value");
  } else if (key == "value_float") {
    value = Tensor::Scalar<float>(n.attr_float("value_float"));
  } else if (key == "value_floats") {
    const auto& v = n.attr_floats("value_floats");
    value = Tensor::FromVector<float>({static_cast<int64_t>(v.size())}, v);
  } else if (key == "value_int") {
    value = Tensor::Scalar<int64_t>(n.attr_int("value_int"));
  } else if (key == "value_ints") {
    value = I64Vector(n.attr_ints("value_ints"));
  } else {
    FailNode(n,
             "attribute '" + key + "' is not supported (only value, value_float(s), value_int(s))");
  }
  if (!value.defined()) FailNode(n, "empty value");
  return MakeLambdaOp(
      [value](const OpContext&, std::span<const Tensor>) { return std::vector<Tensor>{value}; });
}

std::unique_ptr<OpKernel> MakeConstantOfShape(const OpInit& init) {
  const ir::Node& n = init.node;
  CheckArity(n, 1, 1, 1, 1);
  const std::string desc = n.Describe();
  Tensor value = n.has_attr("value") ? n.attr_tensor("value") : Tensor::Scalar<float>(0.0f);
  if (value.numel() != 1)
    FailNode(n, "value must have exactly one element, got " + std::to_string(value.numel()));
  return MakeLambdaOp([desc, value](const OpContext&, std::span<const Tensor> in) {
    Shape shape = IntList(Arg(in, 0, desc), desc, "shape");
    for (int64_t d : shape)
      if (d < 0) throw Error(desc + ": negative dimension in shape " + ShapeToString(shape));
    Tensor out(value.dtype(), shape);
    const size_t es = DTypeSize(value.dtype());
    auto* dst = static_cast<uint8_t*>(out.raw());
    for (int64_t i = 0; i < out.numel(); ++i) std::memcpy(dst + i * es, value.raw(), es);
    return std::vector<Tensor>{out};
  });
}

std::unique_ptr<OpKernel> MakeExpand(const OpInit& init) {
  CheckArity(init.node, 2, 2, 1, 1);
  const std::string desc = init.node.Describe();
  return MakeLambdaOp([desc](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    Shape shape = IntList(Arg(in, 1, desc), desc, "shape");
    return std::vector<Tensor>{kernels::Expand(x, shape)};
  });
}

// Dropout at inference: the output is the input, the optional mask is all ones (true).
// Training mode (opset 12+ input) is accepted only with ratio 0, where it is the same thing.
std::unique_ptr<OpKernel> MakeDropout(const OpInit& init) {
  const ir::Node& n = init.node;
  const std::string desc = n.Describe();
  CheckArity(n, 1, 3, 1, 2);
  if (n.attr_int("is_test", 1) == 0 && init.opset > 0 && init.opset < 7)
    FailNode(n, "training-mode Dropout (is_test=0) is not supported");
  // Dropout-10+: the mask is bool; Dropout-7 (and older) gives it the data's dtype.
  const bool bool_mask = init.opset <= 0 || init.opset >= 10;
  const bool want_mask = n.outputs.size() > 1 && !n.outputs[1].empty();
  return MakeLambdaOp([=](const OpContext&, std::span<const Tensor> in) {
    const Tensor& x = Arg(in, 0, desc);
    if (in.size() > 2 && in[2].defined() && in[2].numel() == 1 && in[2].GetAsDouble(0) != 0) {
      double ratio = (in.size() > 1 && in[1].defined()) ? in[1].GetAsDouble(0) : 0.5;
      if (ratio != 0)
        throw Error(desc + ": training-mode Dropout with ratio " + std::to_string(ratio) +
                    " is not supported (inference only)");
    }
    std::vector<Tensor> out{x};
    if (want_mask) {
      Tensor mask = bool_mask ? kernels::Cast(Tensor::Scalar<bool>(true), DType::kBool)
                              : kernels::Cast(Tensor::Scalar<float>(1.0f), x.dtype());
      out.push_back(kernels::Expand(mask, x.shape()));
    } else if (n.outputs.size() > 1) {
      out.emplace_back();
    }
    return out;
  });
}

}  // namespace qforge::runtime
