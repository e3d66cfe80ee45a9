// Tests of the 8-bit weight-only GEMM: the AVX2 path bit-exact with the reference on many
// shapes (symmetric / asymmetric, fp32 / fp16 scales, every group size, extremes), the
// reference against dequantize-then-fp32-GEMM, the quantizer's error bound, argument errors.
#include "qforge/kernels/weight_only.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/ref/weight_only_ref.h"
#include "qforge/numerics/float_formats.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

std::vector<float> Random(int64_t n, float scale, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(rng);
  return v;
}

// Quantizes random weights, runs the AVX2 kernel and the reference, compares bits.
void Check(int64_t M, int64_t N, int64_t K, int64_t gs, bool symmetric, bool fp16, bool bias,
           std::mt19937& rng, bool extreme = false) {
  SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K << " gs=" << gs
                                  << " sym=" << symmetric << " fp16=" << fp16);
  std::vector<float> w = Random(N * K, 0.05f, rng), x = Random(M * K, 1.0f, rng),
                     b = Random(N, 0.1f, rng);
  Int8Weights q = QuantizeInt8Weights(w.data(), N, K, gs, symmetric, fp16);
  if (extreme) {  // worst case for the integer sums: all codes 255 / 0, activations at +-max
    for (size_t i = 0; i < q.codes.size(); ++i) q.codes[i] = (i % 3) ? 255 : 0;
    for (auto& z : q.zero_points) z = 0;
    for (int64_t i = 0; i < M * K; ++i) x[i] = (i % 2) ? 3.0f : -3.0f;
  }
  const int64_t ldx = K + 3, ldy = N + 2;
  std::vector<float> xs(static_cast<size_t>(M * ldx), 7.0f);
  for (int64_t m = 0; m < M; ++m)
    std::memcpy(xs.data() + m * ldx, x.data() + m * K, static_cast<size_t>(K) * sizeof(float));
  std::vector<float> yr(static_cast<size_t>(M * ldy), -1.0f);
  ref::Int8WeightGemm(M, xs.data(), ldx, q, bias ? b.data() : nullptr, yr.data(), ldy);
  // The AVX2 kernel, and the AVX-512 VNNI one where the CPU has it (kAvx512 falls back to AVX2
  // without VNNI: still a valid check).
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    SCOPED_TRACE(std::string(IsaName(isa)));
    std::vector<float> y(static_cast<size_t>(M * ldy), -1.0f);
    Int8WeightGemm(M, xs.data(), ldx, q, bias ? b.data() : nullptr, y.data(), ldy, isa);
    ASSERT_EQ(0, std::memcmp(y.data(), yr.data(), y.size() * sizeof(float)));
  }
}

TEST(Int8WeightGemm, Avx2MatchesReferenceBitForBit) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(11);
  int i = 0;
  for (int64_t N : {1, 2, 3, 7, 8, 9, 15, 16, 17, 33}) {
    for (int64_t gs : {32, 64, 128}) {
      const int64_t K = gs * (1 + i % 3);
      const int64_t M = 1 + i % 5;
      Check(M, N, K, gs, i % 2, (i / 2) % 2, i % 5 != 0, rng);
      ++i;
    }
  }
  Check(5, 24, 4096, 128, true, true, true, rng);
  // Several full 8-row tiles of the VNNI kernel plus a row tail.
  Check(19, 33, 96, 32, false, true, true, rng);
  Check(64, 40, 256, 64, true, false, false, rng);
  Check(16, 17, 256, 128, false, false, true, rng, /*extreme=*/true);
  Check(2, 17, 4096 + 32, 32, false, false, true, rng);
  for (int64_t gs : {32, 64, 128}) {
    Check(3, 11, 256, gs, false, false, true, rng, /*extreme=*/true);
    Check(1, 8, 3 * gs, gs, false, true, false, rng, /*extreme=*/true);
  }
}

