// AVX2 dynamic-quantization and int4 kernels, bit-exact with kernels/ref/dynq_ref.cc.
//
// Why the results equal the reference exactly:
//  - Range: min / max are exact and order-independent (NaN / Inf are detected separately).
//  - Quantize: vdivps is IEEE division (like x / s), vroundps(nearest) rounds ties to even like
//    numerics::RoundHalfEven, + z and the clamp are exact on the integral floats (|v| < 2^24).
//  - int4: every integer sum is exact (bounds below); the float group accumulation is one
//    vmulps and one vaddps per group, per output lane, in the reference's order.
//  - No FMA contraction: GCC's C++ default (-ffp-contract=fast) would fuse a * b + c into one
//    vfmadd in this -mfma file (scalar code and the vector intrinsics alike), which rounds once
//    where the reference (baseline x86-64, no FMA) rounds twice. The pragma turns that off.
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/x86/dynq_ukernel.h"

namespace qforge::kernels::detail {

using numerics::QuantParams;

bool RowRange__avx2(const float* x, int64_t K, float* lo, float* hi) {
  int64_t k = 0;
  float mn = x[0], mx = x[0];
  bool finite = true;
  if (K >= 8) {
    // Two independent min/max chains; non-finite lanes are caught by x - x != 0 (NaN - NaN,
    // Inf - Inf are NaN, which compares unordered).
    __m256 vmn0 = _mm256_loadu_ps(x), vmx0 = vmn0, vmn1 = vmn0, vmx1 = vmn0;
    __m256 bad = _mm256_setzero_ps();
    for (; k + 16 <= K; k += 16) {
      const __m256 a = _mm256_loadu_ps(x + k), b = _mm256_loadu_ps(x + k + 8);
      vmn0 = _mm256_min_ps(vmn0, a);
      vmx0 = _mm256_max_ps(vmx0, a);
      vmn1 = _mm256_min_ps(vmn1, b);
      vmx1 = _mm256_max_ps(vmx1, b);
      bad =
          _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(a, a), _mm256_sub_ps(b, b), _CMP_UNORD_Q));
    }
    for (; k + 8 <= K; k += 8) {
      const __m256 a = _mm256_loadu_ps(x + k);
      vmn0 = _mm256_min_ps(vmn0, a);
      vmx0 = _mm256_max_ps(vmx0, a);
      bad =
          _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_sub_ps(a, a), _mm256_sub_ps(a, a), _CMP_UNORD_Q));
    }
    finite = _mm256_movemask_ps(bad) == 0;
    vmn0 = _mm256_min_ps(vmn0, vmn1);
    vmx0 = _mm256_max_ps(vmx0, vmx1);
    alignas(32) float a[8], b[8];
    _mm256_store_ps(a, vmn0);
    _mm256_store_ps(b, vmx0);
    mn = a[0];
    mx = b[0];
    for (int i = 1; i < 8; ++i) {
      mn = std::min(mn, a[i]);
      mx = std::max(mx, b[i]);
    }
  }
  for (; k < K; ++k) {
    const float v = x[k];
    finite = finite && (v - v == 0.0f);
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  *lo = mn;
  *hi = mx;
  return finite;
}

namespace {

// 8 quantized values as int32 lanes: clamp(round_half_even(x / s) + z, qmin, qmax).
inline __m256i Quantize8(__m256 x, __m256 s, __m256 z, __m256 lo, __m256 hi) {
  __m256 v = _mm256_round_ps(_mm256_div_ps(x, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, z), lo), hi);
  return _mm256_cvtps_epi32(v);
}

}  // namespace

void QuantizeRow__avx2(const float* x, int64_t K, QuantParams p, int32_t qmin, int32_t qmax,
                       bool is_signed, void* q) {
  const __m256 s = _mm256_set1_ps(p.scale), z = _mm256_set1_ps(static_cast<float>(p.zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin)),
               hi = _mm256_set1_ps(static_cast<float>(qmax));
  auto* out = static_cast<uint8_t*>(q);
  // Lane order after the two in-lane packs: [0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, ...]; the
  // dword permute restores 0..31. Values are already in range, so the packs never saturate.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t k = 0;
  for (; k + 32 <= K; k += 32) {
    const __m256i a = Quantize8(_mm256_loadu_ps(x + k), s, z, lo, hi);
    const __m256i b = Quantize8(_mm256_loadu_ps(x + k + 8), s, z, lo, hi);
    const __m256i c = Quantize8(_mm256_loadu_ps(x + k + 16), s, z, lo, hi);
    const __m256i d = Quantize8(_mm256_loadu_ps(x + k + 24), s, z, lo, hi);
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i bytes = is_signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k),
                        _mm256_permutevar8x32_epi32(bytes, order));
  }
  for (; k + 8 <= K; k += 8) {
    const __m256i a = Quantize8(_mm256_loadu_ps(x + k), s, z, lo, hi);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    const __m128i bytes = is_signed ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + k), bytes);
  }
  for (; k < K; ++k) {  // tail: the same operations one lane at a time
    const int32_t v = numerics::QuantizeValue(x[k], p, qmin, qmax);
    out[k] = static_cast<uint8_t>(is_signed ? static_cast<uint8_t>(static_cast<int8_t>(v))
                                            : static_cast<uint8_t>(v));
  }
}

