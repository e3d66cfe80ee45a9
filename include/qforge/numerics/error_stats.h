// Error statistics between a reference (fp32) and an approximation: bias, std, MSE, SQNR,
// cosine similarity, max abs error, accumulated over any number of batches (Merge-able).
#pragma once

#include <cstdint>

namespace qforge::numerics {

// Everything ErrorStats reports, for tables and JSON.
struct ErrorSummary {
  int64_t count = 0;
  double bias = 0;           // mean(e), e = approx - ref
  double std = 0;            // population standard deviation of e
  double mse = 0;            // mean(e^2) = bias^2 + std^2
  double sqnr_db = 0;        // 10 log10(sum ref^2 / sum e^2)
  double cosine = 0;         // <ref, approx> / (|ref| |approx|)
  double max_abs_error = 0;  // max |e|
};

// Streaming accumulator. All sums are in double; the mean and variance of e use per-batch
// two-pass sums combined with Chan et al.'s parallel update (Welford's method for one value at
// a time), so a large bias does not destroy the precision of std.
//
// Conventions for degenerate inputs:
//   empty                      : count 0, bias = std = mse = max = 0, SQNR +inf, cosine 1.
//   noise 0 (approx == ref)    : SQNR = +inf (also when the signal is 0).
//   signal 0, noise > 0        : SQNR = -inf.
//   both vectors zero          : cosine 1 (identical); exactly one of them zero: cosine 0.
//   NaN in an input            : the statistics it touches become NaN (NaN is sticky in max).
class ErrorStats {
 public:
  void Add(double ref, double approx);
  void Add(const float* ref, const float* approx, int64_t n);
  void Merge(const ErrorStats& other);

  int64_t count() const { return n_; }
  double bias() const { return mean_e_; }
  double variance() const;  // population variance of e
  double std() const;
  double mse() const;
  double sqnr_db() const;
  double cosine() const;
  double max_abs_error() const { return max_abs_; }
  double signal_power() const;  // mean(ref^2)
  ErrorSummary Summary() const;

 private:
  int64_t n_ = 0;
  double mean_e_ = 0;   // mean of e
  double m2_e_ = 0;     // sum of (e - mean_e)^2
  double sum_e2_ = 0;   // sum e^2 (noise energy)
  double sum_r2_ = 0;   // sum ref^2 (signal energy)
  double sum_a2_ = 0;   // sum approx^2
  double sum_ra_ = 0;   // sum ref * approx
  double max_abs_ = 0;  // max |e|
};

}  // namespace qforge::numerics
