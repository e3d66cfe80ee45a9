// Observers and the range choices of the calibration methods (math in docs/calibration.md).
#include "qforge/calib/observer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "qforge/numerics/quant_params.h"
#include "qforge/tensor/tensor.h"

namespace qforge::calib {

namespace nm = qforge::numerics;

std::string MethodName(Method m) {
  switch (m) {
    case Method::kMinMax:
      return "minmax";
    case Method::kMovingAverage:
      return "moving_average";
    case Method::kPercentile:
      return "percentile";
    case Method::kEntropy:
      return "entropy";
    case Method::kMse:
      return "mse";
  }
  return "?";
}

Method ParseMethod(const std::string& name) {
  for (Method m : {Method::kMinMax, Method::kMovingAverage, Method::kPercentile, Method::kEntropy,
                   Method::kMse})
    if (MethodName(m) == name) return m;
  throw Error("unknown calibration method '" + name +
              "' (minmax, moving_average, percentile, entropy, mse)");
}

bool UsesHistogram(Method m) {
  return m == Method::kPercentile || m == Method::kEntropy || m == Method::kMse;
}

void ObserverConfig::Check() const {
  if (!(percentile > 0 && percentile <= 100))
    throw Error("percentile " + std::to_string(percentile) + " is not in (0, 100]");
  if (!(momentum > 0 && momentum <= 1))
    throw Error("momentum " + std::to_string(momentum) + " is not in (0, 1]");
  // entropy and mse scan O(bins^2): 16384 bins take about a second per tensor.
  if (bins < 16 || bins > 16384)
    throw Error("histogram bins " + std::to_string(bins) + " not in [16, 16384]");
  if (!dtype.valid() || dtype.bits > 16)
    throw Error("calibration target format must be an integer format of at most 16 bits");
}

// ---- statistics ----

void StatsAccumulator::Add(const float* x, int64_t n) {
  int64_t count = 0;
  double lo = 0, hi = 0, sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) {
      ++nonfinite_;
      continue;
    }
    if (count == 0) lo = hi = v;
    lo = std::min<double>(lo, v);
    hi = std::max<double>(hi, v);
    sum += v;
    ++count;
  }
  if (count == 0) return;
  const double mean = sum / static_cast<double>(count);
  double m2 = 0;  // second pass about the batch mean: no cancellation
  for (int64_t i = 0; i < n; ++i)
    if (std::isfinite(x[i])) m2 += (x[i] - mean) * (x[i] - mean);
  TensorStats b;
  b.count = count;
  b.min = lo;
  b.max = hi;
  b.mean = mean;
  b.std = std::sqrt(m2 / static_cast<double>(count));
  const int64_t nonfinite = nonfinite_;
  Merge(b);
  nonfinite_ = nonfinite;  // Merge adds b.nonfinite (0)
}

void StatsAccumulator::Merge(const TensorStats& o) {
  nonfinite_ += o.nonfinite;
  if (o.count == 0) return;
  const double m2 = o.std * o.std * static_cast<double>(o.count);
  if (count_ == 0) {
    count_ = o.count, min_ = o.min, max_ = o.max, mean_ = o.mean, m2_ = m2;
    return;
  }
  const double na = static_cast<double>(count_), nb = static_cast<double>(o.count);
  const double n = na + nb, delta = o.mean - mean_;
  mean_ += delta * nb / n;
  m2_ += m2 + delta * delta * na * nb / n;
  count_ += o.count;
  min_ = std::min(min_, o.min);
  max_ = std::max(max_, o.max);
}

TensorStats StatsAccumulator::stats() const {
  TensorStats s;
  s.count = count_;
  s.nonfinite = nonfinite_;
  s.min = min_;
  s.max = max_;
  s.mean = mean_;
  s.std = count_ ? std::sqrt(m2_ / static_cast<double>(count_)) : 0;
  return s;
}

StatsAccumulator StatsAccumulator::FromStats(const TensorStats& s) {
  StatsAccumulator a;
  a.Merge(s);
  return a;
}

// ---- observer ----

