// Pooling kernels: readable N-d references and the OpenMP 2-D / global fast paths.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "qforge/kernels/pool.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

void CheckPoolGeometry(const PoolGeometry& g) {
  const size_t n = g.in.size();
  if (g.out.size() != n || g.kernel.size() != n || g.strides.size() != n ||
      g.dilations.size() != n || g.pads_begin.size() != n || g.pads_end.size() != n)
    throw Error("pool geometry: per-axis vectors differ in length");
  if (g.batch < 0 || g.channels < 0) throw Error("pool geometry: negative batch or channels");
  for (size_t i = 0; i < n; ++i) {
    if (g.kernel[i] <= 0 || g.strides[i] <= 0 || g.dilations[i] <= 0)
      throw Error("pool geometry: kernel, strides and dilations must be positive (axis " +
                  std::to_string(i) + ")");
    if (g.in[i] < 0 || g.out[i] < 0 || g.pads_begin[i] < 0 || g.pads_end[i] < 0)
      throw Error("pool geometry: negative size or pad (axis " + std::to_string(i) + ")");
  }
}

namespace {

// Advances a multi-index over the box [0, limit) in row-major order; false after the last.
bool NextIndex(std::vector<int64_t>& idx, const std::vector<int64_t>& limit) {
  for (int64_t a = static_cast<int64_t>(idx.size()) - 1; a >= 0; --a) {
    if (++idx[a] < limit[a]) return true;
    idx[a] = 0;
  }
  return false;
}

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

}  // namespace

template <typename T>
void MaxPoolRef(const PoolGeometry& g, const T* x, T* y, int64_t* indices, int storage_order) {
  CheckPoolGeometry(g);
  const size_t nd = g.in.size();
  const int64_t in_plane = Product(g.in), out_plane = Product(g.out);
  if (out_plane == 0 || g.batch * g.channels == 0) return;
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {  // plane = n * C + c
    const T* xp = x + plane * in_plane;
    std::vector<int64_t> o(nd, 0);
    int64_t out_pos = 0;
    do {
      T best = std::numeric_limits<T>::lowest();
      int64_t best_index = -1;
      std::vector<int64_t> k(nd, 0);
      do {
        // Input position of tap k for output o; skip taps in the padding.
        int64_t row_major = 0, col_major = 0, col_stride = 1;
        bool inside = true;
        for (size_t a = 0; a < nd; ++a) {
          const int64_t pos = o[a] * g.strides[a] - g.pads_begin[a] + k[a] * g.dilations[a];
          if (pos < 0 || pos >= g.in[a]) inside = false;
          row_major = row_major * g.in[a] + pos;
          col_major += pos * col_stride;
          col_stride *= g.in[a];
        }
        if (!inside) continue;
        const T v = xp[row_major];
        if (best_index < 0 || v > best) {
          best = v;
          best_index = plane * in_plane + (storage_order == 0 ? row_major : col_major);
        }
      } while (NextIndex(k, g.kernel));
      y[plane * out_plane + out_pos] = best;
      if (indices) indices[plane * out_plane + out_pos] = best_index;
      ++out_pos;
    } while (NextIndex(o, g.out));
  }
}

template void MaxPoolRef<float>(const PoolGeometry&, const float*, float*, int64_t*, int);
template void MaxPoolRef<uint8_t>(const PoolGeometry&, const uint8_t*, uint8_t*, int64_t*, int);
template void MaxPoolRef<int8_t>(const PoolGeometry&, const int8_t*, int8_t*, int64_t*, int);

