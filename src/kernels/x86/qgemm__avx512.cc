// int8 GEMM panel kernel for AVX-512 VNNI: a 12 x 32 tile of int32 accumulators fed by vpdpbusd.
//
// Packed B layout (PackedQGemmB with QGemmKernel::kAvx512Vnni): panels of NR = 32 columns; panel
// p holds Kpad / 4 groups ("quads") of 4 consecutive k; a quad is 32 columns x 4 int8 = 128
// bytes: byte (q * 32 + j) * 4 + i is B[4q + i, 32p + j]. Columns >= N and k >= K are zero.
// A is not packed: the staged A' (uint8, rows of Kpad bytes, see qgemm_ukernel.h) is read in
// place; each row contributes 4 bytes per quad, broadcast to all 16 lanes. A gathered A
// (QGemmGather: per row, pointers to runs of quads, e.g. a convolution's kernel taps) is read
// in place the same way, run by run.
//
// Why no sum can clip: vpdpbusd (the non-saturating form; NOT vpdpbusds) multiplies 4 uint8 x
// int8 pairs, adds the 4 products and the int32 accumulator with no intermediate rounding or
// saturation, modulo 2^32: each product is in [-255 * 128, 255 * 127], so the K <= 2^15 terms
// sum to |sum| <= 255 * 128 * 2^15 < 2^30 < 2^31. The accumulators start at the column offset
// (bias and zero-point terms, col_offset) and zb * rowsum is subtracted at the end, all modulo
// 2^32 like the products; the exact total fits in int32 (qgemm.h), so the wrapped result is
// the exact one whatever the order. Requantization is numerics::Requantize lane by lane: the 64-bit
// product acc * mantissa (vpmuldq, exact), + 2^(n-1), arithmetic shift right by n (vpsravq, exact),
// + zero point and clamp in 64 bits, then narrowed (the value is already within [qmin, qmax]). When
// every column has n >= 33 (multipliers below 1/4, the usual case) the same value comes from the
// high 32 bits of the product with 32-bit operations only (RequantizeHi, proof there).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/x86/qgemm_ukernel.h"

namespace qforge::kernels::detail {

namespace {

constexpr int kMr = kQVnniMr, kNr = kQVnniNr;

inline __m512i Broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Per-column constants of one 16-column half of a panel.
struct ColumnConsts {
  __m512i offset, zb;
  __m512i mant_even, mant_odd, shift_even, shift_odd, round_even, round_odd;
  __m512i shift_hi, round_hi;  // requant_hi: n - 32 and 2^(n-33) in 32-bit lanes
  __m512 scale, float_bias;
  __mmask16 mask;
};

ColumnConsts LoadColumns(const QGemmCall& call, int64_t n0, int valid) {
  ColumnConsts cc{};
  cc.mask = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
  cc.offset = _mm512_loadu_si512(call.col_offset + n0);
  cc.zb = call.col_zb ? _mm512_loadu_si512(call.col_zb + n0) : _mm512_setzero_si512();
  if (call.kind == QGemmOutputKind::kUint8 || call.kind == QGemmOutputKind::kInt8) {
    const __m512i low32 = _mm512_set1_epi64(0xFFFFFFFF);
    const __m512i mant = _mm512_loadu_si512(call.mantissa + n0);
    const __m512i shift = _mm512_loadu_si512(call.rshift + n0);
    cc.mant_even = mant;  // vpmuldq reads the low (even) int32 of each 64-bit lane
    cc.mant_odd = _mm512_srli_epi64(mant, 32);
    if (call.requant_hi) {  // every n >= 33 (qgemm_ukernel.h)
      cc.shift_hi = _mm512_sub_epi32(shift, _mm512_set1_epi32(32));
      cc.round_hi =
          _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_sub_epi32(shift, _mm512_set1_epi32(33)));
    } else {
      cc.shift_even = _mm512_and_si512(shift, low32);
      cc.shift_odd = _mm512_srli_epi64(shift, 32);
      // 2^(n-1); for n = 0 the count is -1 (>= 64 as unsigned), which gives 0: no rounding term.
      const __m512i one = _mm512_set1_epi64(1);
      cc.round_even = _mm512_sllv_epi64(one, _mm512_sub_epi64(cc.shift_even, one));
      cc.round_odd = _mm512_sllv_epi64(one, _mm512_sub_epi64(cc.shift_odd, one));
    }
  } else if (call.kind == QGemmOutputKind::kFloat) {
    cc.scale = _mm512_loadu_ps(call.scale + n0);
    cc.float_bias = call.float_bias ? _mm512_loadu_ps(call.float_bias + n0) : _mm512_setzero_ps();
  }
  return cc;
}

// numerics::Requantize on 16 lanes (see the file comment).
__attribute__((always_inline)) inline __m512i Requantize16(__m512i acc, const ColumnConsts& cc,
                                                           __m512i zp, __m512i lo, __m512i hi) {
  __m512i pe = _mm512_mul_epi32(acc, cc.mant_even);
  __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), cc.mant_odd);
  pe = _mm512_srav_epi64(_mm512_add_epi64(pe, cc.round_even), cc.shift_even);
  po = _mm512_srav_epi64(_mm512_add_epi64(po, cc.round_odd), cc.shift_odd);
  pe = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(pe, zp), lo), hi);
  po = _mm512_min_epi64(_mm512_max_epi64(_mm512_add_epi64(po, zp), lo), hi);
  return _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

