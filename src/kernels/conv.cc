// Fast fp32 convolution: implicit-im2col GEMM (1-D / 2-D), depthwise plane kernels,
// GEMM + col2im for ConvTranspose, reference fallback for other ranks.
#include "qforge/kernels/conv.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/ref/conv_ref.h"
#include "kernels/x86/dwconv_plane.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

std::string VecText(const std::vector<int64_t>& v) { return ShapeToString(v); }

// Output planes of at least kPhasedPlane outputs run one image per GEMM (phase planes, B read
// in place, no packing); smaller ones (7x7) are batched, up to kBatchColumns columns per GEMM,
// so the N tiles are mostly full. Measured at batch 8 (docs/fp32_kernels.md): per image is
// ~1.3x faster for 28x28 and 14x14 3x3 convs than the old batching, slower for 7x7.
constexpr int64_t kPhasedPlane = 192;
constexpr int64_t kBatchColumns = 2048;

float ApplyAct(float v, const Activation& act) { return std::min(std::max(v, act.lo), act.hi); }

// 2-D view of a 1-D or 2-D geometry (1-D: height 1).
struct Geo2d {
  int64_t in_h, in_w, out_h, out_w, kh, kw, sh, sw, dh, dw, ph, pw;
};

Geo2d To2d(const ConvGeometry& g) {
  if (g.rank() == 1)
    return {1, g.in_size[0], 1, g.out_size[0],  1, g.kernel[0],
            1, g.strides[0], 1, g.dilations[0], 0, g.pads_begin[0]};
  return {g.in_size[0],   g.in_size[1],   g.out_size[0],   g.out_size[1],
          g.kernel[0],    g.kernel[1],    g.strides[0],    g.strides[1],
          g.dilations[0], g.dilations[1], g.pads_begin[0], g.pads_begin[1]};
}

// Implicit im2col: B[k][j] with k = (c, ky, kx) and j = (oy, ox) is
// x[c][oy*sh - ph + ky*dh][ox*sw - pw + kx*dw] (zero outside the image).
struct Im2colTap {
  int64_t plane_offset;  // c * in_h * in_w
  int64_t dy, dx;        // ky*dh - ph, kx*dw - pw
};
// Columns j of the B matrix may span several images: j = image * out_plane + oy * out_w + ox
// (the batched GEMM of small planes), image i's input starting at x + i * image_stride.
struct Im2colSource {
  const float* x;  // first channel of the group, image 0
  int64_t image_stride;
  Geo2d geo;
  const Im2colTap* taps;  // one per k
};

std::vector<Im2colTap> MakeIm2colTaps(const Geo2d& g, int64_t channels) {
  std::vector<Im2colTap> taps;
  taps.reserve(channels * g.kh * g.kw);
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t ky = 0; ky < g.kh; ++ky)
      for (int64_t kx = 0; kx < g.kw; ++kx)
        taps.push_back({c * g.in_h * g.in_w, ky * g.dh - g.ph, kx * g.dw - g.pw});
  return taps;
}

