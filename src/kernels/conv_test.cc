// Fast fp32 Conv / ConvTranspose / depthwise (every compiled ISA) against the reference kernels.
#include "qforge/kernels/conv.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "kernels/ref/conv_ref.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512})
    if (IsaSupported(isa)) out.push_back(isa);
  return out;
}

std::vector<float> Random(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

// A conv geometry with out_size filled from the other fields.
ConvGeometry Make(int64_t batch, int64_t c, int64_t m, int64_t group, std::vector<int64_t> in,
                  std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> d,
                  std::vector<int64_t> pb, std::vector<int64_t> pe) {
  ConvGeometry g;
  g.batch = batch;
  g.in_channels = c;
  g.out_channels = m;
  g.group = group;
  g.in_size = in;
  g.kernel = k;
  g.strides = s;
  g.dilations = d;
  g.pads_begin = pb;
  g.pads_end = pe;
  for (size_t i = 0; i < k.size(); ++i)
    g.out_size.push_back(ConvOutputSize(in[i], k[i], s[i], d[i], pb[i], pe[i]));
  return g;
}

std::string Text(const ConvGeometry& g) {
  return "batch " + std::to_string(g.batch) + " C " + std::to_string(g.in_channels) + " M " +
         std::to_string(g.out_channels) + " group " + std::to_string(g.group) + " in " +
         ShapeToString(g.in_size) + " k " + ShapeToString(g.kernel) + " s " +
         ShapeToString(g.strides) + " d " + ShapeToString(g.dilations) + " pb " +
         ShapeToString(g.pads_begin) + " pe " + ShapeToString(g.pads_end);
}

// Tolerance: each output sums K = C/group * taps products of values in [-1, 1].
void ExpectClose(const std::vector<float>& got, const std::vector<float>& want, int64_t k) {
  ASSERT_EQ(got.size(), want.size());
  const double tol = 2.4e-7 * (k + 8) + 1e-6;
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::fabs(got[i] - want[i]) <= tol)) {
      ADD_FAILURE() << "at " << i << ": got " << got[i] << ", want " << want[i];
      ++bad;
    }
}

void CheckConv(const ConvGeometry& g, Isa isa, std::mt19937& rng, Activation act = {},
               int threads = 1, bool with_bias = true) {
  SCOPED_TRACE(std::string(IsaName(isa)) + " " + Text(g));
  const int64_t taps = Product(g.kernel);
  const auto x = Random(g.batch * g.in_channels * Product(g.in_size), rng);
  const auto w = Random(g.out_channels * (g.in_channels / g.group) * taps, rng);
  const auto b = Random(g.out_channels, rng);
  std::vector<float> want(g.batch * g.out_channels * Product(g.out_size));
  ref::Conv(g, x.data(), w.data(), with_bias ? b.data() : nullptr, want.data());
  for (float& v : want) v = std::min(std::max(v, act.lo), act.hi);
  const ConvF32 conv(g.out_channels, g.in_channels, g.group, g.kernel, w.data(),
                     with_bias ? b.data() : nullptr, isa);
  std::vector<float> got(want.size(), NAN);
  conv.Run(g, x.data(), got.data(), act, threads);
  ExpectClose(got, want, g.in_channels / g.group * taps);
}

// Like CheckConv with a fused residual: y = act(conv(x) + bias + z), z a separate buffer or
// (in_place) y itself holding z on entry.
void CheckConvResidual(const ConvGeometry& g, Isa isa, std::mt19937& rng, bool in_place,
                       Activation act = {}, int threads = 1) {
  SCOPED_TRACE(std::string(IsaName(isa)) + (in_place ? " in-place" : " separate") + " residual " +
               Text(g));
  const int64_t taps = Product(g.kernel);
  const auto x = Random(g.batch * g.in_channels * Product(g.in_size), rng);
  const auto w = Random(g.out_channels * (g.in_channels / g.group) * taps, rng);
  const auto b = Random(g.out_channels, rng);
  const int64_t total = g.batch * g.out_channels * Product(g.out_size);
  const auto z = Random(total, rng);
  std::vector<float> want(total);
  ref::Conv(g, x.data(), w.data(), b.data(), want.data());
  for (int64_t i = 0; i < total; ++i) want[i] = std::min(std::max(want[i] + z[i], act.lo), act.hi);
  const ConvF32 conv(g.out_channels, g.in_channels, g.group, g.kernel, w.data(), b.data(), isa);
  std::vector<float> got = in_place ? z : std::vector<float>(total, NAN);
  conv.Run(g, x.data(), got.data(), act, threads, in_place ? got.data() : z.data());
  ExpectClose(got, want, g.in_channels / g.group * taps + 1);
}

