// Affine quantization parameters and per-tensor / per-channel / per-group quantize, dequantize.
#include "qforge/numerics/quant_params.h"

#include <cmath>
#include <limits>
#include <string>

namespace qforge::numerics {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// The center code of a format: 0 for signed, 2^(b-1) for unsigned.
int32_t Center(IntFormat fmt) {
  return static_cast<int32_t>((int64_t{fmt.qmin()} + fmt.qmax() + 1) / 2);
}

float ClampScale(double s) {
  const float f = static_cast<float>(s);
  return f < kMinScale ? kMinScale : f;
}

template <typename Q>
void CheckStorage(IntFormat fmt, const char* what) {
  if (fmt.qmin() < std::numeric_limits<Q>::min() || fmt.qmax() > std::numeric_limits<Q>::max()) {
    throw NumericsError(std::string(what) + ": format " + fmt.name() +
                        " does not fit the storage type");
  }
}

void CheckParamCount(std::span<const QuantParams> params, const std::vector<int64_t>& shape,
                     const Granularity& g, const char* what) {
  const int64_t n = NumParams(shape, g);
  if (static_cast<int64_t>(params.size()) != n) {
    throw NumericsError(std::string(what) + ": " + std::to_string(params.size()) +
                        " parameter sets given, shape " + ShapeString(shape) + " needs " +
                        std::to_string(n));
  }
}

}  // namespace

QuantParams ChooseQuantParams(float lo, float hi, IntFormat fmt, RangeOptions opt) {
  fmt.Check();
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    throw NumericsError("ChooseQuantParams: range [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "] is not finite");
  }
  const double rmin = std::min({double(lo), double(hi), 0.0});
  const double rmax = std::max({double(lo), double(hi), 0.0});
  const int32_t qmin = fmt.qmin(), qmax = fmt.qmax();
  if (opt.symmetric) {
    const int32_t c = Center(fmt);
    const double a = std::max(-rmin, rmax);
    if (a == 0) return {1.0f, c};
    const double steps = opt.restricted_range ? double(qmax) - c : (double(qmax) - qmin) / 2.0;
    return {ClampScale(a / steps), c};
  }
  if (rmax - rmin == 0) return {1.0f, std::clamp<int32_t>(0, qmin, qmax)};
  const float s = ClampScale((rmax - rmin) / (double(qmax) - double(qmin)));
  const double z = double(qmin) - RoundHalfEven(rmin / double(s));
  return {s, static_cast<int32_t>(Saturate(static_cast<int64_t>(z), qmin, qmax))};
}

int32_t QuantMin(IntFormat fmt, bool restricted_range) {
  return restricted_range ? fmt.restricted_qmin() : fmt.qmin();
}

void CheckQuantParams(QuantParams p, IntFormat fmt) {
  if (!(std::isfinite(p.scale) && p.scale > 0)) {
    throw NumericsError("quantization scale " + std::to_string(p.scale) +
                        " is not a finite positive number");
  }
  if (p.zero_point < fmt.qmin() || p.zero_point > fmt.qmax()) {
    throw NumericsError("zero point " + std::to_string(p.zero_point) + " is outside " + fmt.name() +
                        " range [" + std::to_string(fmt.qmin()) + ", " +
                        std::to_string(fmt.qmax()) + "]");
  }
}

namespace detail {

RunLayout MakeRunLayout(const std::vector<int64_t>& shape, const Granularity& g) {
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0)
      throw NumericsError("quantization: negative dimension in shape " + ShapeString(shape));
    numel *= d;
  }
  if (g.kind == Granularity::Kind::kPerTensor) return {numel, 1, 1, 0, false};
  const int rank = static_cast<int>(shape.size());
  const int axis = g.axis < 0 ? g.axis + rank : g.axis;
  if (axis < 0 || axis >= rank) {
    throw NumericsError("quantization: axis " + std::to_string(g.axis) +
                        " is out of range for shape " + ShapeString(shape));
  }
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= shape[i];
  for (int i = axis + 1; i < rank; ++i) inner *= shape[i];
  if (g.kind == Granularity::Kind::kPerChannel) return {outer, shape[axis], inner, 1, true};
  if (g.group_size < 1) {
    throw NumericsError("quantization: group size " + std::to_string(g.group_size) +
                        " must be at least 1");
  }
  return {outer, shape[axis], inner, g.group_size, false};
}

}  // namespace detail

std::vector<int64_t> ParamShape(const std::vector<int64_t>& shape, const Granularity& g) {
  const detail::RunLayout l = detail::MakeRunLayout(shape, g);  // validates
  if (g.kind == Granularity::Kind::kPerTensor) return {};
  if (g.kind == Granularity::Kind::kPerChannel) return {l.dim};
  std::vector<int64_t> out = shape;
  const int axis = g.axis < 0 ? g.axis + static_cast<int>(shape.size()) : g.axis;
  out[axis] = (l.dim + l.group - 1) / l.group;
  return out;
}

int64_t NumParams(const std::vector<int64_t>& shape, const Granularity& g) {
  int64_t n = 1;
  for (int64_t d : ParamShape(shape, g)) n *= d;
  return n;
}

