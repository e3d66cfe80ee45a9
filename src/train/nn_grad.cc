// Forward and backward of the NN ops: BatchNormalization (training: batch statistics and
// running-statistic updates; evaluation: running statistics), Max/Average/GlobalAverage
// pooling, Softmax/LogSoftmax, LayerNormalization and Dropout.
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>

#include "qforge/train/autograd.h"
#include "train/tensor_math.h"

namespace qforge::train {

namespace {

int Threads(int t) { return t > 0 ? t : omp_get_max_threads(); }

// X viewed as [n, c, s] (s = product of the spatial dims).
struct NCS {
  int64_t n, c, s;
};
NCS ViewNCS(const ir::Node& node, const Tensor& x) {
  if (x.rank() < 2)
    throw Error(node.Describe() + ": input must have rank >= 2, got " + ShapeToString(x.shape()));
  return {x.dim(0), x.dim(1), x.numel() / std::max<int64_t>(1, x.dim(0) * x.dim(1))};
}

}  // namespace

// BatchNormalization.  X: [N, C, ...], scale, B, mean, var: [C], Y: X's shape.
// Training (ForwardArgs::training): batch statistics over N and the spatial dims,
//   mu = mean(x), var_b = mean((x - mu)^2), xhat = (x - mu) / sqrt(var_b + eps),
//   y = scale * xhat + B; the running statistics become (ONNX momentum m, PyTorch's 1 - m)
//   mean' = m * mean + (1 - m) * mu,  var' = m * var + (1 - m) * var_b * count / (count - 1)
//   (the unbiased batch variance, as PyTorch). Saved: mu, 1 / sqrt(var_b + eps).
// Evaluation: the runtime's kernel with the running statistics.
std::vector<Tensor> BatchNormForward(ForwardArgs& a) {
  if (!a.training) {
    std::vector<Tensor> out = RuntimeForward(a);
    return out;
  }
  const ir::Node& node = a.node;
  const Tensor& x = a.inputs[0];
  RequireF32(node.Describe(), x, "X");
  for (size_t i = 1; i < 5; ++i)
    if (i >= a.inputs.size() || !a.inputs[i].defined())
      throw Error(node.Describe() + ": expects 5 inputs (X, scale, B, mean, var)");
  const NCS v = ViewNCS(node, x);
  for (size_t i = 1; i < 5; ++i)
    if (a.inputs[i].numel() != v.c)
      throw Error(node.Describe() + ": parameter " + std::to_string(i) + " has shape " +
                  ShapeToString(a.inputs[i].shape()) + ", expected [" + std::to_string(v.c) + "]");
  const float eps = node.attr_float("epsilon", 1e-5f);
  const float momentum = node.attr_float("momentum", 0.9f);
  const float* px = x.data<float>();
  const float* scale = a.inputs[1].data<float>();
  const float* bias = a.inputs[2].data<float>();
  const float* rmean = a.inputs[3].data<float>();
  const float* rvar = a.inputs[4].data<float>();
  Tensor y = Tensor::Uninitialized(DType::kF32, x.shape());
  Tensor mu(DType::kF32, {v.c}), istd(DType::kF32, {v.c});
  Tensor new_mean(DType::kF32, {v.c}), new_var(DType::kF32, {v.c});
  float* py = y.data<float>();
  const int64_t count = v.n * v.s;
#pragma omp parallel for num_threads(Threads(a.threads)) schedule(static)
  for (int64_t c = 0; c < v.c; ++c) {
    double sum = 0, sq = 0;
    for (int64_t b = 0; b < v.n; ++b) {
      const float* p = px + (b * v.c + c) * v.s;
      for (int64_t i = 0; i < v.s; ++i) sum += p[i];
    }
    const double m = count ? sum / count : 0.0;
    for (int64_t b = 0; b < v.n; ++b) {
      const float* p = px + (b * v.c + c) * v.s;
      for (int64_t i = 0; i < v.s; ++i) sq += (p[i] - m) * (p[i] - m);
    }
    const double var = count ? sq / count : 0.0;
    const double is = 1.0 / std::sqrt(var + eps);
    mu.data<float>()[c] = static_cast<float>(m);
    istd.data<float>()[c] = static_cast<float>(is);
    const float k = static_cast<float>(is * scale[c]);
    const float sh = static_cast<float>(bias[c] - m * is * scale[c]);
    for (int64_t b = 0; b < v.n; ++b) {
      const float* p = px + (b * v.c + c) * v.s;
      float* q = py + (b * v.c + c) * v.s;
      for (int64_t i = 0; i < v.s; ++i) q[i] = p[i] * k + sh;
    }
    const double unbiased = count > 1 ? sq / (count - 1) : var;
    new_mean.data<float>()[c] = static_cast<float>(momentum * rmean[c] + (1.0 - momentum) * m);
    new_var.data<float>()[c] = static_cast<float>(momentum * rvar[c] + (1.0 - momentum) * unbiased);
  }
  a.saved = {mu, istd};
  a.updates = {{3, new_mean.Reshaped(a.inputs[3].shape())},
               {4, new_var.Reshaped(a.inputs[4].shape())}};
  std::vector<Tensor> out(node.outputs.size());
  out[0] = y;
  if (out.size() > 1) out[1] = new_mean.Reshaped(a.inputs[3].shape());
  if (out.size() > 2) out[2] = new_var.Reshaped(a.inputs[4].shape());
  return out;
}

// Training: with xhat, mu, istd from the forward, g = dY * scale,
//   dX = istd * (g - mean(g) - xhat * mean(g * xhat))      (means over N and spatial, per C)
//   dscale = sum(dY * xhat), dB = sum(dY).
// Evaluation (constant statistics): dX = dY * scale * istd_running, dscale, dB as above with
// xhat from the running statistics. The statistics get no gradient.
std::vector<Tensor> BatchNormBackward(const BackwardArgs& a) {
  const ir::Node& node = a.node;
  const Tensor& x = a.inputs[0];
  const NCS v = ViewNCS(node, x);
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const float eps = node.attr_float("epsilon", 1e-5f);
  const bool batch_stats = a.saved.size() == 2;
  std::vector<float> mu(v.c), istd(v.c);
  for (int64_t c = 0; c < v.c; ++c) {
    if (batch_stats) {
      mu[c] = a.saved[0].data<float>()[c];
      istd[c] = a.saved[1].data<float>()[c];
    } else {
      mu[c] = a.inputs[3].data<float>()[c];
      istd[c] = static_cast<float>(1.0 / std::sqrt(double(a.inputs[4].data<float>()[c]) + eps));
    }
  }
  const float* px = x.data<float>();
  const float* pdy = dy.data<float>();
  const float* scale = a.inputs[1].data<float>();
  Tensor dx = a.needs_grad[0] ? Tensor::Uninitialized(DType::kF32, x.shape()) : Tensor();
  Tensor dscale(DType::kF32, a.inputs[1].shape()), db(DType::kF32, a.inputs[2].shape());
  const int64_t count = v.n * v.s;
#pragma omp parallel for num_threads(Threads(a.threads)) schedule(static)
  for (int64_t c = 0; c < v.c; ++c) {
    double sdy = 0, sdyx = 0;
    for (int64_t b = 0; b < v.n; ++b) {
      const float* p = px + (b * v.c + c) * v.s;
      const float* d = pdy + (b * v.c + c) * v.s;
      for (int64_t i = 0; i < v.s; ++i) {
        sdy += d[i];
        sdyx += d[i] * ((p[i] - mu[c]) * istd[c]);
      }
    }
    dscale.data<float>()[c] = static_cast<float>(sdyx);
    db.data<float>()[c] = static_cast<float>(sdy);
    if (!dx.defined()) continue;
    float* q = dx.data<float>();
    const float k = scale[c] * istd[c];
    if (!batch_stats) {
      for (int64_t b = 0; b < v.n; ++b)
        for (int64_t i = 0; i < v.s; ++i)
          q[(b * v.c + c) * v.s + i] = pdy[(b * v.c + c) * v.s + i] * k;
      continue;
    }
    const float mdy = static_cast<float>(sdy / count), mdyx = static_cast<float>(sdyx / count);
    for (int64_t b = 0; b < v.n; ++b) {
      const int64_t o = (b * v.c + c) * v.s;
      for (int64_t i = 0; i < v.s; ++i) {
        const float xhat = (px[o + i] - mu[c]) * istd[c];
        q[o + i] = k * (pdy[o + i] - mdy - xhat * mdyx);
      }
    }
  }
  std::vector<Tensor> res(a.inputs.size());
  res[0] = dx;
  if (a.needs_grad[1]) res[1] = dscale;
  if (a.needs_grad[2]) res[2] = db;
  return res;
}

namespace {

// Pooling window in 2-D (1-D pools use h = 1), the output size taken from Y.
struct Pool2d {
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, ph_end, pw_end;
};

Pool2d PoolGeometry(const ir::Node& node, const Tensor& x, const Tensor& y, bool global) {
  const int64_t r = x.rank() - 2;
  if (r < 1 || r > 2)
    throw Error(node.Describe() + ": training supports 1-D and 2-D pooling, got input " +
                ShapeToString(x.shape()));
  std::vector<int64_t> in(x.shape().begin() + 2, x.shape().end());
  std::vector<int64_t> out(y.shape().begin() + 2, y.shape().end());
  std::vector<int64_t> k = global ? in : node.attr_ints("kernel_shape");
  std::vector<int64_t> s = node.attr_ints("strides", std::vector<int64_t>(r, 1));
  std::vector<int64_t> d = node.attr_ints("dilations", std::vector<int64_t>(r, 1));
  std::vector<int64_t> p = node.attr_ints("pads", std::vector<int64_t>(2 * r, 0));
  if (static_cast<int64_t>(k.size()) != r || static_cast<int64_t>(s.size()) != r ||
      static_cast<int64_t>(d.size()) != r || static_cast<int64_t>(p.size()) != 2 * r)
    throw Error(node.Describe() + ": kernel_shape / strides / dilations / pads do not match rank");
  const std::string auto_pad = node.attr_string("auto_pad", "NOTSET");
  for (int64_t i = 0; i < r; ++i) {
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      const int64_t span = d[i] * (k[i] - 1) + 1;
      const int64_t total = std::max<int64_t>(0, (out[i] - 1) * s[i] + span - in[i]);
      p[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      p[i + r] = total - p[i];
    } else if (auto_pad == "VALID") {
      p[i] = p[i + r] = 0;
    }
  }
  if (r == 1) return {1, in[0], 1, out[0], 1, k[0], 1, s[0], 1, d[0], 0, p[0], 0, p[1]};
  return {in[0], in[1], out[0], out[1], k[0], k[1], s[0], s[1], d[0], d[1], p[0], p[1], p[2], p[3]};
}

}  // namespace

// MaxPool.  X: [N, C, H, W], Y: [N, C, OH, OW]. dX[argmax of each window] += dY, the argmax
// being the first tap (in window order) equal to the window's max Y — the tap the forward
// chose (ties keep the first, as the kernels and PyTorch). Padding taps are never chosen.
std::vector<Tensor> MaxPoolBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const Tensor& x = a.inputs[0];
  const Tensor& y = a.outputs[0];
  RequireF32(a.node.Describe(), x, "X");
  const Pool2d g = PoolGeometry(a.node, x, y, false);
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Tensor dx(DType::kF32, x.shape());
  const int64_t planes = x.dim(0) * x.dim(1);
  const float* px = x.data<float>();
  const float* py = y.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for num_threads(Threads(a.threads)) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* xp = px + pl * g.ih * g.iw;
    float* dxp = pdx + pl * g.ih * g.iw;
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        const int64_t o = (pl * g.oh + oy) * g.ow + ox;
        const float m = py[o];
        bool done = false;
        for (int64_t ki = 0; ki < g.kh && !done; ++ki) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
          if (iy < 0 || iy >= g.ih) continue;
          for (int64_t kj = 0; kj < g.kw; ++kj) {
            const int64_t ix = ox * g.sw - g.pw + kj * g.dw;
            if (ix < 0 || ix >= g.iw) continue;
            if (xp[iy * g.iw + ix] == m) {
              dxp[iy * g.iw + ix] += pdy[o];
              done = true;
              break;
            }
          }
        }
      }
  }
  res[0] = dx;
  return res;
}

