// Depthwise 2-D conv plane kernel, AVX2 + FMA: 8 output columns per vector in the interior
// (strides 1 and 2 with plain loads, others gathered), exact scalar code on the borders.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/x86/dwconv_plane.h"

namespace qforge::kernels::detail {

namespace {

// Eight inputs at src[0], src[s], ..., src[7s]. S == 2 reads src[0..15].
template <int S>
inline __m256 LoadStrided(const float* src, int64_t s) {
  if constexpr (S == 1) {
    return _mm256_loadu_ps(src);
  } else if constexpr (S == 2) {
    const __m256 lo = _mm256_loadu_ps(src), hi = _mm256_loadu_ps(src + 8);
    // shuffle keeps lanes {0,2} of each 128-bit half of lo and hi: [l0 l2 h0 h2 | l4 l6 h4 h6]
    const __m256 even = _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
  } else {
    return _mm256_setr_ps(src[0], src[s], src[2 * s], src[3 * s], src[4 * s], src[5 * s],
                          src[6 * s], src[7 * s]);
  }
}

inline __m256i FirstLanes(int64_t n) {
  alignas(32) static const int32_t kTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                 0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kTable + 8 - n));
}

// Lanes p = 0..7 with 0 <= base + p < size.
inline __m256i RangeMask(int64_t base, int64_t size) {
  const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int32_t>(base)),
                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i ge0 = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(-1));
  const __m256i lt = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(size)), idx);
  return _mm256_and_si256(ge0, lt);
}

// Like LoadStrided(row + col, s), but inputs outside [0, in_w) read as zero and are never
// touched in memory (masked loads do not fault on masked-out lanes).
template <int S>
inline __m256 LoadStridedMasked(const float* row, int64_t col, int64_t in_w, int64_t s) {
  if constexpr (S == 1) {
    return _mm256_maskload_ps(row + col, RangeMask(col, in_w));
  } else if constexpr (S == 2) {
    const __m256 lo = _mm256_maskload_ps(row + col, RangeMask(col, in_w));
    const __m256 hi = _mm256_maskload_ps(row + col + 8, RangeMask(col + 8, in_w));
    const __m256 even = _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(even), 0xD8));
  } else {
    alignas(32) float v[8];
    for (int64_t l = 0; l < 8; ++l) {
      const int64_t ix = col + l * s;
      v[l] = ix >= 0 && ix < in_w ? row[ix] : 0.0f;
    }
    return _mm256_load_ps(v);
  }
}

// One block of 8 outputs starting at column sb of row oy, n_valid (1..8) of them stored,
// with every tap bounds-checked through masks (for borders and narrow planes).
template <int S>
void MaskedBlock(const DepthwiseArgs& a, int64_t oy, int64_t sb, int64_t n_valid, float* yrow) {
  __m256 acc = _mm256_set1_ps(a.bias);
  const int64_t iy0 = oy * a.sh - a.ph;
  for (int64_t ky = 0; ky < a.kh; ++ky) {
    const int64_t iy = iy0 + ky * a.dh;
    if (iy < 0 || iy >= a.in_h) continue;
    const float* row = a.x + iy * a.in_w;
    for (int64_t kx = 0; kx < a.kw; ++kx) {
      const __m256 wt = _mm256_set1_ps(a.w[ky * a.kw + kx]);
      const int64_t col = sb * a.sw - a.pw + kx * a.dw;
      acc = _mm256_fmadd_ps(LoadStridedMasked<S>(row, col, a.in_w, a.sw), wt, acc);
    }
  }
  if (a.clamp) acc = _mm256_min_ps(_mm256_max_ps(acc, _mm256_set1_ps(a.lo)), _mm256_set1_ps(a.hi));
  if (n_valid >= 8)
    _mm256_storeu_ps(yrow + sb, acc);
  else
    _mm256_maskstore_ps(yrow + sb, FirstLanes(n_valid), acc);
}

