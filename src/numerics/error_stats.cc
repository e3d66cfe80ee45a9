// Streaming error statistics (bias, std, MSE, SQNR, cosine, max abs error).
#include "qforge/numerics/error_stats.h"

#include <cmath>
#include <limits>

namespace qforge::numerics {
namespace {

// max with NaN sticky: once NaN, stays NaN.
double StickyMax(double cur, double v) {
  if (std::isnan(cur)) return cur;
  return (std::isnan(v) || v > cur) ? v : cur;
}

}  // namespace

void ErrorStats::Add(double ref, double approx) {
  const double e = approx - ref;
  ++n_;
  const double d = e - mean_e_;
  mean_e_ += d / double(n_);
  m2_e_ += d * (e - mean_e_);
  sum_e2_ += e * e;
  sum_r2_ += ref * ref;
  sum_a2_ += approx * approx;
  sum_ra_ += ref * approx;
  max_abs_ = StickyMax(max_abs_, std::fabs(e));
}

void ErrorStats::Add(const float* ref, const float* approx, int64_t n) {
  if (n <= 0) return;
  // Two passes over the batch: sums, then the centered second moment; then merge.
  ErrorStats b;
  b.n_ = n;
  double sum_e = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double r = ref[i], a = approx[i], e = a - r;
    sum_e += e;
    b.sum_e2_ += e * e;
    b.sum_r2_ += r * r;
    b.sum_a2_ += a * a;
    b.sum_ra_ += r * a;
    b.max_abs_ = StickyMax(b.max_abs_, std::fabs(e));
  }
  b.mean_e_ = sum_e / double(n);
  for (int64_t i = 0; i < n; ++i) {
    const double d = (double(approx[i]) - double(ref[i])) - b.mean_e_;
    b.m2_e_ += d * d;
  }
  Merge(b);
}

void ErrorStats::Merge(const ErrorStats& o) {
  if (o.n_ == 0) return;
  if (n_ == 0) {
    *this = o;
    return;
  }
  // Chan, Golub, LeVeque: combine (n, mean, M2) of two disjoint sets.
  const double na = double(n_), nb = double(o.n_), n = na + nb;
  const double delta = o.mean_e_ - mean_e_;
  mean_e_ += delta * (nb / n);
  m2_e_ += o.m2_e_ + delta * delta * (na * nb / n);
  n_ += o.n_;
  sum_e2_ += o.sum_e2_;
  sum_r2_ += o.sum_r2_;
  sum_a2_ += o.sum_a2_;
  sum_ra_ += o.sum_ra_;
  max_abs_ = StickyMax(max_abs_, o.max_abs_);
}

double ErrorStats::variance() const { return n_ == 0 ? 0.0 : m2_e_ / double(n_); }
double ErrorStats::std() const { return std::sqrt(variance()); }
double ErrorStats::mse() const { return n_ == 0 ? 0.0 : sum_e2_ / double(n_); }
double ErrorStats::signal_power() const { return n_ == 0 ? 0.0 : sum_r2_ / double(n_); }

double ErrorStats::sqnr_db() const {
  if (std::isnan(sum_e2_) || std::isnan(sum_r2_)) return std::numeric_limits<double>::quiet_NaN();
  if (sum_e2_ == 0) return std::numeric_limits<double>::infinity();
  if (sum_r2_ == 0) return -std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(sum_r2_ / sum_e2_);
}

double ErrorStats::cosine() const {
  if (std::isnan(sum_ra_) || std::isnan(sum_r2_) || std::isnan(sum_a2_)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (sum_r2_ == 0 && sum_a2_ == 0) return 1.0;
  if (sum_r2_ == 0 || sum_a2_ == 0) return 0.0;
  const double c = sum_ra_ / (std::sqrt(sum_r2_) * std::sqrt(sum_a2_));
  return c > 1 ? 1.0 : c < -1 ? -1.0 : c;  // rounding can step just outside [-1, 1]
}

ErrorSummary ErrorStats::Summary() const {
  return {n_, bias(), std(), mse(), sqnr_db(), cosine(), max_abs_error()};
}

}  // namespace qforge::numerics