// numerics::Requantize on 16 lanes when every column has n = 32 + s with s >= 1
// (call.requant_hi). With the exact product p = acc * mantissa (|p| < 2^62): 2^(n-1) =
// 2^32 * 2^(s-1) is a multiple of 2^32, so
//   (p + 2^(n-1)) >> n  =  ((p >> 32) + 2^(s-1)) >> s
// (floor division by 2^n is floor division by 2^32 then by 2^s, and adding a multiple of 2^32
// commutes with the first one). hi = p >> 32 is the high dword of the product, |hi| < 2^30;
// hi + 2^(s-1) < 2^30 + 2^29 and the shifted result (|r| <= 2^29) plus the zero point cannot
// overflow int32, so the rest is exact 32-bit arithmetic: 9 operations instead of 17.
__attribute__((always_inline)) inline __m512i RequantizeHi(__m512i acc, const ColumnConsts& cc,
                                                           __m512i zp, __m512i lo, __m512i hi) {
  const __m512i pe = _mm512_mul_epi32(acc, cc.mant_even);
  const __m512i po = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), cc.mant_odd);
  // High dwords of both products: pe's (odd positions) swapped down into the even positions,
  // po's already in the odd positions.
  const __m512i h = _mm512_mask_shuffle_epi32(po, 0x5555, pe, _MM_PERM_CDAB);
  const __m512i r = _mm512_srav_epi32(_mm512_add_epi32(h, cc.round_hi), cc.shift_hi);
  return _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(r, zp), lo), hi);
}

// The exact int32 accumulator of row m: the tile's sum (which started at the column offset)
// - zb * rowsum(A').
__attribute__((always_inline)) inline __m512i Correct(const QGemmCall& call, const ColumnConsts& cc,
                                                      __m512i acc, int64_t m) {
  if (call.col_zb) {
    acc = _mm512_sub_epi32(acc, _mm512_mullo_epi32(cc.zb, _mm512_set1_epi32(call.row_sums[m])));
  }
  return acc;
}

