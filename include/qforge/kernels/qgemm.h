// Quantized (int8) GEMM: uint8/int8 activations x int8 weights, int32 accumulation, and an
// output stage that requantizes (numerics::Requantize), dequantizes to fp32 or returns int32.
//
// Computes, for m < M, n < N (all integer arithmetic exact, see "Range" below):
//   acc[m,n] = sum_k (A[m,k] - za) * (B[k,n] - zb[n]) + bias[n]          (int32)
//   kUint8/kInt8: C[m,n] = numerics::Requantize(acc, mult[n], zy, qmin, qmax)
//   kInt32:       C[m,n] = acc
//   kFloat:       C[m,n] = float(acc) * scale[n] + float_bias[n]           (one rounding each)
// A is row-major M x K (lda >= K), uint8 or int8 with a per-tensor zero point za. B is int8,
// K x N, with a zero point per column (zb[n], usually 0: symmetric per-channel weights) or one
// for all columns; it is packed once (PackedQGemmB) in the layout of one ISA's microkernel.
// A fused ReLU / ReLU6 is expressed by the clamp range [qmin, qmax] of the quantized output.
//
// Range: K <= kMaxQGemmK = 2^15. Then every term |(A - za)(B - zb)| <= 255 * 255 < 2^16 and the
// sum over k is below 2^31 in magnitude: it is exact in int32 on every path. Adding the bias
// wraps modulo 2^32 like int32 hardware (quantized biases are far from that in practice); every
// path (reference, AVX2, AVX-512 VNNI) computes the same wrapped value, so all are bit-exact.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "qforge/kernels/isa.h"
#include "qforge/numerics/requantize.h"

namespace qforge::kernels {

inline constexpr int64_t kMaxQGemmK = int64_t{1} << 15;

// The microkernel family a packed B belongs to. kAvx512Vnni needs AVX-512 F/BW/DQ/VL + VNNI.
enum class QGemmKernel { kScalar, kAvx2, kAvx512Vnni };
const char* QGemmKernelName(QGemmKernel k);
bool QGemmKernelSupported(QGemmKernel k);
// The kernel used for `isa`: kAvx512 -> kAvx512Vnni if the CPU has VNNI, else kAvx2.
QGemmKernel QGemmKernelFor(Isa isa);

// B (K x N int8 weights) with its zero points, packed once for one kernel. Also keeps the
// column sums sum_k B[k,n] (the zero-point correction term of docs/numerics.md section 3).
class PackedQGemmB {
 public:
  PackedQGemmB() = default;
  // b: row-major K x N (trans: stored N x K, i.e. ONNX Conv/Gemm-transB weights, ldb >= K).
  // zero_points: empty (all 0), size 1 (per tensor) or size N (per column); each in
  // [-128, 127]. Throws qforge::Error on bad sizes or K > kMaxQGemmK.
  static PackedQGemmB Pack(int64_t K, int64_t N, const int8_t* b, int64_t ldb, bool trans,
                           const std::vector<int32_t>& zero_points, QGemmKernel kernel);
  static PackedQGemmB Pack(int64_t K, int64_t N, const int8_t* b, int64_t ldb, bool trans,
                           const std::vector<int32_t>& zero_points = {}, Isa isa = ActiveIsa()) {
    return Pack(K, N, b, ldb, trans, zero_points, QGemmKernelFor(isa));
  }

  bool empty() const { return data_ == nullptr; }
  QGemmKernel kernel() const { return kernel_; }
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  bool has_zero_points() const { return has_zb_; }
  const int32_t* zero_points() const { return zb_.data(); }     // [N]
  const int32_t* col_sums() const { return col_sums_.data(); }  // [N], sum_k B[k,n]
  const int8_t* data() const { return data_.get(); }            // layout: see the kernel's file

