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

// Random QGemmOutput of `kind` for m channels (per channel or per tensor), kept alive by the
// vectors it points into.
struct RandomOutput {
  std::vector<int32_t> bias;
  std::vector<FixedMultiplier> mult;
  std::vector<float> scales;
  QGemmOutput out;
  int64_t esize = 1;
  RandomOutput(QGemmOutputKind kind, int64_t m, bool per_channel, std::mt19937& rng) {
    bias.resize(m);
    for (auto& b : bias) b = static_cast<int32_t>(rng() % 20001) - 10000;
    const int64_t np = per_channel ? m : 1;
    for (int64_t k = 0; k < np; ++k) {
      mult.push_back(QuantizeMultiplier(std::ldexp(0.7, -static_cast<int>(4 + rng() % 10))));
      scales.push_back(1e-3f * (1 + rng() % 100));
    }
    esize = kind == QGemmOutputKind::kInt32 || kind == QGemmOutputKind::kFloat ? 4 : 1;
    switch (kind) {
      case QGemmOutputKind::kInt32:
        out = QGemmOutput::Int32(bias.data());
        break;
      case QGemmOutputKind::kFloat:
        out = QGemmOutput::Float(bias.data(), scales.data(), np);
        break;
      default: {
        const bool s8 = kind == QGemmOutputKind::kInt8;
        const int32_t zy =
            s8 ? static_cast<int32_t>(rng() % 40) - 20 : static_cast<int32_t>(rng() % 40);
        out = QGemmOutput::Quantized(s8, bias.data(), mult.data(), np, zy, s8 ? -128 : zy,
                                     s8 ? 127 : 255);
      }
    }
  }
};

// [batch, C, P] elements of esize bytes -> [batch, P, C].
std::vector<uint8_t> ToNhwc(const std::vector<uint8_t>& v, int64_t batch, int64_t c, int64_t p,
                            int64_t esize) {
  std::vector<uint8_t> r(v.size());
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t i = 0; i < c; ++i)
      for (int64_t j = 0; j < p; ++j)
        std::memcpy(&r[((n * p + j) * c + i) * esize], &v[((n * c + i) * p + j) * esize], esize);
  return r;
}

// One convolution through the fast path (NCHW QConv, then QConvNhwc) (kernel of the test parameter,
// `threads`) and the reference; random input, weights, zero points. Returns "" or what differs.
std::string CompareConv(const QConvShape& s, QGemmKernel kernel, QGemmOutputKind kind,
                        bool x_signed, bool weight_zp, bool per_channel, int threads,
                        std::mt19937& rng, bool extremes = false) {
  std::vector<uint8_t> x(s.batch * s.in_channels * s.in_h * s.in_w);
  for (auto& v : x) v = static_cast<uint8_t>(rng());
  int32_t zx =
      x_signed ? static_cast<int32_t>(rng() % 256) - 128 : static_cast<int32_t>(rng() % 256);
  std::vector<int8_t> w(s.out_channels * s.reduction());
  for (auto& v : w) v = static_cast<int8_t>(rng());
  std::vector<int32_t> zw;
  if (weight_zp) {
    zw.resize(s.out_channels);
    for (auto& z : zw) z = static_cast<int32_t>(rng() % 256) - 128;
  }
  if (extremes) {  // every product (x - zx)(w - zw) = 255 * -255 or its like
    for (auto& v : x) v = x_signed ? 0x7F : 0xFF;
    zx = x_signed ? -128 : 0;
    for (auto& v : w) v = -128;
    zw.assign(s.out_channels, 127);
  }
  RandomOutput ro(kind, s.out_channels, per_channel, rng);
  const int64_t ny = s.batch * s.out_channels * s.out_h() * s.out_w() * ro.esize;
  std::vector<uint8_t> want(ny), got(ny, 0xAB);
  ref::QConv(s, {x.data(), x_signed, zx}, w.data(), zw.empty() ? nullptr : zw.data(), ro.out,
             want.data());
  const auto packed = PackedQConvWeights::Pack(s, w.data(), zw, IsaOf(kernel));
  QConv({x.data(), x_signed, zx}, packed, ro.out, got.data(), threads);
  std::string layout = "NCHW";
  if (std::memcmp(want.data(), got.data(), ny) == 0) {
    // The channels-last driver on the same data: NHWC input, NHWC output equal to the
    // reference's transposed.
    const std::vector<uint8_t> xt = ToNhwc(x, s.batch, s.in_channels, s.in_h * s.in_w, 1);
    const std::vector<uint8_t> wt =
        ToNhwc(want, s.batch, s.out_channels, s.out_h() * s.out_w(), ro.esize);
    std::fill(got.begin(), got.end(), 0xAB);
    QConvNhwc({xt.data(), x_signed, zx}, packed, ro.out, got.data(), threads);
    if (std::memcmp(wt.data(), got.data(), ny) == 0) return "";
    layout = "NHWC";
  }
  return layout + " mismatch: batch " + std::to_string(s.batch) + " C " +
         std::to_string(s.in_channels) + " H " + std::to_string(s.in_h) + " W " +
         std::to_string(s.in_w) + " M " + std::to_string(s.out_channels) + " group " +
         std::to_string(s.group) + " k " + std::to_string(s.kernel_h) + "x" +
         std::to_string(s.kernel_w) + " stride " + std::to_string(s.stride_h) + "," +
         std::to_string(s.stride_w) + " threads " + std::to_string(threads);
}

