// AVX2 sigmoid / tanh and the fused LSTM / GRU cell updates (contracts in
// include/qforge/kernels/rnn_math.h); tails of fewer than 8 elements go through a masked load /
// store of the same vector code, so every element gets the same approximation.
#include <immintrin.h>

#include "kernels/x86/vecmath_avx2.h"
#include "kernels/x86/vecmath_avx2_inl.h"

namespace qforge::kernels::detail {

namespace {

inline __m256 Sigmoid(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, Exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

// tanh(x) = x P(x^2) / Q(x^2) on x clamped to +-7.90531 (where the float result is +-1); the
// coefficients are Eigen's generic_fast_tanh_float. Tiny |x| (< 4e-4) returns x itself.
inline __m256 Tanh(__m256 x) {
  const __m256 clamp = _mm256_set1_ps(7.90531110763549805f);
  const __m256 xc =
      _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), clamp)), clamp);
  const __m256 x2 = _mm256_mul_ps(xc, xc);
  __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
  p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
  p = _mm256_mul_ps(p, xc);
  __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
  q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
  const __m256 tiny = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), x),
                                    _mm256_set1_ps(0.0004f), _CMP_LT_OQ);
  return _mm256_blendv_ps(_mm256_div_ps(p, q), x, tiny);
}

}  // namespace

void SigmoidF32__avx2(const float* x, float* y, int64_t n) { Map(x, y, n, Sigmoid); }

void TanhF32__avx2(const float* x, float* y, int64_t n) { Map(x, y, n, Tanh); }

void LstmCellF32__avx2(int64_t n, const float* g, float* c, float* h) {
  const auto step = [&](int64_t j, __m256i m, bool masked) {
    const auto load = [&](const float* p) {
      return masked ? _mm256_maskload_ps(p + j, m) : _mm256_loadu_ps(p + j);
    };
    const __m256 i = Sigmoid(load(g)), o = Sigmoid(load(g + n)), f = Sigmoid(load(g + 2 * n));
    const __m256 cand = Tanh(load(g + 3 * n));
    // C = f c + i c~ as two products and a sum (no fma: the scalar reference's roundings).
    const __m256 C = _mm256_add_ps(_mm256_mul_ps(f, load(c)), _mm256_mul_ps(i, cand));
    const __m256 H = _mm256_mul_ps(o, Tanh(C));
    if (masked) {
      _mm256_maskstore_ps(c + j, m, C);
      _mm256_maskstore_ps(h + j, m, H);
    } else {
      _mm256_storeu_ps(c + j, C);
      _mm256_storeu_ps(h + j, H);
    }
  };
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) step(j, __m256i{}, false);
  if (j < n) step(j, TailMask(n - j), true);
}

void GruOutputF32__avx2(int64_t n, const float* z, const float* pre_h, float* h) {
  const auto step = [&](int64_t j, __m256i m, bool masked) {
    const auto load = [&](const float* p) {
      return masked ? _mm256_maskload_ps(p + j, m) : _mm256_loadu_ps(p + j);
    };
    const __m256 zz = load(z);
    const __m256 fresh = _mm256_mul_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), zz), Tanh(load(pre_h)));
    const __m256 H = _mm256_add_ps(fresh, _mm256_mul_ps(zz, load(h)));
    if (masked)
      _mm256_maskstore_ps(h + j, m, H);
    else
      _mm256_storeu_ps(h + j, H);
  };
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) step(j, __m256i{}, false);
  if (j < n) step(j, TailMask(n - j), true);
}

}  // namespace qforge::kernels::detail
