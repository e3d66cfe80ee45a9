// Depthwise 3x3 conv plane kernel for AVX-512 machines (8-wide vectors, AVX-512VL masks and
// 32 registers): strides 1 and 2 without a padded copy. Every load is masked to the input row
// (masked-out lanes read zero and are not touched in memory), so borders need no special code;
// several output rows per pass share the loaded input rows. Other shapes use the AVX2 kernel.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/x86/dwconv_plane.h"

namespace qforge::kernels::detail {
namespace {

// Calls f(integral_constant<int, i>) for i = 0 .. N - 1 (compile-time indices: the
// accumulators stay in registers).
template <int... i, typename F>
__attribute__((always_inline)) inline void Unroll(std::integer_sequence<int, i...>, F&& f) {
  (f(std::integral_constant<int, i>()), ...);
}
template <int N, typename F>
__attribute__((always_inline)) inline void Unroll(F&& f) {
  Unroll(std::make_integer_sequence<int, N>(), f);
}

// Lanes l (0..7) with 0 <= c + l < n, as a mask.
inline __mmask8 InRow(int64_t c, int64_t n) {
  const int64_t lo = std::clamp<int64_t>(-c, 0, 8), hi = std::clamp<int64_t>(n - c, 0, 8);
  return hi > lo ? static_cast<__mmask8>(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
}

// Per 8-wide output block: the load masks (columns inside the row) and the store mask.
struct BlockMasks {
  __mmask8 load[4];
  __mmask8 store;
};

// The three tap vectors of one input row for an 8-wide output block whose first tap column
// is c (tap kx of lane l reads column c + l * S + kx); columns outside the row read as zero.
template <int S>
__attribute__((always_inline)) inline void RowTaps(const float* row, int64_t c, const BlockMasks& m,
                                                   __m256 (&v)[3]) {
  if constexpr (S == 1) {
    v[0] = _mm256_maskz_loadu_ps(m.load[0], row + c);
    v[1] = _mm256_maskz_loadu_ps(m.load[1], row + c + 1);
    v[2] = _mm256_maskz_loadu_ps(m.load[2], row + c + 2);
  } else {
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i odd = _mm256_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15);
    const __m256 a = _mm256_maskz_loadu_ps(m.load[0], row + c);
    const __m256 b = _mm256_maskz_loadu_ps(m.load[1], row + c + 8);
    const __m256 c2 = _mm256_maskz_loadu_ps(m.load[2], row + c + 2);
    const __m256 d = _mm256_maskz_loadu_ps(m.load[3], row + c + 10);
    v[0] = _mm256_permutex2var_ps(a, even, b);
    v[1] = _mm256_permutex2var_ps(a, odd, b);
    v[2] = _mm256_permutex2var_ps(c2, even, d);
  }
}

// R output rows (oy .. oy + R - 1) of one 8-wide block whose first tap column is c; y points at
// the block's first output of row oy.
template <int S, int R>
__attribute__((always_inline)) inline void Block(const float* const* rows, int64_t c,
                                                 const BlockMasks& m, const __m256 (&w)[9],
                                                 __m256 bias, __m256 lo, __m256 hi, float* y,
                                                 int64_t out_w) {
  constexpr int kRows = (R - 1) * S + 3;
  // Three partial sums per output row (one per kernel row): short FMA chains.
  __m256 acc[R][3];
  Unroll<R>([&](auto r) {
    acc[r][0] = bias;
    acc[r][1] = _mm256_setzero_ps();
    acc[r][2] = _mm256_setzero_ps();
  });
  Unroll<kRows>([&](auto i) {
    if (rows[i] == nullptr) return;
    __m256 v[3];
    RowTaps<S>(rows[i], c, m, v);
    Unroll<R>([&](auto r) {
      constexpr int ky = i - r * S;
      if constexpr (ky >= 0 && ky <= 2) {
        acc[r][ky] = _mm256_fmadd_ps(v[0], w[ky * 3], acc[r][ky]);
        acc[r][ky] = _mm256_fmadd_ps(v[1], w[ky * 3 + 1], acc[r][ky]);
        acc[r][ky] = _mm256_fmadd_ps(v[2], w[ky * 3 + 2], acc[r][ky]);
      }
    });
  });
  Unroll<R>([&](auto r) {
    __m256 o = _mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), acc[r][2]);
    o = _mm256_min_ps(_mm256_max_ps(o, lo), hi);
    if (m.store == 0xFF)
      _mm256_storeu_ps(y + r * out_w, o);
    else
      _mm256_mask_storeu_ps(y + r * out_w, m.store, o);
  });
}

