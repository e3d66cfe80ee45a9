// Softmax / LogSoftmax along an axis: the double-precision reference and the OpenMP fast path.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/x86/vecmath_avx2.h"
#include "qforge/kernels/isa.h"
#include "qforge/kernels/softmax.h"

namespace qforge::kernels {

void SoftmaxRef(int64_t outer, int64_t axis, int64_t inner, const float* x, float* y, bool log) {
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      // The line x[o, :, i].
      auto at = [&](int64_t a) { return (o * axis + a) * inner + i; };
      float max_v = -INFINITY;
      for (int64_t a = 0; a < axis; ++a) max_v = std::max(max_v, x[at(a)]);
      double sum = 0.0;
      for (int64_t a = 0; a < axis; ++a) sum += std::exp(static_cast<double>(x[at(a)]) - max_v);
      for (int64_t a = 0; a < axis; ++a) {
        const double shifted = static_cast<double>(x[at(a)]) - max_v;
        y[at(a)] = static_cast<float>(log ? shifted - std::log(sum) : std::exp(shifted) / sum);
      }
    }
  }
}

namespace {
int NumThreads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }
}  // namespace

void SoftmaxF32(int64_t outer, int64_t axis, int64_t inner, const float* x, float* y, bool log,
                int threads) {
  if (outer <= 0 || axis <= 0 || inner <= 0) return;
  const bool parallel = outer > 1 && outer * axis * inner > 4096;
  if (inner == 1 && ActiveIsa() != Isa::kScalar) {
    // Last-axis softmax: rows are contiguous; vectorized max / exp+sum / scale passes.
    const int nt = parallel ? NumThreads(threads) : 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
    for (int t = 0; t < nt; ++t) {
      const int64_t r0 = outer * t / nt, r1 = outer * (t + 1) / nt;
      detail::SoftmaxRowsF32__avx2(r1 - r0, axis, x + r0 * axis, y + r0 * axis, log);
    }
    return;
  }
#pragma omp parallel num_threads(NumThreads(threads)) if (parallel)
  {
    std::vector<float> max_v(inner), sum(inner);
#pragma omp for schedule(static)
    for (int64_t o = 0; o < outer; ++o) {
      const float* xo = x + o * axis * inner;
      float* yo = y + o * axis * inner;
      // Every step is a loop over the contiguous inner index (length 1 for the common
      // last-axis softmax, where the loops over a do the vector work instead).
      for (int64_t i = 0; i < inner; ++i) max_v[i] = -INFINITY;
      for (int64_t a = 0; a < axis; ++a)
        for (int64_t i = 0; i < inner; ++i) max_v[i] = std::max(max_v[i], xo[a * inner + i]);
      for (int64_t i = 0; i < inner; ++i) sum[i] = 0.0f;
      for (int64_t a = 0; a < axis; ++a)
        for (int64_t i = 0; i < inner; ++i) {
          const float e = std::exp(xo[a * inner + i] - max_v[i]);
          yo[a * inner + i] = e;
          sum[i] += e;
        }
      if (log) {
        for (int64_t i = 0; i < inner; ++i) sum[i] = std::log(sum[i]);
        for (int64_t a = 0; a < axis; ++a)
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i)
            yo[a * inner + i] = (xo[a * inner + i] - max_v[i]) - sum[i];
      } else {
        for (int64_t i = 0; i < inner; ++i) sum[i] = 1.0f / sum[i];
        for (int64_t a = 0; a < axis; ++a)
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) yo[a * inner + i] *= sum[i];
      }
    }
  }
}

}  // namespace qforge::kernels
