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

// Channels-last depthwise (multiplier 1): one output pixel, all C channels, from the 2 * pairs
// tap rows tap[t] (each C input codes; a padding tap, and the partner of an odd last tap, point
// at a row of zx codes so it adds (zx - zx) * w = 0). acc[c] = bias[c] + sum_t (x_t[c] - zx) *
// wv[t][c], then the output stage of channel c.
struct DwNhwc {
  int64_t channels = 0;  // C
  int64_t pairs = 0;     // ceil(kH * kW / 2)
  bool is_signed = false;
  int32_t zx = 0;
  // (w - zw) as int16, [pairs][C / 16][32]: the 16 channels c0.. of a block as two vectors of
  // (tap 2p, tap 2p + 1) int16 pairs, in vpunpck{l,h}wd order: vector 0 holds channels
  // c0 + {0..3, 8..11}, vector 1 channels c0 + {4..7, 12..15} (see PackDwNhwcWeights).
  const int16_t* w = nullptr;
  const int16_t* w_scalar = nullptr;  // [pairs * 2][C] (w - zw), the scalar path's layout
  const int32_t* bias = nullptr;      // [C]
  QGemmOutputKind kind = QGemmOutputKind::kInt32;
  // 8-bit outputs: channel c's multiplier; and the AVX2 requantization table, per 8 channels
  // 8 x 4 int64 lanes (mantissa, shift, rounding term, bias of the even then odd channels; see
  // qdwconv_nhwc__avx2.cc).
  const numerics::FixedMultiplier* mult = nullptr;  // [C]
  const int64_t* rq = nullptr;
  int32_t zero_point = 0, qmin = 0, qmax = 0;
};
// Channels [0, 16 * (C / 16)) of one output pixel; y points at the pixel's first output.
void DwNhwcPixel__avx2(const DwNhwc& a, const uint8_t* const* tap, void* y);

// Channels-last depthwise (multiplier 1) with AVX-512 VNNI (qdwconv_nhwc__avx512.cc): output
// rows r = n * out_h + oh in [r_begin, r_end), all channels, 16 per block with the tap weights
// in registers. The input zero point is folded into the bias (see the kernel file).
struct DwNhwc512 {
  const QConvShape* shape = nullptr;
  const uint8_t* x = nullptr;  // [batch, in_h, in_w, C] codes
  bool is_signed = false;
  const uint8_t* zrow = nullptr;  // >= in_w * C codes equal to zx: padding rows and taps
  // (w - zw) of tap t and channel c at w[t * padded_channels + c], as an int32 whose high 16
  // bits are 0 (the int16 value in the low half); 0 for the padding channels.
  const int32_t* w = nullptr;
  int64_t taps = 0, padded_channels = 0;  // kH * kW; C rounded up to 16
  const int32_t* bias = nullptr;          // [padded_channels]: bias - zx * sum_t (w - zw), mod 2^32
  QGemmOutputKind kind = QGemmOutputKind::kInt32;
  // 8-bit outputs, per 16-channel block 6 x 8 int64: mantissa of the even channels, of the odd
  // channels, n = 31 - shift (even, odd), 2^(n-1) (0 for n = 0; even, odd).
  // narrow: every channel's n is >= 33 (zero multipliers count as 33); then slots 2 and 3 hold
  // 16 int32 each instead, 2^(n-33) and n - 32 in channel order (the 32-bit form).
  const int64_t* rq = nullptr;
  bool narrow = false;
  // narrow and every channel's n <= 53: slot 2 holds 2^(n-33) + zero_point * 2^(n-32) (the zero
  // point folded into the rounding term; |.| < 2^29).
  bool fold_zp = false;
  int32_t zero_point = 0, qmin = 0, qmax = 0;
  // Output columns whose taps are all inside the input row: [ow_lo, ow_hi) (may be empty).
  int64_t ow_lo = 0, ow_hi = 0;
  void* y = nullptr;  // [batch, out_h, out_w, C], int32 or 8-bit codes
};
void DwNhwcRows__avx512(const DwNhwc512& a, int64_t r_begin, int64_t r_end);

}  // namespace qforge::kernels::detail
