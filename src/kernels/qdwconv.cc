// int8 depthwise convolution: per (image, channel) the input plane is copied once into a padded,
// stride-phase-split int16 plane of (x - zx) (kernels/x86/qdwconv_avx2.h), then each output row
// is a sum of kH * kW contiguous runs times one weight each. The scalar path here and the AVX2
// path in x86/qdwconv__avx2.cc compute the same int32 sums and the same numerics::Requantize.
#include "qforge/kernels/qdwconv.h"

#include <omp.h>

#include <algorithm>
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

}  // namespace qforge::kernels