// S: stride along x (0 = generic). K: kernel size when kh == kw == K is known at compile time
// (0 = generic). Output blocks of 8 columns are processed four at a time so four independent
// FMA chains hide the FMA latency.
template <int S, int K>
void Plane(const DepthwiseArgs& a) {
  int64_t lo_col, hi_col;
  DepthwiseInteriorColumns(a, 8, S == 2 ? 1 : 0, &lo_col, &hi_col);
  const bool has_interior = hi_col > lo_col;
  const int64_t kh = K ? K : a.kh, kw = K ? K : a.kw;
  const __m256 bias = _mm256_set1_ps(a.bias);
  const __m256 lo = _mm256_set1_ps(a.lo), hi = _mm256_set1_ps(a.hi);
  const int64_t taps = kh * kw;
  __m256 wv[25];
  const bool cached = taps <= 25;
  if (cached)
    for (int64_t t = 0; t < taps; ++t) wv[t] = _mm256_set1_ps(a.w[t]);

  // Block starts of one row: lo_col, lo_col + 8, ..., and a last block shifted left to end
  // exactly at the interior's end (it recomputes a few outputs with identical results).
  std::vector<int64_t> starts;
  const int64_t end = has_interior ? hi_col - 1 + 8 : 0;  // one past the last interior column
  for (int64_t ox = lo_col; ox < end; ox += 8) starts.push_back(ox + 8 <= end ? ox : end - 8);
  const int64_t nb = static_cast<int64_t>(starts.size());

  for (int64_t oy = 0; oy < a.out_h; ++oy) {
    float* yrow = a.y + oy * a.out_w;
    if (!has_interior) {
      for (int64_t sb = 0; sb < a.out_w; sb += 8)
        MaskedBlock<S>(a, oy, sb, std::min<int64_t>(8, a.out_w - sb), yrow);
      continue;
    }
    // Left border: masked blocks from column 0 (it overlaps the interior; same results).
    for (int64_t sb = 0; sb < lo_col; sb += 8) MaskedBlock<S>(a, oy, sb, 8, yrow);
    const int64_t iy0 = oy * a.sh - a.ph;
    int64_t ky_lo = 0, ky_hi = kh;  // taps whose input row is inside the image
    while (ky_lo < kh && iy0 + ky_lo * a.dh < 0) ++ky_lo;
    while (ky_hi > ky_lo && iy0 + (ky_hi - 1) * a.dh >= a.in_h) --ky_hi;
    for (int64_t b0 = 0; b0 < nb; b0 += 4) {
      const int64_t count = nb - b0 < 4 ? nb - b0 : 4;
      const float* base[4];
      __m256 acc[4];
      for (int64_t b = 0; b < 4; ++b) {
        const int64_t start = starts[b0 + (b < count ? b : 0)];
        base[b] = a.x + start * a.sw - a.pw + iy0 * a.in_w;
        acc[b] = bias;
      }
      for (int64_t ky = ky_lo; ky < ky_hi; ++ky) {
        const int64_t row_off = ky * a.dh * a.in_w;
#pragma GCC unroll 5
        for (int64_t kx = 0; kx < kw; ++kx) {
          const int64_t t = ky * kw + kx;
          const __m256 wt = cached ? wv[t] : _mm256_set1_ps(a.w[t]);
          const int64_t off = row_off + kx * a.dw;
#pragma GCC unroll 4
          for (int64_t b = 0; b < 4; ++b)
            acc[b] = _mm256_fmadd_ps(LoadStrided<S>(base[b] + off, a.sw), wt, acc[b]);
        }
      }
      for (int64_t b = 0; b < count; ++b) {
        __m256 r = acc[b];
        if (a.clamp) r = _mm256_min_ps(_mm256_max_ps(r, lo), hi);
        _mm256_storeu_ps(yrow + starts[b0 + b], r);
      }
    }
    // Right border: masked blocks, the last one ending at the last column.
    for (int64_t sb = end; sb < a.out_w; sb += 8)
      MaskedBlock<S>(a, oy, std::min(sb, a.out_w - 8), 8, yrow);
  }
}

