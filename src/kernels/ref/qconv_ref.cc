// Reference quantized convolution (see qconv_ref.h).
#include "kernels/ref/qconv_ref.h"

#include "qforge/numerics/requantize.h"

namespace qforge::kernels::ref {

void QConv(const QConvShape& s, const QConvInput& x, const int8_t* w, const int32_t* zw,
           const QGemmOutput& out, void* y) {
  s.Validate();
  const int64_t oh_n = s.out_h(), ow_n = s.out_w();
  const int64_t cg = s.in_channels / s.group, mg = s.out_channels / s.group;
  // Validates the zero point and the output stage (one "row", N = M output channels).
  ValidateQGemm(1, s.out_channels, s.reduction(),
                {x.data, s.reduction(), x.is_signed, x.zero_point}, out, s.out_channels);
  const auto* xu = static_cast<const uint8_t*>(x.data);
  const auto* xs = static_cast<const int8_t*>(x.data);
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t m = 0; m < s.out_channels; ++m) {
      const int64_t g = m / mg;
      const int64_t w_zero = zw ? zw[m] : 0;
      for (int64_t oh = 0; oh < oh_n; ++oh) {
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          int64_t sum = 0;
          for (int64_t c = 0; c < cg; ++c) {
            const int64_t ic = g * cg + c;
            for (int64_t i = 0; i < s.kernel_h; ++i) {
              const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
              if (ih < 0 || ih >= s.in_h) continue;  // padding: x = zx, adds 0
              for (int64_t j = 0; j < s.kernel_w; ++j) {
                const int64_t iw = ow * s.stride_w - s.pad_left + j * s.dilation_w;
                if (iw < 0 || iw >= s.in_w) continue;
                const int64_t xi = ((n * s.in_channels + ic) * s.in_h + ih) * s.in_w + iw;
                const int64_t x_value = x.is_signed ? xs[xi] : xu[xi];
                const int64_t w_value = w[((m * cg + c) * s.kernel_h + i) * s.kernel_w + j];
                sum += (x_value - x.zero_point) * (w_value - w_zero);
              }
            }
          }
          if (out.bias) sum += out.bias[m];
          const auto acc = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(sum)));
          const int64_t yi = ((n * s.out_channels + m) * oh_n + oh) * ow_n + ow;
          switch (out.kind) {
            case QGemmOutputKind::kInt32:
              static_cast<int32_t*>(y)[yi] = acc;
              break;
            case QGemmOutputKind::kUint8:
            case QGemmOutputKind::kInt8: {
              const int32_t q =
                  numerics::Requantize(acc, out.multipliers[out.num_multipliers == 1 ? 0 : m],
                                       out.zero_point, out.qmin, out.qmax);
              if (out.kind == QGemmOutputKind::kUint8) {
                static_cast<uint8_t*>(y)[yi] = static_cast<uint8_t>(q);
              } else {
                static_cast<int8_t*>(y)[yi] = static_cast<int8_t>(q);
              }
              break;
            }
            case QGemmOutputKind::kFloat: {
              float v = static_cast<float>(acc) * out.scales[out.num_scales == 1 ? 0 : m];
              if (out.float_bias) v += out.float_bias[m];
              static_cast<float*>(y)[yi] = v;
              break;
            }
          }
        }
      }
    }
  }
}

}  // namespace qforge::kernels::ref
