// int8 convolution: the input transposed to pixels x channels, im2col with columns ordered
// (kernel row, kernel column, channel) so each tap is one contiguous copy (padding filled with
// the input zero point), QGemm per group and image, and the [pixels x channels] result
// transposed into NCHW.
#include "qforge/kernels/qconv.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

[[noreturn]] void Fail(const std::string& what) { throw Error("QConv: " + what); }

// dst[c * rows + r] = src[r * cols + c], in blocks so both sides stay in cache.
template <typename T>
void TransposeTo(const T* src, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t kBlock = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t r1 = std::min(rows, r0 + kBlock);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
  }
}

}  // namespace

void QConvShape::Validate() const {
  if (batch < 0 || in_channels <= 0 || in_h <= 0 || in_w <= 0 || out_channels <= 0 || group <= 0 ||
      kernel_h <= 0 || kernel_w <= 0 || stride_h <= 0 || stride_w <= 0 || dilation_h <= 0 ||
      dilation_w <= 0 || pad_top < 0 || pad_left < 0 || pad_bottom < 0 || pad_right < 0) {
    Fail("sizes, strides and dilations must be positive and pads non-negative");
  }
  if (in_channels % group != 0 || out_channels % group != 0) {
    Fail("channels (" + std::to_string(in_channels) + " in, " + std::to_string(out_channels) +
         " out) are not divisible by group " + std::to_string(group));
  }
  if (in_h + pad_top + pad_bottom < dilation_h * (kernel_h - 1) + 1 ||
      in_w + pad_left + pad_right < dilation_w * (kernel_w - 1) + 1) {
    Fail("the kernel is larger than the padded input");
  }
  if (reduction() > kMaxQGemmK) {
    Fail("C/group * kH * kW = " + std::to_string(reduction()) + " exceeds " +
         std::to_string(kMaxQGemmK));
  }
}

PackedQConvWeights PackedQConvWeights::Pack(const QConvShape& shape, const int8_t* w,
                                            const std::vector<int32_t>& zero_points, Isa isa) {
  shape.Validate();
  const int64_t M = shape.out_channels, mg = M / shape.group, K = shape.reduction();
  if (!zero_points.empty() && zero_points.size() != 1 &&
      static_cast<int64_t>(zero_points.size()) != M) {
    Fail("weights have " + std::to_string(zero_points.size()) +
         " zero points; expected 0, 1 or M = " + std::to_string(M));
  }
  PackedQConvWeights p;
  p.shape_ = shape;
  for (int64_t g = 0; g < shape.group; ++g) {
    std::vector<int32_t> zp;
    if (zero_points.size() == 1) zp = zero_points;
    if (static_cast<int64_t>(zero_points.size()) == M) {
      zp.assign(zero_points.begin() + g * mg, zero_points.begin() + (g + 1) * mg);
    }
    // Group g's rows reordered from (c, i, j) to (i, j, c), the im2col column order of QConv,
    // stored [mg, K] row-major: B = W_g^T (K x mg), i.e. trans.
    const int64_t cg = shape.in_channels / shape.group, taps = shape.kernel_h * shape.kernel_w;
    std::vector<int8_t> wr(mg * K);
    for (int64_t m = 0; m < mg; ++m)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t)
          wr[m * K + t * cg + c] = w[(g * mg + m) * K + c * taps + t];
    p.groups_.push_back(PackedQGemmB::Pack(K, mg, wr.data(), K, true, zp, isa));
  }
  return p;
}

PackedQConvWeights PackedQConvWeights::WithGeometry(const QConvShape& shape) const {
  if (shape.out_channels != shape_.out_channels || shape.in_channels != shape_.in_channels ||
      shape.group != shape_.group || shape.kernel_h != shape_.kernel_h ||
      shape.kernel_w != shape_.kernel_w) {
    Fail("WithGeometry: channels, group or kernel size differ from the packed weights");
  }
  shape.Validate();
  PackedQConvWeights p = *this;
  p.shape_ = shape;
  return p;
}