// AveragePool.  dX[tap] += dY / divisor for every valid tap of each window; the divisor is
// the number of valid taps, or with count_include_pad the taps inside the padded extent
// (the rule of kernels/pool.h).
std::vector<Tensor> AveragePoolBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const Tensor& x = a.inputs[0];
  const Tensor& y = a.outputs[0];
  RequireF32(a.node.Describe(), x, "X");
  const Pool2d g = PoolGeometry(a.node, x, y, false);
  const bool include_pad = a.node.attr_int("count_include_pad", 0) != 0;
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Tensor dx(DType::kF32, x.shape());
  const int64_t planes = x.dim(0) * x.dim(1);
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for num_threads(Threads(a.threads)) schedule(static)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* dxp = pdx + pl * g.ih * g.iw;
    for (int64_t oy = 0; oy < g.oh; ++oy)
      for (int64_t ox = 0; ox < g.ow; ++ox) {
        int64_t divisor = 0;
        for (int64_t ki = 0; ki < g.kh; ++ki) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
          for (int64_t kj = 0; kj < g.kw; ++kj) {
            const int64_t ix = ox * g.sw - g.pw + kj * g.dw;
            const bool valid = iy >= 0 && iy < g.ih && ix >= 0 && ix < g.iw;
            const bool in_pad =
                iy >= -g.ph && iy < g.ih + g.ph_end && ix >= -g.pw && ix < g.iw + g.pw_end;
            divisor += include_pad ? in_pad : valid;
          }
        }
        if (divisor == 0) continue;
        const float gv = pdy[(pl * g.oh + oy) * g.ow + ox] / static_cast<float>(divisor);
        for (int64_t ki = 0; ki < g.kh; ++ki) {
          const int64_t iy = oy * g.sh - g.ph + ki * g.dh;
          if (iy < 0 || iy >= g.ih) continue;
          for (int64_t kj = 0; kj < g.kw; ++kj) {
            const int64_t ix = ox * g.sw - g.pw + kj * g.dw;
            if (ix >= 0 && ix < g.iw) dxp[iy * g.iw + ix] += gv;
          }
        }
      }
  }
  res[0] = dx;
  return res;
}

