// Streaming histogram with power-of-two bin widths: exact re-binning as the range grows, and
// exact merging of histograms made on different shards.
//
// The bins are a fixed grid anchored at 0: bin k covers [k * w, (k + 1) * w) with w a power of
// two. The histogram keeps `num_bins` bins in a window that always contains bin 0 (every
// quantization range contains 0) and every value seen so far. Its state is canonical: w is the
// smallest power of two (at least 2^-64) for which the window [min(lo, 0), max(hi, 0)] of the
// values seen fits in num_bins bins. When new values do not fit, w doubles (bins 2j and 2j + 1
// merge into bin j: no interpolation, counts stay exact integers) until they do. Because the
// final w depends only on the overall min and max, adding the data in any batching or order,
// or merging shards, gives bit-identical histograms. Memory is O(num_bins), independent of the
// number of values.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/calib/calib_table.h"

namespace qforge::calib {

class StreamingHistogram {
 public:
  explicit StreamingHistogram(int num_bins = 2048);  // num_bins >= 16

  // Adds the finite values of x[0..n) (NaN and +-Inf are skipped; the caller counts them).
  void Add(const float* x, int64_t n);
  // Adds another histogram's counts (exact; any bin widths).
  void Merge(const StreamingHistogram& other);

  int64_t total() const { return total_; }
  int num_bins() const { return num_bins_; }
  double bin_width() const { return width_; }  // 0 while empty
  double min() const { return min_; }          // smallest / largest value added
  double max() const { return max_; }

  // The non-empty part as a table Histogram (leading and trailing empty bins dropped), and
  // back; data_min / data_max are the extremes of the values (TensorStats min / max).
  // FromTable throws qforge::Error when the histogram does not match them or is not canonical
  // for num_bins (bin width not the smallest power of two that fits, negative counts).
  Histogram ToTable() const;
  static StreamingHistogram FromTable(const Histogram& h, int num_bins, double data_min,
                                      double data_max);

  // Count of bin k (0 outside the window).
  int64_t count(int64_t k) const;
  int64_t first_bin() const { return first_; }  // window [first_bin, first_bin + num_bins)

 private:
  void Rebin(double new_width, double new_min, double new_max);

  int num_bins_;
  double width_ = 0;
  int64_t first_ = 0;
  double min_ = 0, max_ = 0;
  int64_t total_ = 0;
  std::vector<int64_t> counts_;
};

// The smallest power-of-two width (>= 2^-64) for which [min(lo,0), max(hi,0)] fits in
// num_bins bins of the zero-anchored grid.
double FitBinWidth(double lo, double hi, int num_bins);

}  // namespace qforge::calib