void PackIm2col(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr,
                float* dst) {
  const Im2colSource& s = *static_cast<const Im2colSource*>(ctx);
  const Geo2d& g = s.geo;
  // The panel's columns split into runs along output rows (usually one or two).
  struct Run {
    int64_t j, len, oy, ox;
    const float* image;
  };
  Run runs[64];  // n <= nr <= 64 columns, so at most 64 runs
  int num_runs = 0;
  {
    const int64_t out_plane = g.out_h * g.out_w;
    const int64_t image = j0 / out_plane, rest = j0 % out_plane;
    const float* x = s.x + image * s.image_stride;
    int64_t oy = rest / g.out_w, ox = rest % g.out_w, j = 0;
    while (j < n && num_runs < 64) {
      const int64_t len = std::min(n - j, g.out_w - ox);
      runs[num_runs++] = {j, len, oy, ox, x};
      j += len;
      ox = 0;
      if (++oy == g.out_h) oy = 0, x += s.image_stride;
    }
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    const Im2colTap& t = s.taps[k0 + kk];
    float* out = dst + kk * nr;
    for (int r = 0; r < num_runs; ++r) {
      const Run& run = runs[r];
      const float* plane = run.image + t.plane_offset;
      float* o = out + run.j;
      const int64_t iy = run.oy * g.sh + t.dy;
      if (iy < 0 || iy >= g.in_h) {
        for (int64_t q = 0; q < run.len; ++q) o[q] = 0.0f;
        continue;
      }
      const float* row = plane + iy * g.in_w;
      const int64_t ix0 = run.ox * g.sw + t.dx;  // input column of the run's first output
      // Valid outputs q satisfy 0 <= ix0 + q*sw < in_w.
      int64_t q_lo = ix0 >= 0 ? 0 : (-ix0 + g.sw - 1) / g.sw;
      int64_t q_hi = ix0 >= g.in_w ? 0 : (g.in_w - ix0 + g.sw - 1) / g.sw;
      q_lo = std::min(q_lo, run.len);
      q_hi = std::clamp(q_hi, q_lo, run.len);
      for (int64_t q = 0; q < q_lo; ++q) o[q] = 0.0f;
      if (g.sw == 1) {
        const float* src = row + ix0;
        for (int64_t q = q_lo; q < q_hi; ++q) o[q] = src[q];
      } else if (g.sw == 2) {
        const float* src = row + ix0;
        for (int64_t q = q_lo; q < q_hi; ++q) o[q] = src[2 * q];
      } else {
        for (int64_t q = q_lo; q < q_hi; ++q) o[q] = row[ix0 + q * g.sw];
      }
      for (int64_t q = q_hi; q < run.len; ++q) o[q] = 0.0f;
    }
    for (int64_t q = n; q < nr; ++q) out[q] = 0.0f;
  }
}

// B of a pointwise (1x1, stride 1, no padding) conv: B[k][j] = x[image][k][p] with
// j = image * plane + p, i.e. each image's input is already its slice of B.
struct PointwiseSource {
  const float* x;  // first channel of the group, image 0
  int64_t image_stride, plane;
};

void PackPointwise(const void* ctx, int64_t k0, int64_t kc, int64_t j0, int64_t n, int nr,
                   float* dst) {
  const PointwiseSource& s = *static_cast<const PointwiseSource*>(ctx);
  struct Segment {
    int64_t j, len, offset;  // columns [j, j + len) read x[offset + k * plane ...]
  };
  Segment segs[65];  // n <= 64 columns start at most 65 image segments
  int num_segs = 0;
  for (int64_t j = 0, image = j0 / s.plane, p = j0 % s.plane; j < n && num_segs < 65;) {
    const int64_t len = std::min(n - j, s.plane - p);
    segs[num_segs++] = {j, len, image * s.image_stride + p};
    j += len;
    p = 0;
    ++image;
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    const float* row = s.x + (k0 + kk) * s.plane;
    float* out = dst + kk * nr;
    for (int r = 0; r < num_segs; ++r)
      std::memcpy(out + segs[r].j, row + segs[r].offset, sizeof(float) * segs[r].len);
    for (int64_t q = n; q < nr; ++q) out[q] = 0.0f;
  }
}

// dst[i] = src[2 * i] for i < n (a stride-2 phase row). SSE2 (the baseline ISA), reading no
// further than src[2 * (n - 1)].
void CopyEven(const float* src, int64_t n, float* dst) {
  int64_t i = 0;
  for (; i + 5 <= n; i += 4) {  // reads src[2i .. 2i + 7], 2i + 7 <= 2(n - 1)
    const __m128 lo = _mm_loadu_ps(src + 2 * i), hi = _mm_loadu_ps(src + 2 * i + 4);
    _mm_storeu_ps(dst + i, _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
  }
  for (; i < n; ++i) dst[i] = src[2 * i];
}

// Growing scratch buffers (per thread; slot 0: GEMM output, slot 1: padded input); they only
// grow, so a model's convs reuse them.
float* ScratchFloats(int slot, int64_t count) {
  thread_local std::vector<float> bufs[2];
  std::vector<float>& buf = bufs[slot];
  if (static_cast<int64_t>(buf.size()) < count) buf.resize(count);
  return buf.data();
}

}  // namespace

