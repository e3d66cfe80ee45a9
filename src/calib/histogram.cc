// Streaming histogram on a zero-anchored power-of-two grid (see histogram.h for the contract).
#include "qforge/calib/histogram.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "qforge/tensor/tensor.h"

namespace qforge::calib {
namespace {

constexpr int kMinExponent = -64;  // smallest bin width 2^-64

// floor(x / w) for a power-of-two w, as an integer (exact: x / w only shifts the exponent).
int64_t BinOf(double x, double w) { return static_cast<int64_t>(std::floor(x / w)); }

bool Fits(double lo, double hi, double w, int num_bins) {
  return std::floor(hi / w) - std::floor(lo / w) + 1 <= num_bins;
}

// log2 of a power of two.
int Log2(double w) {
  int e = 0;
  std::frexp(w, &e);  // w = 0.5 * 2^e
  return e - 1;
}

bool IsPowerOfTwo(double w) {
  int e = 0;
  return std::isfinite(w) && w > 0 && std::frexp(w, &e) == 0.5;
}

}  // namespace

double FitBinWidth(double lo, double hi, int num_bins) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  // A width fits only if (hi - lo) / w <= num_bins, so start at the largest power of two below
  // (hi - lo) / num_bins and double until the zero-anchored bins of lo and hi fit.
  int e = kMinExponent;
  if (hi - lo > 0)
    e = std::max(kMinExponent, static_cast<int>(std::floor(std::log2((hi - lo) / num_bins))) - 1);
  while (!Fits(lo, hi, std::ldexp(1.0, e), num_bins)) ++e;
  return std::ldexp(1.0, e);
}

StreamingHistogram::StreamingHistogram(int num_bins) : num_bins_(num_bins) {
  if (num_bins < 16 || num_bins > (1 << 24))
    throw Error("histogram: " + std::to_string(num_bins) + " bins (need 16 .. 16777216)");
}

int64_t StreamingHistogram::count(int64_t k) const {
  if (counts_.empty() || k < first_ || k >= first_ + num_bins_) return 0;
  return counts_[static_cast<size_t>(k - first_)];
}

void StreamingHistogram::Rebin(double new_width, double new_min, double new_max) {
  const int64_t new_first = std::min<int64_t>(BinOf(new_min, new_width), 0);
  std::vector<int64_t> counts(static_cast<size_t>(num_bins_), 0);
  if (!counts_.empty()) {
    // Bin k at width w lies inside bin floor(k / 2^d) at width w * 2^d: an arithmetic shift.
    const int d = Log2(new_width) - Log2(width_);
    for (int i = 0; i < num_bins_; ++i) {
      if (counts_[i] == 0) continue;
      const int64_t k = (first_ + i) >> d;
      counts[static_cast<size_t>(k - new_first)] += counts_[i];
    }
  }
  counts_ = std::move(counts);
  width_ = new_width;
  first_ = new_first;
  min_ = new_min;
  max_ = new_max;
}

void StreamingHistogram::Add(const float* x, int64_t n) {
  bool any = false;
  double lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    if (!any) lo = hi = x[i], any = true;
    lo = std::min<double>(lo, x[i]);
    hi = std::max<double>(hi, x[i]);
  }
  if (!any) return;
  if (total_ > 0) lo = std::min(lo, min_), hi = std::max(hi, max_);
  const double w = FitBinWidth(lo, hi, num_bins_);
  if (total_ == 0 || w != width_ || lo != min_ || hi != max_) Rebin(w, lo, hi);
  const double inv = 1.0 / width_;  // exact: a power of two
  int64_t added = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    const int64_t k = static_cast<int64_t>(std::floor(static_cast<double>(x[i]) * inv)) - first_;
    ++counts_[static_cast<size_t>(std::clamp<int64_t>(k, 0, num_bins_ - 1))];
    ++added;
  }
  total_ += added;
}

void StreamingHistogram::Merge(const StreamingHistogram& other) {
  if (other.total_ == 0) return;
  if (other.num_bins_ != num_bins_)
    throw Error("histogram merge: " + std::to_string(num_bins_) + " bins vs " +
                std::to_string(other.num_bins_));
  const double lo = total_ ? std::min(min_, other.min_) : other.min_;
  const double hi = total_ ? std::max(max_, other.max_) : other.max_;
  const double w = FitBinWidth(lo, hi, num_bins_);
  if (total_ == 0) {
    counts_.clear();
    width_ = w;
  }
  Rebin(w, lo, hi);
  const int d = Log2(width_) - Log2(other.width_);
  for (int i = 0; i < num_bins_; ++i) {
    if (other.counts_[i] == 0) continue;
    const int64_t k = (other.first_ + i) >> d;
    counts_[static_cast<size_t>(k - first_)] += other.counts_[i];
  }
  total_ += other.total_;
}

Histogram StreamingHistogram::ToTable() const {
  Histogram h;
  if (total_ == 0) return h;
  int lo = 0, hi = num_bins_ - 1;
  while (counts_[lo] == 0) ++lo;
  while (counts_[hi] == 0) --hi;
  h.bin_width = width_;
  h.first_bin = first_ + lo;
  h.counts.assign(counts_.begin() + lo, counts_.begin() + hi + 1);
  return h;
}

StreamingHistogram StreamingHistogram::FromTable(const Histogram& h, int num_bins, double data_min,
                                                 double data_max) {
  StreamingHistogram s(num_bins);
  if (h.empty()) return s;
  if (!IsPowerOfTwo(h.bin_width))
    throw Error("histogram bin_width " + std::to_string(h.bin_width) + " is not a power of two");
  if (!(data_min <= data_max) || !std::isfinite(data_min) || !std::isfinite(data_max))
    throw Error("histogram: bad data range");
  const double w = FitBinWidth(data_min, data_max, num_bins);
  const int64_t n = static_cast<int64_t>(h.counts.size());
  if (w != h.bin_width || BinOf(data_min, w) != h.first_bin ||
      BinOf(data_max, w) != h.first_bin + n - 1)
    throw Error("histogram (bin_width " + std::to_string(h.bin_width) + ", first_bin " +
                std::to_string(h.first_bin) + ", " + std::to_string(n) +
                " counts) does not match the tensor's min/max for " + std::to_string(num_bins) +
                " bins");
  int64_t total = 0;
  for (int64_t c : h.counts) {
    if (c < 0) throw Error("histogram has a negative count");
    total += c;
  }
  if (h.counts.front() == 0 || h.counts.back() == 0 || total == 0)
    throw Error("histogram's first and last counts must be non-zero");
  s.Rebin(w, data_min, data_max);
  for (int64_t i = 0; i < n; ++i)
    s.counts_[static_cast<size_t>(h.first_bin + i - s.first_)] = h.counts[i];
  s.total_ = total;
  return s;
}

}  // namespace qforge::calib
