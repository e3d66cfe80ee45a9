// AVX-512 (VNNI) channels-last int8 depthwise convolution (multiplier 1), bit-exact with the
// scalar path and ref::QConv: per output row and 16-channel block the tap weights stay in
// registers while the row's pixels stream by, four pixels at a time.
//
// Per tap and pixel: the 16 input codes are widened to int32 lanes (vpmovzxbd / vpmovsxbd) and
// vpdpwssd adds lo16(x) * lo16(w') + hi16(x) * hi16(w') to each lane, where w' = w - zw sits in
// the low half of its int32 lane and the high half is 0: so the lane gains exactly x * w'. The
// input zero point is not subtracted per tap; the bias is folded once per call:
//   acc = (bias - zx * sum_t w'_t) + sum_t x_t w'_t  ==  bias + sum_t (x_t - zx) w'_t  (mod 2^32)
// and a padding tap reads a row of zx codes (it adds zx * w', which the fold cancels, exactly
// as the reference's (zx - zx) * w' = 0).
//
// Why no sum can clip: |x| <= 255 and |w'| <= 255, every product is exact in int32; vpdpwssd is
// the non-saturating form (NOT vpdpwssds): its int32 adds wrap modulo 2^32, like the folded bias.
// All terms are therefore added modulo 2^32, and the value they represent, bias + sum (x - zx) w'
// with |sum| <= 2^15 * 65025 < 2^31 (kH kW <= 2^15), is the reference's int32 result (whose
// bias add wraps the same way). vpmaddubsw is never used.
// Requantization: numerics::Requantize per channel on 16 lanes (64-bit vpmuldq products,
// + 2^(n-1), vpsravq, zero point and clamp in 64 bits), then a truncating narrow of in-range
// values (vpmovdb).
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/x86/qdwconv_avx2.h"

namespace qforge::kernels::detail {

namespace {

// Per 16-channel block: the requantization constants (DwNhwc512::rq's layout).
struct Rq {
  __m512i mant_e, mant_o, sh_e, sh_o, rnd_e, rnd_o;
};

inline Rq LoadRq(const int64_t* t) {
  auto v = [t](int i) { return _mm512_loadu_si512(t + 8 * i); };
  return {v(0), v(1), v(2), v(3), v(4), v(5)};
}

// The 32-bit form for n >= 33 (DwNhwc512::narrow): with p = acc * mantissa, 2^(n-1) is a
// multiple of 2^32, so (p + 2^(n-1)) >> n == ((p >> 32) + 2^(n-33)) >> (n - 32), p >> 32 being
// the high dword of the vpmuldq product (|p >> 32| < 2^30); sh_e holds 2^(n-33) and sh_o
// n - 32 as 16 int32 lanes (channel order), the result stays far inside int32.
// With DwNhwc512::fold_zp, sh_e holds 2^(n-33) + zp 2^(n-32) instead: adding a multiple of
// 2^(n-32) before the floor shift adds exactly zp after it, so the zero point is already in
// (|.| < 2^29 for n - 32 <= 21, no overflow). Returns the value before the clamp.
inline __m512i RequantNarrowHi(__m512i acc, const Rq& q) {
  const __m512i pe = _mm512_mul_epi32(acc, q.mant_e);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), q.mant_o);
  // High dwords of both products: pe's (odd positions) swapped down into the even positions,
  // po's already in the odd positions.
  const __m512i h = _mm512_mask_shuffle_epi32(po, 0x5555, pe, _MM_PERM_CDAB);
  return _mm512_srav_epi32(_mm512_add_epi32(h, q.sh_e), q.sh_o);
}

inline __m512i Requant(__m512i acc, const Rq& q, __m512i zp, __m512i lo, __m512i hi) {
  __m512i pe = _mm512_mul_epi32(acc, q.mant_e);
  __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), q.mant_o);
  pe = _mm512_srav_epi64(_mm512_add_epi64(pe, q.rnd_e), q.sh_e);
  po = _mm512_srav_epi64(_mm512_add_epi64(po, q.rnd_o), q.sh_o);
  pe = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(pe, zp), lo), hi);
  po = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(po, zp), lo), hi);
  return _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

// 16 codes widened to int32 lanes; kFull: all 16 channels valid (a plain load), else masked.
template <bool kSigned, bool kFull>
inline __m512i LoadX(const uint8_t* p, __mmask16 m) {
  const __m128i v =
      kFull ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : _mm_maskz_loadu_epi8(m, p);
  return kSigned ? _mm512_cvtepi8_epi32(v) : _mm512_cvtepu8_epi32(v);
}

