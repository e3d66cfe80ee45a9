// AVX2 depthwise int8 convolution of one output plane, bit-exact with the scalar kernel in
// qdwconv.cc. 16 outputs of a row at a time: for each of the kH * kW taps, 16 int16 inputs
// (x - zx) are sign-extended to int32 and multiplied by the tap's weight (w - zw) with vpmulld.
//
// Why no sum can clip: nothing is computed in 8 or 16 bits and no saturating instruction is used
// — the int16 inputs are exact (|x - zx| <= 255), each product is exact in int32 (<= 255 * 255),
// and the window sum of at most 2^15 such products is below 2^31 (qdwconv.h). The bias is added
// with vpaddd (modulo 2^32), like the scalar kernel and QGemm. Requantization: requant8_avx2.h.
#include <immintrin.h>

#include "kernels/x86/qdwconv_avx2.h"
#include "kernels/x86/requant8_avx2.h"

namespace qforge::kernels::detail {

void DwPlaneConv__avx2(const QConvShape& s, const DwPlane& p, const int32_t* wv, int32_t bias,
                       const DwOutput& o, void* y) {
  const int64_t oh_n = s.out_h(), ow_n = s.out_w(), taps = s.kernel_h * s.kernel_w;
  const Requant8 rq(o.mult, o.zero_point, o.qmin, o.qmax);
  const bool q8 = o.kind != QGemmOutputKind::kInt32;
  // Offsets of each tap's run within the plane, relative to the output row's first input row.
  int64_t off[1024];
  const bool small = taps <= 1024;
  for (int64_t t = 0; small && t < taps; ++t) {
    const int64_t i = t / s.kernel_w, j = t % s.kernel_w, c = j * s.dilation_w;
    off[t] = i * s.dilation_h * p.row_len + (c % s.stride_w) * p.phase_len + c / s.stride_w;
  }
  auto tap_off = [&](int64_t t) {
    if (small) return off[t];
    const int64_t i = t / s.kernel_w, j = t % s.kernel_w, c = j * s.dilation_w;
    return i * s.dilation_h * p.row_len + (c % s.stride_w) * p.phase_len + c / s.stride_w;
  };
  const __m256i vb = _mm256_set1_epi32(bias);
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const int16_t* row = p.data + oh * s.stride_h * p.row_len;
    int64_t ow = 0;
    for (; ow + 16 <= ow_n; ow += 16) {
      __m256i a0 = vb, a1 = vb;
      for (int64_t t = 0; t < taps; ++t) {
        const int16_t* r = row + tap_off(t) + ow;
        const __m256i w = _mm256_set1_epi32(wv[t]);
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r));
        a0 = _mm256_add_epi32(
            a0, _mm256_mullo_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(x)), w));
        a1 = _mm256_add_epi32(
            a1, _mm256_mullo_epi32(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(x, 1)), w));
      }
      const int64_t idx = oh * ow_n + ow;
      if (q8) {
        StoreBytes8(static_cast<uint8_t*>(y) + idx, rq(a0));
        StoreBytes8(static_cast<uint8_t*>(y) + idx + 8, rq(a1));
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int32_t*>(y) + idx), a0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(static_cast<int32_t*>(y) + idx + 8), a1);
      }
    }
    for (; ow < ow_n; ++ow) {  // the row's tail, scalar
      uint32_t acc = static_cast<uint32_t>(bias);
      for (int64_t t = 0; t < taps; ++t) acc += static_cast<uint32_t>(row[tap_off(t) + ow] * wv[t]);
      const int64_t idx = oh * ow_n + ow;
      if (q8) {
        static_cast<uint8_t*>(y)[idx] = static_cast<uint8_t>(
            numerics::Requantize(static_cast<int32_t>(acc), o.mult, o.zero_point, o.qmin, o.qmax));
      } else {
        static_cast<int32_t*>(y)[idx] = static_cast<int32_t>(acc);
      }
    }
  }
}

}  // namespace qforge::kernels::detail
