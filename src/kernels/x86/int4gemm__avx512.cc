// AVX-512 VNNI int4 weight-only GEMM, bit-exact with ref::Int4Gemm (kernels/ref/dynq_ref.cc).
//
// Layout (Int4Weights::vnni, filled by PrepackInt4Weights): for each tile of 16 output rows n
// and each octet of 8 consecutive k, 64 bytes; byte 4j + i (lane j < 16, i < 4) holds
// c[n0 + j, 8o + i] in its low nibble and c[n0 + j, 8o + 4 + i] in its high nibble. One 64-byte
// load thus gives, after a mask and a shift, two vectors of 16 lanes x 4 codes that vpdpbusd
// multiplies by 4 activations broadcast to every lane: the lanes are output rows, so a group's
// sums need no horizontal reduction.
//
// Why the results equal the reference exactly: vpdpbusd adds four uint8 x int8 products to an
// int32 lane without saturation; the codes are <= 15 and |xq| <= 127, so a group's sum
// (<= 128 * 15 * 127 < 2^18) is exact, and isum = sum xq * c - z * sum xq is exact in int32.
// The float group accumulation is one vmulps and one vaddps per group in increasing g (the
// reference's order), then one multiply by sx and one add of the bias. No FMA contraction.
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>

#include <algorithm>

#include "kernels/x86/int4_vnni.h"

namespace qforge::kernels::detail {

bool Int4VnniSupported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vnni");
}

namespace {

constexpr int kMr = 4;  // activation rows sharing each unpacked weight vector

// Rows [m0, m0 + mr) x the 16-row tile t. valid: rows of the tile inside N.
template <int MR>
void Tile(int64_t m0, const int8_t* xq, int64_t ldxq, const float* sx, const int32_t* xsum,
          const Int4Weights& w, int64_t t, int valid, const float* bias, float* y, int64_t ldy) {
  const int64_t N = w.N, K = w.K, G = w.groups(), gs = w.group_size, n0 = t * kInt4VnniRows;
  const __mmask16 mask = static_cast<__mmask16>((1u << valid) - 1);
  const uint8_t* tile = w.vnni.data() + t * (K / 8) * 64;
  const bool fp16 = !w.scales_fp16.empty();
  const __m512i nib = _mm512_set1_epi8(0x0F);
  __m512 facc[MR];
  for (int i = 0; i < MR; ++i) facc[i] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m512i acc[MR];
    for (int i = 0; i < MR; ++i) acc[i] = _mm512_setzero_si512();
    for (int64_t o = g * gs / 8; o < (g + 1) * gs / 8; ++o) {
      const __m512i bytes = _mm512_loadu_si512(tile + o * 64);
      const __m512i lo = _mm512_and_si512(bytes, nib);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), nib);
      for (int i = 0; i < MR; ++i) {
        const int8_t* xr = xq + (m0 + i) * ldxq + o * 8;
        int32_t x0, x1;
        __builtin_memcpy(&x0, xr, 4);
        __builtin_memcpy(&x1, xr + 4, 4);
        acc[i] = _mm512_dpbusd_epi32(acc[i], lo, _mm512_set1_epi32(x0));
        acc[i] = _mm512_dpbusd_epi32(acc[i], hi, _mm512_set1_epi32(x1));
      }
    }
    // Group parameters of the 16 rows ([G][N] layout: contiguous in n; masked past N).
    const __m512 s =
        fp16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, w.scales_fp16.data() + g * N + n0))
             : _mm512_maskz_loadu_ps(mask, w.scales.data() + g * N + n0);
    const __m512i z =
        w.zero_points.empty()
            ? _mm512_set1_epi32(8)
            : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, w.zero_points.data() + g * N + n0));
    for (int i = 0; i < MR; ++i) {
      const __m512i isum = _mm512_sub_epi32(
          acc[i], _mm512_mullo_epi32(z, _mm512_set1_epi32(xsum[(m0 + i) * G + g])));
      facc[i] = _mm512_add_ps(facc[i], _mm512_mul_ps(_mm512_cvtepi32_ps(isum), s));
    }
  }
  const __m512 b = bias ? _mm512_maskz_loadu_ps(mask, bias + n0) : _mm512_setzero_ps();
  for (int i = 0; i < MR; ++i) {
    __m512 out = _mm512_mul_ps(facc[i], _mm512_set1_ps(sx[m0 + i]));
    if (bias) out = _mm512_add_ps(out, b);
    _mm512_mask_storeu_ps(y + (m0 + i) * ldy + n0, mask, out);
  }
}

}  // namespace

void Int4Gemm__avx512vnni(int64_t M, const int8_t* xq, int64_t ldxq, const float* sx,
                          const int32_t* xsum, const Int4Weights& w, const float* bias, float* y,
                          int64_t ldy) {
  const int64_t tiles = (w.N + kInt4VnniRows - 1) / kInt4VnniRows;
  for (int64_t t = 0; t < tiles; ++t) {
    const int valid = static_cast<int>(std::min<int64_t>(kInt4VnniRows, w.N - t * kInt4VnniRows));
    int64_t m = 0;
    for (; m + kMr <= M; m += kMr) Tile<kMr>(m, xq, ldxq, sx, xsum, w, t, valid, bias, y, ldy);
    for (; m < M; ++m) Tile<1>(m, xq, ldxq, sx, xsum, w, t, valid, bias, y, ldy);
  }
}

}  // namespace qforge::kernels::detail