// The taps of one output row: tap t reads row trow[t] (an input row, or the zx row) at pixel
// column ow * stride_w + tcol[t].
struct RowTaps {
  const uint8_t* const* trow;
  const int64_t* tcol;
};

// Points trow at the input rows of output row `row`'s kernel rows (the zx row for a padding
// row; tap t of kernel row i is trow[i * kW + j]) and returns the output row.
inline uint8_t* SetRow(const DwNhwc512& a, int64_t row, const uint8_t** trow) {
  const QConvShape& s = *a.shape;
  const int64_t C = s.in_channels, oh_n = s.out_h();
  const int64_t esize = a.kind == QGemmOutputKind::kInt32 ? 4 : 1;
  const int64_t n = row / oh_n, oh = row % oh_n;
  const uint8_t* img = a.x + n * s.in_h * s.in_w * C;
  for (int64_t i = 0; i < s.kernel_h; ++i) {
    const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
    const uint8_t* in = ih >= 0 && ih < s.in_h ? img + ih * s.in_w * C : a.zrow;
    for (int64_t j = 0; j < s.kernel_w; ++j) trow[i * s.kernel_w + j] = in;
  }
  return static_cast<uint8_t*>(a.y) + row * s.out_w() * C * esize;
}

// One 16-channel block (channels c0.., mask m) of output rows. kT > 0: the tap count known
// at compile time (weights kept in registers); 0: a.taps, weights read from memory. kS > 0: the
// kernel is 3 x 3 (kT == 9), undilated along the row, with stride kS along the row. kFull: all
// 16 channels of the block exist (m is all ones): plain loads and stores.
template <int kT, bool kSigned, int kS, bool kFull>
//
// Output rows i < nrows (row i: taps trows[i * taps ..], output yrows[i]) in turn: the weights
// and constants are loaded once for all of them.
void RowBlock(const DwNhwc512& a, const uint8_t* const* trows, const int64_t* tcol,
              uint8_t* const* yrows, int64_t nrows, int64_t c0, __mmask16 m) {
  const QConvShape& s = *a.shape;
  const int64_t taps = kT > 0 ? kT : a.taps, C = s.in_channels, Cp = a.padded_channels;
  const int64_t ow_n = s.out_w(), sw = s.stride_w, step = sw * C;
  __m512i wr[kT > 0 ? kT : 1];
  if constexpr (kT > 0)
    for (int t = 0; t < kT; ++t) wr[t] = _mm512_loadu_si512(a.w + t * Cp + c0);
  auto weight = [&](int64_t t) {
    if constexpr (kT > 0)
      return wr[t];
    else
      return _mm512_loadu_si512(a.w + t * Cp + c0);
  };
  const __m512i vb = _mm512_loadu_si512(a.bias + c0);
  const bool q8 = a.kind != QGemmOutputKind::kInt32;
  Rq q{};
  if (q8) q = LoadRq(a.rq + c0 / 16 * 48);
  const __m512i zp = _mm512_set1_epi64(a.zero_point);
  const __m512i lo = _mm512_set1_epi64(a.qmin), hi = _mm512_set1_epi64(a.qmax);
  const __m512i zp32 = _mm512_set1_epi32(a.zero_point);
  const __m512i lo32 = _mm512_set1_epi32(a.qmin), hi32 = _mm512_set1_epi32(a.qmax);
  const int64_t esize = q8 ? 1 : 4;
  const bool narrow = a.narrow, fold_zp = a.fold_zp;
  // The clamp is the 8-bit type's whole range: a saturating narrow is the clamp (uint8 after
  // max(., 0), as vpmovusdb reads the lanes as unsigned).
  const bool sat_u8 = a.kind == QGemmOutputKind::kUint8 && a.qmin == 0 && a.qmax == 255;
  const bool sat_s8 = a.kind == QGemmOutputKind::kInt8 && a.qmin == -128 && a.qmax == 127;
  uint8_t* yrow = nullptr;  // the current output row
  auto store = [&](int64_t ow, __m512i acc) {
    uint8_t* yp = yrow + (ow * C + c0) * esize;
    // The requantized values are within [qmin, qmax] (the 8-bit type): vpmovdb keeps them.
    // (Narrowed in a register and stored as bytes: the masked vpmovdb store is slow on AMD.)
    if (!q8) {
      _mm512_mask_storeu_epi32(yp, m, acc);
      return;
    }
    __m128i v;
    if (narrow) {
      __m512i h = RequantNarrowHi(acc, q);
      if (!fold_zp) h = _mm512_add_epi32(h, zp32);
      if (sat_u8)
        v = _mm512_cvtusepi32_epi8(_mm512_max_epi32(h, _mm512_setzero_si512()));
      else if (sat_s8)
        v = _mm512_cvtsepi32_epi8(h);
      else
        v = _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(h, lo32), hi32));
    } else {
      v = _mm512_cvtepi32_epi8(Requant(acc, q, zp, lo, hi));
    }
    if constexpr (kFull)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(yp), v);
    else
      _mm_mask_storeu_epi8(yp, m, v);
  };
  RowTaps r{trows, tcol};  // the current row's taps
  // A pixel whose taps may fall into the left / right padding: checked per tap (three chains).
  auto border = [&](int64_t ow) {
    __m512i acc0 = vb, acc1 = _mm512_setzero_si512(), acc2 = _mm512_setzero_si512();
    for (int64_t t = 0; t < taps; ++t) {
      const int64_t iw = ow * sw + r.tcol[t];
      const uint8_t* p = iw >= 0 && iw < s.in_w ? r.trow[t] + iw * C : a.zrow;
      const __m512i x = LoadX<kSigned, kFull>(p + c0, m);
      if (t % 3 == 0)
        acc0 = _mm512_dpwssd_epi32(acc0, x, weight(t));
      else if (t % 3 == 1)
        acc1 = _mm512_dpwssd_epi32(acc1, x, weight(t));
      else
        acc2 = _mm512_dpwssd_epi32(acc2, x, weight(t));
    }
    store(ow, _mm512_add_epi32(acc0, _mm512_add_epi32(acc1, acc2)));
  };
  for (int64_t row = 0; row < nrows; ++row) {
    r.trow = trows + row * taps;
    yrow = yrows[row];
    const int64_t ow_lo = std::min(a.ow_lo, ow_n), ow_hi = a.ow_hi;
    int64_t ow = 0;
    for (; ow < ow_lo; ++ow) border(ow);
    // Interior with a 3-wide kernel row of stride kS: eight pixels at a time. Per kernel row the
    // (8 - 1) kS + 3 input pixels the eight windows cover are widened once each (10 for stride 1,
    // 17 for stride 2, instead of 24) and each feeds every window that contains it; per kernel
    // column the eight accumulators are independent chains. The same terms as below, added in
    // another order: int32 adds modulo 2^32 do not depend on the order.
    if constexpr (kS > 0) {
      static_assert(kT == 9, "the kS path is the 3 x 3 kernel");
      constexpr int kIn = 7 * kS + 3;
      for (; ow + 8 <= ow_hi; ow += 8) {
        __m512i acc[8];
#pragma GCC unroll 8
        for (int o = 0; o < 8; ++o) acc[o] = vb;
#pragma GCC unroll 3
        for (int i = 0; i < 3; ++i) {
          const uint8_t* p = r.trow[3 * i] + ((ow * kS + r.tcol[3 * i]) * C + c0);
          __m512i x[kIn];
#pragma GCC unroll 17
          for (int k = 0; k < kIn; ++k) x[k] = LoadX<kSigned, kFull>(p + k * C, m);
#pragma GCC unroll 3
          for (int j = 0; j < 3; ++j) {
#pragma GCC unroll 8
            for (int o = 0; o < 8; ++o)
              acc[o] = _mm512_dpwssd_epi32(acc[o], x[o * kS + j], wr[3 * i + j]);
          }
        }
#pragma GCC unroll 8
        for (int o = 0; o < 8; ++o) store(ow + o, acc[o]);
      }
    }
    // Interior: every tap inside the row; four pixels (eight accumulator chains) at a time.
    for (; ow + 4 <= ow_hi; ow += 4) {
      __m512i a0 = vb, a1 = vb, a2 = vb, a3 = vb;
      __m512i b0 = _mm512_setzero_si512(), b1 = b0, b2 = b0, b3 = b0;
      const int64_t pix = ow * step + c0;
      for (int64_t t = 0; t < taps; t += 2) {
        const uint8_t* p = r.trow[t] + (r.tcol[t] * C + pix);
        const __m512i w0 = weight(t);
        a0 = _mm512_dpwssd_epi32(a0, LoadX<kSigned, kFull>(p, m), w0);
        a1 = _mm512_dpwssd_epi32(a1, LoadX<kSigned, kFull>(p + step, m), w0);
        a2 = _mm512_dpwssd_epi32(a2, LoadX<kSigned, kFull>(p + 2 * step, m), w0);
        a3 = _mm512_dpwssd_epi32(a3, LoadX<kSigned, kFull>(p + 3 * step, m), w0);
        if (t + 1 < taps) {
          const uint8_t* p1 = r.trow[t + 1] + (r.tcol[t + 1] * C + pix);
          const __m512i w1 = weight(t + 1);
          b0 = _mm512_dpwssd_epi32(b0, LoadX<kSigned, kFull>(p1, m), w1);
          b1 = _mm512_dpwssd_epi32(b1, LoadX<kSigned, kFull>(p1 + step, m), w1);
          b2 = _mm512_dpwssd_epi32(b2, LoadX<kSigned, kFull>(p1 + 2 * step, m), w1);
          b3 = _mm512_dpwssd_epi32(b3, LoadX<kSigned, kFull>(p1 + 3 * step, m), w1);
        }
      }
      store(ow, _mm512_add_epi32(a0, b0));
      store(ow + 1, _mm512_add_epi32(a1, b1));
      store(ow + 2, _mm512_add_epi32(a2, b2));
      store(ow + 3, _mm512_add_epi32(a3, b3));
    }
    for (; ow < ow_hi; ++ow) {
      __m512i acc0 = vb, acc1 = _mm512_setzero_si512();
      const int64_t pix = ow * step + c0;
      for (int64_t t = 0; t < taps; ++t) {
        const __m512i x = LoadX<kSigned, kFull>(r.trow[t] + (r.tcol[t] * C + pix), m);
        if (t % 2 == 0)
          acc0 = _mm512_dpwssd_epi32(acc0, x, weight(t));
        else
          acc1 = _mm512_dpwssd_epi32(acc1, x, weight(t));
      }
      store(ow, _mm512_add_epi32(acc0, acc1));
    }
    for (ow = std::max(ow, ow_lo); ow < ow_n; ++ow) border(ow);
  }
}