// Stores rows m .. m + R - 1 of a tile from its raw sums (sums[r * 32 + j], j < cols).
void Epilogue(const QGemmCall& call, const int32_t* sums, int rows, int64_t m,
              const ColumnConsts& c0, const ColumnConsts& c1, int64_t n0, int cols) {
  switch (call.kind) {
    case QGemmOutputKind::kInt32:
      for (int r = 0; r < rows; ++r) {
        auto* c = static_cast<int32_t*>(call.c) + (m + r) * call.ldc + n0;
        _mm512_mask_storeu_epi32(c, c0.mask,
                                 Correct(call, c0, _mm512_load_si512(sums + r * kNr), m + r));
        if (cols > 16) {
          _mm512_mask_storeu_epi32(
              c + 16, c1.mask, Correct(call, c1, _mm512_load_si512(sums + r * kNr + 16), m + r));
        }
      }
      return;
    case QGemmOutputKind::kFloat:
      for (int r = 0; r < rows; ++r) {
        auto* c = static_cast<float*>(call.c) + (m + r) * call.ldc + n0;
        for (int h = 0; h < (cols > 16 ? 2 : 1); ++h) {
          const ColumnConsts& cc = h == 0 ? c0 : c1;
          const __m512i acc = Correct(call, cc, _mm512_load_si512(sums + r * kNr + 16 * h), m + r);
          __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), cc.scale);
          if (call.float_bias) y = _mm512_add_ps(y, cc.float_bias);
          _mm512_mask_storeu_ps(c + 16 * h, cc.mask, y);
        }
      }
      return;
    case QGemmOutputKind::kUint8:
    case QGemmOutputKind::kInt8:
      break;
  }
  const bool is_signed = call.kind == QGemmOutputKind::kInt8;
  const bool hi32 = call.requant_hi;
  const __m512i zp = hi32 ? _mm512_set1_epi32(call.zero_point) : _mm512_set1_epi64(call.zero_point);
  const __m512i lo = hi32 ? _mm512_set1_epi32(call.qmin) : _mm512_set1_epi64(call.qmin);
  const __m512i hi = hi32 ? _mm512_set1_epi32(call.qmax) : _mm512_set1_epi64(call.qmax);
  // Requantized int32 lanes, each within [qmin, qmax] (inside the 8-bit type).
  auto quantize = [&](const ColumnConsts& cc, int r, int h) {
    const __m512i acc = Correct(call, cc, _mm512_load_si512(sums + r * kNr + 16 * h), m + r);
    return hi32 ? RequantizeHi(acc, cc, zp, lo, hi) : Requantize16(acc, cc, zp, lo, hi);
  };
  auto* c = static_cast<int8_t*>(call.c) + m * call.ldc + n0;
  int r = 0;
  // Four int32 vectors narrowed by two saturating packs (exact: every value is inside the 8-bit
  // type) into 128-bit lanes L of [a cols 4L..4L+3, b cols 4L.., c cols 4L.., d cols 4L..];
  // `order` puts vector a's 16 bytes in 128-bit lane 0, b's in lane 1, and so on.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  auto pack4 = [&](__m512i a, __m512i b, __m512i cc, __m512i d) {
    const __m512i w0 = _mm512_packs_epi32(a, b), w1 = _mm512_packs_epi32(cc, d);
    return _mm512_permutexvar_epi32(
        order, is_signed ? _mm512_packs_epi16(w0, w1) : _mm512_packus_epi16(w0, w1));
  };
  if (cols == 16) {
    // Sixteen columns (a half panel, e.g. N = 16): four rows per packed vector, one 16-byte
    // store each (masked vpmovdb stores per row are slow).
    for (; r + 3 < rows; r += 4) {
      const __m512i v = pack4(quantize(c0, r, 0), quantize(c0, r + 1, 0), quantize(c0, r + 2, 0),
                              quantize(c0, r + 3, 0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + r * call.ldc), _mm512_castsi512_si128(v));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + (r + 1) * call.ldc),
                       _mm512_extracti32x4_epi32(v, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + (r + 2) * call.ldc),
                       _mm512_extracti32x4_epi32(v, 2));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + (r + 3) * call.ldc),
                       _mm512_extracti32x4_epi32(v, 3));
    }
  }
  if (cols == kNr) {
    // Two full rows at a time: lanes [row r cols 4L.., row r cols 16+4L.., row r+1 cols 4L..,
    // row r+1 cols 16+4L..], so row r's 32 bytes land in the low half and row r+1's in the high.
    for (; r + 1 < rows; r += 2) {
      const __m512i q0 = quantize(c0, r, 0), q1 = quantize(c1, r, 1);
      const __m512i q2 = quantize(c0, r + 1, 0), q3 = quantize(c1, r + 1, 1);
      const __m512i v = pack4(q0, q1, q2, q3);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * call.ldc), _mm512_castsi512_si256(v));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + (r + 1) * call.ldc),
                          _mm512_extracti64x4_epi64(v, 1));
    }
  }
  for (; r < rows; ++r) {
    _mm512_mask_cvtepi32_storeu_epi8(c + r * call.ldc, c0.mask, quantize(c0, r, 0));
    if (cols > 16)
      _mm512_mask_cvtepi32_storeu_epi8(c + r * call.ldc + 16, c1.mask, quantize(c1, r, 1));
  }
}

