// AVX2 int8 add / multiply with requantization and the byte sums of global average pooling,
// bit-exact with the references in kernels/ref/qelementwise_ref.cc.
//
// Why no sum can clip: codes are widened to int32 before any arithmetic (vpmovzxbd /
// vpmovsxbd); add computes (a - za) * ka + (b - zb) * kb with vpmulld, |each term| <= 255 * 2^21,
// |sum| <= 1 069 547 520 < 2^31; mul computes (a - za) * (b - zb), |.| <= 65025. Nothing is
// done in 8 or 16 bits, and no saturating instruction is used before the final clamp.
// Requantization is numerics::Requantize lane by lane: the 64-bit product acc * mantissa
// (vpmuldq, exact), then, since AVX2 has no 64-bit arithmetic shift, the exact unsigned form of
// docs/numerics.md: ((p + 2^(n-1) + 2^62) >>logical n) - 2^(62-n) == (p + 2^(n-1)) >> n, and the
// zero point and clamp in 64 bits. The clamped values fit the output type, so the final byte
// extraction keeps them exactly.
// The sums of global average pooling use vpsadbw (sum of |x - 0| over 8 bytes into 64 bits,
// exact) on uint8 codes; int8 codes are flipped to x + 128 first and 128 * n is subtracted.
#include <immintrin.h>

#include <algorithm>

#include "kernels/x86/qelementwise_avx2.h"
#include "kernels/x86/requant8_avx2.h"

namespace qforge::kernels::detail {

namespace {

inline __m256i Load8(bool is_signed, const void* p, int64_t i, int64_t step) {
  if (step == 0) {
    return _mm256_set1_epi32(is_signed ? static_cast<const int8_t*>(p)[0]
                                       : static_cast<const uint8_t*>(p)[0]);
  }
  const __m128i v =
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(p) + i));
  return is_signed ? _mm256_cvtepi8_epi32(v) : _mm256_cvtepu8_epi32(v);
}

inline void Store8(void* c, int64_t i, __m256i v) { StoreBytes8(static_cast<uint8_t*>(c) + i, v); }

const void* Offset(const void* p, int64_t i) { return static_cast<const uint8_t*>(p) + i; }

}  // namespace

void QAdd__avx2(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                void* c, int64_t n, const QAddParams& p) {
  const Requant8 rq(p.m, p.zc, p.qmin, p.qmax);
  const __m256i za = _mm256_set1_epi32(p.za), zb = _mm256_set1_epi32(p.zb);
  const __m256i ka = _mm256_set1_epi32(p.ka), kb = _mm256_set1_epi32(p.kb);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i va = _mm256_mullo_epi32(_mm256_sub_epi32(Load8(is_signed, a, i, a_step), za), ka);
    const __m256i vb = _mm256_mullo_epi32(_mm256_sub_epi32(Load8(is_signed, b, i, b_step), zb), kb);
    Store8(c, i, rq(_mm256_add_epi32(va, vb)));
  }
  if (i < n) {
    ref::QAdd(is_signed, Offset(a, i * a_step), a_step, Offset(b, i * b_step), b_step,
              static_cast<uint8_t*>(c) + i, n - i, p);
  }
}

void QMul__avx2(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                void* c, int64_t n, const QMulParams& p) {
  const Requant8 rq(p.m, p.zc, p.qmin, p.qmax);
  const __m256i za = _mm256_set1_epi32(p.za), zb = _mm256_set1_epi32(p.zb);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i va = _mm256_sub_epi32(Load8(is_signed, a, i, a_step), za);
    const __m256i vb = _mm256_sub_epi32(Load8(is_signed, b, i, b_step), zb);
    Store8(c, i, rq(_mm256_mullo_epi32(va, vb)));
  }
  if (i < n) {
    ref::QMul(is_signed, Offset(a, i * a_step), a_step, Offset(b, i * b_step), b_step,
              static_cast<uint8_t*>(c) + i, n - i, p);
  }
}

int64_t QSum__avx2(bool is_signed, const void* x, int64_t n) {
  const auto* p = static_cast<const uint8_t*>(x);
  const __m256i flip = _mm256_set1_epi8(is_signed ? static_cast<char>(0x80) : 0);
  __m256i acc = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i v =
        _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)), flip);
    acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, _mm256_setzero_si256()));
  }
  alignas(32) int64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  int64_t sum = lanes[0] + lanes[1] + lanes[2] + lanes[3] - (is_signed ? 128 * i : 0);
  for (; i < n; ++i) sum += is_signed ? static_cast<int8_t>(p[i]) : p[i];
  return sum;
}

void QuantizeRow8__avx2(const float* x, int64_t n, numerics::QuantParams p, int32_t qmin,
                        int32_t qmax, uint8_t* q) {
  // As numerics::QuantizeRun: v = x / s (IEEE division, the same in every lane width), clamped
  // to [qmin - z - 1, qmax - z + 1] (|.| < 2^22, values beyond saturate either way), rounded
  // half to even by (v + 1.5 * 2^23) - 1.5 * 2^23, + z, clamped; NaN gives clamp(z).
  const float lo_f = static_cast<float>(int64_t{qmin} - p.zero_point - 1);
  const float hi_f = static_cast<float>(int64_t{qmax} - p.zero_point + 1);
  const int32_t znan = std::min(std::max(p.zero_point, qmin), qmax);
  const __m256 s = _mm256_set1_ps(p.scale), lo = _mm256_set1_ps(lo_f), hi = _mm256_set1_ps(hi_f);
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256i z = _mm256_set1_epi32(p.zero_point), vmin = _mm256_set1_epi32(qmin),
                vmax = _mm256_set1_epi32(qmax), vnan = _mm256_set1_epi32(znan);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i), s);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // NaN -> lo here, replaced below
    const __m256 r = _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
    __m256i t = _mm256_add_epi32(_mm256_cvttps_epi32(r), z);
    t = _mm256_min_epi32(_mm256_max_epi32(t, vmin), vmax);
    t = _mm256_blendv_epi8(t, vnan, _mm256_castps_si256(nan));
    StoreBytes8(q + i, t);
  }
  for (; i < n; ++i) q[i] = static_cast<uint8_t>(numerics::QuantizeValue(x[i], p, qmin, qmax));
}

}  // namespace qforge::kernels::detail
