// AVX-512 int8 add / multiply with requantization, 16 elements per step, bit-exact with the
// references in kernels/ref/qelementwise_ref.cc and the AVX2 kernels.
//
// Why no sum can clip: codes are widened to int32 (vpmovzxbd / vpmovsxbd) before any
// arithmetic. Add computes a * ka + b * kb - (za * ka + zb * kb) with vpmulld / vpaddd, which
// wrap modulo 2^32; the value they represent is (a - za) * ka + (b - zb) * kb, at most
// 2 * 255 * 2^21 = 1 069 547 520 < 2^31 in magnitude (qelementwise.h), so the wrapped int32 sum
// is that exact value. Mul computes (a - za) * (b - zb), |.| <= 65025. Nothing is done in 8 or
// 16 bits and no saturating instruction is used before the final clamp.
// Requantization is numerics::Requantize on 16 lanes: p = acc * mantissa in 64 bits (vpmuldq,
// exact). When n = 31 - shift >= 33 (QAdd's multiplier s_max 2^-21 / s_c always, in practice),
// 2^(n-1) is a multiple of 2^32 and (p + 2^(n-1)) >> n == ((p >> 32) + 2^(n-33)) >> (n - 32)
// with p >> 32 the high dword of the product (|p >> 32| < 2^30), all in int32 lanes; otherwise
// the 64-bit form (+ 2^(n-1), vpsravq). Then the zero point and the clamp (64-bit in the
// general form), and the in-range values are narrowed by truncation (vpmovdb).
#include <immintrin.h>

#include <algorithm>

#include "kernels/x86/qelementwise_avx2.h"

namespace qforge::kernels::detail {

namespace {

template <bool kSigned>
inline __m512i Load16(const void* p, int64_t i, int64_t step) {
  if (step == 0) {
    return _mm512_set1_epi32(kSigned ? static_cast<const int8_t*>(p)[0]
                                     : static_cast<const uint8_t*>(p)[0]);
  }
  const __m128i v =
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(p) + i));
  return kSigned ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

// numerics::Requantize(acc, m, zp, qmin, qmax) on 16 lanes, as 16 in-range int32.
struct Requant16 {
  bool narrow;  // n >= 33: the 32-bit form
  __m512i mant, zp32, lo32, hi32;
  __m512i round64, shift64, zp64, lo64, hi64;  // the 64-bit form
  __m512i round32;
  __m128i shift32;

  Requant16(numerics::FixedMultiplier m, int32_t zp, int32_t qmin, int32_t qmax) {
    const int n = 31 - m.shift;  // 0..62
    narrow = n >= 33;
    mant = _mm512_set1_epi64(m.mantissa);
    zp32 = _mm512_set1_epi32(zp);
    lo32 = _mm512_set1_epi32(qmin);
    hi32 = _mm512_set1_epi32(qmax);
    round64 = _mm512_set1_epi64(n > 0 ? int64_t{1} << (n - 1) : 0);
    shift64 = _mm512_set1_epi64(n);
    zp64 = _mm512_set1_epi64(zp);
    lo64 = _mm512_set1_epi64(qmin);
    hi64 = _mm512_set1_epi64(qmax);
    round32 = _mm512_set1_epi32(narrow ? int32_t{1} << (n - 33) : 0);
    shift32 = _mm_cvtsi32_si128(narrow ? n - 32 : 0);
  }

  __m512i operator()(__m512i acc) const {
    const __m512i pe = _mm512_mul_epi32(acc, mant);
    const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), mant);
    if (narrow) {
      // High dwords: lane 2k from pe's element k, lane 2k + 1 from po's.
      __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
      h = _mm512_sra_epi32(_mm512_add_epi32(h, round32), shift32);  // |h| < 2^30
      return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(h, zp32), lo32), hi32);
    }
    __m512i e = _mm512_srav_epi64(_mm512_add_epi64(pe, round64), shift64);
    __m512i o = _mm512_srav_epi64(_mm512_add_epi64(po, round64), shift64);
    e = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(e, zp64), lo64), hi64);
    o = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(o, zp64), lo64), hi64);
    return _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32));
  }
};

inline void Store16(void* c, int64_t i, __m512i v) {
  // v is within [qmin, qmax] (inside the 8-bit type): truncation keeps it exactly.
  _mm_storeu_si128(reinterpret_cast<__m128i*>(static_cast<uint8_t*>(c) + i),
                   _mm512_cvtepi32_epi8(v));
}

const void* Offset(const void* p, int64_t i) { return static_cast<const uint8_t*>(p) + i; }

template <bool kSigned>
void Add(const void* a, int64_t a_step, const void* b, int64_t b_step, void* c, int64_t n,
         const QAddParams& p, int64_t& done) {
  const Requant16 rq(p.m, p.zc, p.qmin, p.qmax);
  const __m512i ka = _mm512_set1_epi32(p.ka), kb = _mm512_set1_epi32(p.kb);
  // -(za * ka + zb * kb) modulo 2^32 (see the file comment).
  const auto fold =
      static_cast<int32_t>(0u - (static_cast<uint32_t>(p.za) * static_cast<uint32_t>(p.ka) +
                                 static_cast<uint32_t>(p.zb) * static_cast<uint32_t>(p.kb)));
  const __m512i vf = _mm512_set1_epi32(fold);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i va = _mm512_mullo_epi32(Load16<kSigned>(a, i, a_step), ka);
    const __m512i vb = _mm512_mullo_epi32(Load16<kSigned>(b, i, b_step), kb);
    Store16(c, i, rq(_mm512_add_epi32(_mm512_add_epi32(va, vb), vf)));
  }
  done = i;
}