int64_t ConvOutputSize(int64_t in, int64_t k, int64_t stride, int64_t dilation, int64_t pad_begin,
                       int64_t pad_end) {
  const int64_t span = dilation * (k - 1) + 1;
  const int64_t padded = in + pad_begin + pad_end;
  if (padded < span) return 0;
  return (padded - span) / stride + 1;
}

// ---------------------------------------------------------------------------------------------
// Depthwise planes.

namespace detail {

void DepthwisePlaneScalar(const DepthwiseArgs& a) {
  for (int64_t oy = 0; oy < a.out_h; ++oy)
    for (int64_t ox = 0; ox < a.out_w; ++ox) a.y[oy * a.out_w + ox] = DepthwisePoint(a, oy, ox);
}

}  // namespace detail

namespace {

void RunDepthwise(Isa isa, const DepthwisePlane& p, const float* x, const float* w, float bias,
                  float* y, Activation act) {
  const detail::DepthwiseArgs args{
      x,          p.in_h,        p.in_w,       p.out_h,      p.out_w,   p.kernel_h, p.kernel_w,
      p.stride_h, p.stride_w,    p.dilation_h, p.dilation_w, p.pad_top, p.pad_left, w,
      bias,       act.enabled(), act.lo,       act.hi,       y};
  switch (isa) {
    case Isa::kScalar:
      detail::DepthwisePlaneScalar(args);
      break;
    case Isa::kAvx2:
      detail::DepthwisePlane__avx2(args);
      break;
    case Isa::kAvx512:
      // 8-wide 3x3 kernel without a padded copy (masked loads, several rows per pass); a
      // 16-wide phase-plane kernel measured 1.2-1.4x slower (docs/fp32_kernels.md).
      detail::DepthwisePlane__avx512(args);
      break;
  }
}

}  // namespace

void DepthwiseConv2dPlane(Isa isa, const DepthwisePlane& p, const float* x, const float* w,
                          float bias, float* y, Activation act) {
  if (!IsaSupported(isa)) throw Error("DepthwiseConv2dPlane: ISA not supported by this CPU");
  if (p.pad_top < 0 || p.pad_left < 0) throw Error("DepthwiseConv2dPlane: negative padding");
  if (p.out_h <= 0 || p.out_w <= 0) return;
  RunDepthwise(isa, p, x, w, bias, y, act);
}

// ---------------------------------------------------------------------------------------------
// ConvF32.

ConvF32::ConvF32(int64_t out_channels, int64_t in_channels, int64_t group,
                 std::vector<int64_t> kernel, const float* weights, const float* bias, Isa isa)
    : out_channels_(out_channels),
      in_channels_(in_channels),
      group_(group),
      kernel_(std::move(kernel)),
      isa_(isa),
      has_bias_(bias != nullptr) {
  if (group_ <= 0 || out_channels_ % group_ != 0 || in_channels_ % group_ != 0 || kernel_.empty())
    throw Error("ConvF32: bad channels/group/kernel");
  const int64_t taps = Product(kernel_);
  const int64_t cg = in_channels_ / group_, mg = out_channels_ / group_;
  weights_.assign(weights, weights + out_channels_ * cg * taps);
  bias_.assign(out_channels_, 0.0f);
  if (bias) std::copy(bias, bias + out_channels_, bias_.begin());
  depthwise_ = kernel_.size() == 2 && group_ == in_channels_ && group_ == out_channels_;
  if (!depthwise_ && kernel_.size() <= 2) {
    for (int64_t g = 0; g < group_; ++g)
      packed_.push_back(PackedMatrix::PackA(mg, cg * taps, weights_.data() + g * mg * cg * taps,
                                            cg * taps, false, isa_));
  }
}

