// Fast fp32 GEMM (every compiled ISA) against the reference GEMM on randomized shapes.
#include "qforge/kernels/gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/gemm_ref.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (IsaSupported(isa)) out.push_back(isa);
  return out;
}

// Restores the active ISA when a test ends.
class IsaGuard {
 public:
  explicit IsaGuard(Isa isa) : before_(ActiveIsa()) { SetIsa(isa); }
  ~IsaGuard() { SetIsa(before_); }

 private:
  Isa before_;
};

std::vector<float> Random(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

struct Case {
  int64_t m, n, k;
  bool trans_a = false, trans_b = false;
  float alpha = 1.0f, beta = 0.0f;
  bool row_bias = false, col_bias = false, clamp = false;
  bool pack_a = false, pack_b = false;
  int threads = 1;
};

std::string Describe(const Case& c, Isa isa) {
  return std::string(IsaName(isa)) + " M=" + std::to_string(c.m) + " N=" + std::to_string(c.n) +
         " K=" + std::to_string(c.k) + " tA=" + std::to_string(c.trans_a) +
         " tB=" + std::to_string(c.trans_b) + " alpha=" + std::to_string(c.alpha) +
         " beta=" + std::to_string(c.beta) + " rb=" + std::to_string(c.row_bias) +
         " cb=" + std::to_string(c.col_bias) + " clamp=" + std::to_string(c.clamp) +
         " pA=" + std::to_string(c.pack_a) + " pB=" + std::to_string(c.pack_b) +
         " threads=" + std::to_string(c.threads);
}

// Runs one case on the active ISA and compares with ref::Gemm (+ bias, clamp applied here).
// Inputs are in [-1, 1], so each output's rounding error is bounded by about K * eps.
void Check(const Case& c, Isa isa, std::mt19937& rng) {
  SCOPED_TRACE(Describe(c, isa));
  const auto a = Random(c.m * c.k, rng), b = Random(c.k * c.n, rng);
  const auto c0 = Random(c.m * c.n, rng);
  const auto rb = Random(c.m, rng), cb = Random(c.n, rng);
  std::vector<float> want(c.m * c.n);
  ref::Gemm(c.trans_a, c.trans_b, c.m, c.n, c.k, c.alpha, a.data(), b.data(), c.beta,
            c.beta != 0.0f ? c0.data() : nullptr, c.m, c.n, want.data());
  const Activation act = c.clamp ? Activation::Clip(-0.5f, 0.75f) : Activation::None();
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      float& w = want[i * c.n + j];
      if (c.row_bias) w += rb[i];
      if (c.col_bias) w += cb[j];
      if (c.clamp) w = std::min(std::max(w, act.lo), act.hi);
    }

  const int64_t lda = c.trans_a ? c.m : c.k, ldb = c.trans_b ? c.k : c.n;
  PackedMatrix pa, pb;
  GemmOperand ao = GemmOperand::Plain(a.data(), lda, c.trans_a);
  GemmOperand bo = GemmOperand::Plain(b.data(), ldb, c.trans_b);
  if (c.pack_a) {
    pa = PackedMatrix::PackA(c.m, c.k, a.data(), lda, c.trans_a, isa);
    ao = GemmOperand::Packed(pa);
  }
  if (c.pack_b) {
    pb = PackedMatrix::PackB(c.k, c.n, b.data(), ldb, c.trans_b, isa);
    bo = GemmOperand::Packed(pb);
  }
  // C starts as c0 when beta != 0, otherwise NaN (must never be read).
  std::vector<float> got = c.beta != 0.0f ? c0 : std::vector<float>(c.m * c.n, NAN);
  GemmEpilogue epi;
  epi.alpha = c.alpha;
  epi.beta = c.beta;
  epi.row_bias = c.row_bias ? rb.data() : nullptr;
  epi.col_bias = c.col_bias ? cb.data() : nullptr;
  epi.activation = act;
  Sgemm(c.m, c.n, c.k, ao, bo, got.data(), c.n, epi, c.threads);

  const double tol = 2.4e-7 * (c.k + 8) * std::max(1.0f, std::fabs(c.alpha)) + 1e-6;
  int bad = 0;
  for (int64_t i = 0; i < c.m * c.n && bad < 5; ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      ADD_FAILURE() << "at (" << i / c.n << ", " << i % c.n << "): got " << got[i] << ", want "
                    << want[i] << ", tol " << tol;
      ++bad;
    }
}