void QConv(const QConvInput& x, const PackedQConvWeights& w, const QGemmOutput& out, void* y,
           int threads) {
  const QConvShape& s = w.shape();
  if (s.out_channels == 0) {
    Fail("weights are not packed");
  }
  s.Validate();
  const int64_t M = s.out_channels, mg = M / s.group, cg = s.in_channels / s.group;
  const int64_t K = s.reduction(), oh_n = s.out_h(), ow_n = s.out_w(), P = oh_n * ow_n;
  ValidateQGemm(1, M, K, {x.data, K, x.is_signed, x.zero_point}, out, M);
  if (s.batch == 0) return;
  if (x.data == nullptr || y == nullptr) Fail("null input or output");
  const int64_t esize =
      out.kind == QGemmOutputKind::kUint8 || out.kind == QGemmOutputKind::kInt8 ? 1 : 4;
  const auto pad_code = static_cast<uint8_t>(x.zero_point);  // int8 zero point as its bits
  const int64_t hw = s.in_h * s.in_w;
  std::vector<uint8_t> xt(hw * cg), col(P * K), tmp(P * mg * esize);
  const auto* xb = static_cast<const uint8_t*>(x.data);
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t g = 0; g < s.group; ++g) {
      // The group's input planes [cg, H*W] transposed to pixels x channels [H*W, cg].
      const uint8_t* xg = xb + (n * s.in_channels + g * cg) * hw;
      TransposeTo(xg, cg, hw, xt.data());
      // A pointwise convolution (1x1, stride 1, no padding) reads the transposed input as is.
      const bool pointwise = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 &&
                             s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0 &&
                             s.pad_bottom == 0 && s.pad_right == 0;
      // im2col: row p = (oh, ow); column k = (i, j, c) (the packed weights' order); a tap in
      // the padding is cg copies of the zero point. With stride-1 columns and dilation 1,
      // the kW taps of a kernel row are adjacent pixels: one copy when all are inside.
      const bool row_runs = s.dilation_w == 1;
      for (int64_t oh = 0; oh < oh_n && !pointwise; ++oh) {
        for (int64_t ow = 0; ow < ow_n; ++ow) {
          uint8_t* row = col.data() + (oh * ow_n + ow) * K;
          const int64_t iw0 = ow * s.stride_w - s.pad_left;
          for (int64_t i = 0; i < s.kernel_h; ++i) {
            const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
            const bool row_inside = ih >= 0 && ih < s.in_h;
            if (row_inside && row_runs && iw0 >= 0 && iw0 + s.kernel_w <= s.in_w) {
              std::memcpy(row, xt.data() + (ih * s.in_w + iw0) * cg, s.kernel_w * cg);
              row += s.kernel_w * cg;
              continue;
            }
            for (int64_t j = 0; j < s.kernel_w; ++j, row += cg) {
              const int64_t iw = iw0 + j * s.dilation_w;
              if (row_inside && iw >= 0 && iw < s.in_w) {
                std::memcpy(row, xt.data() + (ih * s.in_w + iw) * cg, cg);
              } else {
                std::memset(row, pad_code, cg);
              }
            }
          }
        }
      }
      // Group g's output channels: per-channel arrays start at g * mg.
      QGemmOutput og = out;
      if (og.bias) og.bias += g * mg;
      if (og.float_bias) og.float_bias += g * mg;
      if (og.multipliers && og.num_multipliers == M) {
        og.multipliers += g * mg;
        og.num_multipliers = mg;
      }
      if (og.scales && og.num_scales == M) {
        og.scales += g * mg;
        og.num_scales = mg;
      }
      QGemm(P, {pointwise ? xt.data() : col.data(), K, x.is_signed, x.zero_point}, w.group(g), og,
            tmp.data(), mg, threads);
      // [P x mg] -> y[n, g*mg + m, p].
      auto* yb = static_cast<uint8_t*>(y) + ((n * M + g * mg) * P) * esize;
      if (esize == 1) {
        TransposeTo(tmp.data(), P, mg, yb);
      } else {
        TransposeTo(reinterpret_cast<const uint32_t*>(tmp.data()), P, mg,
                    reinterpret_cast<uint32_t*>(yb));
      }
    }
  }
}

}  // namespace qforge::kernels
