// fp32 GEMM microkernel, 6 x 16 tile, AVX2 + FMA (compiled with -mavx2 -mfma only).
#include <immintrin.h>

#include "kernels/x86/gemm_ukernel.h"

namespace qforge::kernels::detail {

namespace {

// Lane mask for the first n (0..8) lanes of a ymm, for maskload/maskstore.
inline __m256i FirstLanes(int n) {
  alignas(32) static const int32_t kTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                 0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTable + 8 - n));
}

// NV: number of 8-wide column vectors computed (1 when the tile has <= 8 valid columns).
template <int NV>
inline void Tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                 const TileEpilogue& ep) {
  constexpr int MR = kAvx2Mr, NR = kAvx2Nr;
  __m256 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_setzero_ps();

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m256 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm256_load_ps(b + 8 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }

  const __m256 alpha = _mm256_set1_ps(ep.alpha);
  const __m256 beta = _mm256_set1_ps(ep.beta);
  const __m256 lo = _mm256_set1_ps(ep.lo), hi = _mm256_set1_ps(ep.hi);
  __m256i mask[NV];
  bool full[NV];
  for (int v = 0; v < NV; ++v) {
    const int valid = n - 8 * v;
    full[v] = valid >= 8;
    mask[v] = FirstLanes(valid < 0 ? 0 : (valid > 8 ? 8 : valid));
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* crow = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 r = acc[i][v];
      if (ep.alpha != 1.0f) r = _mm256_mul_ps(r, alpha);
      if (ep.beta != 0.0f) {
        const __m256 old =
            full[v] ? _mm256_loadu_ps(crow + 8 * v) : _mm256_maskload_ps(crow + 8 * v, mask[v]);
        r = _mm256_fmadd_ps(beta, old, r);
      }
      if (ep.row_bias) r = _mm256_add_ps(r, _mm256_broadcast_ss(ep.row_bias + i));
      if (ep.col_bias) {
        const __m256 cb = full[v] ? _mm256_loadu_ps(ep.col_bias + 8 * v)
                                  : _mm256_maskload_ps(ep.col_bias + 8 * v, mask[v]);
        r = _mm256_add_ps(r, cb);
      }
      if (ep.clamp) r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
      if (full[v])
        _mm256_storeu_ps(crow + 8 * v, r);
      else
        _mm256_maskstore_ps(crow + 8 * v, mask[v], r);
    }
  }
}

}  // namespace

void SgemmMicroKernel6x16__avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                int m, int n, const TileEpilogue& ep) {
  if (n <= 8)
    Tile<1>(kc, a, b, c, ldc, m, n, ep);
  else
    Tile<2>(kc, a, b, c, ldc, m, n, ep);
}

}  // namespace qforge::kernels::detail