// GlobalAveragePool.  X: [N, C, ...], Y: [N, C, 1, ...]. dX[n, c, i] = dY[n, c] / spatial.
std::vector<Tensor> GlobalAveragePoolBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const Tensor& x = a.inputs[0];
  const NCS v = ViewNCS(a.node, x);
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Tensor dx = Tensor::Uninitialized(DType::kF32, x.shape());
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  const float inv = v.s ? 1.0f / static_cast<float>(v.s) : 0.0f;
  for (int64_t p = 0; p < v.n * v.c; ++p) std::fill_n(pdx + p * v.s, v.s, pdy[p] * inv);
  res[0] = dx;
  return res;
}

namespace {

// [outer, axis, inner] view of Softmax's axis (opset < 13: coerced 2-D at axis, default 1).
void SoftmaxView(const BackwardArgs& a, int64_t& outer, int64_t& len, int64_t& inner) {
  const Tensor& x = a.inputs[0];
  const bool legacy = a.opset > 0 && a.opset < 13;
  const int64_t axis =
      NormalizeAxis(a.node.Describe(), a.node.attr_int("axis", legacy ? 1 : -1), x.rank());
  outer = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.dim(d);
  if (legacy) {
    len = x.numel() / std::max<int64_t>(outer, 1);
    inner = 1;
  } else {
    len = x.dim(axis);
    inner = x.numel() / std::max<int64_t>(outer * len, 1);
  }
}

std::vector<Tensor> SoftmaxGrad(const BackwardArgs& a, bool log) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  int64_t outer, len, inner;
  SoftmaxView(a, outer, len, inner);
  const Tensor& y = a.outputs[0];
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  Tensor dx = Tensor::Uninitialized(DType::kF32, y.shape());
  const float* py = y.data<float>();
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
#pragma omp parallel for num_threads(Threads(a.threads)) schedule(static) if (outer > 16)
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const int64_t base = o * len * inner + i;
      double s = 0;
      for (int64_t k = 0; k < len; ++k) {
        const int64_t at = base + k * inner;
        s += log ? pdy[at] : pdy[at] * py[at];
      }
      const float sf = static_cast<float>(s);
      for (int64_t k = 0; k < len; ++k) {
        const int64_t at = base + k * inner;
        pdx[at] = log ? pdy[at] - std::exp(py[at]) * sf : py[at] * (pdy[at] - sf);
      }
    }
  res[0] = dx;
  return res;
}

}  // namespace