// The full 12 x 32 tile: A' rows m..m+11 times the panel b over all Kpad, sums (started at
// init0 / init1, the column offsets) into out[12][32]. Written with 24 named accumulators because
// GCC 12 keeps an accumulator array of this size in memory (a store per step) instead of registers.
#define QF_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
void AccumulateFull(int64_t quads, const uint8_t* a, int64_t lda, const int8_t* b, __m512i init0,
                    __m512i init1, int32_t* out) {
#define QF_DECL(r) __m512i x##r = init0, y##r = init1;
  QF_ROWS(QF_DECL)
#undef QF_DECL
  const uint8_t* a0 = a;
  const uint8_t* a4 = a + 4 * lda;
  const uint8_t* a8 = a + 8 * lda;
  for (int64_t q = 0; q < quads; ++q) {
    const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + 64);
#define QF_STEP(r)                                                                 \
  {                                                                                \
    const __m512i av = Broadcast4((r < 4 ? a0 : r < 8 ? a4 : a8) + (r % 4) * lda); \
    x##r = _mm512_dpbusd_epi32(x##r, av, b0);                                      \
    y##r = _mm512_dpbusd_epi32(y##r, av, b1);                                      \
  }
    QF_ROWS(QF_STEP)
#undef QF_STEP
    a0 += 4;
    a4 += 4;
    a8 += 4;
    b += 4 * kNr;
  }
#define QF_OUT(r)                          \
  _mm512_store_si512(out + (r)*kNr, x##r); \
  _mm512_store_si512(out + (r)*kNr + 16, y##r);
  QF_ROWS(QF_OUT)
#undef QF_OUT
}

// AccumulateFull for a gathered A (QGemmCall::a_ptrs): rows m..m+11, each `segments` runs of
// seg_quads quads; run s of row r starts at ptrs[r * segments + s]. The same sums in the same
// order (B is walked exactly as for plain rows); only where each quad of A comes from differs.
void AccumulateGather(int64_t segments, int64_t seg_quads, const uint8_t* const* ptrs,
                      const int8_t* b, __m512i init0, __m512i init1, int32_t* out) {
#define QF_DECL(r) __m512i x##r = init0, y##r = init1;
  QF_ROWS(QF_DECL)
#undef QF_DECL
  const int64_t seg_bytes = seg_quads * 4;
  for (int64_t s = 0; s < segments; ++s) {
#define QF_PTR(r) const uint8_t* p##r = ptrs[(r)*segments + s];
    QF_ROWS(QF_PTR)
#undef QF_PTR
    for (int64_t k = 0; k < seg_bytes; k += 4) {
      const __m512i b0 = _mm512_load_si512(b), b1 = _mm512_load_si512(b + 64);
#define QF_STEP(r)                            \
  {                                           \
    const __m512i av = Broadcast4(p##r + k);  \
    x##r = _mm512_dpbusd_epi32(x##r, av, b0); \
    y##r = _mm512_dpbusd_epi32(y##r, av, b1); \
  }
      QF_ROWS(QF_STEP)
#undef QF_STEP
      b += 4 * kNr;
    }
  }
#define QF_OUT(r)                          \
  _mm512_store_si512(out + (r)*kNr, x##r); \
  _mm512_store_si512(out + (r)*kNr + 16, y##r);
  QF_ROWS(QF_OUT)
#undef QF_OUT
}
#undef QF_ROWS

// R rows starting at row m of A' times the 32-column panel b; full Kpad.
template <int R>
void Tile(const QGemmCall& call, int64_t m, const int8_t* b, const ColumnConsts& c0,
          const ColumnConsts& c1, int64_t n0, int cols) {
  const int64_t quads = call.Kpad / 4;
  if constexpr (R == kMr) {
    alignas(64) int32_t sums[kMr * kNr];
    if (call.a_ptrs) {
      AccumulateGather(call.segments, quads / call.segments, call.a_ptrs + m * call.segments, b,
                       c0.offset, c1.offset, sums);
    } else {
      AccumulateFull(quads, static_cast<const uint8_t*>(call.a) + m * call.lda, call.lda, b,
                     c0.offset, c1.offset, sums);
    }
    Epilogue(call, sums, R, m, c0, c1, n0, cols);
    return;
  }
  // Row tails (fewer than 12 rows): small accumulator arrays stay in registers. A plain A is
  // one run of all quads per row (row stride lda); a gathered one `segments` runs.
  const bool gather = call.a_ptrs != nullptr;
  const int64_t segments = gather ? call.segments : 1;
  const int64_t seg_bytes = quads / segments * 4;
  __m512i acc0[R], acc1[R];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    acc0[r] = c0.offset;  // the sums start at the column offsets (see the file comment)
    acc1[r] = c1.offset;
  }
  for (int64_t s = 0; s < segments; ++s) {
    const uint8_t* a[R];
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      a[r] = gather ? call.a_ptrs[(m + r) * segments + s]
                    : static_cast<const uint8_t*>(call.a) + (m + r) * call.lda;
    }
    for (int64_t k = 0; k < seg_bytes; k += 4) {
      const __m512i b0 = _mm512_load_si512(b);
      const __m512i b1 = _mm512_load_si512(b + 64);
#pragma GCC unroll 12
      for (int r = 0; r < R; ++r) {
        const __m512i av = Broadcast4(a[r] + k);
        acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, b0);
        acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, b1);
      }
      b += 4 * kNr;
    }
  }
  alignas(64) int32_t sums[R * kNr];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r) {
    _mm512_store_si512(sums + r * kNr, acc0[r]);
    _mm512_store_si512(sums + r * kNr + 16, acc1[r]);
  }
  Epilogue(call, sums, R, m, c0, c1, n0, cols);
}

