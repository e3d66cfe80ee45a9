// int8 depthwise convolution: per (image, channel) the input plane is copied once into a padded,
// stride-phase-split int16 plane of (x - zx) (kernels/x86/qdwconv_avx2.h), then each output row
// is a sum of kH * kW contiguous runs times one weight each. The scalar path here and the AVX2
// path in x86/qdwconv__avx2.cc compute the same int32 sums and the same numerics::Requantize.
#include "qforge/kernels/qdwconv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/x86/qdwconv_avx2.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

[[noreturn]] void Fail(const std::string& what) { throw Error("QDepthwiseConv: " + what); }

// The scalar per-plane kernel (same contract as DwPlaneConv__avx2).
void DwPlaneConvScalar(const QConvShape& s, const detail::DwPlane& p, const int32_t* wv,
                       int32_t bias, const detail::DwOutput& o, void* y) {
  const int64_t oh_n = s.out_h(), ow_n = s.out_w();
  std::vector<int32_t> acc(ow_n);
  for (int64_t oh = 0; oh < oh_n; ++oh) {
    std::fill(acc.begin(), acc.end(), bias);
    for (int64_t i = 0; i < s.kernel_h; ++i) {
      const int16_t* row = p.data + (oh * s.stride_h + i * s.dilation_h) * p.row_len;
      for (int64_t j = 0; j < s.kernel_w; ++j) {
        const int64_t off = j * s.dilation_w;
        const int16_t* run = row + (off % s.stride_w) * p.phase_len + off / s.stride_w;
        const int32_t w = wv[i * s.kernel_w + j];
        // Wrapping adds (unsigned) like int32 hardware: the exact sum fits in int32 (qdwconv.h)
        // and only the bias may wrap, as in QGemm.
        for (int64_t ow = 0; ow < ow_n; ++ow)
          acc[ow] = static_cast<int32_t>(static_cast<uint32_t>(acc[ow]) +
                                         static_cast<uint32_t>(run[ow] * w));
      }
    }
    for (int64_t ow = 0; ow < ow_n; ++ow) {
      const int64_t idx = oh * ow_n + ow;
      if (o.kind == QGemmOutputKind::kInt32) {
        static_cast<int32_t*>(y)[idx] = acc[ow];
        continue;
      }
      const int32_t q = numerics::Requantize(acc[ow], o.mult, o.zero_point, o.qmin, o.qmax);
      static_cast<uint8_t*>(y)[idx] = static_cast<uint8_t>(q);  // int8 as its bit pattern
    }
  }
}

}  // namespace

bool QDepthwiseApplies(const QConvShape& s) {
  return s.group > 1 && s.group == s.in_channels && s.out_channels % s.group == 0;
}

