// fp32 GEMM microkernels, 8 x 32 tile, AVX-512F (compiled with AVX-512 flags only): B from a
// packed panel, or B rows read in place (convolution inputs, no packing).
// GCC 12 warns falsely about _mm512_setzero_ps / set1 internals (-Wmaybe-uninitialized).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/x86/gemm_ukernel.h"

namespace qforge::kernels::detail {

namespace {

constexpr int MR = kAvx512Mr, NR = kAvx512Nr;

inline __mmask16 FirstLanes(int n) {
  if (n <= 0) return 0;
  if (n >= 16) return 0xFFFF;
  return static_cast<__mmask16>((1u << n) - 1u);
}

// Applies the epilogue to the accumulator tile and stores its top-left m x n to c.
template <int NV>
inline void StoreTile(__m512 (&acc)[MR][NV], float* c, int64_t ldc, int m, int n,
                      const TileEpilogue& ep) {
  const __m512 alpha = _mm512_set1_ps(ep.alpha);
  const __m512 beta = _mm512_set1_ps(ep.beta);
  const __m512 lo = _mm512_set1_ps(ep.lo), hi = _mm512_set1_ps(ep.hi);
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) mask[v] = FirstLanes(n - 16 * v);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    float* crow = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 r = acc[i][v];
      if (ep.alpha != 1.0f) r = _mm512_mul_ps(r, alpha);
      if (ep.beta != 0.0f)
        r = _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(mask[v], crow + 16 * v), r);
      if (ep.row_bias) r = _mm512_add_ps(r, _mm512_set1_ps(ep.row_bias[i]));
      if (ep.col_bias) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask[v], ep.col_bias + 16 * v));
      if (ep.clamp) r = _mm512_min_ps(_mm512_max_ps(r, lo), hi);
      _mm512_mask_storeu_ps(crow + 16 * v, mask[v], r);
    }
  }
}

// NV: number of 16-wide column vectors computed (1 when the tile has <= 16 valid columns).
template <int NV>
inline void Tile(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n,
                 const TileEpilogue& ep) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  StoreTile<NV>(acc, c, ldc, m, n, ep);
}

// One row of A (m == 1: the batch-1 classifier GEMV): the 8-row tile would spend 8x the FMAs
// on zero rows; here four independent k chains (k mod 4) hide the FMA latency, summed at the
// end (a different summation order than Tile, same error bound).
template <int NV>
inline void TileOneRow(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int n,
                       const TileEpilogue& ep) {
  __m512 part[4][NV];
  for (int u = 0; u < 4; ++u)
    for (int v = 0; v < NV; ++v) part[u][v] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      const __m512 ak = _mm512_set1_ps(a[(k + u) * MR]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v)
        part[u][v] = _mm512_fmadd_ps(ak, _mm512_load_ps(b + (k + u) * NR + 16 * v), part[u][v]);
    }
  }
  for (; k < kc; ++k) {
    const __m512 ak = _mm512_set1_ps(a[k * MR]);
    for (int v = 0; v < NV; ++v)
      part[0][v] = _mm512_fmadd_ps(ak, _mm512_load_ps(b + k * NR + 16 * v), part[0][v]);
  }
  __m512 acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int v = 0; v < NV; ++v)
    acc[0][v] =
        _mm512_add_ps(_mm512_add_ps(part[0][v], part[1][v]), _mm512_add_ps(part[2][v], part[3][v]));
  StoreTile<NV>(acc, c, ldc, 1, n, ep);
}

// B row k is b + off[k]; kFull: all NV * 16 columns are readable (plain loads), else masked
// loads of the first n columns (the others read as zero and are never stored).
template <int NV, bool kFull>
inline void TileRows(int64_t kc, const float* a, const float* b, const int64_t* off, float* c,
                     int64_t ldc, int m, int n, const TileEpilogue& ep) {
  __m512 acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  __mmask16 mask[NV];
  for (int v = 0; v < NV; ++v) mask[v] = FirstLanes(n - 16 * v);

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + off[k];
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = kFull ? _mm512_loadu_ps(bk + 16 * v) : _mm512_maskz_loadu_ps(mask[v], bk + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += MR;
  }
  StoreTile<NV>(acc, c, ldc, m, n, ep);
}

}  // namespace

void SgemmMicroKernel8x32__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                  int m, int n, const TileEpilogue& ep) {
  if (m == 1) {
    if (n <= 16)
      TileOneRow<1>(kc, a, b, c, ldc, n, ep);
    else
      TileOneRow<2>(kc, a, b, c, ldc, n, ep);
    return;
  }
  if (n <= 16)
    Tile<1>(kc, a, b, c, ldc, m, n, ep);
  else
    Tile<2>(kc, a, b, c, ldc, m, n, ep);
}

void SgemmRowsMicroKernel8x32__avx512(int64_t kc, const float* a, const float* b,
                                      const int64_t* b_offsets, float* c, int64_t ldc, int m, int n,
                                      const TileEpilogue& ep) {
  if (n == NR)
    TileRows<2, true>(kc, a, b, b_offsets, c, ldc, m, n, ep);
  else if (n > 16)
    TileRows<2, false>(kc, a, b, b_offsets, c, ldc, m, n, ep);
  else if (n == 16)
    TileRows<1, true>(kc, a, b, b_offsets, c, ldc, m, n, ep);
  else
    TileRows<1, false>(kc, a, b, b_offsets, c, ldc, m, n, ep);
}

}  // namespace qforge::kernels::detail
