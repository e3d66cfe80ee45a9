// Forward and backward of Pad (every mode) and Resize (mode nearest): ops whose every output
// element is a copy of one input element (or a constant). Forwards are the runtime's; the
// backward finds each output's source by running the same runtime kernel on an index tensor.
#include <memory>

#include "qforge/train/autograd.h"
#include "runtime/op_kernel.h"
#include "train/tensor_math.h"

namespace qforge::train {

namespace {

// Float indices are exact up to 2^24; i + 1 is stored so that 0 means "no source".
constexpr int64_t kMaxIndexed = int64_t{1} << 24;

// dX for a copy-like node: the node's own runtime kernel (so the exact forward semantics:
// coordinate modes, rounding, reflect / edge / wrap) maps a tensor holding i + 1 at element i
// of X; then dX[src(o)] += dY[o] for every output element o with a source (src = value - 1).
// `inputs` are the node's inputs with X (input 0) replaced by nothing yet; `node` may be a
// copy with attributes that only affect constant fill values neutralized.
Tensor CopyLikeGrad(const ir::Node& node, std::vector<Tensor> inputs, const Tensor& dy, int opset) {
  const Tensor& x = inputs[0];
  if (x.numel() >= kMaxIndexed)
    throw Error(node.Describe() + ": gradient supports inputs below 2^24 elements, got " +
                ShapeToString(x.shape()));
  Tensor index = Tensor::Uninitialized(DType::kF32, x.shape());
  float* pi = index.data<float>();
  for (int64_t i = 0; i < x.numel(); ++i) pi[i] = static_cast<float>(i + 1);
  inputs[0] = index;
  runtime::OpFactory f = runtime::FindOp(node.domain, node.op_type);
  if (!f) throw Error(node.Describe() + ": no runtime kernel for the gradient's index pass");
  runtime::OpInit init{node, std::vector<Tensor>(node.inputs.size()), opset};
  std::unique_ptr<runtime::OpKernel> kernel = f(init);
  runtime::OpContext ctx;
  ctx.threads = 1;
  const Tensor src = kernel->Run(ctx, inputs).at(0);
  if (src.shape() != dy.shape())
    throw Error(node.Describe() + ": index pass gave shape " + ShapeToString(src.shape()) +
                ", the gradient has " + ShapeToString(dy.shape()));
  Tensor dx(DType::kF32, x.shape());
  float* pdx = dx.data<float>();
  const float* ps = src.data<float>();
  const float* pdy = dy.data<float>();
  for (int64_t o = 0; o < dy.numel(); ++o) {
    const int64_t s = static_cast<int64_t>(ps[o]);
    if (s > 0) pdx[s - 1] += pdy[o];
  }
  return dx;
}

}  // namespace

// Pad.  data: [*], pads: int64 [2 * axes] (opset < 11: attribute), constant_value, axes.
// Y = data with borders added (constant fill, or reflect / edge / wrap copies) or cropped
// (negative pads). dData[i] = sum of dY over the outputs copied from element i (constant fill
// receives none). pads, constant_value and axes get no gradient.
std::vector<Tensor> PadBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  RequireF32(a.node.Describe(), a.inputs[0], "data");
  ir::Node node = a.node;
  std::vector<Tensor> inputs(a.inputs.begin(), a.inputs.end());
  // The fill value must not look like an index: pad with 0 (= no source).
  if (node.has_attr("value")) node.attrs["value"] = 0.0f;
  if (inputs.size() > 2 && inputs[2].defined()) inputs[2] = Tensor(DType::kF32, inputs[2].shape());
  res[0] =
      CopyLikeGrad(node, std::move(inputs), GradOrZeros(a.grad_outputs, a.outputs, 0), a.opset);
  return res;
}

// Resize, mode nearest.  X: [*], roi, scales / sizes; Y[o] = X[nearest source of o] per axis
// (coordinate_transformation_mode and nearest_mode as the runtime). dX[i] = sum of dY over the
// outputs that picked element i. Linear and cubic modes have no gradient (an Error).
std::vector<Tensor> ResizeBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  RequireF32(a.node.Describe(), a.inputs[0], "X");
  const std::string mode = a.node.attr_string("mode", "nearest");
  if (mode != "nearest")
    throw Error(a.node.Describe() + ": Resize mode '" + mode +
                "' has no gradient (only mode nearest is trainable)");
  if (a.node.attr_string("coordinate_transformation_mode", "") == "tf_crop_and_resize" &&
      a.node.attr_float("extrapolation_value", 0.0f) != 0.0f) {
    ir::Node node = a.node;
    node.attrs["extrapolation_value"] = 0.0f;  // outside the crop: no source
    res[0] = CopyLikeGrad(node, std::vector<Tensor>(a.inputs.begin(), a.inputs.end()),
                          GradOrZeros(a.grad_outputs, a.outputs, 0), a.opset);
    return res;
  }
  res[0] = CopyLikeGrad(a.node, std::vector<Tensor>(a.inputs.begin(), a.inputs.end()),
                        GradOrZeros(a.grad_outputs, a.outputs, 0), a.opset);
  return res;
}

}  // namespace qforge::train