void ConvF32::Run(const ConvGeometry& g, const float* x, float* y, Activation act, int threads,
                  const float* sum) const {
  if (g.in_channels != in_channels_ || g.out_channels != out_channels_ || g.group != group_ ||
      g.kernel != kernel_)
    throw Error("ConvF32::Run: geometry (channels " + std::to_string(g.in_channels) + "->" +
                std::to_string(g.out_channels) + ", group " + std::to_string(g.group) +
                ", kernel " + VecText(g.kernel) + ") does not match the weights");
  const int64_t out_plane = Product(g.out_size), in_plane = Product(g.in_size);
  if (out_plane == 0 || g.batch == 0) return;
  const int t = ResolveThreads(threads);

  if (kernel_.size() > 2) {
    // Reference path for 3-D and higher convolutions.
    const int64_t total = g.batch * out_channels_ * out_plane;
    std::vector<float> saved;
    if (sum == y) saved.assign(sum, sum + total), sum = saved.data();
    ref::Conv(g, x, weights_.data(), has_bias_ ? bias_.data() : nullptr, y);
    for (int64_t i = 0; i < total; ++i) y[i] = ApplyAct(sum ? y[i] + sum[i] : y[i], act);
    return;
  }

  const Geo2d geo = To2d(g);
  if (depthwise_) {
    DepthwisePlane p{geo.in_h, geo.in_w, geo.out_h, geo.out_w, geo.kh, geo.kw,
                     geo.sh,   geo.sw,   geo.dh,    geo.dw,    geo.ph, geo.pw};
    const int64_t planes = g.batch * out_channels_;
#pragma omp parallel for num_threads(t) schedule(static)
    for (int64_t i = 0; i < planes; ++i) {
      const int64_t c = i % out_channels_;
      float* yp = y + i * out_plane;
      const float* w = weights_.data() + c * geo.kh * geo.kw;
      if (!sum) {
        RunDepthwise(isa_, p, x + i * in_plane, w, bias_[c], yp, act);
        continue;
      }
      // Residual: the plane's sum is saved first when it is y itself (the plane is overwritten).
      std::vector<float> saved;
      const float* sp = sum + i * out_plane;
      if (sp == yp) saved.assign(sp, sp + out_plane), sp = saved.data();
      RunDepthwise(isa_, p, x + i * in_plane, w, bias_[c], yp, Activation::None());
      for (int64_t o = 0; o < out_plane; ++o) yp[o] = ApplyAct(yp[o] + sp[o], act);
    }
    return;
  }

  const int64_t cg = in_channels_ / group_, mg = out_channels_ / group_;
  const int64_t taps = geo.kh * geo.kw;
  const bool pointwise = taps == 1 && geo.sh == 1 && geo.sw == 1 && geo.ph == 0 && geo.pw == 0 &&
                         geo.in_h == geo.out_h && geo.in_w == geo.out_w;
  GemmEpilogue epi;
  epi.activation = act;
  const std::vector<Im2colTap> tap_table =
      pointwise ? std::vector<Im2colTap>() : MakeIm2colTaps(geo, cg);
  // Small planes batch several images into one GEMM (N = images * out_plane): the weights are
  // then streamed once per chunk instead of once per image and the N tiles are mostly full.
  // The GEMM writes a [mg, images * out_plane] scratch that is copied into y's NCHW layout.
  const int64_t per_chunk =
      out_plane >= kPhasedPlane ? 1 : std::max<int64_t>(1, kBatchColumns / out_plane);
  const int64_t chunks = (g.batch + per_chunk - 1) / per_chunk;
  const int64_t images_per_chunk = (g.batch + chunks - 1) / chunks;  // balanced chunks
  // One image per GEMM with a real kernel: the phase-plane path. The input is copied once,
  // zero-padded (hp x wp per channel) and split into its sh * sw stride phases, phase (py, px)
  // of channel c holding xpad[r * sh + py][s * sw + px] as an hq x wq plane. Output (oy, ox)
  // computed on a grid wq wide (columns ox >= out_w are junk and dropped) then reads, for tap
  // (c, ky, kx), phase ((ky*dh) % sh, (kx*dw) % sw) at row oy + (ky*dh) / sh and column
  // ox + (kx*dw) / sw: B[k][j] = xq[offset[k] + j] with j = oy * wq + ox. Every im2col row is
  // a contiguous run of xq, which the GEMM reads in place (no packing) on AVX-512.
  const bool phased = images_per_chunk == 1 && !pointwise;
  const int64_t hp = geo.in_h + geo.ph + (g.rank() == 2 ? g.pads_end[0] : 0);
  const int64_t wp = geo.in_w + geo.pw + g.pads_end.back();
  const int64_t hq = (hp + geo.sh - 1) / geo.sh, wq = (wp + geo.sw - 1) / geo.sw;
  const int64_t phase_plane = hq * wq, phases = geo.sh * geo.sw;
  const int64_t grid = geo.out_h * wq;  // GEMM columns: output rows, wq wide
  // Junk columns read up to ((kw - 1) * dw) / sw floats past the last plane.
  const int64_t xq_size = cg * phases * phase_plane + ((geo.kw - 1) * geo.dw) / geo.sw;
  std::vector<int64_t> offsets;
  std::vector<char> phase_used(phases, 0);  // phases some tap reads (1x1 stride 2: one of four)
  for (int64_t ky = 0; ky < geo.kh; ++ky)
    for (int64_t kx = 0; kx < geo.kw; ++kx)
      phase_used[((ky * geo.dh) % geo.sh) * geo.sw + (kx * geo.dw) % geo.sw] = 1;
  if (phased)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t ky = 0; ky < geo.kh; ++ky)
        for (int64_t kx = 0; kx < geo.kw; ++kx) {
          const int64_t ry = ky * geo.dh, rx = kx * geo.dw;
          const int64_t phase = (ry % geo.sh) * geo.sw + rx % geo.sw;
          offsets.push_back((c * phases + phase) * phase_plane + (ry / geo.sh) * wq + rx / geo.sw);
        }
  else if (pointwise)
    for (int64_t c = 0; c < cg; ++c) offsets.push_back(c * in_plane);
  auto one = [&](int64_t chunk, int64_t grp, int gemm_threads) {
    const int64_t n0 = chunk * images_per_chunk;
    const int64_t nb = std::min(images_per_chunk, g.batch - n0);
    const int64_t cols = nb * out_plane;
    const float* xg = x + (n0 * in_channels_ + grp * cg) * in_plane;
    float* yg = y + (n0 * out_channels_ + grp * mg) * out_plane;
    const int64_t y_image = out_channels_ * out_plane;  // floats between images in y / sum
    float* c = nb == 1 ? yg : ScratchFloats(0, mg * cols);
    GemmEpilogue e = epi;
    e.row_bias = has_bias_ ? bias_.data() + grp * mg : nullptr;
    if (sum) {
      // Residual: C starts as the sum and the GEMM accumulates onto it (beta = 1).
      const float* sg = sum + (n0 * out_channels_ + grp * mg) * out_plane;
      for (int64_t i = 0; i < nb; ++i)
        for (int64_t m = 0; m < mg; ++m) {
          const float* from = sg + i * y_image + m * out_plane;
          float* to = c + m * cols + i * out_plane;
          if (from != to) std::copy(from, from + out_plane, to);
        }
      e.beta = 1.0f;
    }
    if (pointwise) {
      PointwiseSource src{xg, in_channels_ * in_plane, in_plane};
      BPanelSource bs{&PackPointwise, &src};
      // One image: B is the input itself, channel k's plane read in place.
      Sgemm(mg, cols, cg, GemmOperand::Packed(packed_[grp]),
            nb == 1 ? GemmOperand::Rows(xg, offsets.data()) : GemmOperand::Source(bs), c, cols, e,
            gemm_threads);
    } else {
      Im2colSource src{xg, in_channels_ * in_plane, geo, tap_table.data()};
      BPanelSource bs{&PackIm2col, &src};
      Sgemm(mg, cols, cg * taps, GemmOperand::Packed(packed_[grp]), GemmOperand::Source(bs), c,
            cols, e, gemm_threads);
    }
    if (c != yg)
      for (int64_t i = 0; i < nb; ++i)
        for (int64_t m = 0; m < mg; ++m) {
          const float* from = c + m * cols + i * out_plane;
          std::copy(from, from + out_plane, yg + i * y_image + m * out_plane);
        }
  };

  auto one_phased = [&](int64_t n, int64_t grp, int gemm_threads) {
    const float* xg = x + (n * in_channels_ + grp * cg) * in_plane;
    float* yg = y + (n * out_channels_ + grp * mg) * out_plane;
    float* xq = ScratchFloats(1, xq_size);
    float* c = ScratchFloats(0, mg * grid);
    for (int64_t ch = 0; ch < cg; ++ch)
      for (int64_t py = 0; py < geo.sh; ++py)
        for (int64_t px = 0; px < geo.sw; ++px) {
          // An unused phase is never read by a kept column (junk columns may read anything).
          if (!phase_used[py * geo.sw + px]) continue;
          float* plane = xq + (ch * phases + py * geo.sw + px) * phase_plane;
          // Phase columns s with padded column s * sw + px inside the image: [s_lo, s_hi).
          const int64_t s_lo =
              std::min(wq, (std::max<int64_t>(geo.pw - px, 0) + geo.sw - 1) / geo.sw);
          const int64_t s_hi =
              std::clamp<int64_t>((geo.pw + geo.in_w - px + geo.sw - 1) / geo.sw, s_lo, wq);
          for (int64_t r = 0; r < hq; ++r) {
            float* row = plane + r * wq;
            const int64_t iy = r * geo.sh + py - geo.ph;
            if (iy < 0 || iy >= geo.in_h) {
              std::fill(row, row + wq, 0.0f);
              continue;
            }
            const float* src = xg + (ch * geo.in_h + iy) * geo.in_w + (s_lo * geo.sw + px - geo.pw);
            std::fill(row, row + s_lo, 0.0f);
            if (geo.sw == 1)
              std::copy(src, src + (s_hi - s_lo), row + s_lo);
            else if (geo.sw == 2)
              CopyEven(src, s_hi - s_lo, row + s_lo);
            else
              for (int64_t s2 = s_lo; s2 < s_hi; ++s2) row[s2] = src[(s2 - s_lo) * geo.sw];
            std::fill(row + s_hi, row + wq, 0.0f);
          }
        }
    std::fill(xq + cg * phases * phase_plane, xq + xq_size, 0.0f);
    GemmEpilogue e = epi;
    e.row_bias = has_bias_ ? bias_.data() + grp * mg : nullptr;
    if (sum) {
      const float* sg = sum + (n * out_channels_ + grp * mg) * out_plane;
      for (int64_t m = 0; m < mg; ++m)
        for (int64_t oy = 0; oy < geo.out_h; ++oy) {
          const float* from = sg + m * out_plane + oy * geo.out_w;
          std::copy(from, from + geo.out_w, c + m * grid + oy * wq);
        }
      e.beta = 1.0f;  // junk columns may hold anything; they are dropped
    }
    Sgemm(mg, grid, cg * taps, GemmOperand::Packed(packed_[grp]),
          GemmOperand::Rows(xq, offsets.data()), c, grid, e, gemm_threads);
    for (int64_t m = 0; m < mg; ++m)
      for (int64_t oy = 0; oy < geo.out_h; ++oy) {
        const float* from = c + m * grid + oy * wq;
        std::copy(from, from + geo.out_w, yg + m * out_plane + oy * geo.out_w);
      }
  };
  auto item = [&](int64_t i, int gemm_threads) {
    if (phased)
      one_phased(i / group_, i % group_, gemm_threads);
    else
      one(i / group_, i % group_, gemm_threads);
  };
  const int64_t items = chunks * group_;
  if (t > 1 && items >= t) {
    // Enough independent chunks / groups: one single-threaded GEMM per item.
#pragma omp parallel for num_threads(t) schedule(dynamic, 1)
    for (int64_t i = 0; i < items; ++i) item(i, 1);
  } else {
    for (int64_t i = 0; i < items; ++i) item(i, t);
  }
}

