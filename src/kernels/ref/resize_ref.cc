// Resize reference kernel: separable per-axis interpolation (nearest / linear / cubic).
#include <algorithm>
#include <cmath>
#include <string>

#include "qforge/kernels/resize.h"

namespace qforge::kernels {

namespace {

// The contribution of input positions to one output position along one axis.
struct Taps {
  bool extrapolate = false;  // output is ResizeParams::extrapolation_value
  int n = 0;
  int64_t index[4] = {0, 0, 0, 0};  // clamped to [0, L_in)
  double weight[4] = {0, 0, 0, 0};
};

// ONNX's reference uses the unrounded resized length L_in * scale (not the integer L_out) in the
// formulas that divide by it; with sizes given, scale = L_out / L_in so the two agree.
double SourceCoord(const ResizeParams& p, int axis, int64_t o, int64_t in_len, int64_t out_len) {
  const double scale = p.scales[axis];
  const double resized = static_cast<double>(in_len) * scale;
  const double x = static_cast<double>(o);
  switch (p.coord) {
    case ResizeCoord::kHalfPixel:
      return (x + 0.5) / scale - 0.5;
    case ResizeCoord::kHalfPixelSymmetric: {
      const double adjustment = out_len / resized;
      const double offset = in_len / 2.0 * (1.0 - adjustment);
      return offset + (x + 0.5) / scale - 0.5;
    }
    case ResizeCoord::kPytorchHalfPixel:
      return resized > 1 ? (x + 0.5) / scale - 0.5 : 0.0;
    case ResizeCoord::kAlignCorners:
      return resized > 1 ? x * (in_len - 1) / (resized - 1) : 0.0;
    case ResizeCoord::kAsymmetric:
      return x / scale;
    case ResizeCoord::kTfHalfPixelForNearest:
      return (x + 0.5) / scale;
    case ResizeCoord::kTfCropAndResize: {
      const double start = p.roi_start[axis], end = p.roi_end[axis];
      return resized > 1 ? start * (in_len - 1) + x * (end - start) * (in_len - 1) / (resized - 1)
                         : 0.5 * (start + end) * (in_len - 1);
    }
  }
  return 0.0;
}

// Keys cubic convolution weights for the taps at offsets -1, 0, 1, 2 from floor(x), r = frac.
void CubicWeights(double r, double a, double w[4]) {
  auto near = [a](double t) { return ((a + 2) * t - (a + 3)) * t * t + 1; };       // |t| <= 1
  auto far = [a](double t) { return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a; };  // 1 < |t| < 2
  w[0] = far(r + 1);
  w[1] = near(r);
  w[2] = near(1 - r);
  w[3] = far(2 - r);
}

Taps ComputeTaps(const ResizeParams& p, int axis, int64_t o, int64_t in_len, int64_t out_len) {
  Taps t;
  double x = SourceCoord(p, axis, o, in_len, out_len);
  if (p.coord == ResizeCoord::kTfCropAndResize && (x < 0 || x > in_len - 1)) {
    t.extrapolate = true;
    return t;
  }
  // Every tap of a coordinate beyond 4 positions outside the axis is clamped to the edge (or,
  // with exclude_outside, weighted 0) anyway, so clamping x there changes nothing but keeps
  // the integer conversion below defined.
  x = std::isnan(x) ? 0.0 : std::clamp(x, -4.0, static_cast<double>(in_len) + 4.0);
  const double f = std::floor(x);
  const double r = x - f;
  const int64_t base = static_cast<int64_t>(f);
  auto clamp = [in_len](int64_t i) { return std::clamp<int64_t>(i, 0, in_len - 1); };
  switch (p.mode) {
    case ResizeMode::kNearest: {
      bool up = false;
      switch (p.nearest) {
        case NearestMode::kRoundPreferFloor:
          up = r > 0.5;
          break;
        case NearestMode::kRoundPreferCeil:
          up = r >= 0.5;
          break;
        case NearestMode::kFloor:
          up = false;
          break;
        case NearestMode::kCeil:
          up = r > 0.0;
          break;
      }
      t.n = 1;
      t.index[0] = clamp(base + (up ? 1 : 0));
      t.weight[0] = 1.0;
      break;
    }
    case ResizeMode::kLinear:
      t.n = 2;
      t.index[0] = clamp(base);
      t.index[1] = clamp(base + 1);
      t.weight[0] = 1.0 - r;
      t.weight[1] = r;
      break;
    case ResizeMode::kCubic: {
      t.n = 4;
      CubicWeights(r, p.cubic_coeff_a, t.weight);
      double total = 0.0;
      for (int k = 0; k < 4; ++k) {
        const int64_t raw = base - 1 + k;
        if (p.exclude_outside && (raw < 0 || raw >= in_len)) t.weight[k] = 0.0;
        total += t.weight[k];
        t.index[k] = clamp(raw);
      }
      if (p.exclude_outside && total != 0.0)
        for (int k = 0; k < 4; ++k) t.weight[k] /= total;
      break;
    }
  }
  return t;
}

// Resizes axis `axis` of x (viewed as [outer, in_len, inner]) to out_len.
Tensor ResizeAxis(const Tensor& x, int axis, int64_t out_len, const std::vector<Taps>& taps,
                  float extrapolation_value) {
  Shape out_shape = x.shape();
  out_shape[axis] = out_len;
  Tensor y(DType::kF32, out_shape);
  int64_t outer = 1, inner = 1;
  for (int a = 0; a < axis; ++a) outer *= x.shape()[a];
  for (int64_t a = axis + 1; a < x.rank(); ++a) inner *= x.shape()[a];
  const int64_t in_len = x.shape()[axis];
  const float* xd = x.data<float>();
  float* yd = y.data<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < out_len; ++j) {
      const Taps& t = taps[j];
      for (int64_t i = 0; i < inner; ++i) {
        float& out = yd[(o * out_len + j) * inner + i];
        if (t.extrapolate) {
          out = extrapolation_value;
          continue;
        }
        double acc = 0.0;
        for (int k = 0; k < t.n; ++k)
          acc += t.weight[k] * xd[(o * in_len + t.index[k]) * inner + i];
        out = static_cast<float>(acc);
      }
    }
  }
  return y;
}

}  // namespace

