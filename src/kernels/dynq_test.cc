// Tests of the dynamic-quantization and int4 kernels: the AVX2 paths bit-exact with the
// references on randomized shapes (1-10, tile multiples +- 1, extremes), worst-case operands,
// NaN / Inf handling, the nibble layout, and argument errors.
#include "qforge/kernels/dynq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/dynq_ref.h"
#include "kernels/ref/qgemm_ref.h"
#include "qforge/numerics/float_formats.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

using numerics::IntFormat;
using numerics::QuantParams;
using numerics::RangeOptions;

bool HaveAvx2() { return IsaSupported(Isa::kAvx2); }

const std::vector<int64_t> kSizes = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,  15,  16,  17,
                                     31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 257, 1000};

bool SameBits(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

// Rows of different kinds: uniform, one-signed, constant, wide dynamic range, exact ties.
std::vector<float> MakeRow(int kind, int64_t K, std::mt19937& rng) {
  std::vector<float> x(static_cast<size_t>(K));
  std::uniform_real_distribution<float> u(-3.0f, 5.0f);
  std::uniform_int_distribution<int> ti(-127, 126);
  for (int64_t k = 0; k < K; ++k) {
    switch (kind) {
      case 0:
        x[k] = u(rng);
        break;
      case 1:
        x[k] = std::fabs(u(rng)) + 0.25f;
        break;  // positive only, 0 not in range
      case 2:
        x[k] = -std::fabs(u(rng)) * 1e-3f;
        break;  // negative only, small
      case 3:
        x[k] = 0.75f;
        break;  // constant
      case 4:
        x[k] = 0.0f;
        break;  // all zeros
      case 5:
        x[k] = u(rng) * std::pow(10.0f, float(k % 30) - 15);
        break;  // 1e-15 .. 1e14
      case 6:
        x[k] = float(ti(rng)) + 0.5f;
        break;  // halves: exact ties
      case 7:
        x[k] = (k % 2 ? 1.0f : -1.0f) * 3.0e38f;
        break;  // near FLT_MAX
      case 8:
        x[k] = u(rng) * 1e-39f;
        break;  // subnormals
    }
  }
  if (kind == 6 && K > 0) x[0] = 127.0f;  // symmetric int8 restricted: s = 1, so x / s ties
  return x;
}

struct QuantCase {
  IntFormat fmt;
  RangeOptions opt;
};
const QuantCase kQuantCases[] = {
    {{8, false}, {false, false}},  // uint8 asymmetric (DynamicQuantizeLinear)
    {{8, true}, {false, false}},   // int8 asymmetric
    {{8, true}, {true, true}},     // int8 symmetric [-127, 127]
    {{8, true}, {true, false}},    // int8 symmetric [-128, 127]
    {{8, false}, {true, false}},   // uint8 symmetric around 128
};

TEST(DynamicQuantizeRows, Avx2MatchesReferenceBitForBit) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(1);
  for (const QuantCase& qc : kQuantCases) {
    for (int64_t K : kSizes) {
      for (int kind = 0; kind <= 8; ++kind) {
        const int64_t M = 3, ldx = K + 3, ldq = K + 5;
        std::vector<float> x(static_cast<size_t>(M * ldx), 1e30f);  // padding must be ignored
        for (int64_t m = 0; m < M; ++m) {
          const std::vector<float> row = MakeRow((kind + m) % 9, K, rng);
          std::copy(row.begin(), row.end(), x.begin() + m * ldx);
        }
        std::vector<uint8_t> q_ref(M * ldq, 0xAB), q_avx(M * ldq, 0xAB);
        std::vector<QuantParams> p_ref(M), p_avx(M);
        ref::DynamicQuantizeRows(M, K, x.data(), ldx, qc.fmt, qc.opt, q_ref.data(), ldq,
                                 p_ref.data());
        DynamicQuantizeRows(M, K, x.data(), ldx, qc.fmt, qc.opt, q_avx.data(), ldq, p_avx.data(),
                            Isa::kAvx2);
        SCOPED_TRACE(qc.fmt.name() + " sym=" + std::to_string(qc.opt.symmetric) +
                     " K=" + std::to_string(K) + " kind=" + std::to_string(kind));
        ASSERT_EQ(q_ref, q_avx);  // including the untouched padding bytes
        ASSERT_EQ(p_ref, p_avx);
      }
    }
  }
}

