// Tests of the fast int8 depthwise convolution: scalar and AVX2 paths bit-exact with the
// reference convolution (ref::QConv) on random shapes (sizes 1..10, kernels 1..5, strides 1..3,
// dilations, pads, channel multipliers, uint8/int8, zero points, int32 and 8-bit outputs,
// per-channel multipliers, bias), MobileNetV2's depthwise layers, and all operands at extremes.
#include "qforge/kernels/qdwconv.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/qconv_ref.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

struct Data {
  std::vector<uint8_t> x;
  std::vector<int8_t> w;
  std::vector<int32_t> zw, bias;
  std::vector<numerics::FixedMultiplier> mult;
};

// big_mult: multipliers in [0.2, 3] (n = 31 - shift < 33 for some channels: the 64-bit
// requantization form instead of the 32-bit one). tiny_mult: multipliers in [1e-9, 1e-6] (n > 53
// for some channels: the 32-bit form without the zero point folded into the rounding term).
Data MakeData(const QConvShape& s, std::mt19937& rng, bool big_mult = false,
              bool tiny_mult = false) {
  std::uniform_int_distribution<int> u8(0, 255), i8(-128, 127), bias(-5000, 5000);
  std::uniform_real_distribution<double> um(big_mult    ? 0.2
                                            : tiny_mult ? 1e-9
                                                        : 1e-4,
                                            big_mult    ? 3.0
                                            : tiny_mult ? 1e-6
                                                        : 5e-3);
  Data d;
  d.x.resize(s.batch * s.in_channels * s.in_h * s.in_w);
  for (auto& v : d.x) v = static_cast<uint8_t>(u8(rng));
  d.w.resize(s.out_channels * s.kernel_h * s.kernel_w);
  for (auto& v : d.w) v = static_cast<int8_t>(i8(rng));
  for (int64_t m = 0; m < s.out_channels; ++m) {
    d.zw.push_back(m % 3 == 0 ? 0 : i8(rng));
    d.bias.push_back(bias(rng));
    d.mult.push_back(numerics::QuantizeMultiplier(um(rng)));
  }
  // tiny_mult: channel 0 always below 2^-24 (n > 53), so the unfolded form surely runs.
  if (tiny_mult && s.out_channels > 0) d.mult[0] = numerics::QuantizeMultiplier(1e-8);
  return d;
}

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

// Runs ref::QConv and QDepthwiseConv (and QDepthwiseConvNhwc) (scalar and AVX2) with one output
// stage; expects equality. clamp: a fused-activation style output range inside the type's.
void Check(const QConvShape& s, const Data& d, bool is_signed, int32_t zx, QGemmOutputKind kind,
           bool per_channel, const std::string& what, bool clamp = false) {
  const QConvInput x{d.x.data(), is_signed, zx};
  QGemmOutput out;
  if (kind == QGemmOutputKind::kInt32) {
    out = QGemmOutput::Int32(d.bias.data());
  } else {
    const bool sy = kind == QGemmOutputKind::kInt8;
    out = QGemmOutput::Quantized(sy, d.bias.data(), d.mult.data(), per_channel ? s.out_channels : 1,
                                 sy ? -3 : 128, sy ? (clamp ? -3 : -128) : (clamp ? 128 : 0),
                                 sy ? (clamp ? 90 : 127) : (clamp ? 200 : 255));
  }
  const int64_t n = s.batch * s.out_channels * s.out_h() * s.out_w();
  const int64_t bytes = n * (kind == QGemmOutputKind::kInt32 ? 4 : 1);
  std::vector<uint8_t> want(bytes);
  ref::QConv(s, x, d.w.data(), d.zw.data(), out, want.data());
  const int64_t esize = kind == QGemmOutputKind::kInt32 ? 4 : 1;
  const std::vector<uint8_t> xt = ToNhwc(d.x, s.batch, s.in_channels, s.in_h * s.in_w, 1);
  const std::vector<uint8_t> want_t =
      ToNhwc(want, s.batch, s.out_channels, s.out_h() * s.out_w(), esize);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    for (int threads : {1, 2}) {
      std::vector<uint8_t> got(bytes, 0xCD);
      QDepthwiseConv(s, x, d.w.data(), d.zw.data(), s.out_channels, out, got.data(), threads, isa);
      ASSERT_EQ(got, want) << what << " " << IsaName(isa) << " threads " << threads;
      // Channels last: NHWC in, NHWC out equal to the reference transposed.
      std::vector<uint8_t> got_t(bytes, 0xCD);
      QDepthwiseConvNhwc(s, {xt.data(), is_signed, zx}, d.w.data(), d.zw.data(), s.out_channels,
                         out, got_t.data(), threads, isa);
      ASSERT_EQ(got_t, want_t) << what << " NHWC " << IsaName(isa) << " threads " << threads;
      if (s.out_channels != s.in_channels) continue;
      // Prepacked weights (what the runtime op uses).
      const PackedQDepthwiseNhwc pw = PackedQDepthwiseNhwc::Pack(
          s.in_channels, s.kernel_h, s.kernel_w, d.w.data(), d.zw.data(), s.out_channels);
      std::vector<uint8_t> got_p(bytes, 0xCD);
      QDepthwiseConvNhwc(s, {xt.data(), is_signed, zx}, pw, out, got_p.data(), threads, isa);
      ASSERT_EQ(got_p, want_t) << what << " NHWC packed " << IsaName(isa) << " threads " << threads;
    }
  }
}