void CheckConvTranspose(const ConvGeometry& g, Isa isa, std::mt19937& rng, int threads = 1) {
  SCOPED_TRACE(std::string(IsaName(isa)) + " transpose " + Text(g) + " out " +
               ShapeToString(g.out_size));
  const int64_t taps = Product(g.kernel);
  const auto x = Random(g.batch * g.in_channels * Product(g.in_size), rng);
  const auto w = Random(g.in_channels * (g.out_channels / g.group) * taps, rng);
  const auto b = Random(g.out_channels, rng);
  std::vector<float> want(g.batch * g.out_channels * Product(g.out_size));
  ref::ConvTranspose(g, x.data(), w.data(), b.data(), want.data());
  const ConvTransposeF32 conv(g.in_channels, g.out_channels, g.group, g.kernel, w.data(), b.data(),
                              isa);
  std::vector<float> got(want.size(), NAN);
  conv.Run(g, x.data(), got.data(), {}, threads);
  ExpectClose(got, want, g.in_channels / g.group * taps);
}

TEST(RefConv, OnnxBasicConvWithPadding) {
  // ONNX's test_basic_conv_with_padding: x = 0..24 (5x5), W = ones(3x3), pads 1.
  std::vector<float> x(25), w(9, 1.0f), y(25);
  for (int i = 0; i < 25; ++i) x[i] = static_cast<float>(i);
  const ConvGeometry g = Make(1, 1, 1, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1});
  ref::Conv(g, x.data(), w.data(), nullptr, y.data());
  const std::vector<float> want = {12,  21, 27, 33,  24,  33,  54,  63, 72,  51,  63,  99, 108,
                                   117, 81, 93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
  EXPECT_EQ(y, want);
}

TEST(RefConvTranspose, OnnxConvTransposeExample) {
  // ONNX's test_convtranspose: x = 0..8 (3x3), W = ones (2 out channels, 3x3), no pads.
  std::vector<float> x(9), w(18, 1.0f), y(2 * 25);
  for (int i = 0; i < 9; ++i) x[i] = static_cast<float>(i);
  ConvGeometry g = Make(1, 1, 2, 1, {3, 3}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0});
  g.out_size = {5, 5};
  ref::ConvTranspose(g, x.data(), w.data(), nullptr, y.data());
  const std::vector<float> plane = {0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                    27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
  EXPECT_EQ(std::vector<float>(y.begin(), y.begin() + 25), plane);
  EXPECT_EQ(std::vector<float>(y.begin() + 25, y.end()), plane);
}

TEST(ConvF32, RandomGeometries2d) {
  std::mt19937 rng(10);
  std::uniform_int_distribution<int> pick(0, 1 << 30);
  for (Isa isa : SupportedIsas()) {
    for (int trial = 0; trial < 40; ++trial) {
      const int64_t group = 1 + pick(rng) % 3;
      const int64_t c = group * (1 + pick(rng) % 4), m = group * (1 + pick(rng) % 5);
      const int64_t kh = 1 + pick(rng) % 4, kw = 1 + pick(rng) % 4;
      const int64_t sh = 1 + pick(rng) % 3, sw = 1 + pick(rng) % 3;
      const int64_t dh = 1 + pick(rng) % 2, dw = 1 + pick(rng) % 2;
      const int64_t h = (kh - 1) * dh + 1 + pick(rng) % 9, w = (kw - 1) * dw + 1 + pick(rng) % 9;
      const ConvGeometry g =
          Make(1 + pick(rng) % 2, c, m, group, {h, w}, {kh, kw}, {sh, sw}, {dh, dw},
               {pick(rng) % 3, pick(rng) % 2}, {pick(rng) % 2, pick(rng) % 3});
      CheckConv(g, isa, rng, trial % 3 == 0 ? Activation::Relu() : Activation::None(),
                1 + trial % 2, trial % 4 != 1);
    }
  }
}