TEST(DynamicQuantizeRows, ReferenceFollowsDynamicQuantizeLinear) {
  // ONNX DynamicQuantizeLinear example: x = [0, 2, -3, -2.5, 1.34, 0.5] -> scale 0.0196078,
  // zero point 153, y = [153, 255, 0, 26, 221, 179].
  const std::vector<float> x = {0.0f, 2.0f, -3.0f, -2.5f, 1.34f, 0.5f};
  std::vector<uint8_t> q(6);
  QuantParams p;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2}) {
    if (!IsaSupported(isa)) continue;
    DynamicQuantizeRows(1, 6, x.data(), 6, IntFormat{8, false}, {}, q.data(), 6, &p, isa);
    EXPECT_EQ(p.zero_point, 153);
    EXPECT_NEAR(p.scale, 5.0f / 255.0f, 1e-9f);
    EXPECT_EQ(q, (std::vector<uint8_t>{153, 255, 0, 26, 221, 179}));
  }
}

TEST(DynamicQuantizeRows, NonFiniteRowsThrowNamingTheRow) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2}) {
    if (!IsaSupported(isa)) continue;
    for (float bad :
         {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
          -std::numeric_limits<float>::infinity()}) {
      for (int64_t pos : {0, 5, 8, 19}) {
        std::vector<float> x(2 * 20, 0.5f);
        x[20 + pos] = bad;
        std::vector<uint8_t> q(40);
        std::vector<QuantParams> p(2);
        try {
          DynamicQuantizeRows(2, 20, x.data(), 20, IntFormat{8, false}, {}, q.data(), 20, p.data(),
                              isa);
          FAIL() << "no throw for " << bad << " at " << pos;
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("row 1 element " + std::to_string(pos)),
                    std::string::npos)
              << e.what();
        }
      }
    }
  }
  std::vector<uint8_t> q(4);
  QuantParams p;
  float x[4] = {};
  EXPECT_THROW(DynamicQuantizeRows(1, 4, x, 4, IntFormat{4, true}, {}, q.data(), 4, &p), Error);
  EXPECT_THROW(DynamicQuantizeRows(1, 4, x, 3, IntFormat{8, true}, {}, q.data(), 4, &p), Error);
}

// ---- DynamicQGemm ----

struct GemmProblem {
  int64_t M, N, K;
  bool a_signed;
  std::vector<uint8_t> a;  // M x K
  std::vector<QuantParams> ap;
  std::vector<int8_t> b;  // K x N
  std::vector<int32_t> zb;
  std::vector<float> ws, bias;
};

GemmProblem MakeGemm(int64_t M, int64_t N, int64_t K, bool a_signed, bool with_zb, bool extreme,
                     std::mt19937& rng) {
  GemmProblem p{M, N, K, a_signed, {}, {}, {}, {}, {}, {}};
  std::uniform_int_distribution<int> byte(0, 255), sb(-128, 127);
  std::uniform_real_distribution<float> sc(1e-4f, 1e-1f), bi(-2.0f, 2.0f);
  p.a.resize(M * K);
  for (auto& v : p.a) v = static_cast<uint8_t>(extreme ? (a_signed ? 0x80 : 255) : byte(rng));
  p.ap.resize(M);
  for (auto& q : p.ap)
    q = {sc(rng), extreme ? (a_signed ? 127 : 0) : (a_signed ? sb(rng) : byte(rng))};
  p.b.resize(K * N);
  for (auto& v : p.b) v = static_cast<int8_t>(extreme ? 127 : sb(rng));
  if (with_zb) {
    p.zb.resize(N);
    for (auto& z : p.zb) z = extreme ? -128 : sb(rng);
  }
  p.ws.resize(N);
  for (auto& s : p.ws) s = sc(rng);
  p.bias.resize(N);
  for (auto& b : p.bias) b = bi(rng);
  return p;
}

void CheckGemm(const GemmProblem& p, bool use_bias) {
  const int64_t ldy = p.N + 2;
  std::vector<float> want(p.M * ldy, -7.0f);
  ref::DynamicQGemm(p.M, p.N, p.K, p.a.data(), p.K, p.a_signed, p.ap.data(), p.b.data(), p.N,
                    p.zb.empty() ? nullptr : p.zb.data(), p.ws.data(),
                    use_bias ? p.bias.data() : nullptr, want.data(), ldy);
  for (QGemmKernel kernel : {QGemmKernel::kScalar, QGemmKernel::kAvx2, QGemmKernel::kAvx512Vnni}) {
    if (!QGemmKernelSupported(kernel)) continue;
    const PackedQGemmB packed = PackedQGemmB::Pack(p.K, p.N, p.b.data(), p.N, false, p.zb, kernel);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2}) {
      if (!IsaSupported(isa)) continue;
      for (int threads : {1, 2}) {
        std::vector<float> got(p.M * ldy, -7.0f);
        DynamicQGemm(p.M, p.a.data(), p.K, p.a_signed, p.ap.data(), packed, p.ws.data(),
                     use_bias ? p.bias.data() : nullptr, got.data(), ldy, threads, isa);
        ASSERT_TRUE(SameBits(want.data(), got.data(), p.M * ldy))
            << "M=" << p.M << " N=" << p.N << " K=" << p.K << " signed=" << p.a_signed
            << " zb=" << !p.zb.empty() << " bias=" << use_bias
            << " kernel=" << QGemmKernelName(kernel) << " epilogue isa=" << IsaName(isa)
            << " threads=" << threads;
      }
    }
  }
}

