// Dynamic-quantization and int4 weight-only kernels: the row-wise dynamic quantizer, int8 GEMM
// with per-row activation and per-column weight scales (fp32 out), and the int4 weight GEMM.
//
// All three have a plain reference (kernels/ref/dynq_ref.h) and an AVX2 path
// (kernels/x86/dynq__avx2.cc) that is bit-exact with it: every integer sum is exact, and every
// float operation is the same single-rounding operation (mul, add, div; never fused: the build
// uses ISO C++ without -ffp-contract=fast) in the same order on both paths.
#pragma once

#include <cstdint>
#include <vector>

#include "qforge/kernels/isa.h"
#include "qforge/kernels/qgemm.h"
#include "qforge/numerics/dtypes.h"
#include "qforge/numerics/quant_params.h"

namespace qforge::kernels {

// ---- 1. Row-wise dynamic quantizer ------------------------------------------------------------

// Quantizes each row m < M of x (row-major, row stride ldx >= K floats) with its own parameters:
//   params[m] = numerics::ChooseQuantParams(min_k x[m,k], max_k x[m,k], fmt, opt)
//               (the range is extended to contain 0; an empty or all-zero row gives s = 1)
//   q[m,k]    = numerics::QuantizeValue(x[m,k], params[m], QuantMin(fmt, opt.restricted_range),
//                                       fmt.qmax())
//             = saturate(round_half_even(x / s) + z)   (float division, as ONNX QuantizeLinear
//               and DynamicQuantizeLinear; asymmetric uint8 equals DynamicQuantizeLinear's
//               rounding of x / s)
// fmt: uint8 or int8 (q is uint8_t / int8_t, row stride ldq >= K bytes). M x 1 "rows" of one
// element and K = 0 are fine.
// Each row is read twice: once for its range (vector min / max), once to quantize; the second
// read hits the cache for rows of up to tens of thousands of floats. Quantizing needs the whole
// row's range, so a strict single pass would have to buffer the row anyway.
// NaN / Inf: a row containing NaN or +-Inf has no usable range; DynamicQuantizeRows throws
// qforge::Error naming the row (the reference and the AVX2 path check the same way).
void DynamicQuantizeRows(int64_t M, int64_t K, const float* x, int64_t ldx, numerics::IntFormat fmt,
                         numerics::RangeOptions opt, void* q, int64_t ldq,
                         numerics::QuantParams* params, Isa isa = ActiveIsa());

// min / max of x[0..n) (n >= 1) into *lo / *hi, vectorized (AVX2 unless isa is kScalar);
// false if any element is NaN or +-Inf (then *lo / *hi are meaningless). Exact (no rounding).
bool FiniteMinMax(const float* x, int64_t n, float* lo, float* hi, Isa isa = ActiveIsa());

// q[i] = numerics::QuantizeValue(x[i], p, qmin, qmax) for i < n, with p given (e.g. one
// DynamicQuantizeLinear scale for a whole tensor): the same values as numerics::QuantizeRun,
// vectorized with AVX2 when isa allows. q is uint8_t ([qmin, qmax] within [0, 255]) or int8_t
// (is_signed, within [-128, 127]). p.scale must be > 0; NaN gives clamp(z), +-Inf saturates.
void QuantizeWithParams(const float* x, int64_t n, numerics::QuantParams p, int32_t qmin,
                        int32_t qmax, bool is_signed, void* q, Isa isa = ActiveIsa());

// Quantizes x[0..n) with one set of parameters and writes each code centered on its zero point,
// as a float: out[i] = float(numerics::QuantizeValue(x[i], p, qmin, qmax) - p.zero_point).
// Every value is a small integer, exact in fp32, so an fp32 product of two such arrays sums
// integers exactly while every partial sum stays below 2^24 (e.g. K <= 258 uint8 terms of
// |(a - za)(b - zb)| <= 255^2): that is how DynamicQMatMul runs its small attention products on
// the fp32 small-GEMM kernel with the integer result bit for bit. p.scale must be > 0. NaN gives
// clamp(z) - z and +-Inf saturates, as QuantizeValue. AVX2 (vdivps, vroundps) when isa allows.
void QuantizeCentered(const float* x, int64_t n, numerics::QuantParams p, int32_t qmin,
                      int32_t qmax, float* out, Isa isa = ActiveIsa());

// ---- 2. int8 GEMM, per-row activation / per-column weight scales, fp32 out ---------------------

// y[m,n] = float(acc[m,n]) * (a_params[m].scale * w_scales[n])  [+ bias[n]]
//   acc[m,n] = sum_k (A[m,k] - a_params[m].zero_point) * (B[k,n] - zb[n])   (exact int32)
// The float expression is evaluated as written: s = s_a * s_w (one rounding), float(acc) * s
// (one rounding), then + bias (one rounding). A: M x K (lda >= K) uint8 / int8 (a_signed),
// quantized per row (e.g. by DynamicQuantizeRows); B: packed int8 weights (zero points as packed,
// usually none: symmetric per output channel); K <= kMaxQGemmK so no sum can clip.
// Built on QGemm's int32 output with za = 0: acc = QGemm(A, B) - za[m] * (colsum_B[n] - K zb[n]),
// the correction computed modulo 2^32 (exact: the true acc fits int32). y (M x N floats, ldy >=
// N) first holds the int32 accumulators, then the result. threads as in QGemm.
void DynamicQGemm(int64_t M, const void* a, int64_t lda, bool a_signed,
                  const numerics::QuantParams* a_params, const PackedQGemmB& b,
                  const float* w_scales, const float* bias, float* y, int64_t ldy, int threads = 0,
                  Isa isa = ActiveIsa());

// The whole dynamic Linear layer: quantizes x (M x K fp32) per row to uint8 (asymmetric, as
// DynamicQuantizeLinear) and runs DynamicQGemm. b must be packed for QGemmKernelFor(isa).
void DynamicQuantizedLinear(int64_t M, const float* x, int64_t ldx, const PackedQGemmB& b,
                            const float* w_scales, const float* bias, float* y, int64_t ldy,
                            int threads = 0, Isa isa = ActiveIsa());

// ---- 3. int4 weight-only ----------------------------------------------------------------------

// Block size of the packed nibble layout; every group size is a multiple of it.
inline constexpr int64_t kInt4Block = 32;

// Weights W (N outputs x K inputs, a Linear / Gemm-transB weight) quantized per group of
// `group_size` consecutive k (32, 64 or 128; K % group_size == 0) to 4-bit codes:
//   W[n,k] ~= s[g,n] * (c[n,k] - z[g,n]),  g = k / group_size, codes c and z in [0, 15].
// Symmetric: z = 8 and c - 8 in [-7, 7] (s = max|w| / 7); asymmetric: z chosen per group
// (s = (max - min) / 15 over the group's range extended to contain 0).
// Layouts (G = K / group_size):
//   packed      [N][K/2] bytes. Nibble order: within each block of 32 consecutive k starting
//               at k0 (a multiple of 32), byte j (0 <= j < 16) holds c[n, k0 + j] in its LOW
//               nibble and c[n, k0 + 16 + j] in its HIGH nibble.
//   scales      [G][N] fp32, or scales_fp16 [G][N] IEEE half bits (exactly one is non-empty);
//               ONNX's blocked layout for the K x N MatMul weight (blocks along K).
//   zero_points [G][N] bytes in [0, 15], or empty: all 8 (symmetric).
struct Int4Weights {
  int64_t N = 0, K = 0, group_size = 0;
  std::vector<uint8_t> packed;
  std::vector<float> scales;
  std::vector<uint16_t> scales_fp16;
  std::vector<uint8_t> zero_points;
  // Optional in-memory copy of the codes in the AVX-512 VNNI kernel's interleaved layout
  // (PrepackInt4Weights; empty: not prepared). Not part of the model file.
  std::vector<uint8_t> vnni;