void QDepthwiseConv(const QConvShape& s, const QConvInput& x, const int8_t* w, const int32_t* zw,
                    int64_t num_zw, const QGemmOutput& out, void* y, int threads, Isa isa) {
  s.Validate();
  if (!QDepthwiseApplies(s)) Fail("needs group == in_channels > 1");
  const int64_t M = s.out_channels, mult = M / s.group;
  if (out.kind == QGemmOutputKind::kFloat) Fail("float output is not supported (use QConv)");
  if (num_zw != 0 && num_zw != 1 && num_zw != M)
    Fail("expected 0, 1 or " + std::to_string(M) + " weight zero points");
  ValidateQGemm(1, M, s.reduction(), {x.data, s.reduction(), x.is_signed, x.zero_point}, out, M);
  if (s.batch == 0) return;
  const int64_t taps = s.kernel_h * s.kernel_w, oh_n = s.out_h(), ow_n = s.out_w();
  const int64_t hp = s.in_h + s.pad_top + s.pad_bottom, wp = s.in_w + s.pad_left + s.pad_right;
  const int64_t phase_len = (wp + s.stride_w - 1) / s.stride_w;
  const int64_t row_len = phase_len * s.stride_w;
  const int64_t in_plane = s.in_h * s.in_w, out_plane = oh_n * ow_n;
  const int64_t esize = out.kind == QGemmOutputKind::kInt32 ? 4 : 1;
  const bool avx2 = isa != Isa::kScalar && IsaSupported(Isa::kAvx2);
  // AVX-512 with VNNI (vpdpwssd): the QGemm VNNI kernel's CPU requirement.
  const bool avx512 = isa == Isa::kAvx512 && QGemmKernelSupported(QGemmKernel::kAvx512Vnni);
  const int64_t planes = s.batch * s.group;
  const int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt) if (planes * out_plane * taps * mult > (1 << 18))
  {
    std::vector<int16_t> plane(hp * row_len + 16);
    std::vector<int32_t> wv(taps);
#pragma omp for schedule(static)
    for (int64_t pc = 0; pc < planes; ++pc) {
      const int64_t n = pc / s.group, c = pc % s.group;
      // Padded, phase-split plane of (x - zx); padding is 0.
      if (s.stride_w == 1) {
        // Only the padding is cleared: the top and bottom pad rows (and the slack after the
        // plane) here, each image row's left / right margins below; the rest is overwritten.
        std::fill(plane.begin(), plane.begin() + s.pad_top * row_len, int16_t{0});
        std::fill(plane.begin() + (s.pad_top + s.in_h) * row_len, plane.end(), int16_t{0});
      } else {
        std::fill(plane.begin(), plane.end(), int16_t{0});
      }
      const int64_t base = (n * s.in_channels + c) * in_plane;
      for (int64_t h = 0; h < s.in_h; ++h) {
        int16_t* row = plane.data() + (h + s.pad_top) * row_len;
        const int64_t src = base + h * s.in_w;
        if (s.stride_w == 2 && avx2) {
          // Input column wi is padded column wi + pl: phase (wi + pl) % 2, index (wi + pl) / 2.
          // So wi = 2k goes to phase pl % 2, index k + pl / 2, and wi = 2k + 1 to phase
          // (pl + 1) % 2, index k + (pl + 1) / 2.
          const int64_t pl = s.pad_left;
          int16_t* even = row + (pl % 2) * phase_len + pl / 2;
          int16_t* odd = row + ((pl + 1) % 2) * phase_len + (pl + 1) / 2;
          detail::DeinterleaveRow2__avx2(static_cast<const uint8_t*>(x.data) + src, x.is_signed,
                                         x.zero_point, s.in_w, even, odd);
          continue;
        }
        if (s.stride_w == 1) {  // one phase: the row after pad_left zeros (a vectorizable loop)
          std::fill(row, row + s.pad_left, int16_t{0});
          std::fill(row + s.pad_left + s.in_w, row + row_len, int16_t{0});
          int16_t* dst = row + s.pad_left;
          if (x.is_signed) {
            const int8_t* xs = static_cast<const int8_t*>(x.data) + src;
            for (int64_t wi = 0; wi < s.in_w; ++wi)
              dst[wi] = static_cast<int16_t>(xs[wi] - x.zero_point);  // |.| <= 255
          } else {
            const uint8_t* xs = static_cast<const uint8_t*>(x.data) + src;
            for (int64_t wi = 0; wi < s.in_w; ++wi)
              dst[wi] = static_cast<int16_t>(xs[wi] - x.zero_point);
          }
          continue;
        }
        // Phase f holds padded columns f, f + stride, ...; input column = padded - pad_left.
        for (int64_t f = 0; f < s.stride_w; ++f) {
          int16_t* dst = row + f * phase_len;
          int64_t q = 0, wi = f - s.pad_left;
          for (; wi < 0; wi += s.stride_w) ++q;  // left padding stays 0
          if (x.is_signed) {
            const int8_t* xs = static_cast<const int8_t*>(x.data) + src;
            for (; wi < s.in_w; wi += s.stride_w, ++q)
              dst[q] = static_cast<int16_t>(xs[wi] - x.zero_point);  // |.| <= 255
          } else {
            const uint8_t* xs = static_cast<const uint8_t*>(x.data) + src;
            for (; wi < s.in_w; wi += s.stride_w, ++q)
              dst[q] = static_cast<int16_t>(xs[wi] - x.zero_point);
          }
        }
      }
      const detail::DwPlane dp{plane.data(), row_len, phase_len};
      for (int64_t k = 0; k < mult; ++k) {
        const int64_t m = c * mult + k;
        const int32_t z = num_zw == 0 ? 0 : zw[num_zw == 1 ? 0 : m];
        for (int64_t t = 0; t < taps; ++t) wv[t] = w[m * taps + t] - z;  // |.| <= 255
        detail::DwOutput o;
        o.kind = out.kind;
        if (out.kind != QGemmOutputKind::kInt32) {
          o.mult = out.multipliers[out.num_multipliers == 1 ? 0 : m];
          o.zero_point = out.zero_point;
          o.qmin = out.qmin;
          o.qmax = out.qmax;
        }
        const int32_t bias = out.bias ? out.bias[m] : 0;
        void* yp = static_cast<uint8_t*>(y) + ((n * M + m) * out_plane) * esize;
        if (avx512)
          detail::DwPlaneConv__avx512(s, dp, wv.data(), bias, o, yp);
        else if (avx2)
          detail::DwPlaneConv__avx2(s, dp, wv.data(), bias, o, yp);
        else
          DwPlaneConvScalar(s, dp, wv.data(), bias, o, yp);
      }
    }
  }
}

