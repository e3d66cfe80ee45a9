// Depthwise 2-D conv plane kernel, AVX2 + FMA: 8 output columns per vector, strides 1 and 2
// vectorized (stride 2 by loading 16 inputs and keeping the even lanes), others gathered.
#include <immintrin.h>

#include "kernels/x86/dwconv_plane.h"

namespace qforge::kernels::detail {

namespace {

inline __m256i FirstLanes(int n) {
  alignas(32) static const int32_t kTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                 0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTable + 8 - n));
}

// Eight inputs at src[0], src[s], ..., src[7s].
template <int S>
inline __m256 LoadStrided(const float* src, int s) {
  if constexpr (S == 1) {
    return _mm256_loadu_ps(src);
  } else if constexpr (S == 2) {
    const __m256 lo = _mm256_loadu_ps(src), hi = _mm256_loadu_ps(src + 8);
    // shuffle keeps lanes {0,2} of each 128-bit half of lo and hi: [l0 l2 h0 h2 | l4 l6 h4 h6]
    const __m256 even = _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
  } else {
    return _mm256_setr_ps(src[0], src[s], src[2 * s], src[3 * s], src[4 * s], src[5 * s],
                          src[6 * s], src[7 * s]);
  }
}

template <int S>
void Plane(const PaddedDepthwise& p) {
  const int taps = p.kh * p.kw;
  __m256 wv[64];
  const bool small = taps <= 64;
  if (small)
    for (int t = 0; t < taps; ++t) wv[t] = _mm256_set1_ps(p.w[t]);
  const __m256 bias = _mm256_set1_ps(p.bias);
  const __m256 lo = _mm256_set1_ps(p.lo), hi = _mm256_set1_ps(p.hi);
  for (int64_t oy = 0; oy < p.out_h; ++oy) {
    float* yrow = p.y + oy * p.out_w;
    const float* xrow = p.xp + oy * p.sh * p.xp_stride;
    for (int64_t ox = 0; ox < p.out_w; ox += 8) {
      __m256 acc = bias;
      const float* base = xrow + ox * p.sw;
      for (int ky = 0; ky < p.kh; ++ky) {
        const float* r = base + ky * p.dh * p.xp_stride;
        for (int kx = 0; kx < p.kw; ++kx) {
          const int t = ky * p.kw + kx;
          const __m256 wt = small ? wv[t] : _mm256_set1_ps(p.w[t]);
          acc = _mm256_fmadd_ps(LoadStrided<S>(r + kx * p.dw, p.sw), wt, acc);
        }
      }
      if (p.clamp) acc = _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
      const int64_t left = p.out_w - ox;
      if (left >= 8)
        _mm256_storeu_ps(yrow + ox, acc);
      else
        _mm256_maskstore_ps(yrow + ox, FirstLanes(static_cast<int>(left)), acc);
    }
  }
}

}  // namespace

void DepthwisePaddedPlane__avx2(const PaddedDepthwise& p) {
  if (p.sw == 1)
    Plane<1>(p);
  else if (p.sw == 2)
    Plane<2>(p);
  else
    Plane<0>(p);
}

}  // namespace qforge::kernels::detail