TEST(QDepthwiseConv, RandomShapesMatchReference) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> size(1, 10), k(1, 5), st(1, 3), dl(1, 2), pad(0, 2), ch(2, 10),
      mult(1, 2);
  int done = 0;
  for (int iter = 0; done < 300 && iter < 2000; ++iter) {
    QConvShape s;
    s.batch = 1 + iter % 2;
    s.in_channels = s.group = ch(rng);
    s.out_channels = s.group * mult(rng);
    s.in_h = size(rng);
    s.in_w = size(rng) + (iter % 5 == 0 ? 20 : 0);  // some rows longer than 16 outputs
    s.kernel_h = k(rng);
    s.kernel_w = k(rng);
    s.stride_h = st(rng);
    s.stride_w = st(rng);
    s.dilation_h = dl(rng);
    s.dilation_w = dl(rng);
    s.pad_top = pad(rng);
    s.pad_left = pad(rng);
    s.pad_bottom = pad(rng);
    s.pad_right = pad(rng);
    if (s.in_h + s.pad_top + s.pad_bottom < s.dilation_h * (s.kernel_h - 1) + 1 ||
        s.in_w + s.pad_left + s.pad_right < s.dilation_w * (s.kernel_w - 1) + 1)
      continue;
    const Data d = MakeData(s, rng);
    const bool is_signed = iter % 2;
    const int32_t zx = is_signed ? -7 : 131;
    const QGemmOutputKind kind = iter % 3 == 0   ? QGemmOutputKind::kInt32
                                 : iter % 3 == 1 ? QGemmOutputKind::kUint8
                                                 : QGemmOutputKind::kInt8;
    Check(s, d, is_signed, zx, kind, iter % 4 != 0, "iter " + std::to_string(iter), iter % 5 == 0);
    if (HasFatalFailure()) return;
    ++done;
  }
  EXPECT_EQ(done, 300);
}

TEST(QDepthwiseConv, ChannelCountsAroundTheNhwcBlock) {
  // The channels-last kernel works on 16-channel blocks with a scalar tail: channel counts
  // 15..17, 31..33, 48 on random small geometries (odd and even tap counts, pads, strides).
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> size(1, 9), k(1, 4), st(1, 2), pad(0, 2);
  int i = 0;
  for (int64_t c : {15, 16, 17, 31, 32, 33, 48}) {
    for (int rep = 0; rep < 6; ++rep, ++i) {
      QConvShape s;
      s.batch = 1 + rep % 2;
      s.in_channels = s.out_channels = s.group = c;
      s.in_h = size(rng);
      s.in_w = size(rng);
      s.kernel_h = k(rng);
      s.kernel_w = k(rng);
      s.stride_h = st(rng);
      s.stride_w = st(rng);
      s.pad_top = pad(rng);
      s.pad_left = pad(rng);
      s.pad_bottom = pad(rng);
      s.pad_right = pad(rng);
      if (s.in_h + s.pad_top + s.pad_bottom < s.kernel_h ||
          s.in_w + s.pad_left + s.pad_right < s.kernel_w)
        continue;
      const Data d = MakeData(s, rng, rep >= 4);  // reps 4, 5: uint8 and int8 output
      const QGemmOutputKind kind = i % 3 == 0   ? QGemmOutputKind::kInt32
                                   : i % 3 == 1 ? QGemmOutputKind::kUint8
                                                : QGemmOutputKind::kInt8;
      Check(s, d, i % 2 == 1, i % 2 ? -9 : 200, kind, i % 4 != 0, "C=" + std::to_string(c));
      if (HasFatalFailure()) return;
    }
  }
}