namespace {

// Channels [c_begin, C) of one channels-last output pixel, scalar (the same sums as
// DwNhwcPixel__avx2: products exact in int32, bias added modulo 2^32).
void DwNhwcPixelScalar(const detail::DwNhwc& a, const uint8_t* const* tap, int64_t c_begin,
                       void* y) {
  const int64_t C = a.channels, ntaps = 2 * a.pairs;
  for (int64_t c = c_begin; c < C; ++c) {
    uint32_t acc = static_cast<uint32_t>(a.bias[c]);
    for (int64_t t = 0; t < ntaps; ++t) {
      const int32_t xv = a.is_signed ? static_cast<int8_t>(tap[t][c]) : tap[t][c];
      acc += static_cast<uint32_t>((xv - a.zx) * a.w_scalar[t * C + c]);
    }
    const auto v = static_cast<int32_t>(acc);
    if (a.kind == QGemmOutputKind::kInt32) {
      static_cast<int32_t*>(y)[c] = v;
    } else {
      static_cast<uint8_t*>(y)[c] =  // int8 as its bit pattern
          static_cast<uint8_t>(numerics::Requantize(v, a.mult[c], a.zero_point, a.qmin, a.qmax));
    }
  }
}

// dst[n, j, i] = src[n, i, j] for i < rows, j < cols, elements of esize bytes.
void TransposeBatch(const uint8_t* src, int64_t batch, int64_t rows, int64_t cols, int64_t esize,
                    uint8_t* dst) {
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j)
        std::memcpy(dst + ((n * cols + j) * rows + i) * esize,
                    src + ((n * rows + i) * cols + j) * esize, esize);
}

}  // namespace

