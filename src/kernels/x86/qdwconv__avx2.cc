// AVX2 depthwise int8 convolution of one output plane, bit-exact with the scalar kernel in
// qdwconv.cc. 16 outputs of a row at a time: for each of the kH * kW taps, 16 int16 inputs
// (x - zx) are sign-extended to int32 and multiplied by the tap's weight (w - zw) with vpmulld.
//
// Why no sum can clip: nothing is computed in 8 or 16 bits and no saturating instruction is used
// — the int16 inputs are exact (|x - zx| <= 255), each product is exact in int32 (<= 255 * 255),
// and the window sum of at most 2^15 such products is below 2^31 (qdwconv.h). The bias is added
// with vpaddd (modulo 2^32), like the scalar kernel and QGemm. Requantization: requant8_avx2.h.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

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
    // Blocks of 16 outputs; the last block may be partial: its extra lanes read inside the
    // plane's slack (the caller allocates 16 int16 past the plane) and are not stored.
    for (int64_t ow = 0; ow < ow_n; ow += 16) {
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
      const int64_t idx = oh * ow_n + ow, valid = std::min<int64_t>(16, ow_n - ow);
      if (q8) {
        alignas(16) uint8_t buf[16];
        uint8_t* dst = valid == 16 ? static_cast<uint8_t*>(y) + idx : buf;
        StoreBytes8(dst, rq(a0));
        StoreBytes8(dst + 8, rq(a1));
        if (valid < 16) std::memcpy(static_cast<uint8_t*>(y) + idx, buf, valid);
      } else {
        alignas(32) int32_t buf[16];
        int32_t* dst = valid == 16 ? static_cast<int32_t*>(y) + idx : buf;
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), a0);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8), a1);
        if (valid < 16) std::memcpy(static_cast<int32_t*>(y) + idx, buf, valid * 4);
      }
    }
  }
}

}  // namespace qforge::kernels::detail
