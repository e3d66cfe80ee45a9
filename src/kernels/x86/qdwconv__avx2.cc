// AVX2 depthwise int8 convolution of one output plane, bit-exact with the scalar kernel in
// qdwconv.cc. 16 outputs of a row at a time, taps two by two: the two taps' runs of int16 inputs
// (x - zx) are interleaved and vpmaddwd multiplies them by the pair of weights (w - zw).
//
// Why no sum can clip: the int16 inputs and weights are exact (|x - zx|, |w - zw| <= 255);
// vpmaddwd multiplies int16 x int16 exactly into 32 bits and adds the pair in int32 (it can only
// wrap for two (-32768)^2 products, impossible here): |pair| <= 2 * 65025. vpmaddubsw (int16
// saturation) is not used. The window sum of at most 2^15 products is below 2^31 (qdwconv.h);
// the bias is added with vpaddd (modulo 2^32), like the scalar kernel and QGemm.
// Requantization: requant8_avx2.h.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/x86/qdwconv_avx2.h"
#include "kernels/x86/requant8_avx2.h"

namespace qforge::kernels::detail {

void DwPlaneConv__avx2(const QConvShape& s, const DwPlane& p, const int32_t* wv, int32_t bias,
                       const DwOutput& o, void* y) {
  const int64_t oh_n = s.out_h(), ow_n = s.out_w(), taps = s.kernel_h * s.kernel_w;
  const Requant8 rq(o.mult, o.zero_point, o.qmin, o.qmax);
  const bool q8 = o.kind != QGemmOutputKind::kInt32;
  // Taps in pairs: offsets of both runs (relative to the output row's first input row) and the
  // two weights as one int32 (low half the first). An odd last tap pairs with weight 0.
  auto tap_off = [&](int64_t t) {
    const int64_t i = t / s.kernel_w, j = t % s.kernel_w, c = j * s.dilation_w;
    return i * s.dilation_h * p.row_len + (c % s.stride_w) * p.phase_len + c / s.stride_w;
  };
  const int64_t pairs = (taps + 1) / 2;
  // On the stack for kernels up to 11 x 11 (this runs once per channel plane: a heap
  // allocation here was a visible share of MobileNetV2's 7 x 7 and 14 x 14 layers).
  constexpr int64_t kStackPairs = 64;
  int64_t off0_s[kStackPairs], off1_s[kStackPairs];
  int32_t wpair_s[kStackPairs];
  std::vector<int64_t> off0_h, off1_h;
  std::vector<int32_t> wpair_h;
  if (pairs > kStackPairs) {
    off0_h.resize(pairs);
    off1_h.resize(pairs);
    wpair_h.resize(pairs);
  }
  int64_t* off0 = pairs > kStackPairs ? off0_h.data() : off0_s;
  int64_t* off1 = pairs > kStackPairs ? off1_h.data() : off1_s;
  int32_t* wpair = pairs > kStackPairs ? wpair_h.data() : wpair_s;
  for (int64_t k = 0; k < pairs; ++k) {
    const int64_t t0 = 2 * k, t1 = std::min(2 * k + 1, taps - 1);
    const int32_t w0 = wv[t0], w1 = 2 * k + 1 < taps ? wv[t1] : 0;  // |w| <= 255: int16
    off0[k] = tap_off(t0);
    off1[k] = tap_off(t1);
    wpair[k] = static_cast<int32_t>((static_cast<uint32_t>(static_cast<uint16_t>(w1)) << 16) |
                                    static_cast<uint16_t>(w0));
  }
  const __m256i vb = _mm256_set1_epi32(bias);
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const int16_t* row = p.data + oh * s.stride_h * p.row_len;
    // Blocks of 16 outputs; the last block may be partial: its extra lanes read inside the
    // plane's slack (the caller allocates 16 int16 past the plane) and are not stored.
    for (int64_t ow = 0; ow < ow_n; ow += 16) {
      // Interleaving two runs per 128-bit lane puts outputs {0-3, 8-11} in lo, {4-7, 12-15} in
      // hi; vpmaddwd then gives x0 w0 + x1 w1 per output, exact in int32.
      __m256i lo = vb, hi = vb;
      for (int64_t k = 0; k < pairs; ++k) {
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + off0[k] + ow));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + off1[k] + ow));
        const __m256i w = _mm256_set1_epi32(wpair[k]);
        lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w));
        hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w));
      }
      const __m256i a0 = _mm256_permute2x128_si256(lo, hi, 0x20);  // outputs 0-7
      const __m256i a1 = _mm256_permute2x128_si256(lo, hi, 0x31);  // outputs 8-15
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

void DeinterleaveRow2__avx2(const void* x, bool is_signed, int32_t zx, int64_t n, int16_t* even,
                            int16_t* odd) {
  const auto* xs = static_cast<const uint8_t*>(x);
  // Per 128-bit lane: even bytes to the low 8, odd bytes to the high 8; then the 64-bit
  // quarters reordered (0, 2, 1, 3) so the low half holds 16 evens, the high half 16 odds.
  const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2,
                                         4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zx));
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_permute4x64_epi64(
        _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xs + i)), split),
        0xD8);
    const __m128i e8 = _mm256_castsi256_si128(v), o8 = _mm256_extracti128_si256(v, 1);
    const __m256i e = is_signed ? _mm256_cvtepi8_epi16(e8) : _mm256_cvtepu8_epi16(e8);
    const __m256i o = is_signed ? _mm256_cvtepi8_epi16(o8) : _mm256_cvtepu8_epi16(o8);
    // |code - zx| <= 255: exact in int16.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(even + i / 2), _mm256_sub_epi16(e, z));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(odd + i / 2), _mm256_sub_epi16(o, z));
  }
  for (; i < n; ++i) {
    const int32_t v = is_signed ? static_cast<int8_t>(xs[i]) : xs[i];
    const int16_t d = static_cast<int16_t>(v - zx);
    if (i % 2)
      odd[i / 2] = d;
    else
      even[i / 2] = d;
  }
}

}  // namespace qforge::kernels::detail