// The reference is the documented formula: close to fp32 x times the dequantized weights
// (activation rounding to int16 costs <= 2^-16 of the row's max magnitude per element).
TEST(Int8WeightGemm, CloseToDequantizedFp32Gemm) {
  std::mt19937 rng(12);
  const int64_t M = 3, N = 20, K = 192;
  std::vector<float> w = Random(N * K, 0.05f, rng), x = Random(M * K, 1.0f, rng);
  for (bool sym : {true, false}) {
    const Int8Weights q = QuantizeInt8Weights(w.data(), N, K, 64, sym, true);
    std::vector<float> wd(static_cast<size_t>(N * K)), y(static_cast<size_t>(M * N));
    DequantizeInt8Weights(q, wd.data());
    ref::Int8WeightGemm(M, x.data(), K, q, nullptr, y.data(), N);
    for (int64_t m = 0; m < M; ++m) {
      float xmax = 0;
      for (int64_t k = 0; k < K; ++k) xmax = std::max(xmax, std::fabs(x[m * K + k]));
      for (int64_t n = 0; n < N; ++n) {
        double e = 0, wabs = 0;
        for (int64_t k = 0; k < K; ++k) {
          e += double(x[m * K + k]) * wd[n * K + k];
          wabs += std::fabs(wd[n * K + k]);
        }
        // int16 activation error (half a step per element) plus float rounding.
        const double tol = 0.5 * xmax / 32767 * wabs + 1e-5 * std::fabs(e) + 1e-6;
        EXPECT_NEAR(y[m * N + n], e, tol) << "m=" << m << " n=" << n;
      }
    }
  }
}

TEST(Int8Weights, QuantizeErrorIsAtMostHalfAStep) {
  std::mt19937 rng(13);
  const int64_t N = 9, K = 256;
  std::vector<float> w = Random(N * K, 0.1f, rng);
  w[5] = 0.0f;
  for (bool sym : {true, false})
    for (bool fp16 : {false, true})
      for (int64_t gs : {32, 64, 128}) {
        const Int8Weights q = QuantizeInt8Weights(w.data(), N, K, gs, sym, fp16);
        std::vector<float> d(static_cast<size_t>(N * K));
        DequantizeInt8Weights(q, d.data());
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) {
            const float s = q.scale(k / gs, n);
            // fp16 rounding of s can push an extreme value one code past the range: 1 step.
            ASSERT_LE(std::fabs(d[n * K + k] - w[n * K + k]),
                      (fp16 ? 1.0f : 0.5f) * s * (1 + 1e-5f))
                << "n=" << n << " k=" << k;
          }
        EXPECT_EQ(d[5], 0.0f);  // real zero stays exact
        if (sym) {
          for (uint8_t c : q.codes) ASSERT_GE(c, 1);  // [-127, 127] + 128
        }
        EXPECT_EQ(q.bytes(), N * K + (N * K / gs) * (fp16 ? 2 : 4) + (sym ? 0 : N * K / gs));
      }
}

TEST(Int8WeightGemm, RejectsBadArguments) {
  std::vector<float> w(4 * 64, 0.1f), x(64), y(4);
  EXPECT_THROW(QuantizeInt8Weights(w.data(), 4, 64, 48, true, false), Error);
  EXPECT_THROW(QuantizeInt8Weights(w.data(), 4, 48, 32, true, false), Error);
  w[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(QuantizeInt8Weights(w.data(), 4, 64, 32, true, false), Error);
  w[5] = 1e10f;
  EXPECT_THROW(QuantizeInt8Weights(w.data(), 4, 64, 32, true, true), Error);  // fp16 overflow
  w[5] = 0.1f;
  Int8Weights q = QuantizeInt8Weights(w.data(), 4, 64, 32, true, false);
  q.scales.pop_back();
  EXPECT_THROW(Int8WeightGemm(1, x.data(), 64, q, nullptr, y.data(), 4), Error);
  q = QuantizeInt8Weights(w.data(), 4, 64, 32, true, false);
  EXPECT_THROW(Int8WeightGemm(1, x.data(), 63, q, nullptr, y.data(), 4), Error);
  for (Isa isa : {Isa::kScalar, ActiveIsa()}) {
    x[3] = std::numeric_limits<float>::infinity();
    EXPECT_THROW(Int8WeightGemm(1, x.data(), 64, q, nullptr, y.data(), 4, isa), Error);
    x[3] = 0;
  }
}

}  // namespace
}  // namespace qforge::kernels