namespace {

// Validates QDepthwiseConvNhwc's arguments; throws qforge::Error.
void ValidateNhwc(const QConvShape& s, const QConvInput& x, int64_t num_zw,
                  const QGemmOutput& out) {
  s.Validate();
  if (!QDepthwiseApplies(s)) Fail("needs group == in_channels > 1");
  const int64_t M = s.out_channels;
  if (out.kind == QGemmOutputKind::kFloat) Fail("float output is not supported (use QConv)");
  if (num_zw != 0 && num_zw != 1 && num_zw != M)
    Fail("expected 0, 1 or " + std::to_string(M) + " weight zero points");
  ValidateQGemm(1, M, s.reduction(), {x.data, s.reduction(), x.is_signed, x.zero_point}, out, M);
}

bool UseAvx512Nhwc(Isa isa) {
  return isa == Isa::kAvx512 && QGemmKernelSupported(QGemmKernel::kAvx512Vnni);
}

// The per-pixel channels-last kernel (scalar / AVX2; any multiplier), arguments validated.
void DwNhwcPerPixel(const QConvShape& s, const QConvInput& x, const int8_t* w, const int32_t* zw,
                    int64_t num_zw, const QGemmOutput& out, void* y, int threads, Isa isa) {
  const int64_t C = s.in_channels, M = s.out_channels;
  if (s.batch == 0) return;
  const int64_t oh_n = s.out_h(), ow_n = s.out_w(), hw = s.in_h * s.in_w, ohw = oh_n * ow_n;
  const int64_t esize = out.kind == QGemmOutputKind::kInt32 ? 4 : 1;
  if (M != C) {
    // Channel multiplier > 1 (rare): through the NCHW kernel.
    std::vector<uint8_t> xt(s.batch * C * hw), yt(s.batch * M * ohw * esize);
    TransposeBatch(static_cast<const uint8_t*>(x.data), s.batch, hw, C, 1, xt.data());
    QDepthwiseConv(s, {xt.data(), x.is_signed, x.zero_point}, w, zw, num_zw, out, yt.data(),
                   threads, isa);
    TransposeBatch(yt.data(), s.batch, M, ohw, esize, static_cast<uint8_t*>(y));
    return;
  }
  const int64_t taps = s.kernel_h * s.kernel_w, pairs = (taps + 1) / 2, blocks = C / 16;
  // (w - zw) per tap and channel, [2 * pairs][C]; the odd last tap's partner has weight 0.
  std::vector<int16_t> ws(2 * pairs * C, 0);
  for (int64_t c = 0; c < C; ++c) {
    const int32_t z = num_zw == 0 ? 0 : zw[num_zw == 1 ? 0 : c];
    for (int64_t t = 0; t < taps; ++t)
      ws[t * C + c] = static_cast<int16_t>(w[c * taps + t] - z);  // |.| <= 255
  }
  // The AVX2 layout: per pair and 16-channel block, vector v (0, 1) element k = 8 * half + j
  // (half = 128-bit lane) is tap 2p + j % 2 of channel 16b + 8 half + 4 v + j / 2.
  std::vector<int16_t> wv(pairs * blocks * 32);
  for (int64_t p = 0; p < pairs; ++p)
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t k = 0; k < 32; ++k) {
        const int64_t v = k / 16, half = (k % 16) / 8, j = k % 8;
        const int64_t c = 16 * b + 8 * half + 4 * v + j / 2, t = 2 * p + j % 2;
        wv[(p * blocks + b) * 32 + k] = ws[t * C + c];
      }
  std::vector<int32_t> bias(C, 0);
  if (out.bias) std::copy(out.bias, out.bias + C, bias.begin());
  std::vector<numerics::FixedMultiplier> mult;
  std::vector<int64_t> rq;
  if (out.kind != QGemmOutputKind::kInt32) {
    for (int64_t c = 0; c < C; ++c)
      mult.push_back(out.multipliers[out.num_multipliers == 1 ? 0 : c]);
    // Per 8 channels: mantissa, n = 31 - shift, 2^(n-1) + 2^62, 2^(62-n), each for the even
    // then the odd channels (requant8_avx2.h's unsigned-shift form of numerics::Requantize).
    rq.assign(blocks * 2 * 32, 0);
    for (int64_t c = 0; c < blocks * 16; ++c) {
      const int64_t q = c / 8, lane = (c % 8) / 2, odd = c % 2;
      const int n = 31 - mult[c].shift;
      int64_t* t = rq.data() + q * 32;
      t[(0 + odd) * 4 + lane] = mult[c].mantissa;
      t[(2 + odd) * 4 + lane] = n;
      t[(4 + odd) * 4 + lane] = (n > 0 ? int64_t{1} << (n - 1) : 0) + (int64_t{1} << 62);
      t[(6 + odd) * 4 + lane] = int64_t{1} << (62 - n);
    }
  }
  detail::DwNhwc a;
  a.channels = C;
  a.pairs = pairs;
  a.is_signed = x.is_signed;
  a.zx = x.zero_point;
  a.w = wv.data();
  a.w_scalar = ws.data();
  a.bias = bias.data();
  a.kind = out.kind;
  a.mult = mult.data();
  a.rq = rq.data();
  a.zero_point = out.zero_point;
  a.qmin = out.qmin;
  a.qmax = out.qmax;
  // Padding taps read a row of zero-point codes: (zx - zx) * w = 0.
  const std::vector<uint8_t> zrow(C, static_cast<uint8_t>(x.zero_point));
  const bool avx2 = isa != Isa::kScalar && IsaSupported(Isa::kAvx2);
  const int64_t c_scalar = avx2 ? blocks * 16 : 0;
  const auto* xb = static_cast<const uint8_t*>(x.data);
  const int64_t rows = s.batch * oh_n;
  int nt = omp_in_parallel() ? 1 : (threads > 0 ? threads : omp_get_max_threads());
  nt = static_cast<int>(std::min<int64_t>(
      {nt, rows, std::max<int64_t>(1, rows * ow_n * C * taps / (int64_t{1} << 20))}));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    std::vector<const uint8_t*> tap(2 * pairs, zrow.data());
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t n = r / oh_n, oh = r % oh_n;
      const uint8_t* img = xb + n * hw * C;
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        for (int64_t i = 0; i < s.kernel_h; ++i) {
          const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
          for (int64_t j = 0; j < s.kernel_w; ++j) {
            const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
            const bool inside = ih >= 0 && ih < s.in_h && iw >= 0 && iw < s.in_w;
            tap[i * s.kernel_w + j] = inside ? img + (ih * s.in_w + iw) * C : zrow.data();
          }
        }
        void* yp = static_cast<uint8_t*>(y) + (r * ow_n + ow) * C * esize;
        if (avx2 && blocks > 0) detail::DwNhwcPixel__avx2(a, tap.data(), yp);
        DwNhwcPixelScalar(a, tap.data(), c_scalar, yp);
      }
    }
  }
}

