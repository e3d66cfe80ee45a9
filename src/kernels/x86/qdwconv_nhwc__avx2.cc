// AVX2 channels-last int8 depthwise convolution: 16 channels per step, two taps at a time as
// int16 (x - zx) pairs against (w - zw) pairs in vpmaddwd, per-channel requantization.
//
// Why no sum can clip: x - zx and w - zw are in [-255, 255] (int16, exact), each vpmaddwd lane
// is x_a w_a + x_b w_b <= 2 * 65025 < 2^31 (no saturation: vpmaddwd only saturates for
// -32768 * -32768 pairs), the kH * kW <= 2^15 products of a channel sum below 2^31, and adding
// the bias wraps modulo 2^32 like QGemm (vpaddd). vpmaddubsw is never used.
#include <immintrin.h>

#include "kernels/x86/qdwconv_avx2.h"
#include "kernels/x86/requant8_avx2.h"

namespace qforge::kernels::detail {

namespace {

// 16 codes as int16 x - zx.
inline __m256i Load16(const uint8_t* p, bool is_signed, __m256i zx) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_sub_epi16(is_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v), zx);
}

// Requantize 8 int32 lanes of channels c.. c + 7 with the per-channel table (8 x 4 int64:
// mantissa even/odd, n even/odd, 2^(n-1) + 2^62 even/odd, 2^(62-n) even/odd; lane l of the
// even (odd) vectors is channel c + 2l (c + 2l + 1)): requant8_avx2.h's formula per lane.
inline __m256i RequantLanes(__m256i acc, const int64_t* t, __m256i zp, __m256i lo, __m256i hi) {
  auto v = [t](int i) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t + 4 * i)); };
  __m256i pe = _mm256_mul_epi32(acc, v(0));
  __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), v(1));
  pe = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(pe, v(4)), v(2)), v(6));
  po = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(po, v(5)), v(3)), v(7));
  pe = Requant8::Clamp64(_mm256_add_epi64(pe, zp), lo, hi);
  po = Requant8::Clamp64(_mm256_add_epi64(po, zp), lo, hi);
  return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

}  // namespace

void DwNhwcPixel__avx2(const DwNhwc& a, const uint8_t* const* tap, void* y) {
  const int64_t blocks = a.channels / 16;
  const __m256i zx = _mm256_set1_epi16(static_cast<int16_t>(a.zx));
  const __m256i zp = _mm256_set1_epi64x(a.zero_point);
  const __m256i lo = _mm256_set1_epi64x(a.qmin), hi = _mm256_set1_epi64x(a.qmax);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * 16;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int64_t p = 0; p < a.pairs; ++p) {
      const __m256i xa = Load16(tap[2 * p] + c0, a.is_signed, zx);
      const __m256i xb = Load16(tap[2 * p + 1] + c0, a.is_signed, zx);
      const int16_t* w = a.w + (p * blocks + b) * 32;
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), w0));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), w1));
    }
    // acc0 = channels {0..3, 8..11}, acc1 = {4..7, 12..15}: back to 0..7 and 8..15.
    __m256i r0 = _mm256_permute2x128_si256(acc0, acc1, 0x20);
    __m256i r1 = _mm256_permute2x128_si256(acc0, acc1, 0x31);
    r0 = _mm256_add_epi32(r0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + c0)));
    r1 =
        _mm256_add_epi32(r1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.bias + c0 + 8)));
    if (a.kind == QGemmOutputKind::kInt32) {
      auto* o = static_cast<int32_t*>(y) + c0;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), r0);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 8), r1);
      continue;
    }
    auto* o = static_cast<uint8_t*>(y) + c0;
    StoreBytes8(o, RequantLanes(r0, a.rq + c0 / 8 * 32, zp, lo, hi));
    StoreBytes8(o + 8, RequantLanes(r1, a.rq + (c0 / 8 + 1) * 32, zp, lo, hi));
  }
}

}  // namespace qforge::kernels::detail