// Softmax.  Y = softmax(X) along axis.  dX = Y * (dY - sum_axis(dY * Y)).
std::vector<Tensor> SoftmaxBackward(const BackwardArgs& a) { return SoftmaxGrad(a, false); }

// LogSoftmax.  Y = X - logsumexp(X).  dX = dY - exp(Y) * sum_axis(dY).
std::vector<Tensor> LogSoftmaxBackward(const BackwardArgs& a) { return SoftmaxGrad(a, true); }

// LayerNormalization.  X viewed as [rows, cols] (cols = dims from axis on), Scale and B with
// cols elements. With mu, istd per row (recomputed in double), xhat = (x - mu) * istd,
// g = dY * scale:  dX = istd * (g - mean(g) - xhat * mean(g * xhat))  (means over the row),
// dScale = sum_rows(dY * xhat), dB = sum_rows(dY). The Mean / InvStdDev outputs are treated
// as constants (no gradient flows back through them).
std::vector<Tensor> LayerNormBackward(const BackwardArgs& a) {
  const ir::Node& node = a.node;
  const Tensor& x = a.inputs[0];
  const Tensor& scale = a.inputs[1];
  RequireF32(node.Describe(), x, "X");
  RequireF32(node.Describe(), scale, "Scale");
  const int64_t axis = NormalizeAxis(node.Describe(), node.attr_int("axis", -1), x.rank());
  const float eps = node.attr_float("epsilon", 1e-5f);
  int64_t rows = 1;
  for (int64_t d = 0; d < axis; ++d) rows *= x.dim(d);
  const int64_t cols = x.numel() / std::max<int64_t>(rows, 1);
  if (scale.numel() != cols)
    throw Error(node.Describe() +
                ": training needs Scale with one value per normalized "
                "element (" +
                std::to_string(cols) + "), got " + ShapeToString(scale.shape()));
  const bool has_b = a.inputs.size() > 2 && a.inputs[2].defined();
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  const float* px = x.data<float>();
  const float* ps = scale.data<float>();
  const float* pdy = dy.data<float>();
  Tensor dx = a.needs_grad[0] ? Tensor::Uninitialized(DType::kF32, x.shape()) : Tensor();
  const int T = Threads(a.threads);
  std::vector<std::vector<double>> dscale(T, std::vector<double>(cols, 0.0)),
      dbias(T, std::vector<double>(cols, 0.0));
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num();
    std::vector<float> xhat(cols);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = px + r * cols;
      const float* dr = pdy + r * cols;
      double sum = 0, sq = 0;
      for (int64_t j = 0; j < cols; ++j) sum += xr[j];
      const double mu = sum / cols;
      for (int64_t j = 0; j < cols; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
      const double istd = 1.0 / std::sqrt(sq / cols + eps);
      double mg = 0, mgx = 0;
      for (int64_t j = 0; j < cols; ++j) {
        xhat[j] = static_cast<float>((xr[j] - mu) * istd);
        const double g = double(dr[j]) * ps[j];
        mg += g;
        mgx += g * xhat[j];
        dscale[t][j] += double(dr[j]) * xhat[j];
        dbias[t][j] += dr[j];
      }
      mg /= cols;
      mgx /= cols;
      if (dx.defined()) {
        float* q = dx.data<float>() + r * cols;
        for (int64_t j = 0; j < cols; ++j)
          q[j] = static_cast<float>(istd * (double(dr[j]) * ps[j] - mg - xhat[j] * mgx));
      }
    }
  }
  std::vector<Tensor> res(a.inputs.size());
  res[0] = dx;
  auto reduce = [&](const std::vector<std::vector<double>>& parts, const Shape& shape) {
    Tensor t(DType::kF32, shape);
    float* p = t.data<float>();
    for (int64_t j = 0; j < cols; ++j) {
      double s = 0;
      for (int i = 0; i < T; ++i) s += parts[i][j];
      p[j] = static_cast<float>(s);
    }
    return t;
  };
  if (a.needs_grad[1]) res[1] = reduce(dscale, scale.shape());
  if (has_b && a.needs_grad[2]) res[2] = reduce(dbias, a.inputs[2].shape());
  return res;
}

