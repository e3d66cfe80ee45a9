// Fake quantization forward / backward (ste, lsq, soft) on raw arrays; see fake_quant.h.
#include "qforge/train/fake_quant.h"

#include <cmath>
#include <limits>

#include "qforge/tensor/tensor.h"

namespace qforge::train {

namespace nq = qforge::numerics;

Estimator ParseEstimator(const std::string& name) {
  if (name == "ste") return Estimator::kSte;
  if (name == "lsq") return Estimator::kLsq;
  if (name == "soft") return Estimator::kSoft;
  throw Error("unknown QAT estimator '" + name + "' (expected ste, lsq or soft)");
}

const char* EstimatorName(Estimator e) {
  switch (e) {
    case Estimator::kSte:
      return "ste";
    case Estimator::kLsq:
      return "lsq";
    case Estimator::kSoft:
      return "soft";
  }
  return "?";
}

nq::IntFormat FormatFromBits(int bits, bool is_signed) {
  if (bits != 2 && bits != 4 && bits != 8) {
    throw Error("fake quantization: " + std::to_string(bits) +
                " bits is not supported (expected 8, 4 or 2)");
  }
  return nq::IntFormat{bits, is_signed};
}

FakeQuantConfig WeightConfig(int bits, int axis) {
  FakeQuantConfig c;
  c.format = FormatFromBits(bits, /*is_signed=*/true);
  c.restricted_range = true;
  c.granularity = nq::Granularity::PerChannel(axis);
  return c;
}

FakeQuantConfig ActivationConfig(int bits) {
  FakeQuantConfig c;
  c.format = FormatFromBits(bits, /*is_signed=*/false);
  c.restricted_range = false;
  c.granularity = nq::Granularity::PerTensor();
  return c;
}

float EffectiveScale(float scale) { return scale < nq::kMinScale ? nq::kMinScale : scale; }

int32_t EffectiveZeroPoint(float zero_point, const FakeQuantConfig& c) {
  const double z = nq::RoundHalfEven(double(zero_point));
  return static_cast<int32_t>(std::min(std::max(z, double(c.qmin())), double(c.qmax())));
}

nq::QuantParams EffectiveParams(float scale, float zero_point, const FakeQuantConfig& c) {
  return {EffectiveScale(scale), EffectiveZeroPoint(zero_point, c)};
}

void CheckFakeQuantArgs(const std::vector<int64_t>& shape, const FakeQuantConfig& c,
                        std::span<const float> scale, std::span<const float> zero_point,
                        const std::string& what) {
  if (!c.format.valid()) throw Error(what + ": invalid integer format");
  int64_t n = 0;
  try {
    n = nq::NumParams(shape, c.granularity);
  } catch (const nq::NumericsError& e) {
    throw Error(what + ": " + e.what());
  }
  if (static_cast<int64_t>(scale.size()) != n || static_cast<int64_t>(zero_point.size()) != n) {
    throw Error(what + ": expected " + std::to_string(n) +
                " scale and zero point values for shape " + ShapeToString(shape) + ", got " +
                std::to_string(scale.size()) + " and " + std::to_string(zero_point.size()));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(scale[i]) || !std::isfinite(zero_point[i])) {
      throw Error(what + ": scale / zero point " + std::to_string(i) + " is not finite");
    }
  }
}

namespace {

// One element's code before saturation, v = RoundHalfEven(x / s) + z, as QuantizeValue computes
// it (float division, then exact integer addition in double). NaN stays NaN.
inline double CodeBeforeClamp(float x, nq::QuantParams p) {
  return double(nq::RoundHalfEven(x / p.scale)) + double(p.zero_point);
}

inline bool Inside(double v, int32_t qmin, int32_t qmax) { return v >= qmin && v <= qmax; }

}  // namespace

void FakeQuantForward(const float* x, const std::vector<int64_t>& shape, const FakeQuantConfig& c,
                      std::span<const float> scale, std::span<const float> zero_point, float* y) {
  const int32_t qmin = c.qmin(), qmax = c.qmax();
  nq::ForEachParamRun(shape, c.granularity, [&](int64_t begin, int64_t count, int64_t pi) {
    const nq::QuantParams p = EffectiveParams(scale[pi], zero_point[pi], c);
    // Quantize a chunk with the runtime's array quantizer, then dequantize it in place.
    constexpr int64_t kChunk = 256;
    int32_t q[kChunk];
    for (int64_t off = 0; off < count; off += kChunk) {
      const int64_t m = std::min(kChunk, count - off);
      nq::QuantizeRun<int32_t>(x + begin + off, m, p, qmin, qmax, q);
      for (int64_t i = 0; i < m; ++i) y[begin + off + i] = nq::DequantizeValue(q[i], p);
    }
  });
}

void FakeQuantBackwardSte(const float* x, const std::vector<int64_t>& shape,
                          const FakeQuantConfig& c, std::span<const float> scale,
                          std::span<const float> zero_point, const float* dy, float* dx) {
  const int32_t qmin = c.qmin(), qmax = c.qmax();
  nq::ForEachParamRun(shape, c.granularity, [&](int64_t begin, int64_t count, int64_t pi) {
    const nq::QuantParams p = EffectiveParams(scale[pi], zero_point[pi], c);
    for (int64_t i = begin; i < begin + count; ++i) {
      dx[i] = Inside(CodeBeforeClamp(x[i], p), qmin, qmax) ? dy[i] : 0.0f;
    }
  });
}

double LsqGradScale(const std::vector<int64_t>& shape, const FakeQuantConfig& c) {
  const int64_t params = nq::NumParams(shape, c.granularity);
  const double per_scale = params > 0 ? double(NumElements(shape)) / double(params) : 1.0;
  return 1.0 / std::sqrt(std::max(per_scale, 1.0) * double(c.qmax()));
}