Observer::Observer(ObserverConfig config) : config_(config) {
  config_.Check();
  if (UsesHistogram(config_.method)) hist_.emplace(config_.bins);
}

void Observer::Observe(const float* x, int64_t n) {
  const int64_t before = stats_.stats().count;
  stats_.Add(x, n);
  if (stats_.stats().count == before) return;  // no finite value in this batch
  ++batches_;
  if (config_.method == Method::kMovingAverage) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) continue;
      lo = std::min<double>(lo, x[i]);
      hi = std::max<double>(hi, x[i]);
    }
    if (batches_ == 1) {
      avg_min_ = lo, avg_max_ = hi;
    } else {
      avg_min_ += config_.momentum * (lo - avg_min_);
      avg_max_ += config_.momentum * (hi - avg_max_);
    }
  }
  if (hist_) hist_->Add(x, n);
}

CalibEntry Observer::ToEntry(const std::string& tensor) const {
  CalibEntry e;
  e.tensor = tensor;
  e.stats = stats_.stats();
  e.batches = batches_;
  if (config_.method == Method::kMovingAverage) {
    e.range_min = std::min(avg_min_, 0.0);
    e.range_max = std::max(avg_max_, 0.0);
  }
  if (hist_) e.histogram = hist_->ToTable();
  ChooseRange(e, config_);
  return e;
}

// ---- range choice ----

namespace {

// |x| histogram: bin j covers |x| in [j w, (j + 1) w), folding bins j and -j-1 of the signed
// zero-anchored grid. Length: up to the last non-empty bin.
std::vector<double> FoldAbs(const StreamingHistogram& h) {
  const int64_t first = h.first_bin(), last = first + h.num_bins() - 1;
  const int64_t len = std::max(last + 1, -first);
  std::vector<double> a(static_cast<size_t>(len), 0.0);
  for (int64_t k = first; k <= last; ++k) {
    const int64_t c = h.count(k);
    if (c) a[static_cast<size_t>(k >= 0 ? k : -k - 1)] += static_cast<double>(c);
  }
  while (!a.empty() && a.back() == 0) a.pop_back();
  return a;
}

int64_t FirstNonEmpty(const StreamingHistogram& h) {
  int64_t k = h.first_bin();
  while (h.count(k) == 0) ++k;
  return k;
}
int64_t LastNonEmpty(const StreamingHistogram& h) {
  int64_t k = h.first_bin() + h.num_bins() - 1;
  while (h.count(k) == 0) --k;
  return k;
}

nm::QuantParams Params(double lo, double hi, nm::IntFormat fmt, bool symmetric) {
  return nm::ChooseQuantParams(static_cast<float>(lo), static_cast<float>(hi), fmt,
                               nm::RangeOptions{symmetric, false});
}

}  // namespace

std::pair<double, double> PercentileRange(const StreamingHistogram& h, double percentile,
                                          bool symmetric) {
  if (h.total() == 0) return {0, 0};
  const double w = h.bin_width();
  // At most `tail` values may lie beyond the chosen edge (on each side when asymmetric).
  const double tail = static_cast<double>(h.total()) * (1.0 - percentile / 100.0);
  if (symmetric) {
    const std::vector<double> a = FoldAbs(h);
    double above = 0;
    for (int64_t j = static_cast<int64_t>(a.size()) - 1; j >= 0; --j) {
      if (above + a[j] > tail) return {-(j + 1) * w, (j + 1) * w};
      above += a[j];
    }
    return {0, 0};
  }
  double hi = 0, lo = 0, above = 0, below = 0;
  for (int64_t k = LastNonEmpty(h); k >= 0; --k) {
    const double c = static_cast<double>(h.count(k));
    if (above + c > tail) {
      hi = (k + 1) * w;
      break;
    }
    above += c;
  }
  for (int64_t k = FirstNonEmpty(h); k < 0; ++k) {
    const double c = static_cast<double>(h.count(k));
    if (below + c > tail) {
      lo = k * w;
      break;
    }
    below += c;
  }
  return {lo, hi};
}

