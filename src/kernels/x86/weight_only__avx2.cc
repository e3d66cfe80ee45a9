// AVX2 8-bit weight-only GEMM, bit-exact with kernels/ref/weight_only_ref.cc.
//
// Why the results equal the reference exactly: every integer sum is exact (|xq| <= 32767,
// codes <= 255: a vpmaddwd pair sum is < 2^25, a group of <= 128 products < 2^31, and
// sum xq * c - z * sum xq is computed modulo 2^32 but its true value fits int32); the float
// group accumulation is one vmulps and one vaddps per group, per output lane, in the
// reference's order. FMA contraction is turned off (the pragma), as in dynq__avx2.cc.
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>

#include <algorithm>

#include "kernels/x86/weight_only_ukernel.h"

namespace qforge::kernels::detail {
namespace {

constexpr int kRows = 8;  // output columns n computed together (one ymm of results)

// [sum(v[0]), ..., sum(v[7])] of eight int32 vectors.
inline __m256i HorizontalSums8(const __m256i v[kRows]) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23);  // [r0..r3 low half | r0..r3 high half]
  const __m256i b = _mm256_hadd_epi32(h45, h67);
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20),
                          _mm256_permute2x128_si256(a, b, 0x31));
}

}  // namespace

void Int8WeightGemm__avx2(int64_t M, const int16_t* xq, int64_t ldxq, const float* sx,
                          const int32_t* xsum, const Int8Weights& w, const float* bias, float* y,
                          int64_t ldy) {
  const int64_t N = w.N, K = w.K, G = w.groups(), gs = w.group_size;
  const bool fp16 = !w.scales_fp16.empty();
  for (int64_t n0 = 0; n0 < N; n0 += kRows) {
    const int valid = static_cast<int>(std::min<int64_t>(kRows, N - n0));
    // Rows past N repeat row N-1 (computed, never stored).
    const uint8_t* rows[kRows];
    for (int r = 0; r < kRows; ++r) rows[r] = w.codes.data() + (n0 + std::min(r, valid - 1)) * K;
    // Two activation rows share each widened weight vector (halves the weight work for M > 1).
    for (int64_t m = 0; m < M; m += 2) {
      const bool two = m + 1 < M;
      const int16_t* x0 = xq + m * ldxq;
      const int16_t* x1 = two ? x0 + ldxq : x0;
      __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
      for (int64_t g = 0; g < G; ++g) {
        __m256i v0[kRows], v1[kRows];
        for (int r = 0; r < kRows; ++r) v0[r] = v1[r] = _mm256_setzero_si256();
        for (int64_t k = g * gs; k < (g + 1) * gs; k += 16) {
          const __m256i xa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x0 + k));
          const __m256i xb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x1 + k));
          for (int r = 0; r < kRows; ++r) {
            const __m256i c = _mm256_cvtepu8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(rows[r] + k)));
            v0[r] = _mm256_add_epi32(v0[r], _mm256_madd_epi16(c, xa));
            v1[r] = _mm256_add_epi32(v1[r], _mm256_madd_epi16(c, xb));
          }
        }
        __m256 s;
        __m256i z;
        if (valid == kRows) {  // [G][N] layout: rows n0..n0+7 of group g are contiguous
          s = fp16 ? _mm256_cvtph_ps(_mm_loadu_si128(
                         reinterpret_cast<const __m128i*>(w.scales_fp16.data() + g * N + n0)))
                   : _mm256_loadu_ps(w.scales.data() + g * N + n0);
          z = w.zero_points.empty()
                  ? _mm256_set1_epi32(128)
                  : _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                        reinterpret_cast<const __m128i*>(w.zero_points.data() + g * N + n0)));
        } else {
          alignas(32) float sb[kRows] = {};
          alignas(32) int32_t zb[kRows] = {};
          for (int r = 0; r < valid; ++r) {
            sb[r] = w.scale(g, n0 + r);
            zb[r] = w.zero_point(g, n0 + r);
          }
          s = _mm256_load_ps(sb);
          z = _mm256_load_si256(reinterpret_cast<const __m256i*>(zb));
        }
        // isum = sum xq * c - z * sum xq (modulo 2^32, exact: the true value fits int32).
        const __m256i d0 = _mm256_sub_epi32(
            HorizontalSums8(v0), _mm256_mullo_epi32(z, _mm256_set1_epi32(xsum[m * G + g])));
        acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(_mm256_cvtepi32_ps(d0), s));
        if (two) {
          const __m256i d1 = _mm256_sub_epi32(
              HorizontalSums8(v1), _mm256_mullo_epi32(z, _mm256_set1_epi32(xsum[(m + 1) * G + g])));
          acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(_mm256_cvtepi32_ps(d1), s));
        }
      }
      alignas(32) float bb[kRows] = {};
      if (bias)
        for (int r = 0; r < valid; ++r) bb[r] = bias[n0 + r];
      for (int i = 0; i < (two ? 2 : 1); ++i) {
        __m256 out = _mm256_mul_ps(i ? acc1 : acc0, _mm256_set1_ps(sx[m + i]));
        if (bias) out = _mm256_add_ps(out, _mm256_load_ps(bb));
        float* yr = y + (m + i) * ldy + n0;
        if (valid == kRows) {
          _mm256_storeu_ps(yr, out);
        } else {
          alignas(32) float tmp[kRows];
          _mm256_store_ps(tmp, out);
          for (int r = 0; r < valid; ++r) yr[r] = tmp[r];
        }
      }
    }
  }
}

}  // namespace qforge::kernels::detail
