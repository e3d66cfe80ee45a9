// Inline AVX2 vector math shared by the AVX2 translation units (elementwise__avx2.cc,
// rnn_math__avx2.cc): the tail mask, exp (accuracy contract in vecmath_avx2.h) and the
// element-wise map over a buffer. Include only from files compiled with AVX2 + FMA flags.
#pragma once

#include <immintrin.h>

#include <cmath>
#include <cstdint>

namespace qforge::kernels::detail {

// Mask with the first `n` (0..8) lanes set, for the tails of rows.
inline __m256i TailMask(int64_t n) {
  alignas(32) static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

// exp(x): x = n ln2 + r, |r| <= ln2 / 2, exp(r) = 1 + r + r^2 P(r), times 2^n.
inline __m256 Exp8(__m256 x) {
  const __m256 nan_mask = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  // Beyond 89 the result overflows to +Inf; below -104 it is 0 or the smallest subnormal.
  x = _mm256_min_ps(x, _mm256_set1_ps(89.0f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-104.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^n (n in [-150, 128]) as 2^n1 * 2^n2 with n1 = n >> 1, n2 = n - n1, both in [-75, 64]:
  // each factor is a normal float, so only the final product rounds (to a subnormal or Inf
  // at the ends of the range; exact scaling in between).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 f1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 f2 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  const __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
  return _mm256_blendv_ps(y, _mm256_set1_ps(NAN), nan_mask);
}

// y[i] = f(x[i]) 8 lanes at a time; the tail goes through a masked load / store of the same
// vector code, so every element gets the same approximation.
template <typename F>
inline void Map(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    const __m256i m = TailMask(n - i);
    _mm256_maskstore_ps(y + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

}  // namespace qforge::kernels::detail
