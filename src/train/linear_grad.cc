// Forward and backward of Conv (incl. grouped / depthwise), ConvTranspose, Gemm and MatMul.
// Forwards are the runtime's fast kernels; Conv and ConvTranspose share one backward core
// (train/conv_grad.h: batched im2col + kernels::Sgemm, direct loops for depthwise).
#include <algorithm>
#include <cstring>

#include "qforge/kernels/elementwise.h"
#include "qforge/train/autograd.h"
#include "train/conv_grad.h"
#include "train/tensor_math.h"

namespace qforge::train {

namespace {

struct ConvAttrs {
  int64_t group;
  std::vector<int64_t> strides, dilations, pads_begin, pads_end;
  std::string auto_pad;
};

// Spatial attributes resolved against the weight's kernel dims (defaults: stride / dilation 1,
// pads 0). Only 1-D and 2-D convolutions are trainable.
ConvAttrs ParseConv(const ir::Node& n, const std::vector<int64_t>& kernel) {
  const size_t r = kernel.size();
  if (r < 1 || r > 2)
    throw Error(n.Describe() + ": training supports 1-D and 2-D convolutions, got " +
                std::to_string(r) + "-D");
  ConvAttrs a;
  a.group = n.attr_int("group", 1);
  a.strides = n.attr_ints("strides", std::vector<int64_t>(r, 1));
  a.dilations = n.attr_ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> pads = n.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (a.strides.size() != r || a.dilations.size() != r || pads.size() != 2 * r)
    throw Error(n.Describe() + ": strides / dilations / pads do not match the kernel rank");
  a.pads_begin.assign(pads.begin(), pads.begin() + r);
  a.pads_end.assign(pads.begin() + r, pads.end());
  return a;
}

// Pads for auto_pad SAME_* given input and output sizes (as the runtime computes them).
void ResolveSamePads(ConvAttrs& a, const std::vector<int64_t>& in,
                     const std::vector<int64_t>& kernel) {
  if (a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER") {
    if (a.auto_pad == "VALID") std::fill(a.pads_begin.begin(), a.pads_begin.end(), 0);
    return;
  }
  for (size_t d = 0; d < in.size(); ++d) {
    const int64_t s = a.strides[d], span = a.dilations[d] * (kernel[d] - 1) + 1;
    const int64_t out = (in[d] + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in[d]);
    a.pads_begin[d] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
  }
}

// The 2-D window of one group's image (c channels, in spatial dims `in`), read at `out`.
Window MakeWindow(int64_t c, const std::vector<int64_t>& in, const std::vector<int64_t>& out,
                  const std::vector<int64_t>& k, const ConvAttrs& a) {
  if (in.size() == 1)
    return {
        c, 1, in[0], 1, out[0], 1, k[0], 1, a.strides[0], 1, a.dilations[0], 0, a.pads_begin[0]};
  return {c,
          in[0],
          in[1],
          out[0],
          out[1],
          k[0],
          k[1],
          a.strides[0],
          a.strides[1],
          a.dilations[0],
          a.dilations[1],
          a.pads_begin[0],
          a.pads_begin[1]};
}

// db[m] = sum over n and spatial of dy[n, m, ...].
Tensor BiasGrad(const Tensor& dy, int64_t channels) {
  Tensor db(DType::kF32, {channels});
  const int64_t n = dy.dim(0), s = dy.numel() / std::max<int64_t>(1, n * channels);
  const float* p = dy.data<float>();
  float* out = db.data<float>();
  for (int64_t m = 0; m < channels; ++m) {
    double acc = 0;
    for (int64_t b = 0; b < n; ++b) {
      const float* q = p + (b * channels + m) * s;
      for (int64_t i = 0; i < s; ++i) acc += q[i];
    }
    out[m] = static_cast<float>(acc);
  }
  return db;
}

}  // namespace

// Conv.  X: [N, C, H, W] (or [N, C, L]), W: [M, C/G, kh, kw], B: [M], Y: [N, M, OH, OW].
//   dX[n, g] = col2im(W_g^T dY[n, g])      ([Cg*kh*kw, OH*OW] scattered to [Cg, H, W])
//   dW_g     = sum_n dY[n, g] im2col(X[n, g])^T
//   dB[m]    = sum_{n, oy, ox} dY[n, m, oy, ox]
std::vector<Tensor> ConvBackward(const BackwardArgs& a) {
  const ir::Node& node = a.node;
  const Tensor& x = a.inputs[0];
  const Tensor& w = a.inputs[1];
  RequireF32(node.Describe(), x, "X");
  RequireF32(node.Describe(), w, "W");
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
  ConvAttrs at = ParseConv(node, kernel);
  const std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end());
  const std::vector<int64_t> out(dy.shape().begin() + 2, dy.shape().end());
  ResolveSamePads(at, in, kernel);
  const int64_t N = x.dim(0), C = x.dim(1), M = w.dim(0), G = at.group;
  const int64_t Cg = C / G, Mg = M / G;
  const Window win = MakeWindow(Cg, in, out, kernel, at);
  const bool need_x = a.needs_grad[0], need_w = a.needs_grad[1];
  std::vector<Tensor> res(a.inputs.size());
  if (a.inputs.size() > 2 && a.inputs[2].defined() && a.needs_grad[2]) res[2] = BiasGrad(dy, M);
  if (!need_x && !need_w) return res;