void QuantizeWithParams__avx2(const float* x, int64_t n, QuantParams p, int32_t qmin, int32_t qmax,
                              bool is_signed, void* q) {
  const __m256 s = _mm256_set1_ps(p.scale), z = _mm256_set1_ps(static_cast<float>(p.zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin)),
               hi = _mm256_set1_ps(static_cast<float>(qmax));
  // NaN lanes (Quantize8 would give qmin there) take QuantizeValue's clamp(z, qmin, qmax).
  const __m256i znan = _mm256_set1_epi32(std::min(std::max(p.zero_point, qmin), qmax));
  const auto quantize = [&](const float* src) {
    const __m256 xv = _mm256_loadu_ps(src);
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(Quantize8(xv, s, z, lo, hi)),
                                                _mm256_castsi256_ps(znan),
                                                _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q)));
  };
  auto* out = static_cast<uint8_t*>(q);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);  // see QuantizeRow__avx2
  int64_t k = 0;
  for (; k + 32 <= n; k += 32) {
    const __m256i ab = _mm256_packs_epi32(quantize(x + k), quantize(x + k + 8));
    const __m256i cd = _mm256_packs_epi32(quantize(x + k + 16), quantize(x + k + 24));
    const __m256i bytes = is_signed ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k),
                        _mm256_permutevar8x32_epi32(bytes, order));
  }
  for (; k < n; ++k) {
    const int32_t v = numerics::QuantizeValue(x[k], p, qmin, qmax);
    out[k] = is_signed ? static_cast<uint8_t>(static_cast<int8_t>(v)) : static_cast<uint8_t>(v);
  }
}

void QuantizeCentered__avx2(const float* x, int64_t n, QuantParams p, int32_t qmin, int32_t qmax,
                            float* out) {
  const __m256 s = _mm256_set1_ps(p.scale), z = _mm256_set1_ps(static_cast<float>(p.zero_point));
  const __m256 lo = _mm256_set1_ps(static_cast<float>(qmin)),
               hi = _mm256_set1_ps(static_cast<float>(qmax));
  // NaN: QuantizeValue gives clamp(z, qmin, qmax); centered, that minus z.
  const int32_t znan = std::min(std::max(p.zero_point, qmin), qmax);
  const __m256 vnan = _mm256_set1_ps(static_cast<float>(znan - p.zero_point));
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 xv = _mm256_loadu_ps(x + k);
    __m256 v = _mm256_round_ps(_mm256_div_ps(xv, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // All integral and below 2^24 after the clamp, so + z, the clamp and - z are exact (an
    // infinite or huge v saturates at the clamp, as QuantizeValue's).
    v = _mm256_sub_ps(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, z), lo), hi), z);
    v = _mm256_blendv_ps(v, vnan, _mm256_cmp_ps(xv, xv, _CMP_UNORD_Q));
    _mm256_storeu_ps(out + k, v);
  }
  for (; k < n; ++k)
    out[k] = static_cast<float>(numerics::QuantizeValue(x[k], p, qmin, qmax) - p.zero_point);
}

