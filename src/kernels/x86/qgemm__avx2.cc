// int8 GEMM panel kernel for AVX2: a 4 x 8 tile of int32 accumulators fed by vpmaddwd on int16.
//
// Packed B layout (PackedQGemmB with QGemmKernel::kAvx2): panels of NR = 8 columns; panel p
// holds Kpad / 4 quads of 4 consecutive k; a quad is 8 columns x 4 int16 (sign-extended int8)
// = 64 bytes: int16 element (q * 8 + j) * 4 + i is B[4q + i, 8p + j]. Columns >= N and k >= K
// are zero. A is not packed: the staged A' (int16, zero-extended uint8, rows of Kpad, see
// qgemm_ukernel.h) is read in place; each row contributes 4 int16 (8 bytes) per quad, broadcast
// to the four 64-bit lanes. vpmaddwd then gives, for columns j..j+3 of one B vector, the two
// partial sums (k 0-1 and k 2-3) of each column in adjacent int32 lanes; one vphaddd per tile
// at the end adds each pair.
//
// Why no sum can clip: AVX2's only 8-bit multiply-add, vpmaddubsw, adds two uint8 x int8
// products in int16 with saturation (2 * 255 * 127 = 64770 > 32767), so it is NOT used. Both
// operands are widened to int16 instead (A' in [0, 255], B in [-128, 127]) and vpmaddwd
// multiplies int16 x int16 exactly into 32 bits and adds the pair in int32: |pair| <= 2 * 255 *
// 128 = 65280. Accumulation is vpaddd in int32: after K <= 2^15 terms |acc| <= 255 * 128 * 2^15
// < 2^30. The corrections (col_offset, zb * rowsum) are added modulo 2^32 and the exact total
// fits in int32 (qgemm.h), so the result is exact. Requantization is numerics::Requantize lane
// by lane: 64-bit product (vpmuldq, exact) and, since AVX2 has no 64-bit arithmetic shift, the
// exact unsigned formulation of docs/numerics.md: u = p + 2^(n-1) + 2^62 (in [0, 2^64)), then
// (u >>logical n) - 2^(62-n) == (p + 2^(n-1)) >> n; + zero point and clamp in 64 bits. When
// every column has n >= 33 (multipliers below 1/4) the same value comes from the high 32 bits of
// the product with 32-bit operations (RequantizeHi8; the proof is at RequantizeHi in
// qgemm__avx512.cc).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/x86/qgemm_ukernel.h"

namespace qforge::kernels::detail {

namespace {

constexpr int kMr = kQAvx2Mr, kNr = kQAvx2Nr;

struct ColumnConsts {
  __m256i offset, zb;
  __m256i mant_even, mant_odd, shift_even, shift_odd, round_even, round_odd, bias_even, bias_odd;
  __m256i shift_hi, round_hi;  // requant_hi: n - 32 and 2^(n-33) in 32-bit lanes
  __m256 scale, float_bias;
  int valid;
};

ColumnConsts LoadColumns(const QGemmCall& call, int64_t n0, int valid) {
  ColumnConsts cc{};
  cc.valid = valid;
  cc.offset = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(call.col_offset + n0));
  cc.zb = call.col_zb ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(call.col_zb + n0))
                      : _mm256_setzero_si256();
  if (call.kind == QGemmOutputKind::kUint8 || call.kind == QGemmOutputKind::kInt8) {
    const __m256i low32 = _mm256_set1_epi64x(0xFFFFFFFF);
    const __m256i mant = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(call.mantissa + n0));
    const __m256i shift = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(call.rshift + n0));
    cc.mant_even = mant;
    cc.mant_odd = _mm256_srli_epi64(mant, 32);
    cc.shift_even = _mm256_and_si256(shift, low32);
    cc.shift_odd = _mm256_srli_epi64(shift, 32);
    const __m256i one = _mm256_set1_epi64x(1);
    const __m256i c62 = _mm256_set1_epi64x(62);
    // 2^(n-1) (0 for n = 0: count -1 is >= 64 as unsigned) plus the 2^62 that makes u >= 0.
    const __m256i two62 = _mm256_set1_epi64x(int64_t{1} << 62);
    cc.round_even =
        _mm256_add_epi64(_mm256_sllv_epi64(one, _mm256_sub_epi64(cc.shift_even, one)), two62);
    cc.round_odd =
        _mm256_add_epi64(_mm256_sllv_epi64(one, _mm256_sub_epi64(cc.shift_odd, one)), two62);
    cc.bias_even = _mm256_sllv_epi64(one, _mm256_sub_epi64(c62, cc.shift_even));  // 2^(62-n)
    cc.bias_odd = _mm256_sllv_epi64(one, _mm256_sub_epi64(c62, cc.shift_odd));
    if (call.requant_hi) {  // every n >= 33 (qgemm_ukernel.h)
      cc.shift_hi = _mm256_sub_epi32(shift, _mm256_set1_epi32(32));
      cc.round_hi =
          _mm256_sllv_epi32(_mm256_set1_epi32(1), _mm256_sub_epi32(shift, _mm256_set1_epi32(33)));
    }
  } else if (call.kind == QGemmOutputKind::kFloat) {
    cc.scale = _mm256_loadu_ps(call.scale + n0);
    cc.float_bias = call.float_bias ? _mm256_loadu_ps(call.float_bias + n0) : _mm256_setzero_ps();
  }
  return cc;
}

