// Forward and backward of the data-movement ops: Reshape / Flatten / Squeeze / Unsqueeze /
// Identity, Transpose, Concat, Split, Slice, Gather, Expand. Forwards are the runtime's.
#include <algorithm>

#include "qforge/kernels/transform.h"
#include "qforge/train/autograd.h"
#include "train/tensor_math.h"

namespace qforge::train {

// Y = X with another shape (same elements, same order).  dX = dY reshaped to X's shape.
// Shape-like inputs (Reshape's shape, axes) get no gradient.
std::vector<Tensor> ReshapeLikeBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (a.needs_grad[0])
    res[0] = GradOrZeros(a.grad_outputs, a.outputs, 0).Reshaped(a.inputs[0].shape());
  return res;
}

// Y = transpose(X, perm) (default: reversed dims).  dX = transpose(dY, perm^-1).
std::vector<Tensor> TransposeBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const int64_t r = a.inputs[0].rank();
  std::vector<int64_t> perm = a.node.attr_ints("perm", {});
  if (perm.empty())
    for (int64_t i = 0; i < r; ++i) perm.push_back(r - 1 - i);
  if (static_cast<int64_t>(perm.size()) != r)
    throw Error(a.node.Describe() + ": perm does not match the input rank");
  std::vector<int64_t> inv(r);
  for (int64_t i = 0; i < r; ++i) inv[perm[i]] = i;
  res[0] = kernels::Transpose(GradOrZeros(a.grad_outputs, a.outputs, 0), inv);
  return res;
}

// Y = concat(X_0..X_k, axis).  dX_i = the slice of dY along axis at X_i's offset.
std::vector<Tensor> ConcatBackward(const BackwardArgs& a) {
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const int64_t axis = NormalizeAxis(a.node.Describe(), a.node.attr_int("axis"), dy.rank());
  std::vector<int64_t> sizes;
  for (const Tensor& t : a.inputs) sizes.push_back(t.defined() ? t.dim(axis) : 0);
  std::vector<Tensor> parts = kernels::Split(dy, axis, sizes);
  std::vector<Tensor> res(a.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); ++i)
    if (a.needs_grad[i]) res[i] = parts[i];
  return res;
}

// Y_0..Y_k = split(X, axis).  dX = concat(dY_0..dY_k) (zeros for outputs with no gradient).
std::vector<Tensor> SplitBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const int64_t axis =
      NormalizeAxis(a.node.Describe(), a.node.attr_int("axis", 0), a.inputs[0].rank());
  std::vector<Tensor> parts;
  for (size_t j = 0; j < a.outputs.size(); ++j)
    parts.push_back(GradOrZeros(a.grad_outputs, a.outputs, j));
  res[0] = kernels::Concat(parts, axis);
  return res;
}

// Y = X[starts : ends : steps] on the given axes.  dX = zeros with dY scattered back to the
// sliced positions. The effective start per axis is resolved as the runtime does (numpy
// clamping); Y's shape gives the counts.
std::vector<Tensor> SliceBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const ir::Node& node = a.node;
  const Tensor& x = a.inputs[0];
  const bool attrs = a.opset > 0 && a.opset < 10;
  std::vector<int64_t> starts, axes, steps;
  if (attrs) {
    starts = node.attr_ints("starts");
    axes = node.attr_ints("axes", {});
  } else {
    starts = a.inputs[1].ToInt64Vector();
    if (a.inputs.size() > 3 && a.inputs[3].defined()) axes = a.inputs[3].ToInt64Vector();
    if (a.inputs.size() > 4 && a.inputs[4].defined()) steps = a.inputs[4].ToInt64Vector();
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  const int64_t r = x.rank();
  std::vector<int64_t> st(r, 0), sp(r, 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t ax = NormalizeAxis(node.Describe(), axes[i], r), dim = x.dim(ax);
    int64_t s = starts[i];
    if (s < 0) s = s < -dim ? -dim - 1 : s + dim;
    s = steps[i] > 0 ? std::clamp<int64_t>(s, 0, dim) : std::clamp<int64_t>(s, -1, dim - 1);
    st[ax] = a.outputs[0].dim(ax) > 0 ? s : 0;
    sp[ax] = steps[i];
  }
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Tensor dx(DType::kF32, x.shape());
  const std::vector<int64_t> xs = RowMajorStrides(x.shape());
  const Shape& ys = dy.shape();
  std::vector<int64_t> idx(r, 0);
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  for (int64_t i = 0; i < dy.numel(); ++i) {
    int64_t off = 0;
    for (int64_t d = 0; d < r; ++d) off += (st[d] + idx[d] * sp[d]) * xs[d];
    pdx[off] += pdy[i];
    for (int64_t d = r - 1; d >= 0; --d) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
  res[0] = dx;
  return res;
}

// Y = gather(X, indices, axis): Y[pre, j..., post] = X[pre, indices[j...], post].
// dX = zeros; dX[pre, indices[j], post] += dY[pre, j, post] (repeated indices accumulate).
std::vector<Tensor> GatherBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const Tensor& x = a.inputs[0];
  const int64_t axis = NormalizeAxis(a.node.Describe(), a.node.attr_int("axis", 0), x.rank());
  const std::vector<int64_t> ind = a.inputs[1].ToInt64Vector();
  int64_t pre = 1, post = 1;
  for (int64_t d = 0; d < axis; ++d) pre *= x.dim(d);
  for (int64_t d = axis + 1; d < x.rank(); ++d) post *= x.dim(d);
  const int64_t dim = x.dim(axis), k = static_cast<int64_t>(ind.size());
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Tensor dx(DType::kF32, x.shape());
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  for (int64_t p = 0; p < pre; ++p)
    for (int64_t j = 0; j < k; ++j) {
      const int64_t i = ind[j] < 0 ? ind[j] + dim : ind[j];
      const float* src = pdy + (p * k + j) * post;
      float* dst = pdx + (p * dim + i) * post;
      for (int64_t q = 0; q < post; ++q) dst[q] += src[q];
    }
  res[0] = dx;
  return res;
}

// Y = broadcast of X to a shape.  dX = sum_to(dY, X's shape).
std::vector<Tensor> ExpandBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (a.needs_grad[0])
    res[0] = SumToShape(GradOrZeros(a.grad_outputs, a.outputs, 0), a.inputs[0].shape());
  return res;
}

}  // namespace qforge::train
