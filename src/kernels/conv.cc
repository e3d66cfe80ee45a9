// Fast fp32 convolution: implicit-im2col GEMM (1-D / 2-D), depthwise plane kernels,
// GEMM + col2im for ConvTranspose, reference fallback for other ranks.
#include "qforge/kernels/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>

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
struct Im2colSource {
  const float* x;  // first channel of the group
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
  };
  Run runs[64];  // n <= nr <= 64 columns, so at most 64 runs
  int num_runs = 0;
  {
    int64_t oy = j0 / g.out_w, ox = j0 % g.out_w, j = 0;
    while (j < n && num_runs < 64) {
      const int64_t len = std::min(n - j, g.out_w - ox);
      runs[num_runs++] = {j, len, oy, ox};
      j += len;
      ox = 0;
      ++oy;
    }
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    const Im2colTap& t = s.taps[k0 + kk];
    const float* plane = s.x + t.plane_offset;
    float* out = dst + kk * nr;
    for (int r = 0; r < num_runs; ++r) {
      const Run& run = runs[r];
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
  if (isa == Isa::kScalar)
    detail::DepthwisePlaneScalar(args);
  else
    detail::DepthwisePlane__avx2(args);  // AVX-512 machines use the AVX2 kernel
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
  auto one = [&](int64_t n, int64_t grp, int gemm_threads) {
    const float* xg = x + (n * in_channels_ + grp * cg) * in_plane;
    float* yg = y + (n * out_channels_ + grp * mg) * out_plane;
    GemmEpilogue e = epi;
    e.row_bias = has_bias_ ? bias_.data() + grp * mg : nullptr;
    if (sum) {
      // Residual: C starts as the sum and the GEMM accumulates onto it (beta = 1).
      const float* sg = sum + (n * out_channels_ + grp * mg) * out_plane;
      if (sg != yg) std::copy(sg, sg + mg * out_plane, yg);
      e.beta = 1.0f;
    }
    if (pointwise) {
      Sgemm(mg, out_plane, cg, GemmOperand::Packed(packed_[grp]), GemmOperand::Plain(xg, in_plane),
            yg, out_plane, e, gemm_threads);
    } else {
      Im2colSource src{xg, geo, tap_table.data()};
      BPanelSource bs{&PackIm2col, &src};
      Sgemm(mg, out_plane, cg * taps, GemmOperand::Packed(packed_[grp]), GemmOperand::Source(bs),
            yg, out_plane, e, gemm_threads);
    }
  };
  const int64_t items = g.batch * group_;
  if (t > 1 && items >= t) {
    // Enough independent images / groups: one single-threaded GEMM per item.
#pragma omp parallel for num_threads(t) schedule(dynamic, 1)
    for (int64_t i = 0; i < items; ++i) one(i / group_, i % group_, 1);
  } else {
    for (int64_t i = 0; i < items; ++i) one(i / group_, i % group_, t);
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