inline __m256i Clamp64(__m256i v, __m256i lo, __m256i hi) {
  v = _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi));
  return _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
}

// numerics::Requantize on 8 lanes (see the file comment).
__attribute__((always_inline)) inline __m256i Requantize8(__m256i acc, const ColumnConsts& cc,
                                                          __m256i zp, __m256i lo, __m256i hi) {
  __m256i pe = _mm256_mul_epi32(acc, cc.mant_even);
  __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), cc.mant_odd);
  pe = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(pe, cc.round_even), cc.shift_even),
                        cc.bias_even);
  po = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(po, cc.round_odd), cc.shift_odd),
                        cc.bias_odd);
  pe = Clamp64(_mm256_add_epi64(pe, zp), lo, hi);
  po = Clamp64(_mm256_add_epi64(po, zp), lo, hi);
  return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

// numerics::Requantize on 8 lanes when every n >= 33: ((p >> 32) + 2^(n-33)) >> (n - 32), all
// in int32 (exact; see RequantizeHi in qgemm__avx512.cc).
__attribute__((always_inline)) inline __m256i RequantizeHi8(__m256i acc, const ColumnConsts& cc,
                                                            __m256i zp, __m256i lo, __m256i hi) {
  const __m256i pe = _mm256_mul_epi32(acc, cc.mant_even);
  const __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), cc.mant_odd);
  // High dwords: pe's swapped down into the even positions, po's already in the odd ones.
  const __m256i h = _mm256_blend_epi32(_mm256_shuffle_epi32(pe, 0xB1), po, 0xAA);
  const __m256i r = _mm256_srav_epi32(_mm256_add_epi32(h, cc.round_hi), cc.shift_hi);
  return _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r, zp), lo), hi);
}

inline __m256i LaneMask(int valid) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), idx);
}

// Adds the corrections to the 8-column accumulator of row m and stores the valid columns.
__attribute__((always_inline)) inline void StoreRow(const QGemmCall& call, const ColumnConsts& cc,
                                                    __m256i acc, int64_t m, int64_t n0) {
  acc = _mm256_add_epi32(acc, cc.offset);
  if (call.col_zb) {
    acc = _mm256_sub_epi32(acc, _mm256_mullo_epi32(cc.zb, _mm256_set1_epi32(call.row_sums[m])));
  }
  const int64_t at = m * call.ldc + n0;
  switch (call.kind) {
    case QGemmOutputKind::kInt32: {
      auto* dst = static_cast<int32_t*>(call.c) + at;
      if (cc.valid == kNr) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), acc);
      } else {
        _mm256_maskstore_epi32(dst, LaneMask(cc.valid), acc);
      }
      break;
    }
    case QGemmOutputKind::kFloat: {
      __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), cc.scale);
      if (call.float_bias) y = _mm256_add_ps(y, cc.float_bias);
      auto* dst = static_cast<float*>(call.c) + at;
      if (cc.valid == kNr) {
        _mm256_storeu_ps(dst, y);
      } else {
        _mm256_maskstore_ps(dst, LaneMask(cc.valid), y);
      }
      break;
    }
    case QGemmOutputKind::kUint8:
    case QGemmOutputKind::kInt8: {
      const __m256i q =
          call.requant_hi
              ? RequantizeHi8(acc, cc, _mm256_set1_epi32(call.zero_point),
                              _mm256_set1_epi32(call.qmin), _mm256_set1_epi32(call.qmax))
              : Requantize8(acc, cc, _mm256_set1_epi64x(call.zero_point),
                            _mm256_set1_epi64x(call.qmin), _mm256_set1_epi64x(call.qmax));
      // q is within [qmin, qmax] (inside the 8-bit type), so the saturating packs are exact.
      const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i bytes =
          call.kind == QGemmOutputKind::kUint8 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
      const int64_t packed = _mm_cvtsi128_si64(bytes);
      std::memcpy(static_cast<int8_t*>(call.c) + at, &packed, cc.valid);
      break;
    }
  }
}