// Dropout.  data: [*], ratio (optional scalar input, default 0.5; opset < 12 an attribute).
// Training: mask ~ Bernoulli(1 - ratio) from the node's step seed, Y = X * mask / (1 - ratio),
// the optional mask output as bool. Evaluation: Y = X. dX = dY * mask / (1 - ratio) (or dY).
std::vector<Tensor> DropoutForward(ForwardArgs& a) {
  const Tensor& x = a.inputs[0];
  RequireF32(a.node.Describe(), x, "data");
  float ratio = a.node.attr_float("ratio", 0.5f);
  if (a.inputs.size() > 1 && a.inputs[1].defined())
    ratio = static_cast<float>(a.inputs[1].GetAsDouble(0));
  if (!(ratio >= 0.0f && ratio < 1.0f))
    throw Error(a.node.Describe() + ": ratio must be in [0, 1), got " + std::to_string(ratio));
  std::vector<Tensor> out(a.node.outputs.size());
  Tensor mask(DType::kBool, x.shape());
  if (!a.training || ratio == 0.0f) {
    out[0] = x;
    for (bool& m : mask.span<bool>()) m = true;
  } else {
    std::mt19937_64 rng(a.seed);
    std::bernoulli_distribution keep(1.0 - ratio);
    Tensor y = Tensor::Uninitialized(DType::kF32, x.shape());
    const float k = 1.0f / (1.0f - ratio);
    bool* pm = mask.data<bool>();
    const float* px = x.data<float>();
    float* py = y.data<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      pm[i] = keep(rng);
      py[i] = pm[i] ? px[i] * k : 0.0f;
    }
    out[0] = y;
    a.saved = {mask, Tensor::Scalar(k)};
  }
  if (out.size() > 1) out[1] = mask;
  return out;
}

std::vector<Tensor> DropoutBackward(const BackwardArgs& a) {
  std::vector<Tensor> res(a.inputs.size());
  if (!a.needs_grad[0]) return res;
  const Tensor dy = GradOrZeros(a.grad_outputs, a.outputs, 0);
  if (a.saved.size() != 2) {
    res[0] = dy;
    return res;
  }
  const bool* pm = a.saved[0].data<bool>();
  const float k = a.saved[1].data<float>()[0];
  Tensor dx = Tensor::Uninitialized(DType::kF32, dy.shape());
  const float* pdy = dy.data<float>();
  float* pdx = dx.data<float>();
  for (int64_t i = 0; i < dy.numel(); ++i) pdx[i] = pm[i] ? pdy[i] * k : 0.0f;
  res[0] = dx;
  return res;
}

}  // namespace qforge::train
