// Normalization kernels: BatchNormalization (reference, fold, fast scale+shift) and LayerNorm.
#include <omp.h>

#include <cmath>

#include "kernels/x86/vecmath_avx2.h"
#include "qforge/kernels/isa.h"
#include "qforge/kernels/norm.h"

namespace qforge::kernels {

namespace {
int NumThreads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }
}  // namespace

void BatchNormRef(int64_t n, int64_t c, int64_t s, const float* x, const float* scale,
                  const float* bias, const float* mean, const float* var, float epsilon, float* y) {
  for (int64_t in = 0; in < n; ++in) {
    for (int64_t ic = 0; ic < c; ++ic) {
      const double inv_std = 1.0 / std::sqrt(static_cast<double>(var[ic]) + epsilon);
      for (int64_t is = 0; is < s; ++is) {
        const int64_t i = (in * c + ic) * s + is;
        const double normalized = (static_cast<double>(x[i]) - mean[ic]) * inv_std;
        y[i] = static_cast<float>(normalized * scale[ic] + bias[ic]);
      }
    }
  }
}

void BatchNormFold(int64_t c, const float* scale, const float* bias, const float* mean,
                   const float* var, float epsilon, float* a, float* b) {
  for (int64_t ic = 0; ic < c; ++ic) {
    const double ai = scale[ic] / std::sqrt(static_cast<double>(var[ic]) + epsilon);
    a[ic] = static_cast<float>(ai);
    b[ic] = static_cast<float>(bias[ic] - mean[ic] * ai);
  }
}

void ChannelScaleShiftF32(int64_t n, int64_t c, int64_t s, const float* x, const float* a,
                          const float* b, float* y, int threads) {
  const int64_t planes = n * c;
#pragma omp parallel for schedule(static) num_threads(NumThreads(threads)) if (planes * s > 4096)
  for (int64_t p = 0; p < planes; ++p) {
    const float ap = a[p % c], bp = b[p % c];
    const float* xp = x + p * s;
    float* yp = y + p * s;
#pragma omp simd
    for (int64_t i = 0; i < s; ++i) yp[i] = xp[i] * ap + bp;
  }
}

void LayerNormRef(int64_t rows, int64_t cols, const float* x, const float* scale, const float* bias,
                  float epsilon, float* y, float* mean, float* inv_std_dev, int threads) {
#pragma omp parallel for schedule(static) num_threads(NumThreads(threads)) if (rows * cols > 4096)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) sum += xr[j];
    const double mu = cols ? sum / cols : 0.0;
    double sq = 0.0;
    for (int64_t j = 0; j < cols; ++j) sq += (xr[j] - mu) * (xr[j] - mu);
    const double var = cols ? sq / cols : 0.0;
    const double inv_std = 1.0 / std::sqrt(var + epsilon);
    for (int64_t j = 0; j < cols; ++j) {
      const double v = (xr[j] - mu) * inv_std * scale[j] + (bias ? bias[j] : 0.0f);
      yr[j] = static_cast<float>(v);
    }
    if (mean) mean[r] = static_cast<float>(mu);
    if (inv_std_dev) inv_std_dev[r] = static_cast<float>(inv_std);
  }
}

void LayerNormF32(int64_t rows, int64_t cols, const float* x, const float* scale, const float* bias,
                  float epsilon, float* y, float* mean, float* inv_std_dev, int threads) {
  if (cols <= 0 || ActiveIsa() == Isa::kScalar)
    return LayerNormRef(rows, cols, x, scale, bias, epsilon, y, mean, inv_std_dev, threads);
  const int nt = rows > 1 && rows * cols > 16384 ? NumThreads(threads) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int t = 0; t < nt; ++t) {
    const int64_t r0 = rows * t / nt, r1 = rows * (t + 1) / nt;
    detail::LayerNormRowsF32__avx2(r1 - r0, cols, x + r0 * cols, scale, bias, epsilon,
                                   y + r0 * cols, mean ? mean + r0 : nullptr,
                                   inv_std_dev ? inv_std_dev + r0 : nullptr);
  }
}

}  // namespace qforge::kernels