TEST(ConvF32, PointwiseAnd1dAnd3d) {
  std::mt19937 rng(11);
  for (Isa isa : SupportedIsas()) {
    CheckConv(Make(2, 17, 33, 1, {7, 9}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng);
    CheckConv(Make(1, 8, 6, 2, {7, 9}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}), isa, rng);
    CheckConv(Make(2, 6, 4, 2, {19}, {3}, {2}, {2}, {1}, {2}), isa, rng);
    CheckConv(Make(1, 4, 3, 1, {5, 4, 6}, {2, 3, 2}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1}, {0, 1, 1}),
              isa, rng, Activation::Clip(-0.5f, 0.5f));
  }
}

TEST(ConvF32, Depthwise) {
  std::mt19937 rng(12);
  for (Isa isa : SupportedIsas()) {
    for (int64_t s : {1, 2, 3})
      for (int64_t k : {3, 5})
        for (int64_t size : {1, 7, 8, 9, 17}) {
          if (size + 2 < k) continue;
          const ConvGeometry g = Make(2, 5, 5, 5, {size + 2, size}, {k, k}, {s, s}, {1, 1},
                                      {k / 2, k / 2}, {k / 2, k / 2 + 1});
          ASSERT_GE(g.out_size[1], 1);
          CheckConv(g, isa, rng, Activation::Clip(0.0f, 6.0f), 2);
        }
    // Dilated, asymmetric, rectangular kernel.
    CheckConv(Make(1, 3, 3, 3, {10, 13}, {3, 2}, {1, 2}, {2, 3}, {2, 0}, {0, 3}), isa, rng);
  }
}

