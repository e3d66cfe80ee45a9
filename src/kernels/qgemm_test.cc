// Tests of the int8 GEMM: every kernel bit-exact with the reference (shapes, types, output
// stages, zero points, threads), worst-case operands proving no sum clips, argument errors.
#include "qforge/kernels/qgemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/qgemm_ref.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

using numerics::FixedMultiplier;
using numerics::QuantizeMultiplier;

const QGemmKernel kAllKernels[] = {QGemmKernel::kScalar, QGemmKernel::kAvx2,
                                   QGemmKernel::kAvx512Vnni};

// One randomized problem: A, B, zero points and an output stage.
struct Problem {
  int64_t M = 0, N = 0, K = 0;
  bool a_signed = false;
  int32_t za = 0;
  std::vector<uint8_t> a;  // M x K bytes (uint8 or int8 bit patterns), lda = K + pad
  int64_t lda = 0;
  std::vector<int8_t> b;    // K x N
  std::vector<int32_t> zb;  // empty, 1 or N
  std::vector<int32_t> bias;
  std::vector<FixedMultiplier> mult;
  std::vector<float> scales, float_bias;
  QGemmOutput out;
};

void MakeOutput(Problem& p, QGemmOutputKind kind, bool per_channel, std::mt19937& rng) {
  const int64_t nm = per_channel ? p.N : 1;
  switch (kind) {
    case QGemmOutputKind::kInt32:
      p.out = QGemmOutput::Int32(p.bias.empty() ? nullptr : p.bias.data());
      break;
    case QGemmOutputKind::kUint8:
    case QGemmOutputKind::kInt8: {
      // Realistic multipliers 2^-24 .. 2^-4, plus occasionally large ones (M > 1, n <= 31).
      std::uniform_real_distribution<double> e(-24.0, -4.0);
      p.mult.clear();
      for (int64_t i = 0; i < nm; ++i) {
        double m = std::exp2(e(rng));
        if (rng() % 16 == 0) m = std::exp2(std::uniform_real_distribution<double>(0.0, 30.0)(rng));
        p.mult.push_back(QuantizeMultiplier(m));
      }
      const bool s = kind == QGemmOutputKind::kInt8;
      int32_t lo = s ? -128 : 0, hi = s ? 127 : 255;
      if (rng() % 3 == 0) lo += static_cast<int32_t>(rng() % 100);  // fused ReLU-like clamp
      if (rng() % 3 == 0) hi -= static_cast<int32_t>(rng() % 100);
      const int32_t zy = static_cast<int32_t>(rng() % 256) - (s ? 128 : 0);
      p.out = QGemmOutput::Quantized(s, p.bias.empty() ? nullptr : p.bias.data(), p.mult.data(), nm,
                                     zy, lo, hi);
      break;
    }
    case QGemmOutputKind::kFloat: {
      std::uniform_real_distribution<float> s(1e-5f, 1e-2f), fb(-3.0f, 3.0f);
      p.scales.clear();
      p.float_bias.assign(p.N, 0.0f);
      for (int64_t i = 0; i < nm; ++i) p.scales.push_back(s(rng));
      for (auto& v : p.float_bias) v = fb(rng);
      p.out = QGemmOutput::Float(p.bias.empty() ? nullptr : p.bias.data(), p.scales.data(), nm,
                                 rng() % 2 ? p.float_bias.data() : nullptr);
      break;
    }
  }
}

Problem MakeProblem(int64_t M, int64_t N, int64_t K, bool a_signed, int zb_mode,
                    QGemmOutputKind kind, bool per_channel, std::mt19937& rng) {
  Problem p;
  p.M = M;
  p.N = N;
  p.K = K;
  p.a_signed = a_signed;
  p.lda = K + static_cast<int64_t>(rng() % 3);
  p.a.resize(std::max<int64_t>(M * p.lda, 1));
  for (auto& v : p.a) v = static_cast<uint8_t>(rng());
  p.za = a_signed ? static_cast<int32_t>(rng() % 256) - 128 : static_cast<int32_t>(rng() % 256);
  p.b.resize(std::max<int64_t>(K * N, 1));
  for (auto& v : p.b) v = static_cast<int8_t>(rng());
  if (zb_mode == 1) p.zb = {static_cast<int32_t>(rng() % 256) - 128};
  if (zb_mode == 2) {
    p.zb.resize(N);
    for (auto& z : p.zb) z = static_cast<int32_t>(rng() % 256) - 128;
  }
  p.bias.resize(N);
  for (auto& v : p.bias) v = static_cast<int32_t>(rng() % 200001) - 100000;
  MakeOutput(p, kind, per_channel, rng);
  return p;
}

