// Internal, AVX2 only (include from *__avx2.cc files): numerics::Requantize on 8 int32 lanes
// with one multiplier, and storing 8 in-range lanes as bytes.
//
// 64-bit products acc * mantissa (vpmuldq, exact); AVX2 has no 64-bit arithmetic shift, so the
// exact unsigned form of docs/numerics.md is used: ((p + 2^(n-1) + 2^62) >>logical n) -
// 2^(62-n) == (p + 2^(n-1)) >> n for |p| < 2^62, n = 31 - shift in [0, 62]; then the zero point
// and the clamp in 64 bits.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "qforge/numerics/requantize.h"

namespace qforge::kernels::detail {

struct Requant8 {
  __m256i mant, shift, round, bias, zp, lo, hi;

  Requant8(numerics::FixedMultiplier m, int32_t zc, int32_t qmin, int32_t qmax) {
    const int n = 31 - m.shift;  // 0..62
    mant = _mm256_set1_epi64x(m.mantissa);
    shift = _mm256_set1_epi64x(n);
    round = _mm256_set1_epi64x((n > 0 ? int64_t{1} << (n - 1) : 0) + (int64_t{1} << 62));
    bias = _mm256_set1_epi64x(int64_t{1} << (62 - n));
    zp = _mm256_set1_epi64x(zc);
    lo = _mm256_set1_epi64x(qmin);
    hi = _mm256_set1_epi64x(qmax);
  }

  static __m256i Clamp64(__m256i v, __m256i lo, __m256i hi) {
    v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
    return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
  }

  __m256i operator()(__m256i acc) const {
    __m256i pe = _mm256_mul_epi32(acc, mant);
    __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), mant);
    pe = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(pe, round), shift), bias);
    po = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(po, round), shift), bias);
    pe = Clamp64(_mm256_add_epi64(pe, zp), lo, hi);
    po = Clamp64(_mm256_add_epi64(po, zp), lo, hi);
    return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
  }
};

// The low byte of each of 8 int32 lanes (each already within the output type's range).
inline void StoreBytes8(void* c, __m256i v) {
  const __m256i mask =
      _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1,
                       -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i t = _mm256_shuffle_epi8(v, mask);
  const __m128i r = _mm_unpacklo_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(c), r);
}

}  // namespace qforge::kernels::detail