void FakeQuantBackwardLsq(const float* x, const std::vector<int64_t>& shape,
                          const FakeQuantConfig& c, std::span<const float> scale,
                          std::span<const float> zero_point, const float* dy, float* dx,
                          std::span<float> dscale, std::span<float> dzero_point) {
  const int32_t qmin = c.qmin(), qmax = c.qmax();
  const double g = LsqGradScale(shape, c);
  for (float& v : dscale) v = 0.0f;
  for (float& v : dzero_point) v = 0.0f;
  // Sums in double per parameter slice (a slice can hold 10^5 elements).
  const int64_t nparams = static_cast<int64_t>(scale.size());
  std::vector<double> ds(nparams, 0.0), dz(nparams, 0.0);
  nq::ForEachParamRun(shape, c.granularity, [&](int64_t begin, int64_t count, int64_t pi) {
    const nq::QuantParams p = EffectiveParams(scale[pi], zero_point[pi], c);
    double s_sum = 0.0, z_sum = 0.0;
    for (int64_t i = begin; i < begin + count; ++i) {
      const double v = CodeBeforeClamp(x[i], p);
      if (v != v) {  // NaN input: quantized to z, no gradient
        dx[i] = 0.0f;
        continue;
      }
      if (Inside(v, qmin, qmax)) {
        dx[i] = dy[i];
        const double r = double(x[i] / p.scale);  // the same float quotient the forward rounds
        s_sum += double(dy[i]) * (nq::RoundHalfEven(r) - r);
      } else {
        dx[i] = 0.0f;
        const double bound = v < qmin ? qmin : qmax;
        s_sum += double(dy[i]) * (bound - double(p.zero_point));
        z_sum -= double(dy[i]) * double(p.scale);
      }
    }
    ds[pi] += s_sum;
    dz[pi] += z_sum;
  });
  for (int64_t pi = 0; pi < static_cast<int64_t>(dscale.size()); ++pi)
    dscale[pi] = float(g * ds[pi]);
  for (int64_t pi = 0; pi < static_cast<int64_t>(dzero_point.size()); ++pi) {
    dzero_point[pi] = float(g * dz[pi]);
  }
}

namespace {

// soft(t) and soft'(t) of fake_quant.h for a code t already clamped to [qmin, qmax].
struct SoftValue {
  double value, slope;
};
inline SoftValue Soft(double t, int32_t qmin, int32_t qmax, double k, double inv_2tanh_half_k) {
  double f = std::floor(t);
  if (f >= qmax) f = qmax - 1;  // t == qmax belongs to the last cell
  if (f < qmin) f = qmin;
  const double center = f + 0.5;
  const double th = std::tanh(k * (t - center));
  return {center + th * inv_2tanh_half_k, k * (1.0 - th * th) * inv_2tanh_half_k};
}

void CheckTemperature(double k) {
  if (!(k > 0)) throw Error("soft fake quantization: temperature must be > 0");
}

}  // namespace

void SoftFakeQuantForward(const float* x, const std::vector<int64_t>& shape,
                          const FakeQuantConfig& c, std::span<const float> scale,
                          std::span<const float> zero_point, double k, float* y) {
  CheckTemperature(k);
  if (std::isinf(k)) return FakeQuantForward(x, shape, c, scale, zero_point, y);
  const int32_t qmin = c.qmin(), qmax = c.qmax();
  const double inv = 1.0 / (2.0 * std::tanh(k / 2.0));
  nq::ForEachParamRun(shape, c.granularity, [&](int64_t begin, int64_t count, int64_t pi) {
    const nq::QuantParams p = EffectiveParams(scale[pi], zero_point[pi], c);
    for (int64_t i = begin; i < begin + count; ++i) {
      double t = double(x[i]) / double(p.scale) + double(p.zero_point);
      if (t != t) t = p.zero_point;  // NaN: real 0, as QuantizeValue
      t = std::min(std::max(t, double(qmin)), double(qmax));
      const double s = Soft(t, qmin, qmax, k, inv).value;
      y[i] = static_cast<float>((s - double(p.zero_point)) * double(p.scale));
    }
  });
}

void SoftFakeQuantBackward(const float* x, const std::vector<int64_t>& shape,
                           const FakeQuantConfig& c, std::span<const float> scale,
                           std::span<const float> zero_point, double k, const float* dy,
                           float* dx) {
  CheckTemperature(k);
  if (std::isinf(k)) return FakeQuantBackwardSte(x, shape, c, scale, zero_point, dy, dx);
  const int32_t qmin = c.qmin(), qmax = c.qmax();
  const double inv = 1.0 / (2.0 * std::tanh(k / 2.0));
  nq::ForEachParamRun(shape, c.granularity, [&](int64_t begin, int64_t count, int64_t pi) {
    const nq::QuantParams p = EffectiveParams(scale[pi], zero_point[pi], c);
    for (int64_t i = begin; i < begin + count; ++i) {
      const double t = double(x[i]) / double(p.scale) + double(p.zero_point);
      if (!(t > qmin && t < qmax)) {  // clipped (or NaN): no gradient
        dx[i] = 0.0f;
        continue;
      }
      dx[i] = static_cast<float>(double(dy[i]) * Soft(t, qmin, qmax, k, inv).slope);
    }
  });
}

double SoftSchedule::Temperature(int64_t step) const {
  if (Hard(step)) return std::numeric_limits<double>::infinity();
  const double frac =
      anneal_steps > 0 ? double(std::max<int64_t>(step, 0)) / double(anneal_steps) : 1.0;
  return k_start * std::pow(k_end / k_start, frac);
}

}  // namespace qforge::train