// Output rows oy .. oy + R - 1, every block; input rows outside the image are skipped (zero).
template <int S, int R>
void Rows(const DepthwiseArgs& a, int64_t oy, const BlockMasks* masks, int64_t blocks,
          const __m256 (&w)[9], __m256 bias, __m256 lo, __m256 hi) {
  constexpr int kRows = (R - 1) * S + 3;
  const float* rows[kRows];
  for (int i = 0; i < kRows; ++i) {
    const int64_t iy = oy * a.sh - a.ph + i;
    rows[i] = iy >= 0 && iy < a.in_h ? a.x + iy * a.in_w : nullptr;
  }
  float* y = a.y + oy * a.out_w;
  // The next pass's new input rows, prefetched a line (16 floats) per row every 16 input
  // columns (every block at stride 2, every other at stride 1): the rows are
  // R * S separate streams, which the hardware prefetcher alone followed too late (112x112).
  const int64_t next = (oy + R) * a.sh - a.ph + kRows - R * S;
  const float* pf = next >= 0 && next + R * S <= a.in_h ? a.x + next * a.in_w : nullptr;
  for (int64_t b = 0; b < blocks; ++b) {
    if (pf != nullptr && (S == 2 || (b & 1) == 0) && b * 8 * S < a.in_w)
      for (int i = 0; i < R * S; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(pf + i * a.in_w + b * 8 * S), _MM_HINT_T0);
    Block<S, R>(rows, b * 8 * S - a.pw, masks[b], w, bias, lo, hi, y + b * 8, a.out_w);
  }
}

// Output blocks per row handled (masks on the stack); wider planes use the AVX2 kernel.
constexpr int64_t kMaxBlocks = 64;

template <int S>
void Plane3x3(const DepthwiseArgs& a) {
  const int64_t blocks = (a.out_w + 7) / 8;
  BlockMasks masks[kMaxBlocks];  // the same for every row
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c = b * 8 * S - a.pw;
    BlockMasks& m = masks[b];
    if (S == 1) {
      for (int k = 0; k < 3; ++k) m.load[k] = InRow(c + k, a.in_w);
      m.load[3] = 0;
    } else {
      m.load[0] = InRow(c, a.in_w);
      m.load[1] = InRow(c + 8, a.in_w);
      m.load[2] = InRow(c + 2, a.in_w);
      m.load[3] = InRow(c + 10, a.in_w) & 0x7F;  // lane 7 (column c + 17) is never used
    }
    const int64_t valid = std::min<int64_t>(8, a.out_w - b * 8);
    m.store = static_cast<__mmask8>((1u << valid) - 1u);
  }
  __m256 w[9];
  for (int t = 0; t < 9; ++t) w[t] = _mm256_set1_ps(a.w[t]);
  const __m256 bias = _mm256_set1_ps(a.bias);
  const __m256 lo = _mm256_set1_ps(a.clamp ? a.lo : -INFINITY);
  const __m256 hi = _mm256_set1_ps(a.clamp ? a.hi : INFINITY);
  // Four (stride 1) or two output rows per pass: 6 or 5 input rows loaded instead of 12 or 6.
  int64_t oy = 0;
  for (; S == 1 && oy + 4 <= a.out_h; oy += 4) Rows<S, 4>(a, oy, masks, blocks, w, bias, lo, hi);
  for (; oy + 2 <= a.out_h; oy += 2) Rows<S, 2>(a, oy, masks, blocks, w, bias, lo, hi);
  for (; oy < a.out_h; ++oy) Rows<S, 1>(a, oy, masks, blocks, w, bias, lo, hi);
}

}  // namespace

void DepthwisePlane__avx512(const DepthwiseArgs& a) {
  const bool k3 = a.kh == 3 && a.kw == 3 && a.dh == 1 && a.dw == 1 && a.sh == a.sw;
  // Measured on MobileNetV2's planes (one thread, whole layers, best of 15 CPU times) against
  // the AVX2 kernel: equal at 112x112 stride 1, 1.1-1.8x faster on 56x56 and smaller planes,
  // 1.3-2.1x at stride 2.
  if (k3 && (a.sw == 1 || a.sw == 2) && a.out_w <= 8 * kMaxBlocks)
    a.sw == 1 ? Plane3x3<1>(a) : Plane3x3<2>(a);
  else
    DepthwisePlane__avx2(a);
}

}  // namespace qforge::kernels::detail