namespace qforge::kernels {
namespace {

// MatMulNBits stores 4-bit codes low-first along k (byte j: k = 2j low, 2j + 1 high) and
// zero points packed the same way along blocks; the converters reorder to Int4Weights' layout.
TEST(MatMulNBits, Int4LayoutFollowsOnnxRuntime) {
  MatMulNBitsWeights m;
  m.N = 3;
  m.K = 70;  // 3 blocks of 32, the last one padded
  m.bits = 4;
  m.block_size = 32;
  const int64_t nb = m.blocks(), row = nb * 16;
  ASSERT_EQ(nb, 3);
  m.b.resize(static_cast<size_t>(m.N * row));
  for (size_t i = 0; i < m.b.size(); ++i) m.b[i] = static_cast<uint8_t>(i * 37 + 11);
  for (int64_t i = 0; i < m.N * nb; ++i) m.scales.push_back(0.5f + i);
  m.zero_points = {0x21, 0x03, 0x54,
                   0x06, 0x87, 0x09};  // [N][ceil(3 / 2)]: z = 1 2 3 / 4 5 6 / 7 8 9
  const Int4Weights w = Int4FromMatMulNBits(m, "test");
  EXPECT_EQ(w.K, 96);
  for (int64_t n = 0; n < m.N; ++n) {
    for (int64_t k = 0; k < w.K; ++k) {
      const uint8_t byte = m.b[n * row + k / 2];
      ASSERT_EQ(w.code(n, k), k % 2 ? byte >> 4 : byte & 0xF) << "n=" << n << " k=" << k;
    }
    for (int64_t g = 0; g < nb; ++g) {
      EXPECT_EQ(w.zero_point(g, n), 1 + n * 3 + g);
      EXPECT_EQ(w.scale(g, n), 0.5f + n * nb + g);
    }
  }
  const MatMulNBitsWeights back = ToMatMulNBits(w, m.K);
  EXPECT_EQ(back.b, m.b);
  EXPECT_EQ(back.scales, m.scales);
  EXPECT_EQ(back.zero_points, m.zero_points);
}

TEST(MatMulNBits, Int8RoundTripAndValidation) {
  std::mt19937 rng(14);
  std::vector<float> w = Random(5 * 128, 0.1f, rng);
  const Int8Weights q = QuantizeInt8Weights(w.data(), 5, 128, 64, false, true);
  const MatMulNBitsWeights m = ToMatMulNBits(q, 100);
  EXPECT_EQ(m.blocks(), 2);
  EXPECT_EQ(m.b, q.codes);
  const Int8Weights back = Int8FromMatMulNBits(m, "test");
  EXPECT_EQ(back.codes, q.codes);
  EXPECT_EQ(back.scales_fp16, q.scales_fp16);
  EXPECT_EQ(back.zero_points, q.zero_points);
  MatMulNBitsWeights bad = m;
  bad.b.pop_back();
  EXPECT_THROW(Int8FromMatMulNBits(bad, "test"), Error);
  bad = m;
  bad.block_size = 16;
  EXPECT_THROW(Int8FromMatMulNBits(bad, "test"), Error);
  EXPECT_THROW(Int4FromMatMulNBits(m, "test"), Error);  // bits mismatch
  bad = m;
  bad.zero_points.push_back(0);
  EXPECT_THROW(Int8FromMatMulNBits(bad, "test"), Error);
  EXPECT_THROW(ToMatMulNBits(q, 10), Error);  // K does not pad to 128 with blocks of 64
}

}  // namespace
}  // namespace qforge::kernels