void AveragePoolRef(const PoolGeometry& g, bool count_include_pad, const float* x, float* y) {
  CheckPoolGeometry(g);
  const size_t nd = g.in.size();
  const int64_t in_plane = Product(g.in), out_plane = Product(g.out);
  if (out_plane == 0 || g.batch * g.channels == 0) return;
  for (int64_t plane = 0; plane < g.batch * g.channels; ++plane) {
    const float* xp = x + plane * in_plane;
    std::vector<int64_t> o(nd, 0);
    int64_t out_pos = 0;
    do {
      double sum = 0.0;
      int64_t valid = 0, in_padded_extent = 0;
      std::vector<int64_t> k(nd, 0);
      do {
        int64_t offset = 0;
        bool inside = true, in_extent = true;
        for (size_t a = 0; a < nd; ++a) {
          const int64_t pos = o[a] * g.strides[a] - g.pads_begin[a] + k[a] * g.dilations[a];
          if (pos < 0 || pos >= g.in[a]) inside = false;
          if (pos < -g.pads_begin[a] || pos >= g.in[a] + g.pads_end[a]) in_extent = false;
          offset = offset * g.in[a] + pos;
        }
        if (in_extent) ++in_padded_extent;
        if (!inside) continue;
        sum += xp[offset];
        ++valid;
      } while (NextIndex(k, g.kernel));
      const int64_t divisor = count_include_pad ? in_padded_extent : valid;
      y[plane * out_plane + out_pos] = divisor ? static_cast<float>(sum / divisor) : 0.0f;
      ++out_pos;
    } while (NextIndex(o, g.out));
  }
}

void GlobalAveragePoolRef(int64_t planes, int64_t plane_size, const float* x, float* y) {
  for (int64_t p = 0; p < planes; ++p) {
    double sum = 0.0;
    for (int64_t i = 0; i < plane_size; ++i) sum += x[p * plane_size + i];
    y[p] = plane_size ? static_cast<float>(sum / plane_size) : 0.0f;
  }
}

// ---------------------------------------------------------------------------------------------
// Fast paths.

namespace {

int NumThreads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

// Per-axis divisor of AveragePool: the taps of output o counted along one axis (the 2-D
// divisor is the product of the two, since a tap counts iff it counts along both axes).
std::vector<float> AxisCounts(const PoolGeometry& g, int axis, bool count_include_pad) {
  std::vector<float> c(g.out[axis]);
  for (int64_t o = 0; o < g.out[axis]; ++o) {
    int64_t n = 0;
    for (int64_t k = 0; k < g.kernel[axis]; ++k) {
      const int64_t pos = o * g.strides[axis] - g.pads_begin[axis] + k * g.dilations[axis];
      n += count_include_pad ? (pos >= -g.pads_begin[axis] && pos < g.in[axis] + g.pads_end[axis])
                             : (pos >= 0 && pos < g.in[axis]);
    }
    c[o] = static_cast<float>(n);
  }
  return c;
}

// Two passes per output row, both branch-free inner loops:
//  (1) vertical: combine the input rows the window covers into a row buffer that has
//      pads_begin[1] filler columns in front and enough filler behind (contiguous, vectorizes);
//  (2) horizontal: combine the kernel[1] taps buf[ow * sw + kw * dw] of that buffer.
// Filler is the identity of the combine (lowest float for max, 0 for sum), so padding never
// wins a max and adds nothing to a sum. kMax selects max, else sum divided by count_h * count_w.
template <typename T, bool kMax>
void Pool2d(const PoolGeometry& g, const T* x, T* y, const float* count_h, const float* count_w,
            int threads) {
  const int64_t H = g.in[0], W = g.in[1], OH = g.out[0], OW = g.out[1];
  const int64_t KH = g.kernel[0], KW = g.kernel[1], sh = g.strides[0], sw = g.strides[1];
  const int64_t dh = g.dilations[0], dw = g.dilations[1], ph = g.pads_begin[0];
  const int64_t pw = g.pads_begin[1];
  const int64_t planes = g.batch * g.channels;
  if (planes == 0 || OH == 0 || OW == 0) return;
  const int64_t buf_len = std::max((OW - 1) * sw + (KW - 1) * dw + 1, pw + W);
  const T fill = kMax ? std::numeric_limits<T>::lowest() : T(0);
  auto combine = [](T a, T b) { return kMax ? std::max(a, b) : T(a + b); };
  // One row buffer per thread, allocated here: an exception must not escape the OpenMP region.
  const int nthreads = planes * OH * OW > 4096 ? NumThreads(threads) : 1;
  std::vector<T> buffers(static_cast<size_t>(buf_len) * nthreads, fill);
#pragma omp parallel num_threads(nthreads)
  {
    T* buf = buffers.data() + static_cast<size_t>(buf_len) * omp_get_thread_num();
    T* mid = buf + pw;  // mid[w] is input column w
#pragma omp for schedule(static)
    for (int64_t p = 0; p < planes; ++p) {
      const T* xp = x + p * H * W;
      T* yp = y + p * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        bool any = false;
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t ih = oh * sh - ph + kh * dh;
          if (ih < 0 || ih >= H) continue;
          const T* xrow = xp + ih * W;
          if (!any) {
            std::copy(xrow, xrow + W, mid);
            any = true;
          } else {
#pragma omp simd
            for (int64_t w = 0; w < W; ++w) mid[w] = combine(mid[w], xrow[w]);
          }
        }
        if (!any) std::fill(mid, mid + W, fill);
        T* yrow = yp + oh * OW;
#pragma omp simd
        for (int64_t ow = 0; ow < OW; ++ow) yrow[ow] = buf[ow * sw];
        for (int64_t kw = 1; kw < KW; ++kw) {
          const T* tap = buf + kw * dw;
#pragma omp simd
          for (int64_t ow = 0; ow < OW; ++ow) yrow[ow] = combine(yrow[ow], tap[ow * sw]);
        }
        if constexpr (!kMax) {
          static_assert(std::is_same_v<T, float>, "average pooling is fp32 here");
          const float ch = count_h[oh];
#pragma omp simd
          for (int64_t ow = 0; ow < OW; ++ow) {
            const float d = ch * count_w[ow];
            yrow[ow] = d > 0.0f ? yrow[ow] / d : 0.0f;
          }
        }
      }
    }
  }
}

}  // namespace

