// AVX2 kernel of SmallMatMulF32 (small_gemm__avx2.cc); see qforge/kernels/small_gemm.h.
#pragma once

#include <cstdint>

namespace qforge::kernels::detail {

void SmallMatMulF32__avx2(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda,
                          const float* b, int64_t ldb, float* c, int64_t ldc);

}  // namespace qforge::kernels::detail