  Tensor dx = need_x ? Tensor(DType::kF32, x.shape()) : Tensor();
  Tensor dw = need_w ? Tensor::Uninitialized(DType::kF32, w.shape()) : Tensor();
  WindowedGrad p;
  p.win = win;
  p.n = N;
  p.groups = G;
  p.rows = Mg;
  p.img = x.data<float>();
  p.oth = dy.data<float>();
  p.w = w.data<float>();
  p.dw = need_w ? dw.data<float>() : nullptr;
  p.dimg = need_x ? dx.data<float>() : nullptr;
  WindowedBackward(p, a.threads);
  res[0] = dx;
  res[1] = dw;
  return res;
}

// ConvTranspose.  X: [N, C, H, W], W: [C, M/G, kh, kw], B: [M], Y: [N, M, OH, OW]:
// Y = col2im(W_g^T X[n, g]) — the adjoint of a convolution over Y. So, with the window sliding
// over Y (image [Mg, OH, OW]) to X's positions:
//   dX[n, g] = W_g im2col(dY[n, g])          ([Cg, Mg*k] x [Mg*k, H*W])
//   dW_g     = sum_n X[n, g] im2col(dY[n, g])^T
//   dB[m]    = sum dY[n, m, ...]
std::vector<Tensor> ConvTransposeBackward(const BackwardArgs& a) {
  const ir::Node& node = a.node;
  const Tensor& x = a.inputs[0];
  const Tensor& w = a.inputs[1];
  RequireF32(node.Describe(), x, "X");
  RequireF32(node.Describe(), w, "W");
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const std::vector<int64_t> kernel(w.shape().begin() + 2, w.shape().end());
  ConvAttrs at = ParseConv(node, kernel);
  const size_t r = kernel.size();
  const std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end());
  const std::vector<int64_t> out(dy.shape().begin() + 2, dy.shape().end());
  // Begin pads as the runtime derives them (output_shape / SAME: from the total padding).
  const std::vector<int64_t> out_pad = node.attr_ints("output_padding", std::vector<int64_t>(r, 0));
  const bool same = at.auto_pad == "SAME_UPPER" || at.auto_pad == "SAME_LOWER";
  if (node.has_attr("output_shape") || same) {
    for (size_t d = 0; d < r; ++d) {
      const int64_t full =
          at.strides[d] * (in[d] - 1) + out_pad[d] + (kernel[d] - 1) * at.dilations[d] + 1;
      const int64_t total = full - out[d];
      const int64_t small = total >= 0 ? total / 2 : -((-total + 1) / 2), large = total - small;
      at.pads_begin[d] = at.auto_pad == "SAME_UPPER" ? small : large;
    }
  } else if (at.auto_pad == "VALID") {
    std::fill(at.pads_begin.begin(), at.pads_begin.end(), 0);
  }
  const int64_t N = x.dim(0), C = x.dim(1), G = at.group, Mg = w.dim(1), M = Mg * G;
  const int64_t Cg = C / G;
  // The window over the output image [Mg, OH, OW] at X's positions [H, W].
  const Window win = MakeWindow(Mg, out, in, kernel, at);
  const bool need_x = a.needs_grad[0], need_w = a.needs_grad[1];
  std::vector<Tensor> res(a.inputs.size());
  if (a.inputs.size() > 2 && a.inputs[2].defined() && a.needs_grad[2]) res[2] = BiasGrad(dy, M);
  if (!need_x && !need_w) return res;
  Tensor dx = need_x ? Tensor::Uninitialized(DType::kF32, x.shape()) : Tensor();
  Tensor dw = need_w ? Tensor::Uninitialized(DType::kF32, w.shape()) : Tensor();
  WindowedGrad p;
  p.win = win;
  p.n = N;
  p.groups = G;
  p.rows = Cg;
  p.img = dy.data<float>();
  p.oth = x.data<float>();
  p.w = w.data<float>();
  p.dw = need_w ? dw.data<float>() : nullptr;
  p.doth = need_x ? dx.data<float>() : nullptr;
  WindowedBackward(p, a.threads);
  res[0] = dx;
  res[1] = dw;
  return res;
}