using TileFn = void (*)(const QGemmCall&, int64_t, const int8_t*, const ColumnConsts&,
                        const ColumnConsts&, int64_t, int);
constexpr TileFn kTiles[kMr + 1] = {nullptr,   &Tile<1>,  &Tile<2>, &Tile<3>, &Tile<4>,
                                    &Tile<5>,  &Tile<6>,  &Tile<7>, &Tile<8>, &Tile<9>,
                                    &Tile<10>, &Tile<11>, &Tile<12>};

}  // namespace

void QGemmPanel__avx512vnni(const QGemmCall& call, int64_t m0, int64_t m1, int64_t p) {
  const int64_t n0 = p * kNr;
  const int cols = static_cast<int>(std::min<int64_t>(kNr, call.N - n0));
  const ColumnConsts c0 = LoadColumns(call, n0, std::min(cols, 16));
  const ColumnConsts c1 = LoadColumns(call, n0 + 16, std::max(cols - 16, 0));
  const int8_t* b = call.b + p * call.Kpad * kNr;
  // Full 12-row tiles; a short remainder (1-5 rows) is merged with the last full tile and the
  // two split evenly: 49 rows are 12 + 12 + 12 + 7 + 6 rather than 4 x 12 + 1, whose one-row
  // tile runs at a fraction of the speed (one broadcast feeds only two vpdpbusd). Rows are
  // independent, so the results are the same.
  int64_t m = m0;
  const int64_t rem = (m1 - m0) % kMr;
  const int64_t full_end = m1 - (rem > 0 && rem < kMr / 2 && m1 - m0 > kMr ? kMr + rem : rem);
  for (; m < full_end; m += kMr) kTiles[kMr](call, m, b, c0, c1, n0, cols);
  while (m < m1) {
    const int64_t left = m1 - m;
    const int rows = static_cast<int>(left > kMr ? (left + 1) / 2 : left);
    kTiles[rows](call, m, b, c0, c1, n0, cols);
    m += rows;
  }
}

void QGemmStageA__avx512vnni(const QGemmA& a, int64_t K, int64_t Kpad, int64_t m0, int64_t m1,
                             uint8_t* dst) {
  const uint8_t flip = a.is_signed ? 0x80 : 0x00;  // int8 -> int8 + 128 as uint8
  for (int64_t m = m0; m < m1; ++m) {
    const uint8_t* src = static_cast<const uint8_t*>(a.data) + m * a.ld;
    uint8_t* out = dst + m * Kpad;
    for (int64_t k = 0; k < K; ++k) out[k] = src[k] ^ flip;
    for (int64_t k = K; k < Kpad; ++k) out[k] = 0;
  }
}

}  // namespace qforge::kernels::detail
