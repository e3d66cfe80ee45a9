// 8-bit weight-only GEMM (fp32 activations, weights int8/uint8 per group of k with fp32 or fp16
// scales): Int8Weights, its quantizer, and Int8WeightGemm with a reference and an AVX2 path.
//
// The 4-bit sibling (Int4Weights, Int4Gemm) lives in dynq.h. Both follow the same contract:
// integer sums per group are exact; the float combination is one fixed sequence of
// single-rounding operations (mul, add; never fused), identical on every path, so the AVX2
// kernel is bit-exact with kernels/ref/weight_only_ref.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "qforge/kernels/dynq.h"
#include "qforge/kernels/isa.h"

namespace qforge::kernels {

// Weights W (N outputs x K inputs, the Linear / Gemm-transB orientation) quantized per group of
// `group_size` consecutive k (32, 64 or 128; K % group_size == 0) to 8-bit codes:
//   W[n,k] ~= s[g,n] * (c[n,k] - z[g,n]),  g = k / group_size, c and z in [0, 255].
// Symmetric: z = 128 and c - 128 in [-127, 127] (s = max|w| / 127); asymmetric: uint8 codes
// with a zero point per group (s = (max - min) / 255 over the range extended to contain 0).
// Layouts (G = K / group_size):
//   codes       [N][K] bytes in natural k order (ONNX Runtime's MatMulNBits bits=8 B layout).
//   scales      [G][N] fp32, or scales_fp16 [G][N] IEEE half bits (exactly one is non-empty).
//   zero_points [G][N] bytes, or empty: all 128 (symmetric).
struct Int8Weights {
  int64_t N = 0, K = 0, group_size = 0;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  std::vector<uint16_t> scales_fp16;
  std::vector<uint8_t> zero_points;

  int64_t groups() const { return group_size ? K / group_size : 0; }
  float scale(int64_t g, int64_t n) const;  // fp16 scales are converted exactly
  int32_t zero_point(int64_t g, int64_t n) const {
    return zero_points.empty() ? 128 : zero_points[g * N + n];
  }
  int32_t code(int64_t n, int64_t k) const { return codes[n * K + k]; }
  int64_t bytes() const;  // codes + scales + zero points (the model-file cost)
};

// Quantizes W (row-major N x K floats) as QuantizeInt4Weights does (dynq.h): each group's
// parameters from numerics::ChooseQuantParams over its range (int8 symmetric restricted to
// [-127, 127], or uint8 asymmetric), the scale rounded to fp16 first when fp16_scales (codes and
// zero point are then computed with the rounded scale). Throws qforge::Error on bad sizes or
// group size, NaN / Inf weights, or a scale that overflows fp16.
Int8Weights QuantizeInt8Weights(const float* w, int64_t N, int64_t K, int64_t group_size,
                                bool symmetric, bool fp16_scales);

// W'[n,k] = s[g,n] * float(c[n,k] - z[g,n]) into out (N x K), for tests and reports only.
void DequantizeInt8Weights(const Int8Weights& w, float* out);

// y[m,n] = (sum_g float(isum[m,n,g]) * s[g,n]) * sx[m]  [+ bias[n]]       (y: M x N, ldy >= N)
//   Each row of x is first quantized to int16, symmetric in [-32767, 32767] with its own scale
//   sx[m] = max_k |x[m,k]| / 32767 (numerics::ChooseQuantParams with int16 restricted range;
//   q = QuantizeValue: round half to even of x / sx). The relative error of this step is at
//   most 2^-16 of the row's largest magnitude, far below the 8-bit weights' error, so the
//   activations are effectively fp32 while every product stays an exact integer:
//   isum[m,n,g] = sum_{k in g} xq[m,k] * (c[n,k] - z[g,n])  (exact int32: |.| <= 32767 * 255 *
//   128 < 2^31); the group sums are accumulated in float in increasing g (acc = acc +
//   float(isum) * s: mul, then add), then multiplied by sx[m], then the bias added.
// Weights stay 8-bit in memory: the kernel widens 16 codes at a time in registers.
// Throws qforge::Error on bad arguments and NaN / Inf activations (naming the row).
void Int8WeightGemm(int64_t M, const float* x, int64_t ldx, const Int8Weights& w, const float* bias,
                    float* y, int64_t ldy, Isa isa = ActiveIsa());

// ---- ONNX Runtime's com.microsoft MatMulNBits layout ------------------------------------------

// The weight inputs of a MatMulNBits node (Y = A x dequant(B)^T), bits 4 or 8:
//   b            [N][n_blocks][block_size * bits / 8] bytes, n_blocks = ceil(K / block_size);
//                codes low-first along k: 4-bit byte j of a block holds k = 2j in its LOW
//                nibble and k = 2j + 1 in its HIGH nibble (Int4Weights pairs k and k + 16
//                instead: the converters below reorder); 8-bit codes are one byte each.
//                Codes of the padding k >= K in the last block dequantize to 0.
//   scales       [N * n_blocks] fp32 (or scales_fp16: IEEE half bits), n-major.
//   zero_points  [N][ceil(n_blocks * bits / 8)] bytes, packed like b (4-bit: block 2i in the
//                low nibble, 2i + 1 in the high one), or empty: 2^(bits-1).
struct MatMulNBitsWeights {
  int64_t N = 0, K = 0, bits = 4, block_size = 32;
  std::vector<uint8_t> b;
  std::vector<float> scales;
  std::vector<uint16_t> scales_fp16;
  std::vector<uint8_t> zero_points;
  int64_t blocks() const { return block_size ? (K + block_size - 1) / block_size : 0; }
};

// Converters between the kernels' layouts and MatMulNBits. w.K must be the padded
// blocks() * block_size; K is the real reduction length (w.K - block_size < K <= w.K).
// The From* functions validate every size and value (bits, block size 32 / 64 / 128, array
// lengths, zero points < 2^bits) and throw qforge::Error naming `what` on a mismatch.
MatMulNBitsWeights ToMatMulNBits(const Int4Weights& w, int64_t K);
MatMulNBitsWeights ToMatMulNBits(const Int8Weights& w, int64_t K);
Int4Weights Int4FromMatMulNBits(const MatMulNBitsWeights& m, const std::string& what);
Int8Weights Int8FromMatMulNBits(const MatMulNBitsWeights& m, const std::string& what);

}  // namespace qforge::kernels
