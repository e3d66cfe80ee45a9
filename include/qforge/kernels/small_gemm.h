// Small fp32 matrix products (attention's per-head Q K^T and P V, e.g. 16 x 16 x 16), where the
// packed, cache-blocked Sgemm spends more time packing than multiplying: a direct kernel that
// keeps a 4-row x 16-column tile of C in registers and streams A and B from cache.
//
// C[M x N] = A[M x K] * B[K x N], all row-major with leading dimensions lda, ldb, ldc. Each
// C element is accumulated in fp32 in increasing k with fused multiply-adds (the reference does
// the same with std::fma, so the two agree bit for bit; Sgemm agrees within rounding).
#pragma once

#include <cstdint>

namespace qforge::kernels {

// Largest M, N, K SmallMatMulF32 is meant for (it works for any size, only slower than Sgemm).
inline constexpr int64_t kSmallMatMulMax = 64;

// True when the direct kernel should be used: M, N, K <= kSmallMatMulMax, K >= 1, and the
// active ISA has AVX2 (else Sgemm is as good).
bool SmallMatMulApplies(int64_t M, int64_t N, int64_t K);

// C = A * B (C is write-only). Uses AVX2 when the active ISA has it, else the reference.
void SmallMatMulF32(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc);

// Reference: c[i,j] = fma chain over k = 0..K-1 starting from 0.
void SmallMatMulRef(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, const float* b,
                    int64_t ldb, float* c, int64_t ldc);

}  // namespace qforge::kernels
