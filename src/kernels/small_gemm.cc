// Small fp32 matrix products: ISA dispatch and the reference (see qforge/kernels/small_gemm.h).
#include "qforge/kernels/small_gemm.h"

#include <cmath>

#include "kernels/x86/small_gemm_avx2.h"
#include "qforge/kernels/isa.h"

namespace qforge::kernels {

bool SmallMatMulApplies(int64_t M, int64_t N, int64_t K) {
  return M >= 1 && N >= 1 && K >= 1 && M <= kSmallMatMulMax && N <= kSmallMatMulMax &&
         K <= kSmallMatMulMax && ActiveIsa() != Isa::kScalar;
}

void SmallMatMulRef(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k) acc = std::fma(a[i * lda + k], b[k * ldb + j], acc);
      c[i * ldc + j] = acc;
    }
}

void SmallMatMulF32(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc) {
  if (ActiveIsa() == Isa::kScalar) return SmallMatMulRef(M, N, K, a, lda, b, ldb, c, ldc);
  detail::SmallMatMulF32__avx2(M, N, K, a, lda, b, ldb, c, ldc);
}

}  // namespace qforge::kernels