TEST(DynamicQGemm, MatchesReferenceBitForBit) {
  std::mt19937 rng(2);
  const std::vector<int64_t> mn = {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 33};
  const std::vector<int64_t> ks = {1, 2, 3, 5, 8, 9, 10, 31, 32, 33, 64, 65, 200};
  int i = 0;
  for (int64_t M : mn) {
    for (int64_t N : mn) {
      const int64_t K = ks[(i++) % ks.size()];
      const bool a_signed = i % 2, with_zb = i % 3 == 0, bias = i % 4 != 0;
      CheckGemm(MakeGemm(M, N, K, a_signed, with_zb, false, rng), bias);
    }
  }
  CheckGemm(MakeGemm(64, 65, 257, false, false, false, rng), true);
}

TEST(DynamicQGemm, WorstCaseOperandsDoNotClip) {
  // |(A - za)(B - zb)| = 255 * 255 on every term at K = kMaxQGemmK: the largest sum allowed.
  std::mt19937 rng(3);
  for (bool a_signed : {false, true}) {
    GemmProblem p = MakeGemm(2, 9, kMaxQGemmK, a_signed, true, true, rng);
    CheckGemm(p, true);
    // The value is the exact product: acc = K * 255 * 255 (sign: (A - za) = +-255, (B - zb) = 255).
    const PackedQGemmB packed = PackedQGemmB::Pack(p.K, p.N, p.b.data(), p.N, false, p.zb);
    std::vector<float> y(p.M * p.N);
    DynamicQGemm(p.M, p.a.data(), p.K, a_signed, p.ap.data(), packed, p.ws.data(), nullptr,
                 y.data(), p.N);
    const double acc = double(kMaxQGemmK) * 255.0 * 255.0 * (a_signed ? -1.0 : 1.0);
    const float want = static_cast<float>(static_cast<float>(acc) * (p.ap[0].scale * p.ws[0]));
    EXPECT_EQ(y[0], want);
  }
}

TEST(DynamicQuantizedLinear, EqualsQuantizeThenGemm) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t M : {1, 3, 64}) {
    const int64_t N = 37, K = 70;
    std::vector<float> x(M * K), ws(N), bias(N);
    for (auto& v : x) v = u(rng) * 4.0f;
    std::vector<int8_t> b(K * N);
    for (auto& v : b) v = static_cast<int8_t>(u(rng) * 127.0f);
    for (auto& s : ws) s = 0.01f + std::fabs(u(rng)) * 0.01f;
    for (auto& v : bias) v = u(rng);
    std::vector<uint8_t> q(M * K);
    std::vector<QuantParams> ap(M);
    ref::DynamicQuantizeRows(M, K, x.data(), K, IntFormat{8, false}, {}, q.data(), K, ap.data());
    std::vector<float> want(M * N), got(M * N);
    ref::DynamicQGemm(M, N, K, q.data(), K, false, ap.data(), b.data(), N, nullptr, ws.data(),
                      bias.data(), want.data(), N);
    for (Isa isa : {Isa::kScalar, Isa::kAvx2}) {
      if (!IsaSupported(isa)) continue;
      const PackedQGemmB packed = PackedQGemmB::Pack(K, N, b.data(), N, false, {}, isa);
      DynamicQuantizedLinear(M, x.data(), K, packed, ws.data(), bias.data(), got.data(), N, 1, isa);
      EXPECT_TRUE(SameBits(want.data(), got.data(), M * N)) << "M=" << M << " " << IsaName(isa);
    }
    // And it is close to the float product (quantization error of x: s_x / 2 per element).
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n) {
        double exact = bias[n];
        double bound = 0.0;
        for (int64_t k = 0; k < K; ++k) {
          exact += double(x[m * K + k]) * double(b[k * N + n]) * ws[n];
          bound += 0.5 * ap[m].scale * std::fabs(double(b[k * N + n]) * ws[n]);
        }
        EXPECT_NEAR(got[m * N + n], exact, bound + 1e-4);
      }
    }
  }
}