// ---------------------------------------------------------------------------------------------
// ConvTransposeF32.

ConvTransposeF32::ConvTransposeF32(int64_t in_channels, int64_t out_channels, int64_t group,
                                   std::vector<int64_t> kernel, const float* weights,
                                   const float* bias, Isa isa)
    : in_channels_(in_channels),
      out_channels_(out_channels),
      group_(group),
      kernel_(std::move(kernel)),
      has_bias_(bias != nullptr) {
  if (group_ <= 0 || out_channels_ % group_ != 0 || in_channels_ % group_ != 0 || kernel_.empty())
    throw Error("ConvTransposeF32: bad channels/group/kernel");
  const int64_t taps = Product(kernel_);
  const int64_t cg = in_channels_ / group_, mg = out_channels_ / group_;
  bias_.assign(out_channels_, 0.0f);
  if (bias) std::copy(bias, bias + out_channels_, bias_.begin());
  // Group g's weights are rows [g*cg, (g+1)*cg) of the [in_channels, mg * taps] matrix;
  // the GEMM needs their transpose, (mg * taps) x cg.
  for (int64_t g = 0; g < group_; ++g)
    packed_.push_back(PackedMatrix::PackA(mg * taps, cg, weights + g * cg * mg * taps, mg * taps,
                                          /*trans=*/true, isa));
}