QGemmA AOf(const Problem& p) { return {p.a.data(), p.lda, p.a_signed, p.za}; }

int64_t ElementSize(QGemmOutputKind k) {
  return k == QGemmOutputKind::kUint8 || k == QGemmOutputKind::kInt8 ? 1 : 4;
}

std::vector<uint8_t> RunRef(const Problem& p) {
  std::vector<uint8_t> c(std::max<int64_t>(p.M * p.N * ElementSize(p.out.kind), 1));
  std::vector<int32_t> zb(p.N, 0);
  for (int64_t n = 0; n < p.N && !p.zb.empty(); ++n) zb[n] = p.zb[p.zb.size() == 1 ? 0 : n];
  ref::QGemm(p.M, p.N, p.K, AOf(p), p.b.data(), p.N, zb.data(), p.out, c.data(), p.N);
  return c;
}

std::vector<uint8_t> RunFast(const Problem& p, QGemmKernel kernel, int threads = 1,
                             bool trans = false) {
  PackedQGemmB packed;
  if (trans) {
    std::vector<int8_t> bt(std::max<int64_t>(p.K * p.N, 1));
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t n = 0; n < p.N; ++n) bt[n * p.K + k] = p.b[k * p.N + n];
    packed = PackedQGemmB::Pack(p.K, p.N, bt.data(), p.K, true, p.zb, kernel);
  } else {
    packed = PackedQGemmB::Pack(p.K, p.N, p.b.data(), p.N, false, p.zb, kernel);
  }
  std::vector<uint8_t> c(std::max<int64_t>(p.M * p.N * ElementSize(p.out.kind), 1));
  QGemm(p.M, AOf(p), packed, p.out, c.data(), p.N, threads);
  return c;
}

std::string Describe(const Problem& p, QGemmKernel k) {
  return std::string(QGemmKernelName(k)) + " M=" + std::to_string(p.M) +
         " N=" + std::to_string(p.N) + " K=" + std::to_string(p.K) + (p.a_signed ? " s8" : " u8") +
         " zb=" + std::to_string(p.zb.size()) + " kind=" + std::to_string(int(p.out.kind)) +
         " nmult=" + std::to_string(p.out.num_multipliers);
}

// Compares element by element and reports the first difference.
void ExpectSame(const Problem& p, QGemmKernel k, const std::vector<uint8_t>& want,
                const std::vector<uint8_t>& got) {
  ASSERT_EQ(want.size(), got.size());
  if (std::memcmp(want.data(), got.data(), want.size()) == 0) return;
  const int64_t es = ElementSize(p.out.kind);
  for (size_t i = 0; i < want.size(); i += es) {
    if (std::memcmp(want.data() + i, got.data() + i, es) != 0) {
      int64_t e = static_cast<int64_t>(i) / es;
      FAIL() << Describe(p, k) << ": first difference at m=" << e / p.N << " n=" << e % p.N;
    }
  }
}

class QGemmKernelTest : public ::testing::TestWithParam<QGemmKernel> {
 protected:
  void SetUp() override {
    if (!QGemmKernelSupported(GetParam())) {
      GTEST_SKIP() << QGemmKernelName(GetParam()) << " not supported on this CPU";
    }
  }
};