template <bool kSigned>
void Mul(const void* a, int64_t a_step, const void* b, int64_t b_step, void* c, int64_t n,
         const QMulParams& p, int64_t& done) {
  const Requant16 rq(p.m, p.zc, p.qmin, p.qmax);
  const __m512i za = _mm512_set1_epi32(p.za), zb = _mm512_set1_epi32(p.zb);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i va = _mm512_sub_epi32(Load16<kSigned>(a, i, a_step), za);
    const __m512i vb = _mm512_sub_epi32(Load16<kSigned>(b, i, b_step), zb);
    Store16(c, i, rq(_mm512_mullo_epi32(va, vb)));
  }
  done = i;
}

}  // namespace

void QAdd__avx512(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                  void* c, int64_t n, const QAddParams& p) {
  int64_t i = 0;
  if (is_signed)
    Add<true>(a, a_step, b, b_step, c, n, p, i);
  else
    Add<false>(a, a_step, b, b_step, c, n, p, i);
  if (i < n) {
    ref::QAdd(is_signed, Offset(a, i * a_step), a_step, Offset(b, i * b_step), b_step,
              static_cast<uint8_t*>(c) + i, n - i, p);
  }
}

void QMul__avx512(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
                  void* c, int64_t n, const QMulParams& p) {
  int64_t i = 0;
  if (is_signed)
    Mul<true>(a, a_step, b, b_step, c, n, p, i);
  else
    Mul<false>(a, a_step, b, b_step, c, n, p, i);
  if (i < n) {
    ref::QMul(is_signed, Offset(a, i * a_step), a_step, Offset(b, i * b_step), b_step,
              static_cast<uint8_t*>(c) + i, n - i, p);
  }
}

namespace {

// numerics::QuantizeValue on 16 lanes, the steps of QuantizeRow8__avx2: v = x / s (IEEE
// division), clamped to [qmin - z - 1, qmax - z + 1] (|.| < 2^22; values beyond saturate either
// way), rounded half to even by (v + 1.5 * 2^23) - 1.5 * 2^23, + z, clamped; NaN gives clamp(z).
// The codes come back as int32 lanes in [qmin, qmax].
struct Quantize16 {
  __m512 s, lo, hi, magic;
  __m512i z, vmin, vmax, vnan;
  Quantize16(numerics::QuantParams p, int32_t qmin, int32_t qmax) {
    s = _mm512_set1_ps(p.scale);
    lo = _mm512_set1_ps(static_cast<float>(int64_t{qmin} - p.zero_point - 1));
    hi = _mm512_set1_ps(static_cast<float>(int64_t{qmax} - p.zero_point + 1));
    magic = _mm512_set1_ps(12582912.0f);
    z = _mm512_set1_epi32(p.zero_point);
    vmin = _mm512_set1_epi32(qmin);
    vmax = _mm512_set1_epi32(qmax);
    vnan = _mm512_set1_epi32(std::min(std::max(p.zero_point, qmin), qmax));
  }
  __m512i operator()(const float* x) const {
    __m512 v = _mm512_div_ps(_mm512_loadu_ps(x), s);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);  // NaN -> lo here, replaced below
    const __m512 r = _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
    __m512i t = _mm512_add_epi32(_mm512_cvttps_epi32(r), z);
    t = _mm512_min_epi32(_mm512_max_epi32(t, vmin), vmax);
    return _mm512_mask_mov_epi32(t, nan, vnan);
  }
};

}  // namespace

void QuantizeToNhwc__avx512(const float* x, int64_t channels, int64_t pixels, int64_t p0,
                            int64_t p1, numerics::QuantParams p, int32_t qmin, int32_t qmax,
                            uint8_t* y) {
  const Quantize16 q(p, qmin, qmax);
  const int64_t C = channels;
  // C = 3: each 128-bit lane holds 4 pixels as dwords [c0 c1 c2 0]; vpshufb packs their 12
  // bytes to the front of the lane, vpermd gathers the four 12-byte runs into 48 bytes.
  const __m512i pack3 =
      _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
  const __m512i gather3 = _mm512_setr_epi32(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0);
  const __m512i byte = _mm512_set1_epi32(0xFF);
  int64_t i = p0;
  for (; i + 16 <= p1; i += 16) {
    // Lane j: the codes of pixel i + j, channel c in byte c (int8 codes as their bit patterns).
    __m512i v = _mm512_and_si512(q(x + i), byte);
    for (int64_t c = 1; c < C; ++c)
      v = _mm512_or_si512(v,
                          _mm512_slli_epi32(_mm512_and_si512(q(x + c * pixels + i), byte), 8 * c));
    uint8_t* out = y + i * C;
    switch (C) {
      case 1:
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(v));
        break;
      case 2:
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(v));
        break;
      case 3:
        _mm512_mask_storeu_epi32(out, 0x0FFF,
                                 _mm512_permutexvar_epi32(gather3, _mm512_shuffle_epi8(v, pack3)));
        break;
      default:
        _mm512_storeu_si512(out, v);
    }
  }
  for (; i < p1; ++i)
    for (int64_t c = 0; c < C; ++c)
      y[i * C + c] =
          static_cast<uint8_t>(numerics::QuantizeValue(x[c * pixels + i], p, qmin, qmax));
}

}  // namespace qforge::kernels::detail