// Random shapes with every size 1..10 (channels, spatial, kernel 1..3, strides 1..2, pads 0..2,
// dilations 1..2, groups), all output kinds, 1-3 threads.
TEST_P(QConvKernelTest, RandomSmallShapesMatchReference) {
  std::mt19937 rng(2024);
  const QGemmOutputKind kinds[] = {QGemmOutputKind::kUint8, QGemmOutputKind::kInt8,
                                   QGemmOutputKind::kInt32, QGemmOutputKind::kFloat};
  for (int i = 0; i < 160; ++i) {
    QConvShape s;
    s.batch = 1 + rng() % 2;
    s.group = rng() % 4 == 0 ? 1 + rng() % 3 : 1;
    s.in_channels = s.group * (1 + rng() % 10);
    s.out_channels = s.group * (1 + rng() % 10);
    s.in_h = 1 + rng() % 10;
    s.in_w = 1 + rng() % 10;
    s.kernel_h = 1 + rng() % 3;
    s.kernel_w = 1 + rng() % 3;
    s.stride_h = 1 + rng() % 2;
    s.stride_w = 1 + rng() % 2;
    s.dilation_h = 1 + rng() % 2;
    s.dilation_w = rng() % 5 == 0 ? 2 : 1;
    s.pad_top = rng() % 3;
    s.pad_left = rng() % 3;
    s.pad_bottom = rng() % 3;
    s.pad_right = rng() % 3;
    if (s.in_h + s.pad_top + s.pad_bottom < s.dilation_h * (s.kernel_h - 1) + 1 ||
        s.in_w + s.pad_left + s.pad_right < s.dilation_w * (s.kernel_w - 1) + 1)
      continue;
    if (i % 7 == 0) {  // pointwise
      s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = s.dilation_h = s.dilation_w = 1;
      s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 0;
    }
    const std::string r =
        CompareConv(s, GetParam(), kinds[i % 4], i % 2 == 1, i % 3 == 0, i % 5 < 3, 1 + i % 3, rng);
    ASSERT_EQ(r, "") << "case " << i;
  }
}