// Randomized depthwise geometries: kernel 1-7, strides 1-4, dilations 1-3, asymmetric pads,
// widths crossing the 8 / 16 / 32-lane tile edges, every activation kind, residual sums.
TEST(ConvF32, DepthwiseRandomized) {
  std::mt19937 rng(17);
  std::uniform_int_distribution<int> pick(0, 1 << 30);
  for (Isa isa : SupportedIsas()) {
    for (int trial = 0; trial < 60; ++trial) {
      const int64_t c = 1 + pick(rng) % 4;
      const int64_t kh = 1 + pick(rng) % 7, kw = 1 + pick(rng) % 7;
      const int64_t sh = 1 + pick(rng) % 4, sw = 1 + pick(rng) % 4;
      const int64_t dh = 1 + pick(rng) % 3, dw = 1 + pick(rng) % 3;
      const int64_t h = 1 + pick(rng) % 20, w = 1 + pick(rng) % 50;
      const int64_t pt = pick(rng) % 4, pl = pick(rng) % 4, pb = pick(rng) % 4, pr = pick(rng) % 4;
      if ((kh - 1) * dh + 1 > h + pt + pb || (kw - 1) * dw + 1 > w + pl + pr) continue;
      const ConvGeometry g = Make(1 + pick(rng) % 2, c, c, c, {h, w}, {kh, kw}, {sh, sw}, {dh, dw},
                                  {pt, pl}, {pb, pr});
      const Activation act = trial % 3 == 0   ? Activation::Relu()
                             : trial % 3 == 1 ? Activation::Clip(-0.3f, 0.6f)
                                              : Activation::None();
      if (trial % 5 == 4)
        CheckConvResidual(g, isa, rng, trial % 2 == 0, act, 1 + trial % 2);
      else
        CheckConv(g, isa, rng, act, 1 + trial % 2, trial % 4 != 1);
    }
    // MobileNetV2 shapes: 3x3 stride 1 / 2 at 112, 56, 14, 7.
    for (int64_t size : {112, 56, 14, 7})
      for (int64_t s : {1, 2})
        CheckConv(Make(1, 3, 3, 3, {size, size}, {3, 3}, {s, s}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                  Activation::Clip(0.0f, 6.0f));
  }
}

TEST(ConvF32, ModelShapes) {
  std::mt19937 rng(13);
  for (Isa isa : SupportedIsas()) {
    // ResNet-18 stem (reduced image), a 3x3 block conv, a stride-2 downsample.
    CheckConv(Make(1, 3, 64, 1, {32, 32}, {7, 7}, {2, 2}, {1, 1}, {3, 3}, {3, 3}), isa, rng,
              Activation::Relu(), 2);
    CheckConv(Make(1, 64, 64, 1, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng);
    CheckConv(Make(2, 64, 128, 1, {14, 14}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}), isa, rng);
    // MobileNetV2 depthwise 3x3 stride 2 and an expansion 1x1.
    CheckConv(Make(1, 96, 96, 96, {28, 28}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
              Activation::Clip(0.0f, 6.0f));
    CheckConv(Make(1, 24, 144, 1, {14, 14}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng);
  }
}

// Planes below the batching threshold run as one GEMM over several images (columns spanning
// image boundaries, possibly several chunks); every path must still match the reference.
TEST(ConvF32, BatchedSmallPlanes) {
  std::mt19937 rng(16);
  for (Isa isa : SupportedIsas()) {
    for (int threads : {1, 2}) {
      // 3x3 pad 1 and stride 2 at 7x7-ish planes, batch 1..5.
      for (int64_t batch : {1, 2, 5}) {
        CheckConv(Make(batch, 6, 10, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                  Activation::Relu(), threads);
        CheckConv(Make(batch, 4, 9, 1, {9, 8}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {0, 1}), isa, rng,
                  {}, threads);
        // Pointwise (the input is B) and grouped.
        CheckConv(Make(batch, 17, 33, 1, {3, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng,
                  Activation::Clip(0.0f, 6.0f), threads);
        CheckConv(Make(batch, 8, 6, 2, {5, 5}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng,
                  {}, threads, false);
        CheckConv(Make(batch, 4, 6, 2, {6, 5}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                  {}, threads);
      }
      // Several chunks: 45 images of 7x7 (41 per chunk at most -> 2 chunks of 23 and 22);
      // 3 images of 31x31 and 14x14 (one image per GEMM, phase planes), 13x14 just below the
      // per-image threshold (11 images per chunk), 1x1 planes (many images per tile).
      CheckConv(Make(45, 3, 5, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng, {},
                threads);
      CheckConv(Make(3, 5, 9, 1, {14, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng, {},
                threads);
      CheckConv(Make(13, 5, 9, 1, {13, 14}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                Activation::Relu(), threads);
      CheckConv(Make(3, 6, 9, 1, {14, 14}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng, {},
                threads);
      CheckConv(Make(45, 5, 7, 1, {7, 7}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng, {},
                threads);
      CheckConv(Make(3, 3, 5, 1, {31, 31}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng, {},
                threads);
      CheckConv(Make(37, 9, 11, 1, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}), isa, rng, {},
                threads);
      CheckConv(Make(6, 9, 11, 1, {3}, {3}, {1}, {1}, {1}, {1}), isa, rng, {}, threads);
      // ResNet-18 layer4-like (reduced channels): full 32-wide tiles only when batched.
      CheckConv(Make(4, 64, 128, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                Activation::Relu(), threads);
    }
  }
}

// Stride-1 convs on planes too large to batch run on a zero-padded copy of the input.
TEST(ConvF32, ShiftedLargePlanes) {
  std::mt19937 rng(18);
  for (Isa isa : SupportedIsas()) {
    for (int threads : {1, 2}) {
      CheckConv(Make(2, 3, 5, 1, {32, 32}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                Activation::Relu(), threads);
      CheckConv(Make(1, 4, 6, 2, {33, 40}, {2, 3}, {1, 1}, {2, 1}, {0, 2}, {1, 0}), isa, rng, {},
                threads);
      CheckConv(Make(2, 2, 3, 1, {36, 37}, {3, 3}, {1, 1}, {2, 2}, {0, 0}, {0, 0}), isa, rng, {},
                threads, false);
      CheckConv(Make(1, 3, 4, 1, {1500}, {5}, {1}, {1}, {2}, {1}), isa, rng, {}, threads);
    }
  }
}

// One image per GEMM with a real kernel runs on the stride-phase planes of a padded copy of
// the input (B rows read in place on AVX-512): strides 1-3 (phases), dilation, asymmetric
// pads, rectangular kernels, the ResNet-18 stem, single images of small planes.
TEST(ConvF32, PhasePlanes) {
  std::mt19937 rng(19);
  for (Isa isa : SupportedIsas()) {
    for (int threads : {1, 2}) {
      CheckConv(Make(1, 3, 16, 1, {40, 38}, {7, 7}, {2, 2}, {1, 1}, {3, 3}, {3, 3}), isa, rng,
                Activation::Relu(), threads);
      CheckConv(Make(2, 5, 9, 1, {35, 36}, {3, 3}, {2, 2}, {1, 1}, {1, 0}, {0, 1}), isa, rng, {},
                threads);
      CheckConv(Make(1, 4, 6, 2, {34, 41}, {3, 2}, {3, 2}, {2, 3}, {2, 1}, {0, 2}), isa, rng,
                Activation::Clip(-0.5f, 0.5f), threads, false);
      CheckConv(Make(1, 6, 7, 1, {36, 36}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}), isa, rng, {},
                threads);
      CheckConv(Make(1, 32, 40, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa, rng,
                Activation::Relu(), threads);
      CheckConv(Make(1, 8, 12, 1, {14, 13}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}), isa, rng, {},
                threads);
      CheckConv(Make(1, 3, 4, 1, {1501}, {5}, {3}, {2}, {2}, {1}), isa, rng, {}, threads);
    }
  }
}

TEST(ConvF32, FusedResidual) {
  std::mt19937 rng(17);
  for (Isa isa : SupportedIsas()) {
    for (bool in_place : {false, true})
      for (int64_t batch : {1, 3}) {
        // Unbatched (large plane), batched 3x3, batched pointwise, stride-2 downsample.
        CheckConvResidual(Make(batch, 5, 7, 1, {33, 34}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}),
                          isa, rng, in_place, Activation::Relu());
        CheckConvResidual(Make(batch, 6, 10, 1, {7, 7}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}),
                          isa, rng, in_place, Activation::Relu(), 2);
        CheckConvResidual(Make(batch, 12, 8, 1, {4, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0}, {0, 0}),
                          isa, rng, in_place);
        CheckConvResidual(Make(batch, 4, 8, 1, {9, 9}, {1, 1}, {2, 2}, {1, 1}, {0, 0}, {0, 0}), isa,
                          rng, in_place, Activation::Clip(-0.5f, 0.5f));
        // Depthwise.
        CheckConvResidual(Make(batch, 5, 5, 5, {9, 9}, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {1, 1}), isa,
                          rng, in_place, Activation::Clip(0.0f, 6.0f));
      }
  }
}

TEST(ConvF32, GeometryMismatchThrows) {
  std::vector<float> w(2 * 3 * 9, 0.0f);
  const ConvF32 conv(2, 3, 1, {3, 3}, w.data(), nullptr);
  const ConvGeometry g = Make(1, 4, 2, 1, {5, 5}, {3, 3}, {1, 1}, {1, 1}, {0, 0}, {0, 0});
  std::vector<float> x(100), y(100);
  EXPECT_THROW(conv.Run(g, x.data(), y.data()), Error);
}

TEST(ConvTransposeF32, RandomGeometries) {
  std::mt19937 rng(14);
  std::uniform_int_distribution<int> pick(0, 1 << 30);
  for (Isa isa : SupportedIsas()) {
    for (int trial = 0; trial < 30; ++trial) {
      const size_t rank = 1 + trial % 3;
      const int64_t group = 1 + pick(rng) % 2;
      const int64_t c = group * (1 + pick(rng) % 3), m = group * (1 + pick(rng) % 3);
      std::vector<int64_t> in, k, s, d, pb, pe, out;
      for (size_t i = 0; i < rank; ++i) {
        in.push_back(1 + pick(rng) % 5);
        k.push_back(1 + pick(rng) % 3);
        s.push_back(1 + pick(rng) % 3);
        d.push_back(1 + pick(rng) % 2);
        pb.push_back(pick(rng) % 2);
        pe.push_back(pick(rng) % 2);
        const int64_t output_padding = pick(rng) % s.back();
        out.push_back(s[i] * (in[i] - 1) + output_padding + (k[i] - 1) * d[i] + 1 - pb[i] - pe[i]);
      }
      if (*std::min_element(out.begin(), out.end()) < 1) continue;  // pads eat the output
      ConvGeometry g = Make(1 + trial % 2, c, m, group, in, k, s, d, pb, pe);
      g.out_size = out;
      CheckConvTranspose(g, isa, rng, 1 + trial % 2);
    }
  }
}

TEST(DepthwiseConv2dPlane, MatchesRefOnOnePlane) {
  std::mt19937 rng(15);
  for (Isa isa : SupportedIsas()) {
    const DepthwisePlane p{11, 20, 6, 10, 3, 3, 2, 2, 1, 1, 1, 1};
    const auto x = Random(11 * 20, rng), w = Random(9, rng);
    std::vector<float> got(60), want(60);
    DepthwiseConv2dPlane(isa, p, x.data(), w.data(), 0.25f, got.data(), Activation::None());
    const ConvGeometry g = Make(1, 1, 1, 1, {11, 20}, {3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1});
    ASSERT_EQ(g.out_size, (std::vector<int64_t>{6, 10}));
    const float bias = 0.25f;
    ref::Conv(g, x.data(), w.data(), &bias, want.data());
    ExpectClose(got, want, 9);
  }
}

// The plane API with an output smaller than the padded input allows (no end padding read):
// every ISA computes exactly the reference's top-left out_h x out_w.
TEST(DepthwiseConv2dPlane, TruncatedOutput) {
  std::mt19937 rng(18);
  for (Isa isa : SupportedIsas()) {
    for (int64_t s : {1, 2, 3}) {
      const int64_t in_h = 9, in_w = 37;
      const ConvGeometry g = Make(1, 1, 1, 1, {in_h, in_w}, {3, 5}, {s, s}, {1, 2}, {1, 2}, {3, 3});
      const DepthwisePlane p{in_h, in_w, g.out_size[0] - 1, g.out_size[1] - 1, 3, 5, s, s, 1, 2,
                             1,    2};
      const auto x = Random(in_h * in_w, rng), w = Random(15, rng);
      std::vector<float> full(g.out_size[0] * g.out_size[1]);
      const float bias = -0.5f;
      ref::Conv(g, x.data(), w.data(), &bias, full.data());
      std::vector<float> want, got(p.out_h * p.out_w, NAN);
      for (int64_t oy = 0; oy < p.out_h; ++oy)
        for (int64_t ox = 0; ox < p.out_w; ++ox)
          want.push_back(std::max(full[oy * g.out_size[1] + ox], 0.0f));
      DepthwiseConv2dPlane(isa, p, x.data(), w.data(), bias, got.data(), Activation::Relu());
      SCOPED_TRACE(std::string(IsaName(isa)) + " stride " + std::to_string(s));
      ExpectClose(got, want, 15);
    }
  }
}

// 3x3 dilation-1 planes at strides 1 and 2 (the AVX-512 masked-load kernel, the AVX2 padded
// copy kernel): random sizes crossing the 8-lane blocks and the 64-column stride-1 limit,
// asymmetric pads 0-2, outputs cropped below what the padding allows, every activation kind.
TEST(DepthwiseConv2dPlane, Random3x3) {
  std::mt19937 rng(19);
  std::uniform_int_distribution<int> pick(0, 1 << 30);
  for (Isa isa : SupportedIsas()) {
    for (int trial = 0; trial < 200; ++trial) {
      const int64_t s = 1 + trial % 2;
      const int64_t in_h = 1 + pick(rng) % 20, in_w = 1 + pick(rng) % 90;
      const int64_t pt = pick(rng) % 3, pl = pick(rng) % 3, pb = pick(rng) % 3, pr = pick(rng) % 3;
      if (in_h + pt + pb < 3 || in_w + pl + pr < 3) continue;
      const ConvGeometry g =
          Make(1, 1, 1, 1, {in_h, in_w}, {3, 3}, {s, s}, {1, 1}, {pt, pl}, {pb, pr});
      const int64_t crop = trial % 5 == 0 ? 1 : 0;
      const DepthwisePlane p{in_h,
                             in_w,
                             std::max<int64_t>(1, g.out_size[0] - crop),
                             std::max<int64_t>(1, g.out_size[1] - crop),
                             3,
                             3,
                             s,
                             s,
                             1,
                             1,
                             pt,
                             pl};
      const auto x = Random(in_h * in_w, rng), w = Random(9, rng);
      const float bias = 0.125f;
      std::vector<float> full(g.out_size[0] * g.out_size[1]);
      ref::Conv(g, x.data(), w.data(), &bias, full.data());
      const Activation act = trial % 3 == 0   ? Activation::Relu()
                             : trial % 3 == 1 ? Activation::Clip(-0.4f, 0.5f)
                                              : Activation::None();
      std::vector<float> want, got(p.out_h * p.out_w, NAN);
      for (int64_t oy = 0; oy < p.out_h; ++oy)
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          const float v = full[oy * g.out_size[1] + ox];
          want.push_back(act.enabled() ? std::min(std::max(v, act.lo), act.hi) : v);
        }
      DepthwiseConv2dPlane(isa, p, x.data(), w.data(), bias, got.data(), act);
      SCOPED_TRACE(std::string(IsaName(isa)) + " " + Text(g) + " crop " + std::to_string(crop));
      ExpectClose(got, want, 9);
    }
  }
}

}  // namespace
}  // namespace qforge::kernels