void DynamicQGemmEpilogue__avx2(int64_t m0, int64_t m1, int64_t N, const QuantParams* a_params,
                                const int32_t* colb, const float* w_scales, const float* bias,
                                float* y, int64_t ldy) {
  for (int64_t m = m0; m < m1; ++m) {
    const int32_t za = a_params[m].zero_point;
    const float sa = a_params[m].scale;
    const __m256i vza = _mm256_set1_epi32(za);
    const __m256 vsa = _mm256_set1_ps(sa);
    float* row = y + m * ldy;
    int64_t n = 0;
    for (; n + 8 <= N; n += 8) {
      // acc0 - za * colb wraps modulo 2^32 like the scalar int32 code; the true value fits.
      const __m256i acc = _mm256_sub_epi32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + n)),
          _mm256_mullo_epi32(vza, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(colb + n))));
      const __m256 s = _mm256_mul_ps(vsa, _mm256_loadu_ps(w_scales + n));
      __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), s);
      if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + n));
      _mm256_storeu_ps(row + n, v);
    }
    for (; n < N; ++n) {
      int32_t acc0;
      std::memcpy(&acc0, row + n, sizeof acc0);
      const int32_t acc = static_cast<int32_t>(
          static_cast<uint32_t>(acc0) - static_cast<uint32_t>(za) * static_cast<uint32_t>(colb[n]));
      float v = static_cast<float>(acc) * (sa * w_scales[n]);
      if (bias) v = v + bias[n];
      row[n] = v;
    }
  }
}

namespace {

constexpr int kRows = 8;  // output columns n computed together (one ymm of results)

// Dot products of 32 codes with 32 activations, as 8 int32 lanes that sum to the dot.
// The codes c are in [0, 15] and the activations in [-127, 127]: vpmaddubsw's pair sums are at
// most 2 * 15 * 127 = 3810 in magnitude, so it never saturates (nor does adding two of them in
// int16: 7620 < 2^15); vpmaddwd widens to int32 exactly.
//
// SingleDot: one block (16 bytes of codes), x32 = the block's activations in natural order.
inline __m256i SingleDot(const uint8_t* codes16, __m256i x32, __m256i ones16) {
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes16));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(bytes, mask);                     // k0 + 0..15
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);  // k0 + 16..31
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set_m128i(hi, lo), x32), ones16);
}

// PairDot: two consecutive blocks (32 bytes of codes) at once; the activations in pair order
// (see PairOrderActivations): xlo = [block A k 0..15 | block B k 0..15], xhi = the k 16..31
// halves. Lanes 0-3 then sum to block A's dot, lanes 4-7 to block B's.
inline __m256i PairDot(const uint8_t* codes32, __m256i xlo, __m256i xhi, __m256i ones16) {
  const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes32));
  const __m256i mask = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_and_si256(bytes, mask);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), mask);
  return _mm256_madd_epi16(
      _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi)), ones16);
}

// Eight vectors v[r] = [first part (4 lanes) | second part (4 lanes)]: *first[r] = sum of v[r]'s
// first part, *second[r] = sum of its second part.
inline void HorizontalSums8Split(const __m256i v[kRows], __m256i* first, __m256i* second) {
  const __m256i h01 = _mm256_hadd_epi32(v[0], v[1]), h23 = _mm256_hadd_epi32(v[2], v[3]);
  const __m256i h45 = _mm256_hadd_epi32(v[4], v[5]), h67 = _mm256_hadd_epi32(v[6], v[7]);
  const __m256i a = _mm256_hadd_epi32(h01, h23);  // [r0..r3 first | r0..r3 second]
  const __m256i b = _mm256_hadd_epi32(h45, h67);  // [r4..r7 first | r4..r7 second]
  *first = _mm256_permute2x128_si256(a, b, 0x20);
  *second = _mm256_permute2x128_si256(a, b, 0x31);
}

// [sum(v[0]), ..., sum(v[7])].
inline __m256i HorizontalSums8(const __m256i v[kRows]) {
  __m256i first, second;
  HorizontalSums8Split(v, &first, &second);
  return _mm256_add_epi32(first, second);
}

// Reorders one row of activations for PairDot: each 64 (two blocks) becomes
// [0..15, 32..47, 16..31, 48..63]; a last odd block stays in natural order.
void PairOrderActivations(const int8_t* x, int64_t K, int8_t* out) {
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k + 32));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), _mm256_permute2x128_si256(a, b, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k + 32),
                        _mm256_permute2x128_si256(a, b, 0x31));
  }
  std::memcpy(out + k, x + k, static_cast<size_t>(K - k));
}

}  // namespace