double KlDivergence(const std::vector<double>& p, const std::vector<double>& q) {
  double sp = 0, sq = 0;
  for (double v : p) sp += v;
  for (double v : q) sq += v;
  if (sp == 0) return 0;
  if (sq == 0) return std::numeric_limits<double>::infinity();
  double kl = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0) continue;
    const double pi = p[i] / sp;
    const double qi = q[i] == 0 ? 1e-4 : q[i] / sq;
    kl += pi * std::log(pi / qi);
  }
  return kl;
}

std::pair<double, double> EntropyRange(const StreamingHistogram& h, nm::IntFormat fmt,
                                       bool symmetric) {
  if (h.total() == 0) return {0, 0};
  const std::vector<double> a = FoldAbs(h);
  const int64_t len = static_cast<int64_t>(a.size());
  // One-sided data quantized asymmetrically spreads all levels over [0, T]; otherwise half of
  // them cover each side (TensorRT: 128 of int8's 256).
  const bool one_sided = h.min() >= 0 || h.max() <= 0;
  const int64_t levels = static_cast<int64_t>(fmt.levels());
  const int64_t target = (one_sided && !symmetric) ? levels : levels / 2;
  const double w = h.bin_width();
  if (len <= target) return {-len * w, len * w};

  std::vector<double> suffix(static_cast<size_t>(len) + 1, 0.0);  // suffix[i] = sum a[i..)
  for (int64_t i = len - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + a[i];
  double best_kl = std::numeric_limits<double>::infinity();
  int64_t best_i = len;
  std::vector<double> p, q;
  for (int64_t i = target; i <= len; ++i) {
    // Reference P: the first i bins, the clipped values (outliers) added to the last one.
    p.assign(a.begin(), a.begin() + i);
    p[i - 1] += suffix[i];
    // Candidate Q: the first i bins (without outliers) merged into `target` groups of
    // i / target bins (the last group takes the remainder), each group's count spread evenly
    // over its non-empty bins; empty bins stay empty (they are empty in P as well, except the
    // last bin when it only holds outliers: KlDivergence smooths that).
    q.assign(static_cast<size_t>(i), 0.0);
    const int64_t per = i / target;
    for (int64_t g = 0; g < target; ++g) {
      const int64_t start = g * per, end = g == target - 1 ? i : start + per;
      double sum = 0;
      int64_t nonzero = 0;
      for (int64_t k = start; k < end; ++k) sum += a[k], nonzero += a[k] != 0;
      if (nonzero == 0) continue;
      const double v = sum / static_cast<double>(nonzero);
      for (int64_t k = start; k < end; ++k)
        if (a[k] != 0) q[k] = v;
    }
    const double kl = KlDivergence(p, q);
    if (kl < best_kl) best_kl = kl, best_i = i;  // the smallest threshold on ties
  }
  return {-best_i * w, best_i * w};
}

double ExpectedQuantError(const StreamingHistogram& h, float scale, int32_t zero_point,
                          nm::IntFormat fmt) {
  if (h.total() == 0) return 0;
  const double s = scale, z = zero_point, w = h.bin_width();
  const int64_t qmin = fmt.qmin(), qmax = fmt.qmax();
  auto code = [&](double x) {  // clamped in double first: x / s may exceed int64
    return static_cast<int64_t>(std::clamp(std::floor(x / s + 0.5) + z, static_cast<double>(qmin),
                                           static_cast<double>(qmax)));
  };
  double err = 0;
  for (int64_t k = FirstNonEmpty(h), last = LastNonEmpty(h); k <= last; ++k) {
    const int64_t c = h.count(k);
    if (c == 0) continue;
    // The values of this bin, taken as spread uniformly over it (within the data range).
    const double l = std::max(k * w, h.min()), r = std::min((k + 1) * w, h.max());
    const int64_t qa = code(l), qb = code(r);
    if (r <= l) {
      const double d = l - (qa - z) * s;
      err += static_cast<double>(c) * d * d;
      continue;
    }
    double integral = 0;  // of (x - dequant(code(x)))^2 over [l, r]
    for (int64_t q = qa; q <= qb; ++q) {
      const double lo = q == qa ? l : (q - z - 0.5) * s;
      const double hi = q == qb ? r : (q - z + 0.5) * s;
      const double v = (q - z) * s;
      integral += ((hi - v) * (hi - v) * (hi - v) - (lo - v) * (lo - v) * (lo - v)) / 3.0;
    }
    err += static_cast<double>(c) * integral / (r - l);
  }
  return err / static_cast<double>(h.total());
}

std::pair<double, double> MseRange(const StreamingHistogram& h, nm::IntFormat fmt, bool symmetric) {
  if (h.total() == 0) return {0, 0};
  const double w = h.bin_width();
  const double data_lo = std::min(h.min(), 0.0), data_hi = std::max(h.max(), 0.0);
  auto error = [&](double lo, double hi) {
    // Edges beyond the data change nothing but could exceed float (a bin edge above FLT_MAX).
    const nm::QuantParams p = Params(std::max(lo, data_lo), std::min(hi, data_hi), fmt, symmetric);
    return ExpectedQuantError(h, p.scale, p.zero_point, fmt);
  };
  if (symmetric) {  // candidates: T = j w for every |x| bin edge
    const int64_t len = static_cast<int64_t>(FoldAbs(h).size());
    double best = std::numeric_limits<double>::infinity();
    int64_t best_j = len;
    for (int64_t j = 1; j <= len; ++j) {
      const double e = error(-j * w, j * w);
      if (e < best) best = e, best_j = j;
    }
    return {-best_j * w, best_j * w};
  }
  // Asymmetric: coordinate descent over the bin edges, upper edge then lower edge then upper
  // edge again, starting from the full data range (one side only when the data is one-sided).
  const int64_t first = std::min<int64_t>(FirstNonEmpty(h), 0);
  const int64_t last = std::max<int64_t>(LastNonEmpty(h) + 1, 0);
  int64_t lo = first, hi = last;  // range [lo w, hi w]
  auto search_hi = [&] {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t j = std::min<int64_t>(1, last); j <= last; ++j) {
      const double e = error(lo * w, j * w);
      if (e < best) best = e, hi = j;
    }
  };
  auto search_lo = [&] {
    double best = std::numeric_limits<double>::infinity();
    for (int64_t j = std::max<int64_t>(-1, first); j >= first; --j) {
      const double e = error(j * w, hi * w);
      if (e < best) best = e, lo = j;
    }
  };
  if (last > 0) search_hi();
  if (first < 0) {
    search_lo();
    if (last > 0) search_hi();
  }
  return {lo * w, hi * w};
}