template <int kT, bool kSigned, int kS = 0>
void Rows(const DwNhwc512& a, int64_t r_begin, int64_t r_end) {
  const QConvShape& s = *a.shape;
  const int64_t C = s.in_channels, taps = s.kernel_h * s.kernel_w;
  constexpr int64_t kGroup = 4;
  std::vector<const uint8_t*> trows(kGroup * taps);
  uint8_t* yrows[kGroup];
  std::vector<int64_t> tcol(taps);
  for (int64_t i = 0; i < s.kernel_h; ++i)
    for (int64_t j = 0; j < s.kernel_w; ++j)
      tcol[i * s.kernel_w + j] = j * s.dilation_w - s.pad_left;
  // Groups of four output rows, all channel blocks of a group in turn: a block's weights and
  // constants are loaded once per group, and the group's input rows stay in L1 / L2.
  for (int64_t g = r_begin; g < r_end; g += kGroup) {
    const int64_t nrows = std::min(r_end - g, kGroup);
    for (int64_t i = 0; i < nrows; ++i) yrows[i] = SetRow(a, g + i, trows.data() + i * taps);
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
      const int64_t valid = std::min<int64_t>(16, C - c0);
      const auto m = static_cast<__mmask16>((1u << valid) - 1);
      if (valid == 16)
        RowBlock<kT, kSigned, kS, true>(a, trows.data(), tcol.data(), yrows, nrows, c0, m);
      else
        RowBlock<kT, kSigned, kS, false>(a, trows.data(), tcol.data(), yrows, nrows, c0, m);
    }
  }
}

}  // namespace

void DwNhwcRows__avx512(const DwNhwc512& a, int64_t r_begin, int64_t r_end) {
  const QConvShape& s = *a.shape;
  const int64_t taps = s.kernel_h * s.kernel_w;
  const bool k3x3 = s.kernel_h == 3 && s.kernel_w == 3 && s.dilation_w == 1;
  if (k3x3 && s.stride_w == 1)
    a.is_signed ? Rows<9, true, 1>(a, r_begin, r_end) : Rows<9, false, 1>(a, r_begin, r_end);
  else if (k3x3 && s.stride_w == 2)
    a.is_signed ? Rows<9, true, 2>(a, r_begin, r_end) : Rows<9, false, 2>(a, r_begin, r_end);
  else if (taps == 9)
    a.is_signed ? Rows<9, true>(a, r_begin, r_end) : Rows<9, false>(a, r_begin, r_end);
  else
    a.is_signed ? Rows<0, true>(a, r_begin, r_end) : Rows<0, false>(a, r_begin, r_end);
}

}  // namespace qforge::kernels::detail
