// AVX-512 VNNI 8-bit weight-only GEMM core (vpdpwssd), bit-exact with ref::Int8WeightGemm.
//
// Layout: 16 output columns n per zmm, one int32 lane each. For each block of 16 columns the
// codes minus their zero points are first packed (with one gather per 4 k) as int16 pairs
// pk[p][lane] = (c[n, 2p] - z, c[n, 2p + 1] - z) (|c - z| <= 255 fits int16), 64 bytes per
// k pair, then every activation row reuses the block from cache: per k pair and row, one
// vpdpwssd adds xq[m, 2p] * pk.lo + xq[m, 2p + 1] * pk.hi to the lane's int32 sum.
// Exactness: |xq| <= 32767, so a pair adds < 2^24 and a group of <= 128 k stays < 2^31
// (vpdpwssd does not saturate; nothing wraps). The float combination is the reference's:
// acc = acc + float(isum) * s per group in increasing g (mul, then add; FMA contraction is
// off), then acc * sx[m], then + bias[n].
#pragma GCC optimize("fp-contract=off")

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/x86/weight_only_ukernel.h"

namespace qforge::kernels::detail {
namespace {

constexpr int kLanes = 16;  // output columns per block
constexpr int kTileM = 8;   // activation rows per register tile

// pk[p * 16 + lane] for p < K / 2: the int16 pair of column n0 + lane (columns past N repeat
// the last one; their results are never stored).
void PackBlock(const Int8Weights& w, int64_t n0, int valid, int32_t* pk) {
  const int64_t K = w.K, gs = w.group_size, N = w.N;
  alignas(64) int32_t offs[kLanes];
  for (int r = 0; r < kLanes; ++r) offs[r] = static_cast<int32_t>(std::min(r, valid - 1) * K);
  const __m512i vidx = _mm512_load_si512(offs);
  const uint8_t* base = w.codes.data() + n0 * K;
  const __mmask16 vm = static_cast<__mmask16>((1u << valid) - 1);
  const __m512i lo8 = _mm512_set1_epi32(0xFF);
  for (int64_t g = 0; g < w.groups(); ++g) {
    // z as an int16 pair per lane: (z, z).
    __m512i z = _mm512_set1_epi32(128);
    if (!w.zero_points.empty())
      z = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(vm, w.zero_points.data() + g * N + n0));
    const __m512i zz = _mm512_or_si512(z, _mm512_slli_epi32(z, 16));
    for (int64_t k = g * gs; k < (g + 1) * gs; k += 4) {
      // Bytes c[n, k..k+3] of the 16 columns (K is a multiple of 32: never past a row).
      const __m512i v = _mm512_i32gather_epi32(vidx, base + k, 1);
      const __m512i a =
          _mm512_or_si512(_mm512_and_si512(v, lo8),
                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(v, 8), lo8), 16));
      const __m512i b = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v, 16), lo8),
                                        _mm512_slli_epi32(_mm512_srli_epi32(v, 24), 16));
      _mm512_store_si512(pk + (k / 2) * kLanes, _mm512_sub_epi16(a, zz));
      _mm512_store_si512(pk + (k / 2 + 1) * kLanes, _mm512_sub_epi16(b, zz));
    }
  }
}

template <int R>
void Tile(int64_t m, const int16_t* xq, int64_t ldxq, const float* sx, const Int8Weights& w,
          int64_t n0, __mmask16 vm, const int32_t* pk, const float* bias, float* y, int64_t ldy) {
  const int64_t N = w.N, gs = w.group_size, G = w.groups();
  const bool fp16 = !w.scales_fp16.empty();
  const int32_t* xr[R];
  for (int r = 0; r < R; ++r) xr[r] = reinterpret_cast<const int32_t*>(xq + (m + r) * ldxq);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m512i is[R];
    for (int r = 0; r < R; ++r) is[r] = _mm512_setzero_si512();
    for (int64_t p = g * gs / 2; p < (g + 1) * gs / 2; ++p) {
      const __m512i wv = _mm512_load_si512(pk + p * kLanes);
      for (int r = 0; r < R; ++r) {
        int32_t pair;
        std::memcpy(&pair, xr[r] + p, sizeof(pair));
        is[r] = _mm512_dpwssd_epi32(is[r], wv, _mm512_set1_epi32(pair));
      }
    }
    const __m512 s =
        fp16 ? _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(vm, w.scales_fp16.data() + g * N + n0))
             : _mm512_maskz_loadu_ps(vm, w.scales.data() + g * N + n0);
    for (int r = 0; r < R; ++r)
      acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(_mm512_cvtepi32_ps(is[r]), s));
  }
  const __m512 b = bias ? _mm512_maskz_loadu_ps(vm, bias + n0) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) {
    __m512 out = _mm512_mul_ps(acc[r], _mm512_set1_ps(sx[m + r]));
    if (bias) out = _mm512_add_ps(out, b);
    _mm512_mask_storeu_ps(y + (m + r) * ldy + n0, vm, out);
  }
}

}  // namespace

void Int8WeightGemm__avx512vnni(int64_t M, const int16_t* xq, int64_t ldxq, const float* sx,
                                const Int8Weights& w, const float* bias, float* y, int64_t ldy) {
  const int64_t N = w.N, K = w.K;
  // 64-byte aligned block buffer: K / 2 pairs x 16 lanes.
  std::vector<__m512i> buf(static_cast<size_t>(K / 2));
  int32_t* pk = reinterpret_cast<int32_t*>(buf.data());
  for (int64_t n0 = 0; n0 < N; n0 += kLanes) {
    const int valid = static_cast<int>(std::min<int64_t>(kLanes, N - n0));
    const __mmask16 vm = static_cast<__mmask16>((1u << valid) - 1);
    PackBlock(w, n0, valid, pk);
    int64_t m = 0;
    for (; m + kTileM <= M; m += kTileM) Tile<kTileM>(m, xq, ldxq, sx, w, n0, vm, pk, bias, y, ldy);
    for (; m < M; ++m) Tile<1>(m, xq, ldxq, sx, w, n0, vm, pk, bias, y, ldy);
  }
}

}  // namespace qforge::kernels::detail
