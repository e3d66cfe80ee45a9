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

}  // namespace qforge::kernels::detail