TEST(Sgemm, SmallShapesAllVariants) {
  std::mt19937 rng(1);
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    for (int64_t m = 1; m <= 10; m += 3)
      for (int64_t n = 1; n <= 10; n += 4)
        for (int64_t k = 1; k <= 10; k += 4)
          for (int variant = 0; variant < 4; ++variant) {
            Case c{m, n, k};
            c.trans_a = variant & 1;
            c.trans_b = variant & 2;
            c.alpha = variant == 3 ? -1.5f : 1.0f;
            c.beta = variant >= 2 ? 0.5f : 0.0f;
            c.row_bias = variant == 1;
            c.col_bias = variant == 2;
            c.clamp = variant == 3;
            Check(c, isa, rng);
          }
  }
}

TEST(Sgemm, BlockEdgesPlusMinusOne) {
  std::mt19937 rng(2);
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    const GemmBlocking blk = GemmBlockingFor(isa);
    for (int64_t dm : {-1, 0, 1})
      for (int64_t dn : {-1, 0, 1}) {
        Case c{blk.mr * 2 + dm, blk.nr * 2 + dn, blk.kc + dm + dn};
        c.col_bias = true;
        Check(c, isa, rng);
        // Crosses the MC block boundary and two K blocks, with beta (accumulation over K).
        Case big{blk.mc + dm, blk.nr + dn, 2 * blk.kc + 1};
        big.beta = 1.0f;
        big.row_bias = true;
        big.clamp = true;
        Check(big, isa, rng);
      }
  }
}

TEST(Sgemm, PrepackedOperandsAndThreads) {
  std::mt19937 rng(3);
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    for (bool trans : {false, true}) {
      Case c{37, 83, 300};
      c.trans_a = trans;
      c.trans_b = !trans;
      c.pack_a = true;
      Check(c, isa, rng);
      c.pack_a = false;
      c.pack_b = true;
      c.col_bias = true;
      c.threads = 2;
      Check(c, isa, rng);
      c.pack_a = true;
      c.m = 130;  // enough row tiles to split along M
      c.n = 17;
      Check(c, isa, rng);
    }
  }
}

// One row of A (the batch-1 classifier GEMV takes its own microkernel path on AVX-512): K
// around multiples of 4 and the K block, N around the 16 / 32-column tile edges, plain and
// prepacked B, every epilogue part.
TEST(Sgemm, SingleRow) {
  std::mt19937 rng(6);
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    const GemmBlocking blk = GemmBlockingFor(isa);
    int variant = 0;
    for (int64_t k : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{7}, blk.kc - 1, blk.kc,
                      blk.kc + 5, 2 * blk.kc + 1})
      for (int64_t n : {1, 15, 16, 17, 32, 33, 1000}) {
        Case c{1, n, k};
        c.pack_b = variant % 2 == 0;
        c.trans_b = variant % 3 == 0;
        c.col_bias = variant % 4 != 3;
        c.beta = variant % 5 == 1 ? 0.5f : 0.0f;
        c.clamp = variant % 6 == 2;
        c.alpha = variant % 7 == 3 ? 2.0f : 1.0f;
        Check(c, isa, rng);
        ++variant;
      }
  }
}

TEST(Sgemm, ModelShapes) {
  std::mt19937 rng(4);
  // Conv-as-GEMM (out channels x pixels x C*k*k) and FC shapes from ResNet-18 / MobileNetV2.
  const Case shapes[] = {{64, 196, 576}, {128, 49, 1152}, {1, 1000, 512},
                         {32, 784, 144}, {24, 3136, 96},  {4, 1000, 1280}};
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    for (Case c : shapes) {
      c.pack_a = true;
      c.row_bias = true;
      c.threads = 2;
      Check(c, isa, rng);
    }
  }
}

// K <= 64 walks C row panel by row panel; cover that loop order around the K limit, across
// the MC block and the 2048-column NC block, packed and plain A, with every epilogue part.
TEST(Sgemm, SmallKRowPanelOrder) {
  std::mt19937 rng(5);
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    const GemmBlocking blk = GemmBlockingFor(isa);
    for (int64_t k : {16, 63, 64, 65})
      for (int64_t m : {int64_t{96}, blk.mc + 1}) {
        Case c{m, 2048 + 33, k};
        c.pack_a = k != 63;
        c.beta = k == 16 ? 1.0f : 0.0f;
        c.row_bias = true;
        c.col_bias = k == 64;
        c.clamp = true;
        c.threads = m == 96 ? 1 : 2;
        Check(c, isa, rng);
      }
  }
}

