// Tests of the per-tensor quantizers behind the dynamic ops: QuantizeWithParams (codes) and
// QuantizeCentered (codes minus z as floats, for DynamicQMatMul's fp32-exact fast path). The
// AVX2 paths equal the scalar references bit for bit on all lengths, ties, saturation, NaN and
// Inf; the references are numerics::QuantizeValue (- z).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/small_gemm.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

using numerics::QuantParams;

std::vector<float> Values(int64_t n, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = u(rng) * scale;
  return x;
}

TEST(QuantizeCentered, ReferenceIsQuantizeValueMinusZeroPoint) {
  std::mt19937 rng(3);
  const std::vector<float> x = Values(257, 4.0f, rng);
  const QuantParams p{0.0173f, 117};
  std::vector<float> out(x.size());
  QuantizeCentered(x.data(), static_cast<int64_t>(x.size()), p, 0, 255, out.data(), Isa::kScalar);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(out[i], static_cast<float>(numerics::QuantizeValue(x[i], p, 0, 255) - 117)) << i;
}

TEST(QuantizeCentered, Avx2MatchesReferenceBitForBit) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(5);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const QuantParams params[] = {{0.0173f, 117}, {1.0f, 0}, {0.5f, 255}, {3e-5f, 3}, {1.0f, 128}};
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 64, 100, 1031}) {
    for (const QuantParams& p : params) {
      for (int kind = 0; kind < 4; ++kind) {
        std::vector<float> x = Values(n, kind == 1 ? 1000.0f : 3.0f, rng);
        if (kind == 2)  // exact ties x / s = k + 0.5
          for (int64_t i = 0; i < n; ++i) x[i] = (static_cast<float>(i % 41) - 20.5f) * p.scale;
        if (kind == 3)
          for (int64_t i = 0; i < n; i += 3) x[i] = i % 2 ? nan : (i % 4 ? inf : -inf);
        for (auto [qmin, qmax] : {std::pair{0, 255}, std::pair{-128, 127}}) {
          std::vector<float> ref(x.size()), avx(x.size());
          QuantizeCentered(x.data(), n, p, qmin, qmax, ref.data(), Isa::kScalar);
          QuantizeCentered(x.data(), n, p, qmin, qmax, avx.data(), Isa::kAvx2);
          ASSERT_EQ(0, std::memcmp(ref.data(), avx.data(), ref.size() * sizeof(float)))
              << "n=" << n << " s=" << p.scale << " z=" << p.zero_point << " kind=" << kind;
        }
      }
    }
  }
}

// The property the fast path relies on: products of centered uint8 codes summed by the fp32
// small-GEMM kernel equal the exact int32 sums at the largest K it is used for (258), with
// worst-case operands (all +-255).
TEST(QuantizeCentered, Fp32SumsOfCenteredCodesAreExactUpToK258) {
  const int64_t M = 5, N = 7, K = 258;
  std::mt19937 rng(9);
  std::uniform_int_distribution<int> code(-255, 255);
  std::vector<float> a(M * K), b(K * N), c(M * N);
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < a.size(); ++i) a[i] = round == 0 ? 255.0f : float(code(rng));
    for (size_t i = 0; i < b.size(); ++i) b[i] = round == 0 ? 255.0f : float(code(rng));
    SmallMatMulF32(M, N, K, a.data(), K, b.data(), N, c.data(), N);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        int64_t acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += static_cast<int64_t>(a[i * K + k]) * static_cast<int64_t>(b[k * N + j]);
        ASSERT_EQ(static_cast<double>(c[i * N + j]), static_cast<double>(acc));
      }
  }
}

TEST(QuantizeWithParams, Avx2MatchesQuantizeValueBitForBit) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(7);
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const QuantParams params[] = {{0.0173f, 117}, {1.0f, 0}, {0.5f, 255}, {3e-5f, 3}, {0.02f, -5}};
  for (int64_t n : {1, 7, 31, 32, 33, 64, 100, 1031}) {
    for (const QuantParams& p : params) {
      for (int kind = 0; kind < 4; ++kind) {
        std::vector<float> x = Values(n, kind == 1 ? 1000.0f : 3.0f, rng);
        if (kind == 2)
          for (int64_t i = 0; i < n; ++i) x[i] = (static_cast<float>(i % 41) - 20.5f) * p.scale;
        if (kind == 3)
          for (int64_t i = 0; i < n; i += 3) x[i] = i % 2 ? nan : (i % 4 ? inf : -inf);
        for (bool is_signed : {false, true}) {
          const int32_t qmin = is_signed ? -128 : 0, qmax = is_signed ? 127 : 255;
          std::vector<uint8_t> ref(x.size()), scalar(x.size()), avx(x.size());
          for (int64_t i = 0; i < n; ++i)
            ref[i] = static_cast<uint8_t>(numerics::QuantizeValue(x[i], p, qmin, qmax));
          QuantizeWithParams(x.data(), n, p, qmin, qmax, is_signed, scalar.data(), Isa::kScalar);
          QuantizeWithParams(x.data(), n, p, qmin, qmax, is_signed, avx.data(), Isa::kAvx2);
          SCOPED_TRACE("n=" + std::to_string(n) + " kind=" + std::to_string(kind) +
                       " signed=" + std::to_string(is_signed));
          ASSERT_EQ(ref, scalar);
          ASSERT_EQ(ref, avx);
        }
      }
    }
  }
}

TEST(QuantizeWithParams, RejectsBadParams) {
  float x = 1.0f;
  uint8_t q = 0;
  EXPECT_THROW(QuantizeWithParams(&x, 1, QuantParams{0.0f, 0}, 0, 255, false, &q), Error);
  EXPECT_THROW(QuantizeWithParams(&x, 1, QuantParams{1.0f, 0}, -128, 255, false, &q), Error);
}

TEST(QuantizeCentered, RejectsZeroScale) {
  float x = 1.0f, y = 0.0f;
  EXPECT_THROW(QuantizeCentered(&x, 1, QuantParams{0.0f, 0}, 0, 255, &y), Error);
}

}  // namespace
}  // namespace qforge::kernels