// Model-like shapes (ResNet-18 / MobileNetV2 layers at reduced spatial size) with several pixel
// blocks (the im2col block is ~192 KiB of rows), channel counts at 16 +- 1 (the transpose
// blocks) and K % 4 != 0 (padded reduction), 1-2 threads; and the all-extremes case.
TEST_P(QConvKernelTest, ModelShapesMatchReference) {
  struct S {
    int64_t c, h, w, m, k, stride, pad;
  };
  const S shapes[] = {
      {3, 38, 37, 64, 7, 2, 3},                                 // ResNet-18 conv1 (K = 147)
      {64, 20, 20, 64, 3, 1, 1},                                // layer1 3x3 (K = 576, 2 blocks)
      {64, 16, 16, 128, 1, 2, 0},                               // downsample 1x1 stride 2
      {128, 14, 14, 128, 3, 1, 1}, {256, 10, 10, 40, 3, 1, 1},  // K = 2304: 48-row blocks
      {3, 17, 19, 5, 1, 1, 0},                                  // pointwise, K = 3 (padded to 4)
      {15, 17, 33, 17, 1, 1, 0},   // pointwise, 16 - 1 channels, 33 pixels per row
      {17, 31, 16, 15, 1, 1, 0},   // pointwise, 16 + 1
      {24, 28, 28, 144, 1, 1, 0},  // MobileNetV2 expand
      {144, 28, 28, 24, 1, 1, 0},  // project
      {512, 7, 7, 40, 3, 1, 1},    // layer4 3x3: 49 pixels in blocks of 36 + 13
      {64, 13, 12, 32, 3, 2, 1},   // stride-2 3x3, odd sizes
      {8, 15, 14, 16, 9, 1, 4},    // 81 taps: tap pointers without the per-tap offset table
      {4, 23, 21, 12, 5, 3, 2},    // 5x5 stride 3: interior columns at both edges
  };
  std::mt19937 rng(77);
  int i = 0;
  for (const S& sh : shapes) {
    ++i;
    QConvShape s;
    s.in_channels = sh.c;
    s.in_h = sh.h;
    s.in_w = sh.w;
    s.out_channels = sh.m;
    s.kernel_h = s.kernel_w = sh.k;
    s.stride_h = s.stride_w = sh.stride;
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = sh.pad;
    const auto kind = i % 3 == 0 ? QGemmOutputKind::kInt8 : QGemmOutputKind::kUint8;
    ASSERT_EQ(CompareConv(s, GetParam(), kind, i % 2 == 0, i % 4 == 0, true, 1 + i % 2, rng), "")
        << "shape " << i;
  }
  QConvShape s;  // extremes: 255 * 255 * 9 * 64 per output, int32 output checked exactly
  s.in_channels = 64;
  s.in_h = s.in_w = 9;
  s.out_channels = 33;
  s.kernel_h = s.kernel_w = 3;
  for (bool x_signed : {false, true}) {
    ASSERT_EQ(
        CompareConv(s, GetParam(), QGemmOutputKind::kInt32, x_signed, true, true, 1, rng, true),
        "");
  }
}

// Batches of small images (ResNet-18's 14x14 / 7x7 layers): on the tap-pointer path QConvNhwc
// runs one GEMM over several whole images (their output rows are consecutive). Batches 2..11 so
// that the images split into groups with a partial last one (1-3 threads), groups 1-2, strides
// 1-2, 1x1 stride 2 (downsample), uint8 input (the pointer path) and int8 (im2col), every output
// kind, with and without weight zero points; and the all-extremes case over a batch of 9.
TEST_P(QConvKernelTest, SmallImageBatchesMatchReference) {
  struct S {
    int64_t batch, c, h, w, m, group, k, stride, pad;
  };
  const S shapes[] = {
      {9, 64, 7, 7, 40, 1, 3, 1, 1}, {11, 32, 4, 5, 33, 1, 3, 1, 1}, {5, 16, 6, 6, 24, 2, 3, 2, 1},
      {7, 64, 8, 8, 48, 1, 1, 2, 0}, {2, 8, 3, 3, 16, 1, 3, 1, 1},   {3, 12, 1, 1, 7, 1, 1, 1, 0},
      {6, 24, 5, 3, 17, 1, 3, 2, 0}, {10, 8, 2, 2, 64, 2, 3, 1, 1},
  };
  std::mt19937 rng(91);
  const QGemmOutputKind kinds[] = {QGemmOutputKind::kUint8, QGemmOutputKind::kInt8,
                                   QGemmOutputKind::kInt32, QGemmOutputKind::kFloat};
  int i = 0;
  for (const S& sh : shapes) {
    for (int threads = 1; threads <= 3; ++threads) {
      ++i;
      QConvShape s;
      s.batch = sh.batch;
      s.in_channels = sh.c;
      s.in_h = sh.h;
      s.in_w = sh.w;
      s.out_channels = sh.m;
      s.group = sh.group;
      s.kernel_h = s.kernel_w = sh.k;
      s.stride_h = s.stride_w = sh.stride;
      s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = sh.pad;
      ASSERT_EQ(CompareConv(s, GetParam(), kinds[i % 4], i % 5 == 0, i % 4 == 1, i % 3 != 0,
                            threads, rng),
                "")
          << "shape " << i;
    }
  }
  QConvShape s;  // extremes over a batch of 9 images: exact int32 results
  s.batch = 9;
  s.in_channels = 64;
  s.in_h = s.in_w = 7;
  s.out_channels = 33;
  s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  ASSERT_EQ(CompareConv(s, GetParam(), QGemmOutputKind::kInt32, false, true, true, 1, rng, true),
            "");
}