TEST(QDepthwiseConv, RowLengthsAroundTheVectorWidth) {
  // Output rows of 15, 16, 17, 31, 32, 33 (and half that at stride 2): whole and partial blocks.
  std::mt19937 rng(9);
  for (int64_t w : {15, 16, 17, 31, 32, 33}) {
    for (int64_t stride : {1, 2}) {
      QConvShape s;
      s.in_channels = s.out_channels = s.group = 3;
      s.in_h = 4;
      s.in_w = w;
      s.kernel_h = s.kernel_w = 3;
      s.stride_h = s.stride_w = stride;
      s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
      const Data d = MakeData(s, rng);
      Check(s, d, true, 3, QGemmOutputKind::kInt8, true, "w=" + std::to_string(w));
      Check(s, d, false, 0, QGemmOutputKind::kInt32, true, "w=" + std::to_string(w));
    }
  }
}

TEST(QDepthwiseConv, SlidingWindowRowsOf3x3) {
  // The AVX-512 3 x 3 path for row strides 1 and 2 (eight outputs per step from shared input
  // pixels): rows whose interior holds 0, 1, 2 blocks of eight +- 1 pixel, pads 0..2 (the
  // interior moves), row stride 1 / 2 with a column stride 1..2 and row dilation 1..2, channel
  // counts around the 16-lane block, batch 2, every output kind and zero-point side.
  std::mt19937 rng(41);
  int i = 0;
  for (int64_t stride : {1, 2}) {
    for (int64_t w : {7, 8, 9, 10, 11, 17, 18, 19, 20, 21, 35, 36, 37, 38, 39}) {
      for (int64_t c : {5, 16, 17, 32, 33}) {
        ++i;
        QConvShape s;
        s.batch = 2;
        s.in_channels = s.out_channels = s.group = c;
        s.in_h = 3 + i % 4;
        s.in_w = w;
        s.kernel_h = s.kernel_w = 3;
        s.stride_w = stride;
        s.stride_h = 1 + i % 2;
        s.dilation_h = 1 + (i / 2) % 2;
        s.pad_left = i % 3;
        s.pad_right = (i / 3) % 3;
        s.pad_top = s.pad_bottom = (i / 5) % 3;
        if (s.in_h + s.pad_top + s.pad_bottom < s.dilation_h * 2 + 1 ||
            s.in_w + s.pad_left + s.pad_right < 3)
          continue;
        // Multipliers: usual, large (64-bit form), tiny (32-bit form, zero point not folded).
        const Data d = MakeData(s, rng, i % 7 == 0, i % 7 == 3);
        const QGemmOutputKind kind = i % 3 == 0   ? QGemmOutputKind::kInt32
                                     : i % 3 == 1 ? QGemmOutputKind::kUint8
                                                  : QGemmOutputKind::kInt8;
        Check(s, d, i % 2 == 1, i % 2 ? -128 : 255, kind, i % 4 != 0,
              "w=" + std::to_string(w) + " C=" + std::to_string(c) +
                  " stride=" + std::to_string(stride),
              (i / 3) % 2 == 1);
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(QDepthwiseConv, MobileNetV2Layers) {
  std::mt19937 rng(2);
  // (channels, input size, stride) of MobileNetV2's 3x3 depthwise layers at 224x224, pad 1.
  const int64_t layers[][3] = {{32, 112, 1}, {96, 112, 2}, {144, 56, 1}, {144, 56, 2}, {192, 28, 1},
                               {192, 28, 2}, {384, 14, 1}, {576, 14, 1}, {576, 14, 2}, {960, 7, 1}};
  for (const auto& l : layers) {
    QConvShape s;
    s.in_channels = s.out_channels = s.group = l[0];
    s.in_h = s.in_w = l[1];
    s.kernel_h = s.kernel_w = 3;
    s.stride_h = s.stride_w = l[2];
    s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
    const Data d = MakeData(s, rng);
    Check(s, d, false, 128, QGemmOutputKind::kUint8, true,
          "C=" + std::to_string(l[0]) + " H=" + std::to_string(l[1]));
  }
}

TEST(QDepthwiseConv, AllExtremes) {
  // Every input 255 with zx = 0 and every weight -128 with zw = 127: each term is
  // 255 * -255 = -65025; with a 181 x 181 window (32761 taps <= 2^15) the exact sum
  // -2 130 283 025 is just above INT32_MIN. Checked against that exact value.
  QConvShape s;
  s.in_channels = s.out_channels = s.group = 2;
  s.in_h = s.in_w = 181;
  s.kernel_h = s.kernel_w = 181;
  std::vector<uint8_t> x(2 * 181 * 181, 255);
  std::vector<int8_t> w(2 * 181 * 181, -128);
  const std::vector<int32_t> zw = {127, 127};
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    int32_t y[2] = {0, 0};
    QDepthwiseConv(s, {x.data(), false, 0}, w.data(), zw.data(), 2, QGemmOutput::Int32(), y, 1,
                   isa);
    EXPECT_EQ(y[0], -65025 * 32761) << IsaName(isa);
    EXPECT_EQ(y[1], -65025 * 32761) << IsaName(isa);
  }
  // Channels last, 32 channels (the vector path): the same 181 x 181 window of -65025 terms.
  QConvShape c;
  c.in_channels = c.out_channels = c.group = 32;
  c.in_h = c.in_w = c.kernel_h = c.kernel_w = 181;
  std::vector<uint8_t> xc(32 * 181 * 181, 255);
  std::vector<int8_t> wc(32 * 181 * 181, -128);
  const std::vector<int32_t> zwc(32, 127);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    std::vector<int32_t> y(32, 0);
    QDepthwiseConvNhwc(c, {xc.data(), false, 0}, wc.data(), zwc.data(), 32, QGemmOutput::Int32(),
                       y.data(), 1, isa);
    for (int32_t v : y) ASSERT_EQ(v, -65025 * 32761) << IsaName(isa);
    // The zero point at the other end: x = 0 with zx = 255 (uint8) and x = -128 with zx = 127
    // (int8) against w - zw = 255, so every term is -255 * 255 again. The AVX-512 kernel folds
    // zx into the bias (bias - zx * sum w'); the exact total still is -2 130 283 025.
    std::vector<uint8_t> x0(32 * 181 * 181, 0), xm(32 * 181 * 181, 0x80);
    std::vector<int8_t> wp(32 * 181 * 181, 127);
    const std::vector<int32_t> zwp(32, -128);
    QDepthwiseConvNhwc(c, {x0.data(), false, 255}, wp.data(), zwp.data(), 32, QGemmOutput::Int32(),
                       y.data(), 1, isa);
    for (int32_t v : y) ASSERT_EQ(v, -65025 * 32761) << IsaName(isa) << " zx 255";
    QDepthwiseConvNhwc(c, {xm.data(), true, 127}, wp.data(), zwp.data(), 32, QGemmOutput::Int32(),
                       y.data(), 1, isa);
    for (int32_t v : y) ASSERT_EQ(v, -65025 * 32761) << IsaName(isa) << " int8 zx 127";
  }
  // int8 input at -128 with zx = 127 against weights 127 with zw = -128: -255 * 255 per term on a
  // 16-wide row of a 3x3 depthwise layer (the vector path), requantized by 2^-10.
  QConvShape t;
  t.in_channels = t.out_channels = t.group = 3;
  t.in_h = 5;
  t.in_w = 40;
  t.kernel_h = t.kernel_w = 3;
  std::vector<uint8_t> xi(3 * 5 * 40, 0x80);
  std::vector<int8_t> wi(3 * 9, 127);
  const std::vector<int32_t> zwi = {-128, -128, -128};
  const numerics::FixedMultiplier m = numerics::QuantizeMultiplier(1.0 / 1024);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (!IsaSupported(isa)) continue;
    std::vector<int8_t> y(3 * 3 * 38);
    QDepthwiseConv(t, {xi.data(), true, 127}, wi.data(), zwi.data(), 3,
                   QGemmOutput::Quantized(true, nullptr, &m, 1, 0, -128, 127), y.data(), 1, isa);
    // -9 * 65025 / 1024 = -571.5 -> saturates at -128; with the input at 127 instead, +571.5
    // saturates at 127.
    for (int8_t v : y) ASSERT_EQ(v, -128) << IsaName(isa);
    std::vector<uint8_t> xp(3 * 5 * 40, 127);
    QDepthwiseConv(t, {xp.data(), true, -128}, wi.data(), zwi.data(), 3,
                   QGemmOutput::Quantized(true, nullptr, &m, 1, 0, -128, 127), y.data(), 1, isa);
    for (int8_t v : y) ASSERT_EQ(v, 127) << IsaName(isa);
  }
}

TEST(QDepthwiseConv, Errors) {
  QConvShape s;
  s.in_channels = s.out_channels = 4;
  s.group = 2;
  s.in_h = s.in_w = 3;
  EXPECT_FALSE(QDepthwiseApplies(s));
  std::vector<uint8_t> x(36);
  std::vector<int8_t> w(8);
  std::vector<int32_t> y(36);
  EXPECT_THROW(
      QDepthwiseConv(s, {x.data(), false, 0}, w.data(), nullptr, 0, QGemmOutput::Int32(), y.data()),
      Error);
}

}  // namespace
}  // namespace qforge::kernels
