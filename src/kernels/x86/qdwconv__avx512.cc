// AVX-512 (VNNI) depthwise int8 convolution of one output plane, bit-exact with the scalar and
// AVX2 kernels (qdwconv.cc, qdwconv__avx2.cc): 16 outputs of a row at a time, taps two by two;
// the two taps' runs of int16 inputs (x - zx) are interleaved into 16 int32 lanes (x0, x1) with
// one vpermt2w, and vpdpwssd adds x0 w0 + x1 w1 to each lane. The requantization is the GEMM's
// 16-lane numerics::Requantize (64-bit vpmuldq products, vpsravq), stored with a masked narrow.
//
// Why no sum can clip: the int16 inputs and weights are exact (|x - zx|, |w - zw| <= 255);
// vpdpwssd (the non-saturating form, NOT vpdpwssds) multiplies int16 x int16 exactly, adds the
// pair and the accumulator in int32 with wrap-around: |pair| <= 2 * 65025 and the window sum of
// at most 2^15 products is below 2^31 (qdwconv.h), so nothing wraps except the bias add, which
// is modulo 2^32 exactly like the other kernels.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/x86/qdwconv_avx2.h"

namespace qforge::kernels::detail {

void DwPlaneConv__avx512(const QConvShape& s, const DwPlane& p, const int32_t* wv, int32_t bias,
                         const DwOutput& o, void* y) {
  const int64_t oh_n = s.out_h(), ow_n = s.out_w(), taps = s.kernel_h * s.kernel_w;
  const bool q8 = o.kind != QGemmOutputKind::kInt32;
  auto tap_off = [&](int64_t t) {
    const int64_t i = t / s.kernel_w, j = t % s.kernel_w, c = j * s.dilation_w;
    return i * s.dilation_h * p.row_len + (c % s.stride_w) * p.phase_len + c / s.stride_w;
  };
  // Taps in pairs (an odd last tap pairs with weight 0): both runs' offsets and the two weights
  // as one int32, the first in the low half.
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
  // Lane i of the interleave = (x0[i], x1[i]): words 2i and 2i + 1 take x0[i] and x1[i] (index
  // 32 + i selects the second table).
  alignas(64) int16_t idx[32];
  for (int i = 0; i < 16; ++i) {
    idx[2 * i] = static_cast<int16_t>(i);
    idx[2 * i + 1] = static_cast<int16_t>(32 + i);
  }
  const __m512i perm = _mm512_load_si512(idx);
  // numerics::Requantize: (acc * mantissa + 2^(n-1)) >> n (arithmetic, 64-bit), + zp, clamp.
  const int n = 31 - o.mult.shift;  // 0..62
  const __m512i mant = _mm512_set1_epi64(o.mult.mantissa);
  const __m512i shift = _mm512_set1_epi64(n);
  const __m512i round = _mm512_set1_epi64(n > 0 ? int64_t{1} << (n - 1) : 0);
  const __m512i zp = _mm512_set1_epi64(o.zero_point);
  const __m512i lo = _mm512_set1_epi64(o.qmin), hi = _mm512_set1_epi64(o.qmax);
  const __m512i vb = _mm512_set1_epi32(bias);
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    const int16_t* row = p.data + oh * s.stride_h * p.row_len;
    // Blocks of 16 outputs; a partial last block reads inside the plane's slack (the caller
    // allocates 16 int16 past the plane) and stores only its valid lanes.
    for (int64_t ow = 0; ow < ow_n; ow += 16) {
      __m512i acc = vb;
      for (int64_t k = 0; k < pairs; ++k) {
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + off0[k] + ow));
        const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + off1[k] + ow));
        const __m512i x =
            _mm512_permutex2var_epi16(_mm512_castsi256_si512(x0), perm, _mm512_castsi256_si512(x1));
        acc = _mm512_dpwssd_epi32(acc, x, _mm512_set1_epi32(wpair[k]));
      }
      const int64_t valid = std::min<int64_t>(16, ow_n - ow);
      const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
      const int64_t at = oh * ow_n + ow;
      if (!q8) {
        _mm512_mask_storeu_epi32(static_cast<int32_t*>(y) + at, mask, acc);
        continue;
      }
      __m512i pe = _mm512_mul_epi32(acc, mant);
      __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), mant);
      pe = _mm512_srav_epi64(_mm512_add_epi64(pe, round), shift);
      po = _mm512_srav_epi64(_mm512_add_epi64(po, round), shift);
      pe = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(pe, zp), lo), hi);
      po = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(po, zp), lo), hi);
      const __m512i q = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
      // q is within [qmin, qmax] (inside the 8-bit type): truncation to 8 bits is exact.
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(y) + at, mask, q);
    }
  }
}

}  // namespace qforge::kernels::detail
