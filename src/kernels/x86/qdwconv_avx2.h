// Internal: the per-plane depthwise kernels behind qforge/kernels/qdwconv.h (scalar in
// qdwconv.cc, AVX2 in qdwconv__avx2.cc) and the padded, phase-split input plane they read.
#pragma once

#include <cstdint>

#include "qforge/kernels/qdwconv.h"

namespace qforge::kernels::detail {

// One channel's input as int16 (x - zx) with the padding filled with 0 (= real 0), columns
// split into stride_w phases: padded column c is stored at row * row_len + (c % stride_w) *
// phase_len + c / stride_w. Then tap (i, j) of outputs ow = 0.. reads a contiguous run:
// padded column ow * stride_w + j * dil_w is phase (j * dil_w) % stride_w, index
// ow + (j * dil_w) / stride_w.
struct DwPlane {
  const int16_t* data = nullptr;
  int64_t row_len = 0, phase_len = 0;
};

// One output plane: y[oh, ow] for all oh, ow of channel m (weights wv[kH * kW] = w - zw as
// int32, bias b). Output: kInt32 -> int32_t*, else bytes through Requantize(mult, zp, [qmin,
// qmax]). `acc` is scratch of out_w int32.
struct DwOutput {
  QGemmOutputKind kind = QGemmOutputKind::kInt32;
  numerics::FixedMultiplier mult;
  int32_t zero_point = 0, qmin = 0, qmax = 0;
};
void DwPlaneConv__avx2(const QConvShape& s, const DwPlane& p, const int32_t* wv, int32_t bias,
                       const DwOutput& o, void* y);
// The same with AVX-512 BW + VNNI (vpdpwssd), in qdwconv__avx512.cc.
void DwPlaneConv__avx512(const QConvShape& s, const DwPlane& p, const int32_t* wv, int32_t bias,
                         const DwOutput& o, void* y);

// even[k] = x[2k] - zx, odd[k] = x[2k + 1] - zx for 2k (+1) < n: the two stride-2 phases of an
// input row (x: n uint8 or int8 codes). The AVX2 version handles 32 codes per step.
void DeinterleaveRow2__avx2(const void* x, bool is_signed, int32_t zx, int64_t n, int16_t* even,
                            int16_t* odd);

}  // namespace qforge::kernels::detail