TEST(DynamicQGemm, RejectsBadArguments) {
  std::vector<int8_t> b(4 * 3, 1);
  const PackedQGemmB packed = PackedQGemmB::Pack(4, 3, b.data(), 3, false);
  std::vector<uint8_t> a(2 * 4);
  std::vector<QuantParams> ap = {{0.1f, 0}, {0.1f, 300}};
  std::vector<float> ws(3, 1.0f), y(2 * 3);
  EXPECT_THROW(
      DynamicQGemm(2, a.data(), 4, false, ap.data(), packed, ws.data(), nullptr, y.data(), 3),
      Error);  // zero point 300
  ap[1].zero_point = 0;
  EXPECT_THROW(
      DynamicQGemm(2, a.data(), 3, false, ap.data(), packed, ws.data(), nullptr, y.data(), 3),
      Error);  // lda < K
  EXPECT_THROW(DynamicQGemm(2, a.data(), 4, false, ap.data(), PackedQGemmB(), ws.data(), nullptr,
                            y.data(), 3),
               Error);
}

// ---- int4 ----

TEST(Int4Weights, NibbleLayoutIsDocumentedOrder) {
  // One row, K = 64, group 32, symmetric, scale 1 per group: weight k = (k % 15) - 7.
  const int64_t K = 64;
  std::vector<float> w(K);
  for (int64_t k = 0; k < K; ++k) w[k] = float(k % 15 - 7);
  w[0] = 7.0f;  // max |w| = 7 in each group -> s = 1
  w[32] = -7.0f;
  const Int4Weights q = QuantizeInt4Weights(w.data(), 1, K, 32, true, false);
  ASSERT_EQ(q.packed.size(), 32u);
  EXPECT_EQ(q.scales, (std::vector<float>{1.0f, 1.0f}));
  for (int64_t k = 0; k < K; ++k) {
    const int64_t block = k / 32, j = k % 32;
    const uint8_t byte = q.packed[block * 16 + j % 16];
    const int code = j < 16 ? (byte & 0xF) : (byte >> 4);
    EXPECT_EQ(code, static_cast<int>(w[k]) + 8) << "k=" << k;
    EXPECT_EQ(q.code(0, k), code);
  }
}

TEST(Int4Weights, QuantizeErrorIsAtMostHalfAStep) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  const int64_t N = 5, K = 256;
  std::vector<float> w(N * K), back(N * K);
  for (auto& v : w) v = nd(rng);
  for (int64_t gs : {32, 64, 128}) {
    for (bool sym : {true, false}) {
      for (bool fp16 : {false, true}) {
        const Int4Weights q = QuantizeInt4Weights(w.data(), N, K, gs, sym, fp16);
        EXPECT_EQ(q.bytes(), N * K / 2 + (K / gs) * N * ((fp16 ? 2 : 4) + (sym ? 0 : 1)));
        DequantizeInt4Weights(q, back.data());
        for (int64_t n = 0; n < N; ++n)
          for (int64_t k = 0; k < K; ++k) {
            const float s = q.scale(k / gs, n);
            // fp16 rounding of s can push an extreme value one code past the range: 1 step then.
            EXPECT_LE(std::fabs(back[n * K + k] - w[n * K + k]), (fp16 ? 1.0f : 0.5f) * s * 1.0001f)
                << "n=" << n << " k=" << k << " gs=" << gs << " sym=" << sym << " fp16=" << fp16;
          }
      }
    }
  }
}