void MaxPool2dF32(const PoolGeometry& g, const float* x, float* y, int threads) {
  CheckPoolGeometry(g);
  if (g.in.size() != 2) throw Error("MaxPool2dF32: needs 2 spatial dims");
  Pool2d<float, true>(g, x, y, nullptr, nullptr, threads);
}

template <typename T>
void MaxPool2d(const PoolGeometry& g, const T* x, T* y, int threads) {
  CheckPoolGeometry(g);
  if (g.in.size() != 2) throw Error("MaxPool2d: needs 2 spatial dims");
  Pool2d<T, true>(g, x, y, nullptr, nullptr, threads);
}
template void MaxPool2d<uint8_t>(const PoolGeometry&, const uint8_t*, uint8_t*, int);
template void MaxPool2d<int8_t>(const PoolGeometry&, const int8_t*, int8_t*, int);

void AveragePool2dF32(const PoolGeometry& g, bool count_include_pad, const float* x, float* y,
                      int threads) {
  CheckPoolGeometry(g);
  if (g.in.size() != 2) throw Error("AveragePool2dF32: needs 2 spatial dims");
  const std::vector<float> count_h = AxisCounts(g, 0, count_include_pad);
  const std::vector<float> count_w = AxisCounts(g, 1, count_include_pad);
  Pool2d<float, false>(g, x, y, count_h.data(), count_w.data(), threads);
}

void GlobalAveragePoolF32(int64_t planes, int64_t plane_size, const float* x, float* y,
                          int threads) {
#pragma omp parallel for schedule(static) num_threads(NumThreads(threads))
  for (int64_t p = 0; p < planes; ++p) {
    const float* xp = x + p * plane_size;
    float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= plane_size; i += 8)
#pragma omp simd
      for (int j = 0; j < 8; ++j) partial[j] += xp[i + j];
    float sum = 0.0f;
    for (; i < plane_size; ++i) sum += xp[i];
    for (int j = 0; j < 8; ++j) sum += partial[j];
    y[p] = plane_size ? sum / static_cast<float>(plane_size) : 0.0f;
  }
}

}  // namespace qforge::kernels