// Gemm.  Y[M, N] = alpha * A' B' + beta * C,  A' = transA ? A^T : A  ([M, K]),
// B' = transB ? B^T : B ([K, N]), C broadcastable to [M, N].
//   dA' = alpha dY B'^T  (dA = dA'^T when transA),  dB' = alpha A'^T dY  (dB = dB'^T when transB),
//   dC = beta * sum_to(dY, C).
std::vector<Tensor> GemmBackward(const BackwardArgs& a) {
  const ir::Node& node = a.node;
  const Tensor& A = a.inputs[0];
  const Tensor& B = a.inputs[1];
  RequireF32(node.Describe(), A, "A");
  RequireF32(node.Describe(), B, "B");
  const bool ta = node.attr_int("transA", 0) != 0, tb = node.attr_int("transB", 0) != 0;
  const float alpha = node.attr_float("alpha", 1.0f), beta = node.attr_float("beta", 1.0f);
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const int64_t M = dy.dim(0), N = dy.dim(1), K = ta ? A.dim(0) : A.dim(1);
  const int threads = a.threads;
  std::vector<Tensor> res(a.inputs.size());
  const float* pa = A.data<float>();
  const float* pb = B.data<float>();
  const float* pdy = dy.data<float>();
  auto scale = [](Tensor& t, float s) {
    if (s != 1.0f)
      for (float& v : t.span<float>()) v *= s;
  };
  if (a.needs_grad[0]) {
    Tensor dA = Tensor::Uninitialized(DType::kF32, A.shape());
    if (!ta)
      MatMulF32(M, K, N, pdy, false, pb, !tb, dA.data<float>(), false, threads);  // dY B'^T
    else
      MatMulF32(K, M, N, pb, tb, pdy, true, dA.data<float>(), false, threads);  // B' dY^T
    scale(dA, alpha);
    res[0] = dA;
  }
  if (a.needs_grad[1]) {
    Tensor dB = Tensor::Uninitialized(DType::kF32, B.shape());
    if (!tb)
      MatMulF32(K, N, M, pa, !ta, pdy, false, dB.data<float>(), false, threads);  // A'^T dY
    else
      MatMulF32(N, K, M, pdy, true, pa, ta, dB.data<float>(), false, threads);  // dY^T A'
    scale(dB, alpha);
    res[1] = dB;
  }
  if (a.inputs.size() > 2 && a.inputs[2].defined() && a.needs_grad[2]) {
    Tensor dC = SumToShape(dy, a.inputs[2].shape());
    if (beta != 1.0f) {
      if (dC.raw() == dy.raw()) dC = dC.Clone();
      scale(dC, beta);
    }
    res[2] = dC;
  }
  return res;
}