void CheckInt4(int64_t M, int64_t N, int64_t K, int64_t gs, bool sym, bool fp16, bool use_bias,
               std::mt19937& rng, bool extreme = false) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> w(N * K), x(M * (K + 1)), bias(N);
  for (auto& v : w) v = u(rng) * 0.1f;
  for (auto& v : x) v = u(rng) * 3.0f;
  for (auto& v : bias) v = u(rng);
  Int4Weights q = QuantizeInt4Weights(w.data(), N, K, gs, sym, fp16);
  if (extreme) {  // every |c - z| = 15 and |xq| = 127: the largest group sums
    for (auto& b : q.packed) b = 0xFF;
    if (q.zero_points.empty()) q.zero_points.assign(q.groups() * N, 0);
    for (auto& z : q.zero_points) z = 0;
    for (int64_t i = 0; i < M * (K + 1); ++i) x[i] = (i % 3 == 0) ? -1.0f : 1.0f;
  }
  const int64_t ldy = N + 1;
  std::vector<float> want(M * ldy, 9.0f), got(M * ldy, 9.0f);
  ref::Int4Gemm(M, x.data(), K + 1, q, use_bias ? bias.data() : nullptr, want.data(), ldy);
  Int4Gemm(M, x.data(), K + 1, q, use_bias ? bias.data() : nullptr, got.data(), ldy, Isa::kAvx2);
  ASSERT_TRUE(SameBits(want.data(), got.data(), M * ldy))
      << "M=" << M << " N=" << N << " K=" << K << " gs=" << gs << " sym=" << sym << " fp16=" << fp16
      << " bias=" << use_bias << " extreme=" << extreme;
  // The AVX-512 VNNI kernel on the prepacked layout (where the CPU has it), also bit-exact.
  PrepackInt4Weights(q, Isa::kAvx512);
  if (!q.vnni.empty()) {
    std::vector<float> vnni(M * ldy, 9.0f);
    Int4Gemm(M, x.data(), K + 1, q, use_bias ? bias.data() : nullptr, vnni.data(), ldy,
             Isa::kAvx512);
    ASSERT_TRUE(SameBits(want.data(), vnni.data(), M * ldy))
        << "VNNI: M=" << M << " N=" << N << " K=" << K << " gs=" << gs << " sym=" << sym
        << " fp16=" << fp16 << " bias=" << use_bias << " extreme=" << extreme;
  }
  // The contract, independently: dequantized xq times dequantized W (float sums in double).
  std::vector<float> wd(N * K);
  DequantizeInt4Weights(q, wd.data());
  std::vector<int8_t> xq(K);
  for (int64_t m = 0; m < M; ++m) {
    QuantParams px;
    ref::DynamicQuantizeRows(1, K, x.data() + m * (K + 1), K + 1, IntFormat{8, true}, {true, true},
                             xq.data(), K, &px);
    for (int64_t n = 0; n < N; ++n) {
      double s = use_bias ? bias[n] : 0.0, mag = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        s += double(xq[k]) * px.scale * wd[n * K + k];
        mag += std::fabs(double(xq[k]) * px.scale * wd[n * K + k]);
      }
      EXPECT_NEAR(got[m * ldy + n], s, 1e-5 * (mag + 1.0));
    }
  }
}

TEST(Int4Gemm, Avx2MatchesReferenceBitForBit) {
  if (!HaveAvx2()) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(6);
  int i = 0;
  for (int64_t N : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 33}) {
    for (int64_t gs : {32, 64, 128}) {
      const int64_t K = gs * (1 + i % 3);
      const int64_t M = 1 + i % 4;
      CheckInt4(M, N, K, gs, i % 2, (i / 2) % 2, i % 5 != 0, rng);
      ++i;
    }
  }
  CheckInt4(3, 24, 4096, 128, true, true, true, rng);
  for (int64_t M : {4, 5, 9, 64}) CheckInt4(M, 37, 256, 32, M % 2, M % 3 == 0, true, rng);
  CheckInt4(2, 17, 4096 + 32, 32, false, true, true, rng);  // odd group count at a real size
  for (int64_t gs : {32, 64, 128}) {
    CheckInt4(2, 11, 256, gs, false, false, true, rng, /*extreme=*/true);
    CheckInt4(1, 8, 3 * gs, gs, true, false, false, rng, /*extreme=*/true);
  }
}

TEST(Int4Gemm, RejectsBadArguments) {
  std::vector<float> w(4 * 64, 0.1f), x(64), y(4);
  EXPECT_THROW(QuantizeInt4Weights(w.data(), 4, 64, 48, true, false), Error);
  EXPECT_THROW(QuantizeInt4Weights(w.data(), 4, 48, 32, true, false), Error);
  w[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(QuantizeInt4Weights(w.data(), 4, 64, 32, true, false), Error);
  w[5] = 1e10f;
  EXPECT_THROW(QuantizeInt4Weights(w.data(), 4, 64, 32, true, true), Error);  // fp16 overflow
  w[5] = 0.1f;
  Int4Weights q = QuantizeInt4Weights(w.data(), 4, 64, 32, true, false);
  q.scales.pop_back();
  EXPECT_THROW(Int4Gemm(1, x.data(), 64, q, nullptr, y.data(), 4), Error);
  q = QuantizeInt4Weights(w.data(), 4, 64, 32, true, false);
  EXPECT_THROW(Int4Gemm(1, x.data(), 63, q, nullptr, y.data(), 4), Error);
  x[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(Int4Gemm(1, x.data(), 64, q, nullptr, y.data(), 4), Error);
}

}  // namespace
}  // namespace qforge::kernels
