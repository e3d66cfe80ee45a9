// Calibration observers: stream over a tensor's values batch by batch (memory independent of
// the number of samples) and choose the real range [lo, hi] its quantization should cover.
//
//   minmax         : [min, max] of everything seen.
//   moving_average : per-batch min and max, averaged: m <- m + momentum * (batch_m - m).
//   percentile     : histogram; clips the outer (100 - p)% of |x| (symmetric) or of each tail.
//   entropy        : histogram; the clip threshold minimizing the KL divergence between the
//                    clipped distribution and its quantized form (TensorRT / ncnn / MXNet).
//   mse            : histogram; the clip range minimizing the expected squared quantization
//                    error for the target integer format.
// The math is written out in docs/calibration.md. All choices are deterministic functions of
// the observed data (and, for moving_average, of the batch order).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "qforge/calib/calib_table.h"
#include "qforge/calib/histogram.h"
#include "qforge/numerics/dtypes.h"

namespace qforge::calib {

enum class Method { kMinMax, kMovingAverage, kPercentile, kEntropy, kMse };

// "minmax", "moving_average", "percentile", "entropy", "mse" (ParseMethod throws
// qforge::Error listing the valid names).
std::string MethodName(Method m);
Method ParseMethod(const std::string& name);
bool UsesHistogram(Method m);

struct ObserverConfig {
  Method method = Method::kMinMax;
  double percentile = 99.99;  // in (0, 100]
  double momentum = 0.01;     // in (0, 1]
  int bins = 2048;            // >= 16
  // The format the range is meant for: entropy uses its number of levels, mse its rounding;
  // the proposed scale / zero point are computed for it.
  numerics::IntFormat dtype = numerics::kUInt8;
  bool symmetric = false;

  void Check() const;  // throws qforge::Error for an out-of-range parameter
};

// Streaming statistics (count, non-finite count, min, max, mean, std) of a tensor.
class StatsAccumulator {
 public:
  // Adds a batch; returns false when it had no finite value.
  void Add(const float* x, int64_t n);
  // Pools two accumulators (Chan et al.'s parallel variance formula).
  void Merge(const TensorStats& other);
  TensorStats stats() const;
  static StatsAccumulator FromStats(const TensorStats& s);

 private:
  int64_t count_ = 0, nonfinite_ = 0;
  double min_ = 0, max_ = 0, mean_ = 0, m2_ = 0;
};

// One tensor's observer.
class Observer {
 public:
  explicit Observer(ObserverConfig config);
  // Observes one batch of values (one Session::Run).
  void Observe(const float* x, int64_t n);
  // The table entry: statistics, the observer's state (histogram, batch count) and the chosen
  // range with the proposed scale / zero point.
  CalibEntry ToEntry(const std::string& tensor) const;

 private:
  ObserverConfig config_;
  StatsAccumulator stats_;
  int64_t batches_ = 0;               // batches with at least one finite value
  double avg_min_ = 0, avg_max_ = 0;  // moving averages
  std::optional<StreamingHistogram> hist_;
};

// Chooses the range from an entry's statistics / histogram / moving average for `config` and
// fills range_min, range_max, scale, zero_point, proposed_dtype, symmetric and observer.
// The range always contains 0 and lies within [min(stats.min, 0), max(stats.max, 0)].
// For moving_average the entry's current range is the state and is kept.
void ChooseRange(CalibEntry& entry, const ObserverConfig& config);

// The clip ranges on a histogram (exposed for tests; docs/calibration.md has the math). Each
// returns [lo, hi] with lo <= 0 <= hi, before intersecting with the data range.
std::pair<double, double> PercentileRange(const StreamingHistogram& h, double percentile,
                                          bool symmetric);
std::pair<double, double> EntropyRange(const StreamingHistogram& h, numerics::IntFormat fmt,
                                       bool symmetric);
std::pair<double, double> MseRange(const StreamingHistogram& h, numerics::IntFormat fmt,
                                   bool symmetric);

// Expected squared error E[(x - fakequant(x))^2] over the histogram, taking the values in
// each bin as uniformly spread over the bin, for quantization with (scale, zero_point) into
// fmt (no restricted range). Used by MseRange; exposed for tests.
double ExpectedQuantError(const StreamingHistogram& h, float scale, int32_t zero_point,
                          numerics::IntFormat fmt);

// KL divergence sum p log(p / q) of two count vectors after normalizing each to sum 1; bins
// with p = 0 contribute 0; a bin with p > 0 and q = 0 uses q = 1e-4 (smoothing, as the
// TensorRT-style implementations do, since the true divergence would be infinite). Infinite
// when q has no mass at all.
double KlDivergence(const std::vector<double>& p, const std::vector<double>& q);

}  // namespace qforge::calib