Tensor ResizeRef(const Tensor& x, const Shape& out_shape, const ResizeParams& p) {
  const int64_t rank = x.rank();
  if (static_cast<int64_t>(out_shape.size()) != rank)
    throw Error("Resize: output rank " + std::to_string(out_shape.size()) + " != input rank " +
                std::to_string(rank));
  if (static_cast<int64_t>(p.scales.size()) != rank)
    throw Error("Resize: " + std::to_string(p.scales.size()) + " scales for rank " +
                std::to_string(rank));
  if (p.coord == ResizeCoord::kTfCropAndResize &&
      (static_cast<int64_t>(p.roi_start.size()) != rank ||
       static_cast<int64_t>(p.roi_end.size()) != rank))
    throw Error("Resize: tf_crop_and_resize needs a roi with 2 * rank values");
  for (int64_t a = 0; a < rank; ++a) {
    if (out_shape[a] < 0) throw Error("Resize: negative output size");
    if (x.shape()[a] == 0 && out_shape[a] > 0)
      throw Error("Resize: cannot resize an empty axis " + std::to_string(a) + " to size " +
                  std::to_string(out_shape[a]));
  }
  // Rejects outputs too large to hold before any per-axis work (bounds every axis length).
  if (NumElements(out_shape) > (int64_t{1} << 32))
    throw Error("Resize: output " + ShapeToString(out_shape) + " is too large");
  if (NumElements(out_shape) == 0) return Tensor(DType::kF32, out_shape);
  // Shrinking axes first keeps every intermediate no larger than max(input, output).
  std::vector<int> order(rank);
  for (int a = 0; a < rank; ++a) order[a] = a;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return static_cast<double>(out_shape[a]) * x.shape()[b] <
           static_cast<double>(out_shape[b]) * x.shape()[a];  // out/in ascending
  });
  Tensor cur = x;
  for (int a : order) {
    const int64_t in_len = cur.shape()[a], out_len = out_shape[a];
    std::vector<Taps> taps;
    bool identity = in_len == out_len;
    if (in_len > 0) {
      for (int64_t o = 0; o < out_len; ++o) {
        taps.push_back(ComputeTaps(p, a, o, in_len, out_len));
        const Taps& t = taps.back();
        // Identity: every output reads exactly its own input position with weight 1.
        bool own = !t.extrapolate;
        for (int k = 0; own && k < t.n; ++k)
          own = t.weight[k] == 0.0 || (t.index[k] == o && t.weight[k] == 1.0);
        identity = identity && own;
      }
    }
    if (identity) continue;
    cur = ResizeAxis(cur, a, out_len, taps, p.extrapolation_value);
  }
  if (cur.raw() == x.raw()) cur = x.Clone();
  return cur;
}

}  // namespace qforge::kernels