 private:
  QGemmKernel kernel_ = QGemmKernel::kScalar;
  int64_t K_ = 0, N_ = 0;
  bool has_zb_ = false;
  std::vector<int32_t> zb_, col_sums_;
  std::shared_ptr<int8_t[]> data_;
};

enum class QGemmOutputKind { kUint8, kInt8, kInt32, kFloat };

// What to do with the int32 accumulators. Arrays of "1 or N" entries are per tensor or per column.
struct QGemmOutput {
  QGemmOutputKind kind = QGemmOutputKind::kInt32;
  const int32_t* bias = nullptr;  // [N] int32 (scale s_a * s_w[n], zero point 0), or null

  // kUint8 / kInt8.
  const numerics::FixedMultiplier* multipliers = nullptr;
  int64_t num_multipliers = 0;  // 1 or N
  int32_t zero_point = 0;
  int32_t qmin = 0, qmax = 0;  // within the output type's range; e.g. ReLU6 = [zy, zy + 6/s_y]

  // kFloat.
  const float* scales = nullptr;      // s_a * s_w[n]
  int64_t num_scales = 0;             // 1 or N
  const float* float_bias = nullptr;  // [N] or null

  static QGemmOutput Int32(const int32_t* bias = nullptr) {
    QGemmOutput o;
    o.kind = QGemmOutputKind::kInt32;
    o.bias = bias;
    return o;
  }
  static QGemmOutput Quantized(bool is_signed, const int32_t* bias,
                               const numerics::FixedMultiplier* mult, int64_t num_mult,
                               int32_t zero_point, int32_t qmin, int32_t qmax) {
    QGemmOutput o;
    o.kind = is_signed ? QGemmOutputKind::kInt8 : QGemmOutputKind::kUint8;
    o.bias = bias;
    o.multipliers = mult;
    o.num_multipliers = num_mult;
    o.zero_point = zero_point;
    o.qmin = qmin;
    o.qmax = qmax;
    return o;
  }
  static QGemmOutput Float(const int32_t* bias, const float* scales, int64_t num_scales,
                           const float* float_bias = nullptr) {
    QGemmOutput o;
    o.kind = QGemmOutputKind::kFloat;
    o.bias = bias;
    o.scales = scales;
    o.num_scales = num_scales;
    o.float_bias = float_bias;
    return o;
  }
};

// The activations: row-major M x K, element type uint8 or int8, per-tensor zero point.
struct QGemmA {
  const void* data = nullptr;
  int64_t ld = 0;
  bool is_signed = false;  // int8 (zero point in [-128, 127]) or uint8 ([0, 255])
  int32_t zero_point = 0;
};

// C (M x N, row-major, ldc >= N elements of the output type) = output(A x B). Uses B's kernel.
// threads: 0 = OpenMP default, 1 = calling thread only. Throws qforge::Error on bad arguments
// (sizes, zero points, clamp range outside the output type, missing multipliers/scales).
void QGemm(int64_t M, const QGemmA& a, const PackedQGemmB& b, const QGemmOutput& out, void* c,
           int64_t ldc, int threads = 0);

// A given by pointers instead of rows (im2col without the copy): row m of A is the
// concatenation of `segments` runs of `seg_len` uint8 codes, run s starting at
// ptrs[m * segments + s]; K = segments * seg_len, seg_len a multiple of 4. A convolution passes
// one pointer per output pixel and kernel tap (a tap in the padding points at a run of
// zero-point codes). Runs may overlap and repeat; they are only read.
struct QGemmGatherA {
  const uint8_t* const* ptrs = nullptr;
  int64_t segments = 0, seg_len = 0;
  int32_t zero_point = 0;  // uint8 codes: [0, 255]
};

// C = output(A x B) for a gathered A: the same values as QGemm on the rows written out. The
// AVX-512 VNNI kernel reads the runs in place; the other kernels copy the rows out first.
// b.K() must equal segments * seg_len. Throws qforge::Error on bad arguments.
void QGemmGather(int64_t M, const QGemmGatherA& a, const PackedQGemmB& b, const QGemmOutput& out,
                 void* c, int64_t ldc, int threads = 0);

// Validates the arguments shared by QGemm and the reference; throws qforge::Error.
void ValidateQGemm(int64_t M, int64_t N, int64_t K, const QGemmA& a, const QGemmOutput& out,
                   int64_t ldc);

}  // namespace qforge::kernels
