// Internal: the fp32 GEMM microkernel contract shared by the driver (gemm.cc) and the per-ISA
// microkernels (gemm__avx2.cc, gemm__avx512.cc, scalar in gemm.cc).
#pragma once

#include <cstdint>

namespace qforge::kernels::detail {

// What a microkernel does with its MR x NR accumulator tile `acc` before storing it to C:
//   v = alpha * acc  (+ beta * C if beta != 0; C is not read when beta == 0)
//     (+ row_bias[i] if row_bias)  (+ col_bias[j] if col_bias)
//   v = min(max(v, lo), hi) if clamp
// row_bias / col_bias point at the tile's first row / column.
struct TileEpilogue {
  float alpha = 1.0f;
  float beta = 0.0f;
  const float* row_bias = nullptr;
  const float* col_bias = nullptr;
  bool clamp = false;
  float lo = 0.0f, hi = 0.0f;
};

// a: kc x MR packed (MR floats per k), b: kc x NR packed (NR floats per k), both 64-byte
// aligned. Writes the top-left m x n (m <= MR, n <= NR) of the tile to c (row stride ldc).
using GemmMicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                 int m, int n, const TileEpilogue& ep);

// 6 x 16 (two ymm columns), AVX2 + FMA.
inline constexpr int kAvx2Mr = 6, kAvx2Nr = 16;
void SgemmMicroKernel6x16__avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                int m, int n, const TileEpilogue& ep);
// 8 x 32 (two zmm columns), AVX-512F.
inline constexpr int kAvx512Mr = 8, kAvx512Nr = 32;
void SgemmMicroKernel8x32__avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                  int m, int n, const TileEpilogue& ep);

// The same 8 x 32 tile with B read in place instead of from a packed panel: row k of the tile's
// B is the NR floats at b + b_offsets[k] (columns >= n are never read, so b only needs n readable
// floats per row). Used for convolution inputs whose im2col rows are plain shifted runs.
using GemmRowsMicroKernel = void (*)(int64_t kc, const float* a, const float* b,
                                     const int64_t* b_offsets, float* c, int64_t ldc, int m, int n,
                                     const TileEpilogue& ep);
void SgemmRowsMicroKernel8x32__avx512(int64_t kc, const float* a, const float* b,
                                      const int64_t* b_offsets, float* c, int64_t ldc, int m, int n,
                                      const TileEpilogue& ep);

}  // namespace qforge::kernels::detail
