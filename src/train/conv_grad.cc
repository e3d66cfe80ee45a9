// The convolution backward kernels shared by Conv and ConvTranspose: im2col / col2im, the
// batched im2col + GEMM core, the direct depthwise backward and their reference (conv_grad.h).
#include "train/conv_grad.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "train/tensor_math.h"

namespace qforge::train {

namespace {

// The output positions [lo, hi) of a window row whose tap x = o * s + off lies in [0, n_in).
void ValidRange(int64_t off, int64_t s, int64_t n_in, int64_t n_out, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = n_in - off <= 0 ? 0 : (n_in - off - 1) / s + 1;
  lo = std::min(lo, n_out);
  hi = std::clamp(hi, lo, n_out);
}

// A window that reads every pixel once at its own position: im2col is the image itself.
bool IsIdentity(const Window& w) {
  return w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.ph == 0 && w.pw == 0 &&
         w.ih == w.oh && w.iw == w.ow;
}

// Im2col chunks are bounded to this many floats (8 MB), whatever the batch size.
constexpr int64_t kMaxScratchFloats = int64_t{1} << 21;

// Per-thread scratch reused across calls: grows to the largest size asked, never shrinks.
float* Scratch(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

void Im2Col(const Window& w, const float* img, float* col, int64_t ld) {
  for (int64_t ci = 0; ci < w.c; ++ci)
    for (int64_t ki = 0; ki < w.kh; ++ki)
      for (int64_t kj = 0; kj < w.kw; ++kj) {
        float* dst = col + ((ci * w.kh + ki) * w.kw + kj) * ld;
        const int64_t xoff = kj * w.dw - w.pw;
        int64_t lo, hi;
        ValidRange(xoff, w.sw, w.iw, w.ow, lo, hi);
        for (int64_t oy = 0; oy < w.oh; ++oy) {
          const int64_t y = oy * w.sh - w.ph + ki * w.dh;
          float* row = dst + oy * w.ow;
          if (y < 0 || y >= w.ih) {
            std::fill_n(row, w.ow, 0.0f);
            continue;
          }
          const float* src = img + (ci * w.ih + y) * w.iw + xoff;  // src[ox * sw] = tap
          std::fill_n(row, lo, 0.0f);
          if (w.sw == 1) {
            if (hi > lo) std::memcpy(row + lo, src + lo, sizeof(float) * (hi - lo));
          } else {
            for (int64_t ox = lo; ox < hi; ++ox) row[ox] = src[ox * w.sw];
          }
          std::fill_n(row + hi, w.ow - hi, 0.0f);
        }
      }
}

void Col2ImAdd(const Window& w, const float* col, int64_t ld, float* img) {
  for (int64_t ci = 0; ci < w.c; ++ci)
    for (int64_t ki = 0; ki < w.kh; ++ki)
      for (int64_t kj = 0; kj < w.kw; ++kj) {
        const float* src = col + ((ci * w.kh + ki) * w.kw + kj) * ld;
        const int64_t xoff = kj * w.dw - w.pw;
        int64_t lo, hi;
        ValidRange(xoff, w.sw, w.iw, w.ow, lo, hi);
        for (int64_t oy = 0; oy < w.oh; ++oy) {
          const int64_t y = oy * w.sh - w.ph + ki * w.dh;
          if (y < 0 || y >= w.ih) continue;
          float* dst = img + (ci * w.ih + y) * w.iw + xoff;
          const float* row = src + oy * w.ow;
          if (w.sw == 1) {
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += row[ox];
          } else {
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox * w.sw] += row[ox];
          }
        }
      }
}

void WindowedBackward(const WindowedGrad& p, int threads) {
  const Window& w = p.win;
  if (w.c == 1 && p.rows == 1) {
    DepthwiseBackward(p, threads);
    return;
  }
  const int64_t K = w.rows(), P = w.cols(), R = p.rows, G = p.groups, N = p.n;
  const int64_t img_plane = w.c * w.ih * w.iw;  // one group's image
  const int64_t img_stride = G * img_plane, oth_stride = G * R * P;
  const bool identity = IsIdentity(w);
  const bool need_col = p.dw != nullptr || p.doth != nullptr;
  if (N == 0 || P == 0 || K == 0) {
    if (p.dw) std::fill_n(p.dw, G * R * K, 0.0f);
    if (p.doth) std::fill_n(p.doth, N * oth_stride, 0.0f);
    return;
  }
  const int64_t nb = std::clamp<int64_t>(kMaxScratchFloats / (std::max(K, R) * P), 1, N);
  thread_local std::vector<float> col_buf, oth_buf, out_buf;

  for (int64_t g = 0; g < G; ++g) {
    const float* wg = p.w + g * R * K;
    for (int64_t n0 = 0; n0 < N; n0 += nb) {
      const int64_t m = std::min(nb, N - n0), L = m * P;
      // The chunk's other side as [R, L] (column j * P + q: sample n0 + j, position q).
      const float* oth = p.oth + n0 * oth_stride + g * R * P;
      if (m > 1) {
        float* buf = Scratch(oth_buf, R * L);
        for (int64_t j = 0; j < m; ++j)
          for (int64_t r = 0; r < R; ++r)
            std::memcpy(buf + r * L + j * P, oth + j * oth_stride + r * P, sizeof(float) * P);
        oth = buf;
      }
      // The chunk's im2col as [K, L].
      const float* col = nullptr;
      if (need_col) {
        const float* img = p.img + n0 * img_stride + g * img_plane;
        if (identity && m == 1) {
          col = img;
        } else {
          float* buf = Scratch(col_buf, K * L);
          for (int64_t j = 0; j < m; ++j) {
            if (identity) {
              for (int64_t k = 0; k < K; ++k)
                std::memcpy(buf + k * L + j * P, img + j * img_stride + k * P, sizeof(float) * P);
            } else {
              Im2Col(w, img + j * img_stride, buf + j * P, L);
            }
          }
          col = buf;
        }
      }
      if (p.dw) MatMulF32(R, K, L, oth, false, col, true, p.dw + g * R * K, n0 > 0, threads);
      if (p.dimg) {
        float* dimg = p.dimg + n0 * img_stride + g * img_plane;
        if (identity && m == 1) {
          MatMulF32(K, P, R, wg, true, oth, false, dimg, true, threads);
        } else {
          float* dcol = Scratch(out_buf, K * L);
          MatMulF32(K, L, R, wg, true, oth, false, dcol, false, threads);
          for (int64_t j = 0; j < m; ++j) {
            if (identity) {
              for (int64_t k = 0; k < K; ++k) {
                float* d = dimg + j * img_stride + k * P;
                const float* s = dcol + k * L + j * P;
                for (int64_t q = 0; q < P; ++q) d[q] += s[q];
              }
            } else {
              Col2ImAdd(w, dcol + j * P, L, dimg + j * img_stride);
            }
          }
        }
      }
      if (p.doth) {
        float* doth = p.doth + n0 * oth_stride + g * R * P;
        if (m == 1) {
          MatMulF32(R, P, K, wg, false, col, false, doth, false, threads);
        } else {
          float* buf = Scratch(out_buf, R * L);
          MatMulF32(R, L, K, wg, false, col, false, buf, false, threads);
          for (int64_t j = 0; j < m; ++j)
            for (int64_t r = 0; r < R; ++r)
              std::memcpy(doth + j * oth_stride + r * P, buf + r * L + j * P, sizeof(float) * P);
        }
      }
    }
  }
}

void DepthwiseBackward(const WindowedGrad& p, int threads) {
  const Window& w = p.win;
  const int64_t G = p.groups, N = p.n, KK = w.kh * w.kw, P = w.cols(), plane = w.ih * w.iw;
  const int T = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(static_cast <int>(std::min <int64_t>(T, std::max <int64_t>(G, 1))))
  {
    // Per tap, per output column: partial sums of dY * X over samples and rows, so the inner
    // loops are element-wise (vectorizable) and the reduction over columns happens once.
    std::vector<float> acc(static_cast<size_t>(KK * w.ow));
#pragma omp for schedule(static)
    for (int64_t c = 0; c < G; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0f);
      const float* wc = p.w + c * KK;
      for (int64_t n = 0; n < N; ++n) {
        const float* x = p.img + (n * G + c) * plane;
        const float* dy = p.oth + (n * G + c) * P;
        float* dx = p.dimg ? p.dimg + (n * G + c) * plane : nullptr;
        float* dout = p.doth ? p.doth + (n * G + c) * P : nullptr;
        if (dout) std::fill_n(dout, P, 0.0f);
        for (int64_t ki = 0; ki < w.kh; ++ki)
          for (int64_t kj = 0; kj < w.kw; ++kj) {
            const int64_t t = ki * w.kw + kj, xoff = kj * w.dw - w.pw;
            const float wv = wc[t];
            float* __restrict a = acc.data() + t * w.ow;
            int64_t lo, hi;
            ValidRange(xoff, w.sw, w.iw, w.ow, lo, hi);
            for (int64_t oy = 0; oy < w.oh; ++oy) {
              const int64_t y = oy * w.sh - w.ph + ki * w.dh;
              if (y < 0 || y >= w.ih) continue;
              const float* __restrict xs = x + y * w.iw + xoff;  // xs[ox * sw] = tap
              const float* __restrict d = dy + oy * w.ow;
              if (w.sw == 1) {
                if (p.dw)
                  for (int64_t ox = lo; ox < hi; ++ox) a[ox] += d[ox] * xs[ox];
                if (dx) {
                  float* __restrict dxs = dx + y * w.iw + xoff;
                  for (int64_t ox = lo; ox < hi; ++ox) dxs[ox] += wv * d[ox];
                }
                if (dout) {
                  float* __restrict o = dout + oy * w.ow;
                  for (int64_t ox = lo; ox < hi; ++ox) o[ox] += wv * xs[ox];
                }
              } else {
                const int64_t s = w.sw;
                if (p.dw)
                  for (int64_t ox = lo; ox < hi; ++ox) a[ox] += d[ox] * xs[ox * s];
                if (dx) {
                  float* dxs = dx + y * w.iw + xoff;
                  for (int64_t ox = lo; ox < hi; ++ox) dxs[ox * s] += wv * d[ox];
                }
                if (dout) {
                  float* __restrict o = dout + oy * w.ow;
                  for (int64_t ox = lo; ox < hi; ++ox) o[ox] += wv * xs[ox * s];
                }
              }
            }
          }
      }
      if (p.dw)
        for (int64_t t = 0; t < KK; ++t) {
          double s = 0;
          for (int64_t ox = 0; ox < w.ow; ++ox) s += acc[t * w.ow + ox];
          p.dw[c * KK + t] = static_cast<float>(s);
        }
    }
  }
}

void WindowedBackwardReference(const WindowedGrad& p) {
  const Window& w = p.win;
  const int64_t K = w.rows(), P = w.cols(), R = p.rows, G = p.groups, N = p.n;
  const int64_t img_plane = w.c * w.ih * w.iw;
  // The image index read by im2col row k at position q, or -1 (padding).
  auto tap = [&](int64_t k, int64_t q) -> int64_t {
    const int64_t ci = k / (w.kh * w.kw), ki = k / w.kw % w.kh, kj = k % w.kw;
    const int64_t y = q / w.ow * w.sh - w.ph + ki * w.dh, x = q % w.ow * w.sw - w.pw + kj * w.dw;
    if (y < 0 || y >= w.ih || x < 0 || x >= w.iw) return -1;
    return (ci * w.ih + y) * w.iw + x;
  };
  auto img = [&](int64_t n, int64_t g) { return p.img + (n * G + g) * img_plane; };
  auto oth = [&](int64_t n, int64_t g, int64_t r) { return p.oth + ((n * G + g) * R + r) * P; };
  for (int64_t g = 0; g < G; ++g) {
    const float* wg = p.w + g * R * K;
    if (p.dw)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t k = 0; k < K; ++k) {
          double s = 0;
          for (int64_t n = 0; n < N; ++n)
            for (int64_t q = 0; q < P; ++q)
              if (const int64_t i = tap(k, q); i >= 0) s += double(oth(n, g, r)[q]) * img(n, g)[i];
          p.dw[(g * R + r) * K + k] = static_cast<float>(s);
        }
    for (int64_t n = 0; n < N; ++n) {
      if (p.dimg)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t q = 0; q < P; ++q) {
            const int64_t i = tap(k, q);
            if (i < 0) continue;
            double s = 0;
            for (int64_t r = 0; r < R; ++r) s += double(wg[r * K + k]) * oth(n, g, r)[q];
            p.dimg[(n * G + g) * img_plane + i] += static_cast<float>(s);
          }
      if (p.doth)
        for (int64_t r = 0; r < R; ++r)
          for (int64_t q = 0; q < P; ++q) {
            double s = 0;
            for (int64_t k = 0; k < K; ++k)
              if (const int64_t i = tap(k, q); i >= 0) s += double(wg[r * K + k]) * img(n, g)[i];
            p.doth[((n * G + g) * R + r) * P + q] = static_cast<float>(s);
          }
    }
  }
}

}  // namespace qforge::train