// The AVX-512 VNNI row kernel (multiplier 1), arguments validated.
void DwNhwcAvx512(const QConvShape& s, const QConvInput& x, const PackedQDepthwiseNhwc& w,
                  const QGemmOutput& out, void* y, int threads) {
  const int64_t C = s.in_channels, Cp = w.padded_channels(), blocks = Cp / 16;
  const int64_t oh_n = s.out_h(), ow_n = s.out_w(), taps = s.kernel_h * s.kernel_w;
  if (s.batch == 0) return;
  // The bias with the input zero point folded in: bias - zx * sum_t (w - zw), modulo 2^32.
  std::vector<int32_t> bias(Cp, 0);
  for (int64_t c = 0; c < C; ++c) {
    const uint32_t b = out.bias ? static_cast<uint32_t>(out.bias[c]) : 0;
    bias[c] = static_cast<int32_t>(b - static_cast<uint32_t>(x.zero_point) *
                                           static_cast<uint32_t>(w.sums()[c]));
  }
  std::vector<int64_t> rq;
  bool narrow = true, fold_zp = false;
  if (out.kind != QGemmOutputKind::kInt32) {
    auto mult = [&](int64_t c) { return out.multipliers[out.num_multipliers == 1 ? 0 : c]; };
    // A zero multiplier gives 0 in both forms: it counts as n = 33.
    auto n_of = [&](int64_t c) { return mult(c).mantissa == 0 ? 33 : 31 - mult(c).shift; };
    for (int64_t c = 0; c < C; ++c) narrow = narrow && n_of(c) >= 33;
    // The zero point folds into the rounding term when every n - 32 <= 21: |zp| 2^21 + 2^20 <
    // 2^29, and the high product dword is below 2^30, so the int32 sum cannot overflow.
    fold_zp = narrow && out.zero_point >= -255 && out.zero_point <= 255;
    for (int64_t c = 0; c < C; ++c) fold_zp = fold_zp && n_of(c) <= 53;
    rq.assign(blocks * 48, 0);
    for (int64_t c = 0; c < C; ++c) {
      const int n = n_of(c);  // 0..62
      int64_t* t = rq.data() + c / 16 * 48;
      t[(c % 2) * 8 + (c % 16) / 2] = mult(c).mantissa;
      if (narrow) {  // slots 2 and 3 as 16 int32 each (the bytes the kernel loads)
        const auto round = static_cast<int32_t>(
            (int64_t{1} << (n - 33)) +
            (fold_zp ? int64_t{out.zero_point} * (int64_t{1} << (n - 32)) : 0));
        const int32_t shift = n - 32;
        std::memcpy(reinterpret_cast<char*>(t + 16) + 4 * (c % 16), &round, 4);
        std::memcpy(reinterpret_cast<char*>(t + 24) + 4 * (c % 16), &shift, 4);
      } else {
        t[(2 + c % 2) * 8 + (c % 16) / 2] = n;
        t[(4 + c % 2) * 8 + (c % 16) / 2] = n > 0 ? int64_t{1} << (n - 1) : 0;
      }
    }
  }
  // Padding rows and taps read zx codes: in_w * C of them (an interior pixel of a padding row
  // reads up to column in_w - 1).
  const std::vector<uint8_t> zrow(s.in_w * C + 64, static_cast<uint8_t>(x.zero_point));
  detail::DwNhwc512 a;
  a.shape = &s;
  a.x = static_cast<const uint8_t*>(x.data);
  a.is_signed = x.is_signed;
  a.zrow = zrow.data();
  a.w = w.taps();
  a.taps = taps;
  a.padded_channels = Cp;
  a.bias = bias.data();
  a.kind = out.kind;
  a.rq = rq.data();
  a.narrow = narrow;
  a.fold_zp = fold_zp;
  a.zero_point = out.zero_point;
  a.qmin = out.qmin;
  a.qmax = out.qmax;
  // Interior columns: ow * stride_w - pad_left >= 0 and ow * stride_w - pad_left +
  // (kW - 1) dil_w <= in_w - 1.
  a.ow_lo = std::min(ow_n, (s.pad_left + s.stride_w - 1) / s.stride_w);
  const int64_t lim = s.in_w - 1 + s.pad_left - (s.kernel_w - 1) * s.dilation_w;
  a.ow_hi = lim < 0 ? 0 : std::min(ow_n, lim / s.stride_w + 1);
  a.y = y;
  const int64_t rows = s.batch * oh_n;
  int nt = omp_in_parallel() ? 1 : (threads > 0 ? threads : omp_get_max_threads());
  nt = static_cast<int>(std::min<int64_t>(
      {nt, rows, std::max<int64_t>(1, rows * ow_n * C * taps / (int64_t{1} << 20))}));
  if (nt <= 1) {
    detail::DwNhwcRows__avx512(a, 0, rows);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num(), per = (rows + nt - 1) / nt;
    const int64_t r0 = std::min(rows, t * per), r1 = std::min(rows, r0 + per);
    if (r0 < r1) detail::DwNhwcRows__avx512(a, r0, r1);
  }
}

}  // namespace

