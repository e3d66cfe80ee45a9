// Fast fp32 GEMM: packed, cache-blocked microkernels per ISA (scalar, AVX2+FMA, AVX-512),
// optional prepacked constant operands, and a fused epilogue (bias, clamp) for later fusion.
//
// Computes C[M x N] = clamp(alpha * A[M x K] * B[K x N] + beta * C + bias).
// Every element of C is a sum over k accumulated in fp32 with FMA in k order within blocks of
// GemmBlockK(); results therefore differ from a double-precision reference by O(K * eps * |a||b|).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "qforge/kernels/isa.h"

namespace qforge::kernels {

// Optional activation fused into an output tile: y = min(max(y, lo), hi).
// Relu is {0, +inf}; Relu6 / Clip(a, b) is {a, b}. Default: identity.
struct Activation {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  bool enabled() const {
    return lo != -std::numeric_limits<float>::infinity() ||
           hi != std::numeric_limits<float>::infinity();
  }
  static Activation None() { return {}; }
  static Activation Relu() { return {0.0f, std::numeric_limits<float>::infinity()}; }
  static Activation Clip(float lo, float hi) { return {lo, hi}; }
};

// A constant GEMM operand packed once (at op creation) into the panel layout of one ISA's
// microkernel. Role A holds op(A) (M x K); role B holds op(B) (K x N).
class PackedMatrix {
 public:
  enum class Role { kA, kB };
  PackedMatrix() = default;
  // a: row-major M x K (trans: stored K x M, lda >= M). Packs for `isa` (default: active).
  static PackedMatrix PackA(int64_t M, int64_t K, const float* a, int64_t lda, bool trans,
                            Isa isa = ActiveIsa());
  // b: row-major K x N (trans: stored N x K, ldb >= K).
  static PackedMatrix PackB(int64_t K, int64_t N, const float* b, int64_t ldb, bool trans,
                            Isa isa = ActiveIsa());

  bool empty() const { return data_ == nullptr; }
  Role role() const { return role_; }
  Isa isa() const { return isa_; }
  int64_t rows() const { return rows_; }  // M (role A) or K (role B)
  int64_t cols() const { return cols_; }  // K (role A) or N (role B)
  // Start of the panel holding k-block starting at k0 and panel index p (internal use).
  const float* panel(int64_t k0, int64_t p) const;

 private:
  Role role_ = Role::kA;
  Isa isa_ = Isa::kScalar;
  int64_t rows_ = 0, cols_ = 0;
  int64_t padded_ = 0;  // M (A) or N (B) rounded up to the panel width
  int64_t kc_ = 0;      // k-block size
  int width_ = 0;       // panel width: MR (A) or NR (B)
  std::shared_ptr<float[]> data_;
};

// A source of op(B) that packs itself (used by convolution to pack straight from the image,
// without an im2col buffer). pack() writes rows [k0, k0 + kc) and columns [j0, j0 + n) of
// op(B) as kc rows of `nr` floats (column j0 + c at position c; columns n..nr-1 zero).
struct BPanelSource {
  void (*pack)(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr,
               float* dst) = nullptr;
  const void* ctx = nullptr;
};

// One GEMM operand: a plain row-major matrix (optionally transposed), a PackedMatrix, or
// (B only) a BPanelSource, or (B only) rows at offsets: op(B)[k][j] = data[row_offsets[k] + j]
// (row_offsets has K entries; data[row_offsets[k] + j] must be readable for every j < N). Rows
// are read in place by the AVX-512 microkernel (no packing: convolution inputs whose im2col
// rows are shifted runs of one padded input) and packed like a plain B on other ISAs.
struct GemmOperand {
  const float* data = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const PackedMatrix* packed = nullptr;
  const BPanelSource* source = nullptr;
  const int64_t* row_offsets = nullptr;

  static GemmOperand Plain(const float* data, int64_t ld, bool trans = false) {
    return {data, ld, trans, nullptr, nullptr, nullptr};
  }
  static GemmOperand Packed(const PackedMatrix& p) {
    return {nullptr, 0, false, &p, nullptr, nullptr};
  }
  static GemmOperand Source(const BPanelSource& s) {
    return {nullptr, 0, false, nullptr, &s, nullptr};
  }
  static GemmOperand Rows(const float* data, const int64_t* row_offsets) {
    return {data, 0, false, nullptr, nullptr, row_offsets};
  }
};

struct GemmEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;                // 0: C is write-only (never read, may hold garbage/NaN)
  const float* row_bias = nullptr;  // [M], added to every row i (conv bias per channel)
  const float* col_bias = nullptr;  // [N], added to every column j (Gemm / FC bias)
  Activation activation;
};

// C = act(alpha * op(A) op(B) + beta * C + row_bias[i] + col_bias[j]); C row-major, ldc >= N.
// The ISA is the packed operand's if any (both packed: must agree), else ActiveIsa().
// threads: 0 = OpenMP default, 1 = run on the calling thread (use inside parallel regions).
void Sgemm(int64_t M, int64_t N, int64_t K, const GemmOperand& a, const GemmOperand& b, float* c,
           int64_t ldc, const GemmEpilogue& epilogue = {}, int threads = 0);

// Panel geometry of an ISA's microkernel (for packers and tests).
struct GemmBlocking {
  int mr, nr;      // microkernel tile
  int64_t kc, mc;  // cache blocks along K and M
};
GemmBlocking GemmBlockingFor(Isa isa);

// Resolves a thread request: 0 -> omp_get_max_threads(), otherwise itself (>= 1).
int ResolveThreads(int threads);

}  // namespace qforge::kernels
