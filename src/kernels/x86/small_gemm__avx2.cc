// AVX2 + FMA direct kernel for small fp32 products: tiles of up to 4 rows x 16 columns of C
// held in 8 accumulators, one FMA per (row, 8 columns, k) in increasing k (bit-identical with
// SmallMatMulRef's std::fma chain). Column tails use masked loads / stores.
#include <immintrin.h>

#include <type_traits>

#include "kernels/x86/small_gemm_avx2.h"

namespace qforge::kernels::detail {

namespace {

inline __m256i Mask(int64_t n) {  // first n (0..8) lanes
  alignas(32) static const int32_t kBits[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kBits + 8 - n));
}

// C[i0 .. i0+R) x [j0, j0+16) with column masks m0 (first 8) and m1 (second 8).
template <int R, bool two>
inline void Tile(int64_t K, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                 int64_t ldc, __m256i m0, __m256i m1) {
  __m256 acc0[R], acc1[R];
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    const __m256 b0 = _mm256_maskload_ps(b + k * ldb, m0);
    const __m256 b1 = two ? _mm256_maskload_ps(b + k * ldb + 8, m1) : _mm256_setzero_ps();
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      if (two) acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_maskstore_ps(c + r * ldc, m0, acc0[r]);
    if (two) _mm256_maskstore_ps(c + r * ldc + 8, m1, acc1[r]);
  }
}

}  // namespace

void SmallMatMulF32__avx2(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda,
                          const float* b, int64_t ldb, float* c, int64_t ldc) {
  for (int64_t j0 = 0; j0 < N; j0 += 16) {
    const int64_t w = N - j0 < 16 ? N - j0 : 16;
    const __m256i m0 = Mask(w < 8 ? w : 8);
    const __m256i m1 = Mask(w > 8 ? w - 8 : 0);
    auto rows = [&](auto two) {
      int64_t i = 0;
      for (; i + 4 <= M; i += 4)
        Tile<4, two()>(K, a + i * lda, lda, b + j0, ldb, c + i * ldc + j0, ldc, m0, m1);
      for (; i < M; ++i)
        Tile<1, two()>(K, a + i * lda, lda, b + j0, ldb, c + i * ldc + j0, ldc, m0, m1);
    };
    if (w > 8)
      rows(std::true_type{});
    else
      rows(std::false_type{});
  }
}

}  // namespace qforge::kernels::detail