inline __m256i Broadcast4x16(const int16_t* p) {
  int64_t four;
  std::memcpy(&four, p, 8);
  return _mm256_set1_epi64x(four);
}

// The full 4 x 8 tile: A' rows m..m+3 times the panel b over all Kpad; out[4][8] gets the
// column sums in order. Written with 8 named accumulators because GCC 12 keeps an
// accumulator array in memory (a load and a store per step) instead of registers.
#define QF_ROWS(X) X(0) X(1) X(2) X(3)
void AccumulateFull(int64_t quads, const int16_t* a, int64_t lda, const int16_t* b, int32_t* out) {
#define QF_DECL(r) __m256i x##r = _mm256_setzero_si256(), y##r = _mm256_setzero_si256();
  QF_ROWS(QF_DECL)
#undef QF_DECL
  const int16_t* a0 = a;
  for (int64_t q = 0; q < quads; ++q) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 16));
#define QF_STEP(r)                                            \
  {                                                           \
    const __m256i av = Broadcast4x16(a0 + (r)*lda);           \
    x##r = _mm256_add_epi32(x##r, _mm256_madd_epi16(av, b0)); \
    y##r = _mm256_add_epi32(y##r, _mm256_madd_epi16(av, b1)); \
  }
    QF_ROWS(QF_STEP)
#undef QF_STEP
    a0 += 4;
    b += 4 * kNr;
  }
  // [c0 c1 c4 c5 | c2 c3 c6 c7] -> [c0 .. c7].
#define QF_OUT(r)                                               \
  _mm256_store_si256(reinterpret_cast<__m256i*>(out + (r)*kNr), \
                     _mm256_permute4x64_epi64(_mm256_hadd_epi32(x##r, y##r), 0xD8));
  QF_ROWS(QF_OUT)
#undef QF_OUT
}
#undef QF_ROWS

template <int R>
void Tile(const QGemmCall& call, int64_t m, const int16_t* b, const ColumnConsts& cc, int64_t n0) {
  const auto* a = static_cast<const int16_t*>(call.a) + m * call.lda;
  const int64_t lda = call.lda;
  const int64_t quads = call.Kpad / 4;
  if constexpr (R == kMr) {
    alignas(32) int32_t sums[kMr * kNr];
    AccumulateFull(quads, a, lda, b, sums);
    for (int r = 0; r < R; ++r) {
      StoreRow(call, cc, _mm256_load_si256(reinterpret_cast<const __m256i*>(sums + r * kNr)), m + r,
               n0);
    }
    return;
  }
  // Row tails (fewer than 4 rows).
  __m256i acc0[R], acc1[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm256_setzero_si256();
  for (int64_t q = 0; q < quads; ++q) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 16));
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m256i av = Broadcast4x16(a + r * lda);
      acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(av, b0));
      acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(av, b1));
    }
    a += 4;
    b += 4 * kNr;
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
    // [c0 c1 c4 c5 | c2 c3 c6 c7] -> [c0 .. c7].
    const __m256i sums = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc0[r], acc1[r]), 0xD8);
    StoreRow(call, cc, sums, m + r, n0);
  }
}

using TileFn = void (*)(const QGemmCall&, int64_t, const int16_t*, const ColumnConsts&, int64_t);
constexpr TileFn kTiles[kMr + 1] = {nullptr, &Tile<1>, &Tile<2>, &Tile<3>, &Tile<4>};

}  // namespace

void QGemmPanel__avx2(const QGemmCall& call, int64_t m0, int64_t m1, int64_t p) {
  const int64_t n0 = p * kNr;
  const int cols = static_cast<int>(std::min<int64_t>(kNr, call.N - n0));
  const ColumnConsts cc = LoadColumns(call, n0, cols);
  const auto* b = reinterpret_cast<const int16_t*>(call.b) + p * call.Kpad * kNr;
  for (int64_t m = m0; m < m1; m += kMr) {
    const int rows = static_cast<int>(std::min<int64_t>(kMr, m1 - m));
    kTiles[rows](call, m, b, cc, n0);
  }
}

void QGemmStageA__avx2(const QGemmA& a, int64_t K, int64_t Kpad, int64_t m0, int64_t m1,
                       int16_t* dst) {
  const uint8_t flip = a.is_signed ? 0x80 : 0x00;  // int8 -> int8 + 128 as uint8
  for (int64_t m = m0; m < m1; ++m) {
    const uint8_t* src = static_cast<const uint8_t*>(a.data) + m * a.ld;
    int16_t* out = dst + m * Kpad;
    for (int64_t k = 0; k < K; ++k) out[k] = static_cast<uint8_t>(src[k] ^ flip);
    for (int64_t k = K; k < Kpad; ++k) out[k] = 0;
  }
}

}  // namespace qforge::kernels::detail