void ChooseRange(CalibEntry& e, const ObserverConfig& config) {
  e.observer = MethodName(config.method);
  const double data_lo = e.stats.count ? std::min(e.stats.min, 0.0) : 0.0;
  const double data_hi = e.stats.count ? std::max(e.stats.max, 0.0) : 0.0;
  std::pair<double, double> r{data_lo, data_hi};
  if (config.method == Method::kMovingAverage) {
    r = {std::min(e.range_min, 0.0), std::max(e.range_max, 0.0)};
  } else if (UsesHistogram(config.method) && e.stats.count > 0) {
    const StreamingHistogram h =
        StreamingHistogram::FromTable(e.histogram, config.bins, e.stats.min, e.stats.max);
    if (config.method == Method::kPercentile)
      r = PercentileRange(h, config.percentile, config.symmetric);
    else if (config.method == Method::kEntropy)
      r = EntropyRange(h, config.dtype, config.symmetric);
    else
      r = MseRange(h, config.dtype, config.symmetric);
  }
  e.range_min = std::clamp(r.first, data_lo, 0.0);
  e.range_max = std::clamp(r.second, 0.0, data_hi);
  // Ranges are of float tensors: keep them float-representable so the proposal below and the
  // quantizer see the same numbers.
  e.range_min = static_cast<float>(e.range_min);
  e.range_max = static_cast<float>(e.range_max);
  e.proposed_dtype = config.dtype.name();
  e.symmetric = config.symmetric;
  const nm::QuantParams p = Params(e.range_min, e.range_max, config.dtype, config.symmetric);
  e.scale = p.scale;
  e.zero_point = p.zero_point;
}

}  // namespace qforge::calib