// Stems (group 1, C not a multiple of 4): with the VNNI kernel and no weight zero points the
// drivers read kernel rows of a zero-point-padded input copy as runs (row_runs()); the codes past
// a kernel row belong to the next pixel and must add nothing. Shapes around the stems of
// ResNet-18 (7x7/2, C 3), MobileNetV2 (3x3/2, C 3) and the Fashion-MNIST CNN (3x3, C 1), other
// channel counts, strides, dilations, odd and asymmetric pads, pads as large as the kernel,
// uint8 / int8 inputs, every output kind, 1-2 threads; with weight zero points (the im2col path).
TEST_P(QConvKernelTest, StemRowRunsMatchReference) {
  struct S {
    int64_t c, h, w, m, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
  };
  const S shapes[] = {
      {3, 37, 38, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1},  // ResNet-18 conv1 (K' = 7 * 24)
      {3, 33, 31, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},  // MobileNetV2 conv (K' = 3 * 12)
      {1, 28, 28, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},  // Fashion-MNIST CNN conv1 (runs of 4)
      {1, 9, 30, 33, 5, 5, 1, 1, 2, 0, 1, 4, 1, 1},   // C 1, 5x5, asymmetric pads, N 33
      {2, 11, 13, 17, 3, 2, 1, 3, 0, 2, 2, 0, 2, 1},  // C 2, dilation_h 2, stride_w 3
      {5, 10, 9, 31, 3, 3, 2, 1, 3, 3, 3, 3, 1, 1},   // C 5 (% 4 = 1), pads = kernel
      {6, 8, 8, 12, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1},    // kW * C = 12: runs without a tail
      {7, 9, 12, 40, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1},   // 1x1 stride 2 over 7 channels
      {3, 12, 14, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 2},  // dilation_w 2: no runs (im2col)
      {3, 64, 61, 24, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},  // several pixel blocks
  };
  const QGemmOutputKind kinds[] = {QGemmOutputKind::kUint8, QGemmOutputKind::kInt8,
                                   QGemmOutputKind::kInt32, QGemmOutputKind::kFloat};
  std::mt19937 rng(303);
  int i = 0;
  for (const S& sh : shapes) {
    for (int variant = 0; variant < 4; ++variant, ++i) {
      QConvShape s{1 + variant % 2, sh.c,  sh.h,  sh.w,  sh.m,  1,     sh.kh, sh.kw,
                   sh.sh,           sh.sw, sh.pt, sh.pl, sh.pb, sh.pr, sh.dh, sh.dw};
      const bool weight_zp = variant == 3;
      const std::string r = CompareConv(s, GetParam(), kinds[i % 4], variant % 2 == 1, weight_zp,
                                        i % 3 != 0, 1 + variant % 2, rng);
      ASSERT_EQ(r, "") << "shape " << i / 4 << " variant " << variant;
    }
    // Which path the weights allow: row runs only for VNNI without weight zero points.
    QConvShape s{1,     sh.c,  sh.h,  sh.w,  sh.m,  1,     sh.kh, sh.kw,
                 sh.sh, sh.sw, sh.pt, sh.pl, sh.pb, sh.pr, sh.dh, sh.dw};
    std::vector<int8_t> w(s.out_channels * s.reduction(), 1);
    const bool vnni = GetParam() == QGemmKernel::kAvx512Vnni;
    const auto plain = PackedQConvWeights::Pack(s, w.data(), {}, IsaOf(GetParam()));
    EXPECT_EQ(plain.row_runs() != nullptr, vnni);
    if (vnni) {
      EXPECT_EQ(plain.run_len(), (sh.kw * sh.c + 3) / 4 * 4);
      EXPECT_EQ(plain.row_runs()->K(), sh.kh * plain.run_len());
    }
    const auto with_zp = PackedQConvWeights::Pack(s, w.data(), {1}, IsaOf(GetParam()));
    EXPECT_EQ(with_zp.row_runs(), nullptr);
  }
  // No row runs for C % 4 == 0 or groups.
  QConvShape s{1, 8, 6, 6, 8, 1, 3, 3};
  std::vector<int8_t> w(64 * 9, 1);
  EXPECT_EQ(PackedQConvWeights::Pack(s, w.data(), {}, IsaOf(GetParam())).row_runs(), nullptr);
  s.in_channels = 6;
  s.group = 2;
  EXPECT_EQ(PackedQConvWeights::Pack(s, w.data(), {}, IsaOf(GetParam())).row_runs(), nullptr);
}