void ConvTransposeF32::Run(const ConvGeometry& g, const float* x, float* y, Activation act,
                           int threads) const {
  if (g.in_channels != in_channels_ || g.out_channels != out_channels_ || g.group != group_ ||
      g.kernel != kernel_)
    throw Error("ConvTransposeF32::Run: geometry does not match the weights");
  const size_t rank = kernel_.size();
  const int64_t taps = Product(kernel_);
  const int64_t in_plane = Product(g.in_size), out_plane = Product(g.out_size);
  const int64_t cg = in_channels_ / group_, mg = out_channels_ / group_;
  if (out_plane == 0 || g.batch == 0) return;
  const int t = ResolveThreads(threads);
  const int64_t items = g.batch * group_;

  // Precompute, per tap and input position, the output index (or -1): col2im's scatter map.
  std::vector<int64_t> target(taps * in_plane);
  {
    std::vector<int64_t> in_pos(rank), tap(rank);
    for (int64_t k = 0; k < taps; ++k) {
      int64_t rest = k;
      for (size_t d = rank; d-- > 0;) tap[d] = rest % kernel_[d], rest /= kernel_[d];
      for (int64_t i = 0; i < in_plane; ++i) {
        rest = i;
        for (size_t d = rank; d-- > 0;) in_pos[d] = rest % g.in_size[d], rest /= g.in_size[d];
        int64_t o = 0;
        bool inside = true;
        for (size_t d = 0; d < rank; ++d) {
          const int64_t od = in_pos[d] * g.strides[d] - g.pads_begin[d] + tap[d] * g.dilations[d];
          inside &= od >= 0 && od < g.out_size[d];
          o = o * g.out_size[d] + od;
        }
        target[k * in_plane + i] = inside ? o : -1;
      }
    }
  }

  auto one = [&](int64_t item, int gemm_threads, std::vector<float>& col) {
    const int64_t n = item / group_, grp = item % group_;
    const float* xg = x + (n * in_channels_ + grp * cg) * in_plane;
    float* yg = y + (n * out_channels_ + grp * mg) * out_plane;
    col.resize(mg * taps * in_plane);
    // col[(m, k), i] = sum_c W[c, m, k] * x[c, i]
    Sgemm(mg * taps, in_plane, cg, GemmOperand::Packed(packed_[grp]),
          GemmOperand::Plain(xg, in_plane), col.data(), in_plane, {}, gemm_threads);
    for (int64_t m = 0; m < mg; ++m) {
      float* ym = yg + m * out_plane;
      std::fill(ym, ym + out_plane, bias_[grp * mg + m]);
      for (int64_t k = 0; k < taps; ++k) {
        const float* c = col.data() + (m * taps + k) * in_plane;
        const int64_t* tg = target.data() + k * in_plane;
        for (int64_t i = 0; i < in_plane; ++i)
          if (tg[i] >= 0) ym[tg[i]] += c[i];
      }
      if (act.enabled())
        for (int64_t o = 0; o < out_plane; ++o) ym[o] = ApplyAct(ym[o], act);
    }
  };
  if (t > 1 && items >= t) {
#pragma omp parallel num_threads(t)
    {
      std::vector<float> col;
#pragma omp for schedule(dynamic, 1)
      for (int64_t i = 0; i < items; ++i) one(i, 1, col);
    }
  } else {
    std::vector<float> col;
    for (int64_t i = 0; i < items; ++i) one(i, t, col);
  }
}

}  // namespace qforge::kernels
