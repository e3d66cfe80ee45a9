// AVX2 + FMA fp32 math: vectorized erf, GELU, exp, row softmax and row layer norm (see
// vecmath_avx2.h for the accuracy contracts; the references are std::erf / std::exp, SoftmaxRef
// and LayerNormRef).
#include <immintrin.h>

#include <cmath>

#include "kernels/x86/vecmath_avx2.h"
#include "kernels/x86/vecmath_avx2_inl.h"

namespace qforge::kernels::detail {

namespace {

inline float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float HMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// erf(x): Eigen / XLA's single-precision rational approximation on [-4, 4].
inline __m256 Erf8(__m256 x_in) {
  const __m256 x = _mm256_max_ps(_mm256_min_ps(x_in, _mm256_set1_ps(4.0f)), _mm256_set1_ps(-4.0f));
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(-2.72614225801306e-10f),
                             _mm256_set1_ps(2.77068142495902e-08f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.10102402082508e-06f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-5.69250639462346e-05f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-7.34990630326855e-04f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-2.95459980854025e-03f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(-1.60960333262415e-02f));
  p = _mm256_mul_ps(x, p);
  __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.45660718464996e-05f),
                             _mm256_set1_ps(-2.13374055278905e-04f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.68282697438203e-03f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-7.37332916720468e-03f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(-1.42647390514189e-02f));
  const __m256 r = _mm256_div_ps(p, q);
  // min/max return their second operand for NaN: put NaN back.
  return _mm256_blendv_ps(r, x_in, _mm256_cmp_ps(x_in, x_in, _CMP_UNORD_Q));
}

inline __m256 Gelu8(__m256 x) {
  const __m256 e = Erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f)));
  const __m256 half_x = _mm256_mul_ps(x, _mm256_set1_ps(0.5f));
  return _mm256_fmadd_ps(half_x, e, half_x);  // x/2 * (1 + erf) = x/2 + x/2 * erf
}

}  // namespace

void ErfF32__avx2(const float* x, float* y, int64_t n) { Map(x, y, n, Erf8); }
void GeluF32__avx2(const float* x, float* y, int64_t n) { Map(x, y, n, Gelu8); }
void ExpF32__avx2(const float* x, float* y, int64_t n) { Map(x, y, n, Exp8); }

void SoftmaxRowsF32__avx2(int64_t rows, int64_t len, const float* x, float* y, bool log) {
  const int64_t body = len & ~int64_t{7};
  const int64_t tail = len - body;
  const __m256i tm = TailMask(tail);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * len;
    float* yr = y + r * len;
    // Pass 1: the maximum.
    __m256 vmax = neg_inf;
    for (int64_t i = 0; i < body; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(xr + i));
    if (tail)
      vmax = _mm256_max_ps(vmax, _mm256_blendv_ps(neg_inf, _mm256_maskload_ps(xr + body, tm),
                                                  _mm256_castsi256_ps(tm)));
    const __m256 mx = _mm256_set1_ps(HMax(vmax));
    // Pass 2: e = exp(x - max) (stored unless log) and its sum.
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t i = 0; i < body; i += 8) {
      const __m256 e = Exp8(_mm256_sub_ps(_mm256_loadu_ps(xr + i), mx));
      if (!log) _mm256_storeu_ps(yr + i, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    if (tail) {
      const __m256 e = _mm256_and_ps(Exp8(_mm256_sub_ps(_mm256_maskload_ps(xr + body, tm), mx)),
                                     _mm256_castsi256_ps(tm));
      if (!log) _mm256_maskstore_ps(yr + body, tm, e);
      vsum = _mm256_add_ps(vsum, e);
    }
    const float sum = HSum(vsum);
    // Pass 3: scale by 1 / sum, or y = x - max - log(sum).
    if (log) {
      const __m256 shift = _mm256_add_ps(mx, _mm256_set1_ps(std::log(sum)));
      for (int64_t i = 0; i < body; i += 8)
        _mm256_storeu_ps(yr + i, _mm256_sub_ps(_mm256_loadu_ps(xr + i), shift));
      if (tail)
        _mm256_maskstore_ps(yr + body, tm, _mm256_sub_ps(_mm256_maskload_ps(xr + body, tm), shift));
    } else {
      const __m256 inv = _mm256_set1_ps(1.0f / sum);
      for (int64_t i = 0; i < body; i += 8)
        _mm256_storeu_ps(yr + i, _mm256_mul_ps(_mm256_loadu_ps(yr + i), inv));
      if (tail)
        _mm256_maskstore_ps(yr + body, tm, _mm256_mul_ps(_mm256_maskload_ps(yr + body, tm), inv));
    }
  }
}

void LayerNormRowsF32__avx2(int64_t rows, int64_t cols, const float* x, const float* scale,
                            const float* bias, float epsilon, float* y, float* mean,
                            float* inv_std_dev) {
  const int64_t body = cols & ~int64_t{7};
  const int64_t tail = cols - body;
  const __m256i tm = TailMask(tail);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = 0; i < body; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(xr + i));
    if (tail) s = _mm256_add_ps(s, _mm256_maskload_ps(xr + body, tm));
    const float mu = HSum(s) / static_cast<float>(cols);
    const __m256 vmu = _mm256_set1_ps(mu);
    __m256 sq = _mm256_setzero_ps();
    for (int64_t i = 0; i < body; i += 8) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xr + i), vmu);
      sq = _mm256_fmadd_ps(d, d, sq);
    }
    if (tail) {
      const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(xr + body, tm), vmu),
                                     _mm256_castsi256_ps(tm));
      sq = _mm256_fmadd_ps(d, d, sq);
    }
    const float var = HSum(sq) / static_cast<float>(cols);
    const float inv = 1.0f / std::sqrt(var + epsilon);
    const __m256 vinv = _mm256_set1_ps(inv);
    auto norm = [&](__m256 xv, __m256 sv, __m256 bv) {
      return _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(xv, vmu), vinv), sv, bv);
    };
    for (int64_t i = 0; i < body; i += 8)
      _mm256_storeu_ps(yr + i, norm(_mm256_loadu_ps(xr + i), _mm256_loadu_ps(scale + i),
                                    bias ? _mm256_loadu_ps(bias + i) : _mm256_setzero_ps()));
    if (tail)
      _mm256_maskstore_ps(
          yr + body, tm,
          norm(_mm256_maskload_ps(xr + body, tm), _mm256_maskload_ps(scale + body, tm),
               bias ? _mm256_maskload_ps(bias + body, tm) : _mm256_setzero_ps()));
    if (mean) mean[r] = mu;
    if (inv_std_dev) inv_std_dev[r] = inv;
  }
}

}  // namespace qforge::kernels::detail