// All operands at their extremes through the row runs: a 100 x 99 kernel over 3 channels
// (K = 29700; a kernel row is 297 codes, read as runs of 300, so K' = 100 * 300 = 30000 <= 2^15
// and every run reads 3 codes past its kernel row), every product (x - zx) * w = 255 * -128 (uint8
// 255 with zx 0, int8 127 with zx -128) or -255 * -128 (uint8 0 with zx 255), every code read
// past a kernel row (the next pixel's) at its extreme too; int32 output checked against the
// exact sum, and a padded variant (pad taps add 0).
TEST_P(QConvKernelTest, StemRowRunsExtremesNeverClip) {
  for (int pad : {0, 1}) {
    for (int mode = 0; mode < 3; ++mode) {
      QConvShape s;
      s.in_channels = 3;
      s.in_h = 100 - pad;
      s.in_w = 99 - pad;
      s.out_channels = 33;
      s.kernel_h = 100;
      s.kernel_w = 99;
      s.pad_top = s.pad_left = pad;
      s.pad_bottom = s.pad_right = pad;
      const bool x_signed = mode == 1;
      const uint8_t code = mode == 0 ? 255 : mode == 1 ? 0x7F : 0;
      const int32_t zx = mode == 0 ? 0 : mode == 1 ? -128 : 255;
      std::vector<uint8_t> x(s.in_channels * s.in_h * s.in_w, code);
      std::vector<int8_t> w(s.out_channels * s.reduction(), -128);
      const auto packed = PackedQConvWeights::Pack(s, w.data(), {}, IsaOf(GetParam()));
      if (GetParam() == QGemmKernel::kAvx512Vnni) {  // the row runs, 3 codes past each row
        ASSERT_NE(packed.row_runs(), nullptr);
        ASSERT_EQ(packed.run_len(), 300);
      }
      const int64_t ny = s.out_channels * s.out_h() * s.out_w();
      std::vector<int32_t> want(ny), got(ny, 7);
      ref::QConv(s, {x.data(), x_signed, zx}, w.data(), nullptr, QGemmOutput::Int32(), want.data());
      // Every output window covers 100 x 99 (pad 0) or 99 x 98 (pad 1) real pixels.
      const int64_t terms = pad ? 99 * 98 * 3 : 100 * 99 * 3;
      const int64_t exact = (mode == 2 ? 1 : -1) * terms * 255 * 128;  // |exact| < 2^30
      for (int32_t v : want) ASSERT_EQ(v, exact);
      QConv({x.data(), x_signed, zx}, packed, QGemmOutput::Int32(), got.data(), 1);
      ASSERT_EQ(want, got) << "NCHW pad " << pad << " mode " << mode;
      std::fill(got.begin(), got.end(), 7);
      QConvNhwc({x.data(), x_signed, zx}, packed, QGemmOutput::Int32(), got.data(), 1);
      ASSERT_EQ(want, got) << "NHWC pad " << pad << " mode " << mode;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, QConvKernelTest,
                         ::testing::Values(QGemmKernel::kScalar, QGemmKernel::kAvx2,
                                           QGemmKernel::kAvx512Vnni),
                         [](const auto& info) { return std::string(QGemmKernelName(info.param)); });

}  // namespace
namespace detail {
void QConvTranspose8ForTest(const uint8_t* src, int64_t lds, int64_t rows, int64_t cols,
                            uint8_t* dst, int64_t ldd, uint8_t flip);
}  // namespace detail
namespace {

// The blocked SSE2 byte transpose equals the plain loop, for sizes around its 16 x 16 blocks,
// leading dimensions larger than the sizes, and with / without the int8 -> uint8 flip; bytes
// outside the destination rectangle are untouched.
TEST(QConvTest, Transpose8MatchesLoop) {
  std::mt19937 rng(5);
  const int64_t sizes[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 50};
  for (int64_t rows : sizes) {
    for (int64_t cols : sizes) {
      for (uint8_t flip : {uint8_t{0}, uint8_t{0x80}}) {
        const int64_t lds = cols + rng() % 3, ldd = rows + rng() % 3;
        std::vector<uint8_t> src(rows * lds), want(cols * ldd, 0x5A), got(cols * ldd, 0x5A);
        for (auto& v : src) v = static_cast<uint8_t>(rng());
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) want[c * ldd + r] = src[r * lds + c] ^ flip;
        detail::QConvTranspose8ForTest(src.data(), lds, rows, cols, got.data(), ldd, flip);
        ASSERT_EQ(want, got) << rows << " x " << cols << " flip " << int{flip};
      }
    }
  }
}

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
