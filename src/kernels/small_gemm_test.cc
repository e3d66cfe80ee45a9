// SmallMatMulF32 against its reference (bit-exact: both are fma chains in increasing k) and
// against a double-precision product (rounding-level tolerance).
#include "qforge/kernels/small_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace qforge::kernels {
namespace {

TEST(SmallMatMul, MatchesReferenceBitForBitAndDoubleProduct) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> dist(-2, 2);
  const int64_t sizes[][3] = {{16, 16, 16}, {1, 1, 1},    {5, 7, 3},   {4, 8, 9},
                              {17, 33, 64}, {64, 64, 64}, {3, 20, 16}, {9, 9, 1}};
  for (auto& s : sizes) {
    const int64_t M = s[0], N = s[1], K = s[2];
    const int64_t lda = K + 3, ldb = N + 1, ldc = N + 2;  // non-tight strides
    std::vector<float> a(M * lda), b(K * ldb), c0(M * ldc, -7.0f), c1(M * ldc, -7.0f);
    for (float& v : a) v = dist(rng);
    for (float& v : b) v = dist(rng);
    SmallMatMulRef(M, N, K, a.data(), lda, b.data(), ldb, c0.data(), ldc);
    SmallMatMulF32(M, N, K, a.data(), lda, b.data(), ldb, c1.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        ASSERT_EQ(c0[i * ldc + j], c1[i * ldc + j])
            << M << "x" << N << "x" << K << " " << i << "," << j;  // padding untouched too
        if (j >= N) continue;
        double want = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
          want += double(a[i * lda + k]) * b[k * ldb + j];
          mag += std::fabs(double(a[i * lda + k]) * b[k * ldb + j]);
        }
        ASSERT_NEAR(c1[i * ldc + j], want, 1e-6 * mag + 1e-30);
      }
  }
  EXPECT_TRUE(SmallMatMulApplies(16, 16, 16) || !SmallMatMulApplies(1, 1, 1));
  EXPECT_FALSE(SmallMatMulApplies(65, 16, 16));
  EXPECT_FALSE(SmallMatMulApplies(16, 16, 0));
}

}  // namespace
}  // namespace qforge::kernels