  int64_t groups() const { return group_size ? K / group_size : 0; }
  // s[g,n] as fp32 (fp16 scales are converted exactly).
  float scale(int64_t g, int64_t n) const;
  int32_t zero_point(int64_t g, int64_t n) const {
    return zero_points.empty() ? 8 : zero_points[g * N + n];
  }
  int32_t code(int64_t n, int64_t k) const {  // c[n,k]
    const uint8_t byte = packed[n * (K / 2) + k / kInt4Block * 16 + k % 16];
    return (k % kInt4Block) < 16 ? (byte & 0xF) : (byte >> 4);
  }
  // Total bytes of codes, scales and zero points (the model-file cost).
  int64_t bytes() const;
};

// Quantizes W (row-major N x K floats). Each group's scale is chosen from its range (as
// numerics::ChooseQuantParams, int4 symmetric-restricted or uint4 asymmetric), rounded to fp16
// first when fp16_scales (then codes are computed with the rounded scale; a scale below fp16's
// smallest subnormal becomes that subnormal). Throws qforge::Error on bad sizes or group size,
// NaN / Inf weights, or a scale that overflows fp16.
Int4Weights QuantizeInt4Weights(const float* w, int64_t N, int64_t K, int64_t group_size,
                                bool symmetric, bool fp16_scales);

// Prepares w for the AVX-512 VNNI kernel when `isa` is kAvx512 and this CPU has VNNI: fills
// w.vnni (16 output rows x 8 k per 64 bytes, see kernels/x86/int4gemm__avx512.cc). Int4Gemm
// then uses that kernel, bit-exact with the same reference. Otherwise leaves w unchanged.
// Done once when weights are loaded (the runtime op does it at creation).
void PrepackInt4Weights(Int4Weights& w, Isa isa = ActiveIsa());

// W'[n,k] = s[g,n] * float(c[n,k] - z[g,n]) into w (N x K), for tests and reports only (the
// kernels never expand W).
void DequantizeInt4Weights(const Int4Weights& w, float* out);

// y[m,n] = (sum_g float(isum[m,n,g]) * s[g,n]) * sx[m]  [+ bias[n]]     (y: M x N, ldy >= N)
//   x's row m is first quantized to int8 symmetric [-127, 127] (DynamicQuantizeRows with
//   scale sx[m], zero point 0): xq[m,k];
//   isum[m,n,g] = sum_{k in group g} xq[m,k] * (c[n,k] - z[g,n])   (exact int32, |.| < 2^18);
//   the group sum is accumulated in float in increasing g, acc = acc + float(isum) * s
//   (mul, then add), then multiplied by sx[m], then the bias added.
// The integer path: weights stay 4-bit in memory (unpacked 32 codes at a time into registers;
// with w.vnni prepared and isa kAvx512, the AVX-512 VNNI kernel, else AVX2, else reference).
// Throws qforge::Error on bad arguments and (from the quantizer) NaN / Inf activations.
void Int4Gemm(int64_t M, const float* x, int64_t ldx, const Int4Weights& w, const float* bias,
              float* y, int64_t ldy, Isa isa = ActiveIsa());

}  // namespace qforge::kernels