TEST_P(QGemmKernelTest, SmallShapesAllOutputs) {
  std::mt19937 rng(1);
  const QGemmOutputKind kinds[] = {QGemmOutputKind::kInt32, QGemmOutputKind::kUint8,
                                   QGemmOutputKind::kInt8, QGemmOutputKind::kFloat};
  int i = 0;
  for (int64_t M = 1; M <= 10; ++M) {
    for (int64_t N = 1; N <= 10; ++N) {
      for (int64_t K = 1; K <= 10; ++K, ++i) {
        Problem p = MakeProblem(M, N, K, i % 2, (i / 2) % 3, kinds[(i / 6) % 4], (i / 24) % 2, rng);
        ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST_P(QGemmKernelTest, TileMultiplesPlusMinusOne) {
  std::mt19937 rng(2);
  const int64_t Ms[] = {5, 6, 7, 11, 12, 13, 23, 24, 25, 37};
  const int64_t Ns[] = {7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65};
  const int64_t Ks[] = {3, 4, 5, 63, 64, 65, 255};
  int i = 0;
  for (int64_t M : Ms) {
    for (int64_t N : Ns) {
      for (int64_t K : Ks) {
        for (auto kind : {QGemmOutputKind::kUint8, QGemmOutputKind::kInt8, QGemmOutputKind::kInt32,
                          QGemmOutputKind::kFloat}) {
          ++i;
          Problem p = MakeProblem(M, N, K, i % 2, (i / 2) % 3, kind, (i / 6) % 2, rng);
          ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST_P(QGemmKernelTest, LongK) {
  std::mt19937 rng(3);
  for (int64_t K : {1000, 2303, 4096, 4099}) {
    for (bool s : {false, true}) {
      Problem p = MakeProblem(13, 37, K, s, s ? 2 : 0, QGemmOutputKind::kInt32, true, rng);
      ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
      p = MakeProblem(13, 37, K, s, 0, QGemmOutputKind::kUint8, true, rng);
      ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
    }
  }
}

// Real model shapes (im2col GEMMs of ResNet/MobileNet convolutions and a classifier).
TEST_P(QGemmKernelTest, ModelShapes) {
  if (GetParam() == QGemmKernel::kScalar) GTEST_SKIP() << "the scalar kernel is the reference";
  std::mt19937 rng(4);
  struct Shape {
    int64_t M, N, K;
  };
  for (Shape s : {Shape{3136, 64, 576}, Shape{196, 256, 2304}, Shape{1, 1000, 512}}) {
    Problem p = MakeProblem(s.M, s.N, s.K, false, 0, QGemmOutputKind::kUint8, true, rng);
    ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam(), 2));
    p = MakeProblem(s.M, s.N, s.K, true, 0, QGemmOutputKind::kInt8, false, rng);
    ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam(), 1, true));
  }
}

// Large enough (12M MACs) that 2 and 3 threads are really used (QGemm keeps >= 4M per thread).
TEST_P(QGemmKernelTest, ThreadsAndTransposedBGiveSameBits) {
  std::mt19937 rng(5);
  Problem p = MakeProblem(1201, 77, 130, true, 2, QGemmOutputKind::kInt32, true, rng);
  const auto one = RunFast(p, GetParam(), 1);
  ExpectSame(p, GetParam(), one, RunFast(p, GetParam(), 2));
  ExpectSame(p, GetParam(), one, RunFast(p, GetParam(), 3, true));
  ExpectSame(p, GetParam(), RunRef(p), one);
}

// Requantization: accumulators over the whole int32 range (K = 1 plus a large bias) and
// multipliers from 2^-32 to 2^31, so every rounding shift n = 0..62 and saturation is exercised.
TEST_P(QGemmKernelTest, RequantizeBitExactOverFullRange) {
  std::mt19937 rng(6);
  for (int rep = 0; rep < 40; ++rep) {
    Problem p =
        MakeProblem(9, 40, 1, rep % 2, 0,
                    rep % 4 < 2 ? QGemmOutputKind::kUint8 : QGemmOutputKind::kInt8, true, rng);
    for (auto& v : p.bias) v = static_cast<int32_t>(rng());
    for (int64_t n = 0; n < p.N; ++n) {
      const int e = static_cast<int>(rng() % 63) - 32;
      p.mult[n] = QuantizeMultiplier(std::ldexp(0.5 + (rng() % 1000) / 2000.0, e));
    }
    p.mult[0] = QuantizeMultiplier(0.0);
    p.mult[1] = FixedMultiplier{(int32_t{1} << 30), 31};  // n = 0: no rounding term
    p.mult[2] = QuantizeMultiplier(0.5);                  // exact ties
    p.bias[2] = 3;
    p.out.multipliers = p.mult.data();
    ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
  }
}

// Multipliers all below 1/4 (rounding shift n >= 33), the case where the VNNI kernel
// requantizes from the high 32 bits of the product: accumulators over the whole int32 range,
// n = 33 and n = 62 at the ends, zero multipliers, ties, every clamp; rows 1..25 and columns
// around the 32-wide tile so that the two-rows-at-a-time 8-bit stores and their tails run.
TEST_P(QGemmKernelTest, RequantizeSmallMultipliersBitExact) {
  std::mt19937 rng(9);
  int rep = 0;
  for (int64_t M : {1, 2, 3, 11, 12, 13, 24, 25}) {
    for (int64_t N : {16, 31, 32, 33, 64, 65}) {
      ++rep;
      const bool s = rep % 2 == 1;
      Problem p =
          MakeProblem(M, N, 1 + rep % 5, rep % 3 == 0, 0,
                      s ? QGemmOutputKind::kInt8 : QGemmOutputKind::kUint8, rep % 4 != 0, rng);
      for (auto& v : p.bias) v = static_cast<int32_t>(rng());
      for (auto& m : p.mult) {
        // M' = f 2^e with e in [-31, -2]: n = 31 - e in [33, 62].
        const int e = -2 - static_cast<int>(rng() % 30);
        m = QuantizeMultiplier(std::ldexp(0.5 + (rng() % 1000) / 2000.0, e));
        ASSERT_GE(31 - m.shift, 33);
      }
      if (p.mult.size() > 4) {
        p.mult[0] = QuantizeMultiplier(0.0);
        p.mult[1] = FixedMultiplier{std::numeric_limits<int32_t>::max(), -2};  // n = 33, ~1/4
        p.mult[2] = FixedMultiplier{int32_t{1} << 30, -31};                    // n = 62
        p.mult[3] = FixedMultiplier{int32_t{1} << 30, -2};  // 1/8: acc = 4 mod 8 are exact ties
        p.bias[3] = 12;
        p.bias[4] = std::numeric_limits<int32_t>::min();
      }
      p.out.multipliers = p.mult.data();
      ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
      if (HasFatalFailure()) return;
    }
  }
}

// Multipliers with rounding shifts n in [33, 53] (typical of convolutions), output zero points
// at both ends of the type, the whole-type clamp and narrower ones, accumulators over the whole
// int32 range (biases anywhere in it), n = 33 and n = 53 at the ends; rows 1..25 and N = 16
// (a half panel: the VNNI kernel stores four rows per packed vector), 17, 32, 48 (a full and a
// half panel), 64.
TEST_P(QGemmKernelTest, RequantizeZeroPointExtremesAndHalfPanelsBitExact) {
  std::mt19937 rng(12);
  int rep = 0;
  for (int64_t M : {1, 3, 4, 5, 8, 12, 13, 25}) {
    for (int64_t N : {16, 17, 32, 48, 64}) {
      ++rep;
      const bool s = rep % 2 == 1;
      Problem p =
          MakeProblem(M, N, 1 + rep % 7, rep % 3 == 0, rep % 5 == 0 ? 2 : 0,
                      s ? QGemmOutputKind::kInt8 : QGemmOutputKind::kUint8, rep % 4 != 0, rng);
      for (auto& v : p.bias) v = static_cast<int32_t>(rng());
      for (auto& m : p.mult) {
        const int e = -2 - static_cast<int>(rng() % 21);  // n = 31 - e in [33, 53]
        m = QuantizeMultiplier(std::ldexp(0.5 + (rng() % 1000) / 2000.0, e));
        ASSERT_GE(31 - m.shift, 33);
        ASSERT_LE(31 - m.shift, 53);
      }
      if (p.mult.size() > 3) {
        p.mult[0] = QuantizeMultiplier(0.0);
        p.mult[1] = FixedMultiplier{std::numeric_limits<int32_t>::max(), -2};   // n = 33
        p.mult[2] = FixedMultiplier{std::numeric_limits<int32_t>::max(), -22};  // n = 53
        p.bias[1] = std::numeric_limits<int32_t>::max();
        p.bias[2] = std::numeric_limits<int32_t>::min();
      }
      p.out.multipliers = p.mult.data();
      p.out.zero_point = (rep / 2) % 2 == 0 ? (s ? -128 : 0) : (s ? 127 : 255);
      p.out.qmin = s ? -128 : 0;
      p.out.qmax = s ? 127 : 255;
      if (rep % 3 == 0) p.out.qmin += 7;  // a clamp inside the type: max / min stay
      ExpectSame(p, GetParam(), RunRef(p), RunFast(p, GetParam()));
      if (HasFatalFailure()) return;
    }
  }
}

// All operands at their extremes with the largest K: |sum| approaches 2^31. An int16-saturating
// path (vpmaddubsw: 2 * 255 * 127 > 32767) or an int32 overflow would change these values.
TEST_P(QGemmKernelTest, ExtremeOperandsNeverClip) {
  struct Case {
    bool a_signed;
    uint8_t a_bits;
    int32_t za;
    int8_t b;
    int32_t zb;
  };
  const Case cases[] = {
      {false, 255, 0, -128, 0},    // (255)(-128)
      {false, 255, 0, 127, 0},     // (255)(127)
      {true, 0x80, 127, -128, 0},  // (-255)(-128)
      {true, 0x7F, -128, 127, 0},  // (255)(127)
      {true, 0x80, 0, -128, 0},    // (-128)(-128), int8 x int8
      {false, 255, 0, -128, 127},  // (255)(-255): the largest term allowed
      {false, 0, 255, 127, -128},  // (-255)(255)
  };
  for (const Case& cs : cases) {
    for (int64_t K : {int64_t{2}, int64_t{4}, int64_t{1001}, kMaxQGemmK}) {
      Problem p;
      p.M = 13;
      p.N = 35;
      p.K = K;
      p.lda = K;
      p.a_signed = cs.a_signed;
      p.za = cs.za;
      p.a.assign(p.M * K, cs.a_bits);
      p.b.assign(K * p.N, cs.b);
      p.zb = {cs.zb};
      p.out = QGemmOutput::Int32();
      const int64_t a_val = cs.a_signed ? static_cast<int8_t>(cs.a_bits) : cs.a_bits;
      const int64_t expected = K * (a_val - cs.za) * (cs.b - cs.zb);
      ASSERT_LT(std::abs(expected), int64_t{1} << 31);
      const auto got = RunFast(p, GetParam());
      std::vector<int32_t> acc(p.M * p.N);
      std::memcpy(acc.data(), got.data(), got.size());
      for (int32_t v : acc) ASSERT_EQ(v, expected) << Describe(p, GetParam());
      ExpectSame(p, GetParam(), RunRef(p), got);
    }
  }
}

// A gathered A (QGemmGather): runs drawn at random offsets from a shared pool (overlapping and
// repeated, like a convolution's taps), checked against the reference on the rows written out.
TEST_P(QGemmKernelTest, GatheredABitExact) {
  std::mt19937 rng(41);
  const QGemmOutputKind kinds[] = {QGemmOutputKind::kUint8, QGemmOutputKind::kInt8,
                                   QGemmOutputKind::kInt32, QGemmOutputKind::kFloat};
  struct Shape {
    int64_t M, N, segments, seg_len;
  };
  std::vector<Shape> shapes = {{1, 1, 1, 4},     {12, 32, 9, 4},  {13, 33, 9, 8},
                               {25, 64, 9, 64},  {49, 31, 1, 16}, {11, 65, 3, 12},
                               {200, 64, 9, 64}, {7, 17, 49, 4},  {24, 96, 2, 128}};
  for (int i = 0; i < 24; ++i) {
    shapes.push_back({static_cast<int64_t>(rng() % 30 + 1), static_cast<int64_t>(rng() % 70 + 1),
                      static_cast<int64_t>(rng() % 10 + 1),
                      static_cast<int64_t>(4 * (rng() % 6 + 1))});
  }
  int case_no = 0;
  for (const Shape& sh : shapes) {
    const int64_t K = sh.segments * sh.seg_len;
    Problem p =
        MakeProblem(sh.M, sh.N, K, false, case_no % 3, kinds[case_no % 4], case_no % 2 == 0, rng);
    ++case_no;
    std::vector<uint8_t> pool(4 * K + 64);
    for (auto& v : pool) v = static_cast<uint8_t>(rng());
    std::vector<const uint8_t*> ptrs(sh.M * sh.segments);
    p.lda = K;
    p.a.assign(std::max<int64_t>(sh.M * K, 1), 0);
    for (int64_t m = 0; m < sh.M; ++m) {
      for (int64_t g = 0; g < sh.segments; ++g) {
        const uint8_t* run = pool.data() + rng() % (pool.size() - sh.seg_len + 1);
        ptrs[m * sh.segments + g] = run;
        std::memcpy(p.a.data() + m * K + g * sh.seg_len, run, sh.seg_len);
      }
    }
    const auto want = RunRef(p);
    const PackedQGemmB packed =
        PackedQGemmB::Pack(K, p.N, p.b.data(), p.N, false, p.zb, GetParam());
    for (int threads : {1, 2}) {
      std::vector<uint8_t> got(want.size());
      QGemmGather(p.M, {ptrs.data(), sh.segments, sh.seg_len, p.za}, packed, p.out, got.data(), p.N,
                  threads);
      ExpectSame(p, GetParam(), want, got);
      if (HasFatalFailure()) return;
    }
  }
}

// Gathered runs at their extremes with K = 2^15 (every run the same 255s, B = -128 with zero
// point 127: each term is 255 * -255): the exact sum -2 130 739 200.
TEST_P(QGemmKernelTest, GatheredExtremeOperandsNeverClip) {
  const int64_t seg_len = 64, segments = kMaxQGemmK / seg_len, M = 13, N = 35;
  std::vector<uint8_t> run(seg_len, 255);
  std::vector<const uint8_t*> ptrs(M * segments, run.data());
  std::vector<int8_t> b(kMaxQGemmK * N, -128);
  const PackedQGemmB packed =
      PackedQGemmB::Pack(kMaxQGemmK, N, b.data(), N, false, {127}, GetParam());
  std::vector<int32_t> c(M * N);
  QGemmGather(M, {ptrs.data(), segments, seg_len, 0}, packed, QGemmOutput::Int32(), c.data(), N, 1);
  const int64_t expected = kMaxQGemmK * 255 * -255;
  for (int32_t v : c) ASSERT_EQ(v, expected);
}

INSTANTIATE_TEST_SUITE_P(Kernels, QGemmKernelTest, ::testing::ValuesIn(kAllKernels),
                         [](const auto& info) { return std::string(QGemmKernelName(info.param)); });

TEST(QGemmTest, ReferenceMatchesHandComputedValues) {
  // A (u8, za = 2) = [[3, 4], [0, 255]], B = [[1, -2], [3, 4]], bias = [10, -10].
  const uint8_t a[] = {3, 4, 0, 255};
  const int8_t b[] = {1, -2, 3, 4};
  const int32_t bias[] = {10, -10};
  int32_t c[4];
  ref::QGemm(2, 2, 2, {a, 2, false, 2}, b, 2, nullptr, QGemmOutput::Int32(bias), c, 2);
  EXPECT_EQ(c[0], 1 * 1 + 2 * 3 + 10);      // 17
  EXPECT_EQ(c[1], 1 * -2 + 2 * 4 - 10);     // -4
  EXPECT_EQ(c[2], -2 * 1 + 253 * 3 + 10);   // 767
  EXPECT_EQ(c[3], -2 * -2 + 253 * 4 - 10);  // 1006
  // Requantized by 1/4 to uint8 with zero point 100, clamped to [100, 255] (ReLU).
  const FixedMultiplier q = QuantizeMultiplier(0.25);
  uint8_t y[4];
  ref::QGemm(2, 2, 2, {a, 2, false, 2}, b, 2, nullptr,
             QGemmOutput::Quantized(false, bias, &q, 1, 100, 100, 255), y, 2);
  EXPECT_EQ(y[0], 104);  // 17/4 = 4.25 -> 4
  EXPECT_EQ(y[1], 100);  // -1 + 100 = 99, clamped to 100
  EXPECT_EQ(y[2], 255);  // 191.75 -> 192 + 100 -> clamped
  EXPECT_EQ(y[3], 255);
}

TEST(QGemmTest, BadArgumentsThrow) {
  const int8_t b[4] = {};
  const uint8_t a[4] = {};
  uint8_t c[4];
  EXPECT_THROW(PackedQGemmB::Pack(kMaxQGemmK + 1, 1, b, 1, false, {}, QGemmKernel::kScalar), Error);
  EXPECT_THROW(PackedQGemmB::Pack(2, 2, b, 2, false, {200}, QGemmKernel::kScalar), Error);
  EXPECT_THROW(PackedQGemmB::Pack(2, 2, b, 2, false, {0, 0, 0}, QGemmKernel::kScalar), Error);
  EXPECT_THROW(PackedQGemmB::Pack(2, 2, b, 1, false, {}, QGemmKernel::kScalar), Error);
  const auto packed = PackedQGemmB::Pack(2, 2, b, 2, false, {}, QGemmKernel::kScalar);
  const FixedMultiplier q = QuantizeMultiplier(0.5);
  EXPECT_THROW(QGemm(2, {a, 2, false, 300}, packed, QGemmOutput::Int32(), c, 2), Error);
  EXPECT_THROW(QGemm(2, {a, 2, true, 200}, packed, QGemmOutput::Int32(), c, 2), Error);
  EXPECT_THROW(QGemm(2, {a, 1, false, 0}, packed, QGemmOutput::Int32(), c, 2), Error);
  EXPECT_THROW(QGemm(2, {a, 2, false, 0}, packed,
                     QGemmOutput::Quantized(false, nullptr, &q, 1, 0, -1, 255), c, 2),
               Error);
  EXPECT_THROW(QGemm(2, {a, 2, false, 0}, packed,
                     QGemmOutput::Quantized(true, nullptr, &q, 3, 0, -128, 127), c, 2),
               Error);
  EXPECT_THROW(QGemm(2, {a, 2, false, 0}, packed, QGemmOutput::Float(nullptr, nullptr, 1), c, 2),
               Error);
  EXPECT_THROW(QGemm(2, {a, 2, false, 0}, PackedQGemmB(), QGemmOutput::Int32(), c, 2), Error);
}

TEST(QGemmTest, MultiplierCheckAgreesWithFixedMultiplierValid) {
  // ValidateQGemm checks the multipliers inline: it must reject exactly what
  // FixedMultiplier::valid() rejects, wherever the bad one sits among N = 3 per-channel ones.
  const int8_t b[6] = {};
  const uint8_t a[4] = {};
  uint8_t c[6];
  const auto packed = PackedQGemmB::Pack(2, 3, b, 3, false, {}, QGemmKernel::kScalar);
  const FixedMultiplier good = QuantizeMultiplier(0.37);
  for (int32_t mant : {0, 1, (1 << 30) - 1, 1 << 30, (1 << 30) + 5, INT32_MAX, -1, INT32_MIN}) {
    for (int shift : {-40, -32, -31, -1, 0, 1, 31, 32, 40}) {
      const FixedMultiplier f{mant, shift};
      for (int at = 0; at < 3; ++at) {
        std::vector<FixedMultiplier> m(3, good);
        m[at] = f;
        const auto out = QGemmOutput::Quantized(false, nullptr, m.data(), 3, 0, 0, 255);
        if (f.valid()) {
          EXPECT_NO_THROW(QGemm(2, {a, 2, false, 0}, packed, out, c, 3)) << mant << " " << shift;
        } else {
          EXPECT_THROW(QGemm(2, {a, 2, false, 0}, packed, out, c, 3), Error)
              << mant << " " << shift;
        }
      }
    }
  }
}

TEST(QGemmTest, GatherBadArgumentsThrow) {
  std::vector<int8_t> b(16 * 4, 1);
  const PackedQGemmB packed = PackedQGemmB::Pack(16, 4, b.data(), 4, false, {}, Isa::kScalar);
  std::vector<uint8_t> run(16, 0);
  std::vector<const uint8_t*> ptrs(8, run.data());
  std::vector<int32_t> c(8);
  const QGemmOutput out = QGemmOutput::Int32();
  EXPECT_THROW(QGemmGather(2, {ptrs.data(), 4, 3, 0}, packed, out, c.data(), 4), Error);
  EXPECT_THROW(QGemmGather(2, {ptrs.data(), 2, 4, 0}, packed, out, c.data(), 4), Error);
  EXPECT_THROW(QGemmGather(2, {ptrs.data(), 4, 4, 256}, packed, out, c.data(), 4), Error);
  EXPECT_NO_THROW(QGemmGather(2, {ptrs.data(), 4, 4, 0}, packed, out, c.data(), 4));
}

TEST(QGemmTest, KernelForIsa) {
  EXPECT_EQ(QGemmKernelFor(Isa::kScalar), QGemmKernel::kScalar);
  EXPECT_EQ(QGemmKernelFor(Isa::kAvx2), QGemmKernel::kAvx2);
  const QGemmKernel k = QGemmKernelFor(Isa::kAvx512);
  EXPECT_TRUE(k == QGemmKernel::kAvx512Vnni || k == QGemmKernel::kAvx2);
  EXPECT_EQ(k == QGemmKernel::kAvx512Vnni, QGemmKernelSupported(QGemmKernel::kAvx512Vnni));
}

}  // namespace
}  // namespace qforge::kernels