// B given as rows at offsets (read in place by the AVX-512 microkernel, packed elsewhere): the
// rows are scattered, in reverse order, through a buffer that ends exactly after the last
// needed float of the last row (reads past column N would leave the allocation, which ASan
// and the masked loads' contract check). Tile edges, K blocks, threads and epilogues vary.
TEST(Sgemm, RowOffsetOperand) {
  std::mt19937 rng(6);
  for (Isa isa : SupportedIsas()) {
    IsaGuard guard(isa);
    const GemmBlocking blk = GemmBlockingFor(isa);
    for (int64_t m : {int64_t{1}, int64_t{9}, blk.mc + 3})
      for (int64_t n : {1, 15, 16, 17, 32, 33, 100})
        for (int64_t k : {int64_t{1}, int64_t{7}, blk.kc + 5}) {
          SCOPED_TRACE(std::string(IsaName(isa)) + " M=" + std::to_string(m) +
                       " N=" + std::to_string(n) + " K=" + std::to_string(k));
          const auto a = Random(m * k, rng), b = Random(k * n, rng), rb = Random(m, rng);
          const auto c0 = Random(m * n, rng);
          const bool accumulate = n % 2 == 1;
          // Row r of B at offset (k - 1 - r) * (n + 3) + 2: gaps between rows, last row last.
          const int64_t stride = n + 3;
          std::vector<float> buf((k - 1) * stride + 2 + n, NAN);
          std::vector<int64_t> offsets(k);
          for (int64_t r = 0; r < k; ++r) {
            offsets[r] = (k - 1 - r) * stride + 2;
            std::copy(b.begin() + r * n, b.begin() + (r + 1) * n, buf.begin() + offsets[r]);
          }
          std::vector<float> want(m * n);
          ref::Gemm(false, false, m, n, k, 1.0f, a.data(), b.data(), accumulate ? 1.0f : 0.0f,
                    accumulate ? c0.data() : nullptr, m, n, want.data());
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
              want[i * n + j] = std::max(want[i * n + j] + rb[i], 0.0f);
          const PackedMatrix pa = PackedMatrix::PackA(m, k, a.data(), k, false, isa);
          std::vector<float> got = accumulate ? c0 : std::vector<float>(m * n, NAN);
          GemmEpilogue epi;
          epi.beta = accumulate ? 1.0f : 0.0f;
          epi.row_bias = rb.data();
          epi.activation = Activation::Relu();
          Sgemm(m, n, k, m == 9 ? GemmOperand::Plain(a.data(), k) : GemmOperand::Packed(pa),
                GemmOperand::Rows(buf.data(), offsets.data()), got.data(), n, epi, m > 9 ? 2 : 1);
          const double tol = 2.4e-7 * (k + 8) + 1e-6;
          int bad = 0;
          for (int64_t i = 0; i < m * n && bad < 5; ++i)
            if (!(std::fabs(got[i] - want[i]) <= tol)) {
              ADD_FAILURE() << "at (" << i / n << ", " << i % n << "): got " << got[i] << ", want "
                            << want[i];
              ++bad;
            }
        }
  }
}

TEST(Sgemm, ZeroK) {
  // K = 0: C = beta * C + bias.
  std::vector<float> c = {1, 2, 3, 4};
  const float bias[2] = {10, 20};
  GemmEpilogue epi;
  epi.beta = 2.0f;
  epi.col_bias = bias;
  Sgemm(2, 2, 0, GemmOperand::Plain(nullptr, 0), GemmOperand::Plain(nullptr, 2), c.data(), 2, epi,
        1);
  EXPECT_EQ(c, (std::vector<float>{12, 24, 16, 28}));
}

TEST(Sgemm, MismatchedPackedOperandThrows) {
  std::vector<float> a(6, 1.0f), c(4);
  const PackedMatrix pa = PackedMatrix::PackA(2, 3, a.data(), 3, false);
  EXPECT_THROW(
      Sgemm(3, 2, 2, GemmOperand::Packed(pa), GemmOperand::Plain(a.data(), 2), c.data(), 2), Error);
}

TEST(RefGemm, HandComputedBroadcastC) {
  // A = [[1, 2], [3, 4]], B = I, C = column [10, 20] (shape 2 x 1), alpha 2, beta 0.5.
  const float a[] = {1, 2, 3, 4}, b[] = {1, 0, 0, 1}, c[] = {10, 20};
  float y[4];
  ref::Gemm(false, false, 2, 2, 2, 2.0f, a, b, 0.5f, c, 2, 1, y);
  EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{7, 9, 16, 18}));
  // transA: op(A) = A^T = [[1, 3], [2, 4]]; scalar C.
  const float s[] = {1};
  ref::Gemm(true, false, 2, 2, 2, 1.0f, a, b, 1.0f, s, 1, 1, y);
  EXPECT_EQ(std::vector<float>(y, y + 4), (std::vector<float>{2, 4, 3, 5}));
}

}  // namespace
}  // namespace qforge::kernels
