// Tests of the int8 convolution: reference against hand values, fast path (im2col + QGemm on
// every kernel) bit-exact with the reference on random shapes (groups, depthwise, strides,
// pads, dilations, uint8/int8 inputs, weight zero points, every output stage), errors.
#include "qforge/kernels/qconv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/qconv_ref.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

using numerics::FixedMultiplier;
using numerics::QuantizeMultiplier;

TEST(QConvRefTest, HandValues) {
  // x (uint8, zx = 1) = [[1, 2], [3, 4]]; w = [[1, 0], [0, 1]]; pad 1: 3 x 3 output.
  QConvShape s;
  s.in_channels = 1;
  s.in_h = s.in_w = 2;
  s.out_channels = 1;
  s.kernel_h = s.kernel_w = 2;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  const uint8_t x[] = {1, 2, 3, 4};
  const int8_t w[] = {1, 0, 0, 1};
  int32_t y[9];
  ref::QConv(s, {x, false, 1}, w, nullptr, QGemmOutput::Int32(), y);
  // y[oh][ow] = (x[oh-1][ow-1] - 1) + (x[oh][ow] - 1), out-of-range taps contribute 0.
  const int32_t want[] = {0, 1, 0, 2, 3, 1, 0, 2, 3};
  for (int i = 0; i < 9; ++i) EXPECT_EQ(y[i], want[i]) << i;
}

struct ConvCase {
  int64_t batch, c, h, w, m, group, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
};

class QConvKernelTest : public ::testing::TestWithParam<QGemmKernel> {
 protected:
  void SetUp() override {
    if (!QGemmKernelSupported(GetParam())) {
      GTEST_SKIP() << QGemmKernelName(GetParam()) << " not supported on this CPU";
    }
  }
};

Isa IsaOf(QGemmKernel k) {
  return k == QGemmKernel::kScalar ? Isa::kScalar
         : k == QGemmKernel::kAvx2 ? Isa::kAvx2
                                   : Isa::kAvx512;
}

TEST_P(QConvKernelTest, MatchesReference) {
  const ConvCase cases[] = {
      {2, 3, 7, 6, 4, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},     // plain 3x3, pad 1
      {1, 8, 9, 9, 8, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},     // depthwise, stride 2
      {1, 6, 5, 7, 4, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},     // grouped 1x1
      {1, 4, 11, 10, 5, 1, 5, 5, 3, 2, 2, 0, 1, 3, 2, 1},   // dilation, asymmetric pads
      {1, 16, 9, 9, 33, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1},   // pointwise, N tail
      {1, 32, 6, 6, 32, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  // depthwise 32
      {1, 64, 8, 8, 24, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   // K = 576
  };
  std::mt19937 rng(11);
  int i = 0;
  for (const ConvCase& cc : cases) {
    for (auto kind : {QGemmOutputKind::kUint8, QGemmOutputKind::kInt8, QGemmOutputKind::kInt32,
                      QGemmOutputKind::kFloat}) {
      ++i;
      QConvShape s{cc.batch, cc.c,  cc.h,  cc.w,  cc.m,  cc.group, cc.kh, cc.kw,
                   cc.sh,    cc.sw, cc.pt, cc.pl, cc.pb, cc.pr,    cc.dh, cc.dw};
      const bool x_signed = i % 2;
      std::vector<uint8_t> x(s.batch * s.in_channels * s.in_h * s.in_w);
      for (auto& v : x) v = static_cast<uint8_t>(rng());
      const int32_t zx =
          x_signed ? static_cast<int32_t>(rng() % 256) - 128 : static_cast<int32_t>(rng() % 256);
      std::vector<int8_t> w(s.out_channels * s.reduction());
      for (auto& v : w) v = static_cast<int8_t>(rng());
      std::vector<int32_t> zw;
      if (i % 3 == 1) {
        zw.resize(s.out_channels);
        for (auto& z : zw) z = static_cast<int32_t>(rng() % 256) - 128;
      }
      std::vector<int32_t> bias(s.out_channels);
      for (auto& b : bias) b = static_cast<int32_t>(rng() % 20001) - 10000;
      const bool per_channel = i % 4 < 2;
      const int64_t np = per_channel ? s.out_channels : 1;
      std::vector<FixedMultiplier> mult;
      std::vector<float> scales;
      for (int64_t k = 0; k < np; ++k) {
        mult.push_back(QuantizeMultiplier(std::ldexp(0.7, -static_cast<int>(4 + rng() % 10))));
        scales.push_back(1e-3f * (1 + rng() % 100));
      }
      QGemmOutput out;
      switch (kind) {
        case QGemmOutputKind::kInt32:
          out = QGemmOutput::Int32(bias.data());
          break;
        case QGemmOutputKind::kFloat:
          out = QGemmOutput::Float(bias.data(), scales.data(), np);
          break;
        default: {
          const bool s8 = kind == QGemmOutputKind::kInt8;
          out = QGemmOutput::Quantized(s8, bias.data(), mult.data(), np, s8 ? -5 : 7, s8 ? -128 : 7,
                                       s8 ? 127 : 255);
        }
      }
      const int64_t esize =
          kind == QGemmOutputKind::kInt32 || kind == QGemmOutputKind::kFloat ? 4 : 1;
      const int64_t ny = s.batch * s.out_channels * s.out_h() * s.out_w() * esize;
      std::vector<uint8_t> want(ny), got(ny, 0xAB);
      ref::QConv(s, {x.data(), x_signed, zx}, w.data(), zw.empty() ? nullptr : zw.data(), out,
                 want.data());
      const auto packed = PackedQConvWeights::Pack(s, w.data(), zw, IsaOf(GetParam()));
      ASSERT_EQ(packed.group(0).kernel(), GetParam());
      QConv({x.data(), x_signed, zx}, packed, out, got.data(), 1);
      ASSERT_EQ(0, std::memcmp(want.data(), got.data(), ny))
          << QGemmKernelName(GetParam()) << " case " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, QConvKernelTest,
                         ::testing::Values(QGemmKernel::kScalar, QGemmKernel::kAvx2,
                                           QGemmKernel::kAvx512Vnni),
                         [](const auto& info) { return std::string(QGemmKernelName(info.param)); });

TEST(QConvTest, BadShapesThrow) {
  QConvShape s;
  s.in_channels = 6;
  s.in_h = s.in_w = 4;
  s.out_channels = 4;
  s.group = 4;  // 6 % 4 != 0
  EXPECT_THROW(s.Validate(), Error);
  s.group = 2;
  s.kernel_h = 9;  // larger than the input
  EXPECT_THROW(s.Validate(), Error);
  s.kernel_h = s.kernel_w = 3;
  EXPECT_NO_THROW(s.Validate());
  s.in_channels = s.group * 8192;  // reduction 8192 * 9 > 2^15
  EXPECT_THROW(s.Validate(), Error);
}

}  // namespace
}  // namespace qforge::kernels
