// Internal: the contract between the int8 GEMM driver (qgemm.cc) and its per-ISA panel kernels
// (qgemm__avx2.cc, qgemm__avx512.cc): staged A, packed-B layouts and the per-column epilogue.
#pragma once

#include <cstdint>

#include "qforge/kernels/qgemm.h"

namespace qforge::kernels::detail {

// Every kernel works on A' = A (uint8) or A + 128 (int8, i.e. the bit pattern XOR 0x80): always
// unsigned 0..255, with zero point za' = za (+128 for int8). Then (A - za) = (A' - za'), and
//   sum_k (A'-za')(B-zb) = sum_k A'B  - zb * rowsum(A')  - za' * colsum(B)  + K za' zb
// (docs/numerics.md section 3). The kernels compute the first term; the driver folds the column
// terms and the bias into col_offset[n]; the row term is applied only when B has zero points.
// All of it is added modulo 2^32: since the exact total fits in int32 (K <= 2^15), the wrapped
// int32 result is the exact one.
//
// Staged A (rows of Kpad = round_up(K, 4) elements, the K tail zero-filled):
//   VNNI: uint8 A' (the caller's A itself when it is uint8 with K % 4 == 0);
//   AVX2: int16 A' (zero-extended), so each product is an exact int16 x int16 multiply.
inline constexpr int kQVnniMr = 12, kQVnniNr = 32;  // rows x columns of the VNNI tile
inline constexpr int kQAvx2Mr = 4, kQAvx2Nr = 8;    // rows x columns of the AVX2 tile

struct QGemmCall {
  int64_t M = 0, N = 0, Kpad = 0;
  const void* a = nullptr;  // staged A': M rows, row stride lda elements
  int64_t lda = 0;
  // Gathered A (QGemmGather, VNNI only): when set, row m of A' is the concatenation of
  // `segments` runs of Kpad / segments uint8 codes (a multiple of 4), run s at
  // a_ptrs[m * segments + s]; `a` and `lda` are unused.
  const uint8_t* const* a_ptrs = nullptr;
  int64_t segments = 0;
  const int8_t* b = nullptr;  // packed B (layout in the kernel's file)
  // Per column, padded with zeros to a multiple of the tile width:
  const int32_t* col_offset = nullptr;  // bias - za' colsum + K za' zb   (wrapping int32)
  const int32_t* col_zb = nullptr;      // zb[n], or null when all zero points are 0
  const int32_t* row_sums = nullptr;    // [M] sum_k A'[m,k] (only with col_zb)
  QGemmOutputKind kind = QGemmOutputKind::kInt32;
  const int32_t* mantissa = nullptr;  // kUint8/kInt8: FixedMultiplier.mantissa
  const int32_t* rshift = nullptr;    //   31 - FixedMultiplier.shift, in [0, 62]; 33 where the
                                      //   mantissa is 0 (the result is 0 for any shift >= 1)
  // Every column has rshift >= 33 (multiplier < 2^-2): the kernels may requantize from the high
  // 32 bits of the 64-bit product (exact, see RequantizeHi in qgemm__avx512.cc).
  bool requant_hi = false;
  int32_t zero_point = 0, qmin = 0, qmax = 0;
  const float* scale = nullptr;       // kFloat
  const float* float_bias = nullptr;  // kFloat, or null
  void* c = nullptr;
  int64_t ldc = 0;
};

// Computes C rows [m0, m1), columns of panel p ([p * NR, min(N, (p + 1) * NR))).
void QGemmPanel__avx512vnni(const QGemmCall& call, int64_t m0, int64_t m1, int64_t p);
void QGemmPanel__avx2(const QGemmCall& call, int64_t m0, int64_t m1, int64_t p);

// Stages rows [m0, m1) of A into A' (see above): dst row stride Kpad.
void QGemmStageA__avx512vnni(const QGemmA& a, int64_t K, int64_t Kpad, int64_t m0, int64_t m1,
                             uint8_t* dst);
void QGemmStageA__avx2(const QGemmA& a, int64_t K, int64_t Kpad, int64_t m0, int64_t m1,
                       int16_t* dst);

}  // namespace qforge::kernels::detail