// 3x3, dilation 1, stride S in {1, 2}: the common MobileNet case. The plane is first copied
// into a zero-padded buffer wide enough that every 8-wide output block reads inside it, so the
// main loop has no borders and no branches (on small 14x14 / 7x7 planes borders would
// otherwise be half the work); four output blocks are in flight to hide FMA latency.
template <int S>
void Plane3x3(const DepthwiseArgs& a) {
  const int64_t blocks = (a.out_w + 7) / 8;
  const int64_t rows_p = (a.out_h - 1) * a.sh + 3;
  const int64_t cols_p = (blocks * 8 - 1) * S + 3 + 8;  // + slack for the stride-2 16-wide load
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < rows_p * cols_p) buf.resize(rows_p * cols_p);
  // Padded column c holds input column c - pw; everything else is zero. Only the padding is
  // cleared (the copy overwrites the rest), so the plane is written once.
  const int64_t c_begin = std::min(a.pw, cols_p);
  const int64_t count = std::max<int64_t>(0, std::min(a.in_w, cols_p - c_begin));
  for (int64_t r = 0; r < rows_p; ++r) {
    float* dst = buf.data() + r * cols_p;
    const int64_t iy = r - a.ph;
    if (iy < 0 || iy >= a.in_h) {
      std::memset(dst, 0, cols_p * sizeof(float));
      continue;
    }
    std::memset(dst, 0, c_begin * sizeof(float));
    std::memcpy(dst + c_begin, a.x + iy * a.in_w, count * sizeof(float));
    std::memset(dst + c_begin + count, 0, (cols_p - c_begin - count) * sizeof(float));
  }
  const __m256 bias = _mm256_set1_ps(a.bias);
  const __m256 lo = _mm256_set1_ps(a.clamp ? a.lo : -INFINITY);
  const __m256 hi = _mm256_set1_ps(a.clamp ? a.hi : INFINITY);
  // The nine weights live in registers: loaded once per plane, not once per block (the
  // compiler cannot hoist the loads itself because the output stores might alias a.w).
  __m256 w[9];
  for (int t = 0; t < 9; ++t) w[t] = _mm256_set1_ps(a.w[t]);

  auto block = [&](const float* r0, const float* r1, const float* r2) {
    __m256 acc = bias;
    acc = _mm256_fmadd_ps(LoadStrided<S>(r0, S), w[0], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r0 + 1, S), w[1], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r0 + 2, S), w[2], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r1, S), w[3], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r1 + 1, S), w[4], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r1 + 2, S), w[5], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r2, S), w[6], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r2 + 1, S), w[7], acc);
    acc = _mm256_fmadd_ps(LoadStrided<S>(r2 + 2, S), w[8], acc);
    return _mm256_min_ps(_mm256_max_ps(acc, lo), hi);
  };

  const int64_t full = a.out_w / 8;  // blocks that are stored whole
  for (int64_t oy = 0; oy < a.out_h; ++oy) {
    float* yrow = a.y + oy * a.out_w;
    const float* r0 = buf.data() + oy * a.sh * cols_p;
    const float* r1 = r0 + cols_p;
    const float* r2 = r1 + cols_p;
    int64_t b = 0;
    for (; b + 4 <= full; b += 4) {
      const int64_t c = b * 8 * S;
      const __m256 y0 = block(r0 + c, r1 + c, r2 + c);
      const __m256 y1 = block(r0 + c + 8 * S, r1 + c + 8 * S, r2 + c + 8 * S);
      const __m256 y2 = block(r0 + c + 16 * S, r1 + c + 16 * S, r2 + c + 16 * S);
      const __m256 y3 = block(r0 + c + 24 * S, r1 + c + 24 * S, r2 + c + 24 * S);
      _mm256_storeu_ps(yrow + b * 8, y0);
      _mm256_storeu_ps(yrow + b * 8 + 8, y1);
      _mm256_storeu_ps(yrow + b * 8 + 16, y2);
      _mm256_storeu_ps(yrow + b * 8 + 24, y3);
    }
    for (; b < full; ++b) {
      const int64_t c = b * 8 * S;
      _mm256_storeu_ps(yrow + b * 8, block(r0 + c, r1 + c, r2 + c));
    }
    if (full < blocks) {
      const int64_t c = full * 8 * S;
      _mm256_maskstore_ps(yrow + full * 8, FirstLanes(a.out_w - full * 8),
                          block(r0 + c, r1 + c, r2 + c));
    }
  }
}

}  // namespace

void DepthwisePlane__avx2(const DepthwiseArgs& a) {
  const bool k3 = a.kh == 3 && a.kw == 3;
  const bool k3d1 = k3 && a.dh == 1 && a.dw == 1;
  if (a.sw == 1)
    k3d1 ? Plane3x3<1>(a) : (k3 ? Plane<1, 3>(a) : Plane<1, 0>(a));
  else if (a.sw == 2)
    k3d1 ? Plane3x3<2>(a) : (k3 ? Plane<2, 3>(a) : Plane<2, 0>(a));
  else
    Plane<0, 0>(a);
}

}  // namespace qforge::kernels::detail