std::vector<QuantParams> ChooseQuantParams(const float* x, const std::vector<int64_t>& shape,
                                           const Granularity& g, IntFormat fmt, RangeOptions opt) {
  fmt.Check();
  const int64_t n = NumParams(shape, g);
  // Starting from [0, 0] is the same as extending the range to contain 0 (and makes an empty
  // slice a zero-width range).
  std::vector<float> lo(n, 0.0f), hi(n, 0.0f);
  bool finite = true;
  ForEachParamRun(shape, g, [&](int64_t begin, int64_t count, int64_t p) {
    float a = lo[p], b = hi[p];
    for (int64_t i = begin; i < begin + count; ++i) {
      finite &= std::isfinite(x[i]);
      a = std::min(a, x[i]);
      b = std::max(b, x[i]);
    }
    lo[p] = a;
    hi[p] = b;
  });
  if (!finite) throw NumericsError("ChooseQuantParams: data contains NaN or Inf");
  std::vector<QuantParams> out(n);
  for (int64_t p = 0; p < n; ++p) out[p] = ChooseQuantParams(lo[p], hi[p], fmt, opt);
  return out;
}

template <typename Q>
void QuantizeRun(const float* x, int64_t n, QuantParams p, int32_t qmin, int32_t qmax, Q* q) {
  // Same result as QuantizeValue for every x, in a loop the compiler vectorizes:
  //  - x / s (float division, as ONNX) is clamped to [qmin - z - 1, qmax - z + 1]: values
  //    beyond saturate either way, and the clamped magnitude stays below 2^22;
  //  - below 2^22, (v + 1.5 * 2^23) - 1.5 * 2^23 rounds v to an integer half to even (the
  //    float addition rounds to nearest even at unit spacing; needs no -ffast-math);
  //  - NaN fails both clamp comparisons and is replaced by z afterwards.
  const float lo = static_cast<float>(int64_t{qmin} - p.zero_point - 1);
  const float hi = static_cast<float>(int64_t{qmax} - p.zero_point + 1);
  const float kMagic = 12582912.0f;  // 1.5 * 2^23
  const float s = p.scale;
  const int32_t z = p.zero_point;
  const int32_t znan = std::min(std::max(z, qmin), qmax);
  if (!(std::fabs(lo) < 4194304.0f && std::fabs(hi) < 4194304.0f)) {  // wide formats: 2^22
    for (int64_t i = 0; i < n; ++i) q[i] = static_cast<Q>(QuantizeValue(x[i], p, qmin, qmax));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    float v = x[i] / s;
    const bool nan = v != v;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    v = nan ? 0.0f : v;
    const float r = (v + kMagic) - kMagic;
    int32_t t = static_cast<int32_t>(r) + z;
    t = t < qmin ? qmin : t;
    t = t > qmax ? qmax : t;
    q[i] = static_cast<Q>(nan ? znan : t);
  }
}

template <typename Q>
void Quantize(const float* x, const std::vector<int64_t>& shape, const Granularity& g,
              std::span<const QuantParams> params, IntFormat fmt, Q* q, bool restricted_range) {
  fmt.Check();
  CheckStorage<Q>(fmt, "Quantize");
  CheckParamCount(params, shape, g, "Quantize");
  for (const QuantParams& p : params) CheckQuantParams(p, fmt);
  const int32_t qmin = QuantMin(fmt, restricted_range), qmax = fmt.qmax();
  ForEachParamRun(shape, g, [&](int64_t begin, int64_t count, int64_t pi) {
    QuantizeRun(x + begin, count, params[pi], qmin, qmax, q + begin);
  });
}

template <typename Q>
void Dequantize(const Q* q, const std::vector<int64_t>& shape, const Granularity& g,
                std::span<const QuantParams> params, float* x) {
  CheckParamCount(params, shape, g, "Dequantize");
  for (const QuantParams& p : params) {
    if (!(std::isfinite(p.scale) && p.scale > 0)) {
      throw NumericsError("Dequantize: scale " + std::to_string(p.scale) +
                          " is not a finite positive number");
    }
  }
  ForEachParamRun(shape, g, [&](int64_t begin, int64_t count, int64_t pi) {
    const QuantParams p = params[pi];
    for (int64_t i = begin; i < begin + count; ++i) x[i] = DequantizeValue(q[i], p);
  });
}

#define QF_INSTANTIATE(Q)                                                                  \
  template void QuantizeRun<Q>(const float*, int64_t, QuantParams, int32_t, int32_t, Q*);  \
  template void Quantize<Q>(const float*, const std::vector<int64_t>&, const Granularity&, \
                            std::span<const QuantParams>, IntFormat, Q*, bool);            \
  template void Dequantize<Q>(const Q*, const std::vector<int64_t>&, const Granularity&,   \
                              std::span<const QuantParams>, float*);
QF_INSTANTIATE(int8_t)
QF_INSTANTIATE(uint8_t)
QF_INSTANTIATE(int16_t)
QF_INSTANTIATE(uint16_t)
QF_INSTANTIATE(int32_t)
#undef QF_INSTANTIATE

}  // namespace qforge::numerics