// MatMul (numpy semantics).  A: [..., M, K], B: [..., K, N], Y: [broadcast(...), M, N];
// a 1-D A is [1, K] (the M dim dropped from Y), a 1-D B is [K, 1] (the N dim dropped).
//   dA_b = dY_b B_b^T,  dB_b = A_b^T dY_b,  summed over the batches each operand was
//   broadcast to. When B is a plain matrix (weights), A's batch dims fold into M: one GEMM.
std::vector<Tensor> MatMulBackward(const BackwardArgs& a) {
  const ir::Node& node = a.node;
  const Tensor& A = a.inputs[0];
  const Tensor& B = a.inputs[1];
  RequireF32(node.Describe(), A, "A");
  RequireF32(node.Describe(), B, "B");
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Shape as = A.shape(), bs = B.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const Shape abatch(as.begin(), as.end() - 2), bbatch(bs.begin(), bs.end() - 2);
  const Shape batch = kernels::BroadcastShape(abatch, bbatch);
  const int64_t nb = NumElements(batch);
  std::vector<Tensor> res(2);
  const float* pa = A.data<float>();
  const float* pb = B.data<float>();
  const float* pdy = dy.data<float>();
  const bool need_a = a.needs_grad[0], need_b = a.needs_grad[1];
  if (bbatch.empty() && !abatch.empty()) {
    // A: [nb * M, K] x B: [K, N].
    const int64_t rows = NumElements(abatch) * M;
    if (need_a) {
      Tensor dA = Tensor::Uninitialized(DType::kF32, A.shape());
      MatMulF32(rows, K, N, pdy, false, pb, true, dA.data<float>(), false, a.threads);
      res[0] = dA;
    }
    if (need_b) {
      Tensor dB = Tensor::Uninitialized(DType::kF32, B.shape());
      MatMulF32(K, N, rows, pa, true, pdy, false, dB.data<float>(), false, a.threads);
      res[1] = dB;
    }
    return res;
  }
  // General case: walk the broadcast batch, mapping each index to A's and B's batch offsets.
  auto batch_offset = [&](const Shape& sub, int64_t flat) {
    // Index of `flat` (in `batch`) within a (right-aligned, broadcast) sub-batch shape.
    int64_t off = 0, stride = 1;
    for (size_t d = 0; d < batch.size(); ++d) {
      const size_t bd = batch.size() - 1 - d;
      const int64_t coord = flat % batch[bd];
      flat /= batch[bd];
      if (d < sub.size()) {
        const int64_t sd = sub[sub.size() - 1 - d];
        if (sd != 1) off += coord * stride;
        stride *= sd;
      }
    }
    return off;
  };
  Tensor dA = need_a ? Tensor(DType::kF32, A.shape()) : Tensor();
  Tensor dB = need_b ? Tensor(DType::kF32, B.shape()) : Tensor();
  for (int64_t i = 0; i < nb; ++i) {
    const int64_t ia = batch_offset(abatch, i), ib = batch_offset(bbatch, i);
    const float* dyi = pdy + i * M * N;
    if (need_a)
      MatMulF32(M, K, N, dyi, false, pb + ib * K * N, true, dA.data<float>() + ia * M * K, true,
                a.threads);
    if (need_b)
      MatMulF32(K, N, M, pa + ia * M * K, true, dyi, false, dB.data<float>() + ib * K * N, true,
                a.threads);
  }
  res[0] = dA;
  res[1] = dB;
  return res;
}

}  // namespace qforge::train