PackedQDepthwiseNhwc PackedQDepthwiseNhwc::Pack(int64_t channels, int64_t kernel_h,
                                                int64_t kernel_w, const int8_t* w,
                                                const int32_t* zw, int64_t num_zw) {
  if (channels < 1 || kernel_h < 1 || kernel_w < 1)
    Fail("bad packed weight shape [" + std::to_string(channels) + ", 1, " +
         std::to_string(kernel_h) + ", " + std::to_string(kernel_w) + "]");
  if (num_zw != 0 && num_zw != 1 && num_zw != channels)
    Fail("expected 0, 1 or " + std::to_string(channels) + " weight zero points");
  PackedQDepthwiseNhwc p;
  const int64_t taps = kernel_h * kernel_w, C = channels;
  p.channels_ = C;
  p.kernel_h_ = kernel_h;
  p.kernel_w_ = kernel_w;
  p.padded_ = (C + 15) / 16 * 16;
  p.codes_.assign(w, w + C * taps);
  p.zw_.resize(C);
  for (int64_t c = 0; c < C; ++c) p.zw_[c] = num_zw == 0 ? 0 : zw[num_zw == 1 ? 0 : c];
  p.taps_.assign(taps * p.padded_, 0);
  p.sums_.assign(p.padded_, 0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t t = 0; t < taps; ++t) {
      const int32_t d = w[c * taps + t] - p.zw_[c];  // [-255, 255]: an int16
      // The int16 in the low half, 0 in the high half (vpdpwssd multiplies both halves).
      p.taps_[t * p.padded_ + c] = static_cast<int32_t>(static_cast<uint16_t>(d));
      p.sums_[c] += d;  // |sum| <= 255 * 2^15 (kH kW <= 2^15 for a valid convolution)
    }
  }
  return p;
}

void QDepthwiseConvNhwc(const QConvShape& s, const QConvInput& x, const int8_t* w,
                        const int32_t* zw, int64_t num_zw, const QGemmOutput& out, void* y,
                        int threads, Isa isa) {
  ValidateNhwc(s, x, num_zw, out);
  if (s.out_channels == s.in_channels && UseAvx512Nhwc(isa)) {
    DwNhwcAvx512(s, x,
                 PackedQDepthwiseNhwc::Pack(s.in_channels, s.kernel_h, s.kernel_w, w, zw, num_zw),
                 out, y, threads);
    return;
  }
  DwNhwcPerPixel(s, x, w, zw, num_zw, out, y, threads, isa);
}

void QDepthwiseConvNhwc(const QConvShape& s, const QConvInput& x, const PackedQDepthwiseNhwc& w,
                        const QGemmOutput& out, void* y, int threads, Isa isa) {
  ValidateNhwc(s, x, s.out_channels, out);
  if (s.out_channels != s.in_channels || w.channels() != s.in_channels ||
      w.kernel_h() != s.kernel_h || w.kernel_w() != s.kernel_w)
    Fail("packed weights [" + std::to_string(w.channels()) + ", 1, " +
         std::to_string(w.kernel_h()) + ", " + std::to_string(w.kernel_w()) +
         "] do not match the convolution (channels " + std::to_string(s.in_channels) + " -> " +
         std::to_string(s.out_channels) + ", kernel " + std::to_string(s.kernel_h) + "x" +
         std::to_string(s.kernel_w) + ")");
  if (UseAvx512Nhwc(isa)) {
    DwNhwcAvx512(s, x, w, out, y, threads);
    return;
  }
  DwNhwcPerPixel(s, x, w.codes(), w.zero_points(), s.in_channels, out, y, threads, isa);
}

}  // namespace qforge::kernels