void Int4Gemm__avx2(int64_t M, const int8_t* xq, int64_t ldxq, const float* sx, const int32_t* xsum,
                    const Int4Weights& w, const float* bias, float* y, int64_t ldy) {
  const int64_t N = w.N, K = w.K, G = w.groups(), gs = w.group_size, row_bytes = K / 2;
  const bool fp16 = !w.scales_fp16.empty();
  const __m256i ones16 = _mm256_set1_epi16(1);
  std::vector<int8_t> xp(static_cast<size_t>(M * K));
  for (int64_t m = 0; m < M; ++m) PairOrderActivations(xq + m * ldxq, K, xp.data() + m * K);
  for (int64_t n0 = 0; n0 < N; n0 += kRows) {
    const int valid = static_cast<int>(std::min<int64_t>(kRows, N - n0));
    // Rows past N repeat row N-1 (computed, never stored); scales / zero points of a partial
    // block are staged through small arrays so no load runs past the end.
    const uint8_t* rows[kRows];
    for (int r = 0; r < kRows; ++r)
      rows[r] = w.packed.data() + (n0 + std::min(r, valid - 1)) * row_bytes;
    for (int64_t m = 0; m < M; ++m) {
      const int8_t* xr = xp.data() + m * K;
      __m256 acc = _mm256_setzero_ps();
      // acc = acc + float(sum_k xq * (c - z)) * s for group g, in increasing g (the reference's
      // order). dot = sum_k xq * c per row; |isum| <= 128 * 127 * 15 < 2^18.
      auto add_group = [&](int64_t g, __m256i dot) {
        __m256 s;
        __m256i z;
        if (valid == kRows) {  // [G][N] layout: rows n0..n0+7 of group g are contiguous
          s = fp16 ? _mm256_cvtph_ps(_mm_loadu_si128(
                         reinterpret_cast<const __m128i*>(w.scales_fp16.data() + g * N + n0)))
                   : _mm256_loadu_ps(w.scales.data() + g * N + n0);
          z = w.zero_points.empty()
                  ? _mm256_set1_epi32(8)
                  : _mm256_cvtepu8_epi32(_mm_loadl_epi64(
                        reinterpret_cast<const __m128i*>(w.zero_points.data() + g * N + n0)));
        } else {
          alignas(32) float sb[kRows] = {};
          alignas(32) int32_t zb[kRows] = {};
          for (int r = 0; r < valid; ++r) {
            sb[r] = w.scale(g, n0 + r);
            zb[r] = w.zero_point(g, n0 + r);
          }
          s = _mm256_load_ps(sb);
          z = _mm256_load_si256(reinterpret_cast<const __m256i*>(zb));
        }
        dot = _mm256_sub_epi32(dot, _mm256_mullo_epi32(z, _mm256_set1_epi32(xsum[m * G + g])));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_cvtepi32_ps(dot), s));
      };
      __m256i v[kRows];
      if (gs == kInt4Block) {  // a pair of blocks is a pair of groups
        int64_t g = 0;
        for (; g + 2 <= G; g += 2) {
          const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + g * 32));
          const __m256i xhi =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + g * 32 + 32));
          for (int r = 0; r < kRows; ++r) v[r] = PairDot(rows[r] + g * 16, xlo, xhi, ones16);
          __m256i first, second;
          HorizontalSums8Split(v, &first, &second);
          add_group(g, first);
          add_group(g + 1, second);
        }
        if (g < G) {  // odd number of groups: the last block alone
          const __m256i x32 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + g * 32));
          for (int r = 0; r < kRows; ++r) v[r] = SingleDot(rows[r] + g * 16, x32, ones16);
          add_group(g, HorizontalSums8(v));
        }
      } else {  // 64 or 128: one or two pairs per group
        const int64_t pairs = gs / 64;
        for (int64_t g = 0; g < G; ++g) {
          for (int r = 0; r < kRows; ++r) v[r] = _mm256_setzero_si256();
          for (int64_t p = g * pairs; p < (g + 1) * pairs; ++p) {
            const __m256i xlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + p * 64));
            const __m256i xhi =
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr + p * 64 + 32));
            for (int r = 0; r < kRows; ++r)
              v[r] = _mm256_add_epi32(v[r], PairDot(rows[r] + p * 32, xlo, xhi, ones16));
          }
          add_group(g, HorizontalSums8(v));
        }
      }
      __m256 out = _mm256_mul_ps(acc, _mm256_set1_ps(sx[m]));
      if (bias) {
        alignas(32) float bb[kRows] = {};
        for (int r = 0; r < valid; ++r) bb[r] = bias[n0 + r];
        out = _mm256_add_ps(out, _mm256_load_ps(bb));
      }
      if (valid == kRows) {
        _mm256_storeu_ps(y + m * ldy + n0, out);
      } else {
        alignas(32) float tmp[kRows];
        _mm256_store_ps(tmp, out);
        for (int r = 0; r < valid; ++r) y[m * ldy + n0 + r] = tmp[r];
      }
    }
  }
}

}  // namespace qforge::kernels::detail
