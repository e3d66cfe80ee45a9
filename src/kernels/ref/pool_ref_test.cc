// Tests for the pooling kernels: hand-computed references, and fast paths against the reference.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "qforge/kernels/pool.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

PoolGeometry Geo2d(int64_t n, int64_t c, int64_t h, int64_t w, int64_t k, int64_t s, int64_t d,
                   int64_t pb, int64_t pe) {
  PoolGeometry g;
  g.batch = n;
  g.channels = c;
  g.in = {h, w};
  g.kernel = {k, k};
  g.strides = {s, s};
  g.dilations = {d, d};
  g.pads_begin = {pb, pb};
  g.pads_end = {pe, pe};
  for (int a = 0; a < 2; ++a) g.out.push_back((g.in[a] + pb + pe - ((k - 1) * d + 1)) / s + 1);
  return g;
}

TEST(PoolRef, MaxPool2x2Stride2WithIndices) {
  PoolGeometry g = Geo2d(1, 1, 4, 4, 2, 2, 1, 0, 0);
  std::vector<float> x(16);
  for (int i = 0; i < 16; ++i) x[i] = static_cast<float>(i + 1);
  std::vector<float> y(4);
  std::vector<int64_t> idx(4);
  MaxPoolRef<float>(g, x.data(), y.data(), idx.data(), 0);
  EXPECT_EQ(y, (std::vector<float>{6, 8, 14, 16}));
  EXPECT_EQ(idx, (std::vector<int64_t>{5, 7, 13, 15}));
  // Column-major: index = h + w * H.
  MaxPoolRef<float>(g, x.data(), y.data(), idx.data(), 1);
  EXPECT_EQ(idx, (std::vector<int64_t>{1 + 1 * 4, 1 + 3 * 4, 3 + 1 * 4, 3 + 3 * 4}));
}

TEST(PoolRef, MaxPoolIndicesIncludeBatchAndChannelOffset) {
  PoolGeometry g = Geo2d(2, 2, 2, 2, 2, 1, 1, 0, 0);
  std::vector<float> x = {4, 1, 1, 1, 1, 4, 1, 1, 1, 1, 4, 1, 1, 1, 1, 4};
  std::vector<float> y(4);
  std::vector<int64_t> idx(4);
  MaxPoolRef<float>(g, x.data(), y.data(), idx.data(), 0);
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 5, 10, 15}));
}

TEST(PoolRef, MaxPool1dPadsAndDilation) {
  // x = [3, 1, 4, 1, 5], kernel 2, dilation 2, pad 1 each side, stride 1:
  // taps of output o are positions o - 1 and o + 1 (padding ignored).
  PoolGeometry g;
  g.in = {5};
  g.kernel = {2};
  g.strides = {1};
  g.dilations = {2};
  g.pads_begin = {1};
  g.pads_end = {1};
  g.out = {(5 + 2 - 3) / 1 + 1};  // 5
  std::vector<float> x = {3, 1, 4, 1, 5}, y(5);
  MaxPoolRef<float>(g, x.data(), y.data(), nullptr, 0);
  EXPECT_EQ(y, (std::vector<float>{1, 4, 1, 5, 1}));
}

TEST(PoolRef, MaxPoolUint8) {
  PoolGeometry g = Geo2d(1, 1, 2, 2, 2, 1, 1, 0, 0);
  std::vector<uint8_t> x = {7, 255, 0, 3}, y(1);
  MaxPoolRef<uint8_t>(g, x.data(), y.data(), nullptr, 0);
  EXPECT_EQ(y[0], 255);
}

TEST(PoolRef, AveragePoolCountIncludePad) {
  // 3x3 of ones (except centre 10), kernel 3, pad 1, stride 1. Corner window covers 4 values.
  PoolGeometry g = Geo2d(1, 1, 3, 3, 3, 1, 1, 1, 1);
  std::vector<float> x(9, 1.0f), y(9);
  x[4] = 10.0f;
  AveragePoolRef(g, /*count_include_pad=*/false, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], 13.0f / 4);
  EXPECT_FLOAT_EQ(y[1], 15.0f / 6);
  EXPECT_FLOAT_EQ(y[4], 18.0f / 9);
  AveragePoolRef(g, /*count_include_pad=*/true, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], 13.0f / 9);
  EXPECT_FLOAT_EQ(y[1], 15.0f / 9);
}

TEST(PoolRef, AveragePoolCeilWindowPastPaddingNotCounted) {
  // 1-D, in 4, kernel 3, stride 2, no pads, ceil output 2: the last window covers positions
  // 2, 3 and 4 (past the end): divisor 2 even with count_include_pad.
  PoolGeometry g;
  g.in = {4};
  g.out = {2};
  g.kernel = {3};
  g.strides = {2};
  g.dilations = {1};
  g.pads_begin = {0};
  g.pads_end = {0};
  std::vector<float> x = {1, 2, 3, 5}, y(2);
  AveragePoolRef(g, true, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], 2.0f);
  EXPECT_FLOAT_EQ(y[1], 4.0f);
}

TEST(PoolRef, GlobalAveragePool) {
  std::vector<float> x = {1, 2, 3, 4, 10, 20, 30, 40}, y(2);
  GlobalAveragePoolRef(2, 4, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], 2.5f);
  EXPECT_FLOAT_EQ(y[1], 25.0f);
}

TEST(PoolRef, BadGeometryThrows) {
  PoolGeometry g = Geo2d(1, 1, 4, 4, 2, 2, 1, 0, 0);
  g.strides = {0, 1};
  std::vector<float> x(16), y(4);
  EXPECT_THROW(MaxPoolRef<float>(g, x.data(), y.data(), nullptr, 0), Error);
}

TEST(PoolFast, MatchesReferenceOverManyGeometries) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-5.0f, 5.0f);
  int cases = 0;
  for (int64_t k = 1; k <= 3; ++k)
    for (int64_t s = 1; s <= 3; ++s)
      for (int64_t d = 1; d <= 2; ++d)
        for (int64_t pb = 0; pb <= 2; ++pb)
          for (int64_t extra = 0; extra <= 1; ++extra) {
            const int64_t pe = pb + extra;  // asymmetric padding too
            PoolGeometry g = Geo2d(2, 3, 7, 9, k, s, d, pb, pe);
            if (g.out[0] <= 0 || g.out[1] <= 0) continue;
            // Non-square: different kernel along w.
            g.kernel[1] = k == 3 ? 2 : k;
            g.out[1] = (g.in[1] + pb + pe - ((g.kernel[1] - 1) * d + 1)) / s + 1;
            std::vector<float> x(2 * 3 * 7 * 9);
            for (float& v : x) v = dist(rng);
            const size_t ny = 2 * 3 * g.out[0] * g.out[1];
            std::vector<float> ref(ny), fast(ny);
            for (int threads : {1, 2}) {
              MaxPoolRef<float>(g, x.data(), ref.data(), nullptr, 0);
              MaxPool2dF32(g, x.data(), fast.data(), threads);
              ASSERT_EQ(ref, fast) << "max k=" << k << " s=" << s << " d=" << d << " pb=" << pb;
              for (bool cip : {false, true}) {
                AveragePoolRef(g, cip, x.data(), ref.data());
                AveragePool2dF32(g, cip, x.data(), fast.data(), threads);
                for (size_t i = 0; i < ny; ++i)
                  ASSERT_NEAR(ref[i], fast[i], 1e-5f)
                      << "avg k=" << k << " s=" << s << " d=" << d << " pb=" << pb << " i=" << i;
              }
            }
            ++cases;
          }
  EXPECT_GT(cases, 50);
}

// 8-bit max pooling: bit-exact with the reference, extremes (lowest value everywhere, padding
// never wins) included.
template <typename T>
void CheckMaxPool8() {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> dist(std::numeric_limits<T>::lowest(),
                                          std::numeric_limits<T>::max());
  for (int64_t k = 1; k <= 3; ++k)
    for (int64_t s = 1; s <= 2; ++s)
      for (int64_t pb = 0; pb < k; ++pb) {
        PoolGeometry g = Geo2d(2, 3, 7, 9, k, s, 1, pb, pb);
        if (g.out[0] <= 0 || g.out[1] <= 0) continue;
        for (int fill : {-1, 0}) {  // -1: random values; 0: every value the type's lowest
          std::vector<T> x(2 * 3 * 7 * 9);
          for (T& v : x) v = fill ? static_cast<T>(dist(rng)) : std::numeric_limits<T>::lowest();
          const size_t ny = 2 * 3 * g.out[0] * g.out[1];
          std::vector<T> ref(ny), fast(ny);
          MaxPoolRef<T>(g, x.data(), ref.data(), nullptr, 0);
          MaxPool2d<T>(g, x.data(), fast.data(), 2);
          ASSERT_EQ(ref, fast) << "k=" << k << " s=" << s << " pb=" << pb;
        }
      }
}

TEST(PoolFast, MaxPool8BitMatchesReference) {
  CheckMaxPool8<uint8_t>();
  CheckMaxPool8<int8_t>();
}

TEST(PoolFast, GlobalAveragePoolMatchesReference) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (int64_t plane : {1, 7, 8, 49, 3136}) {
    std::vector<float> x(5 * plane), ref(5), fast(5);
    for (float& v : x) v = dist(rng);
    GlobalAveragePoolRef(5, plane, x.data(), ref.data());
    GlobalAveragePoolF32(5, plane, x.data(), fast.data(), 2);
    for (int i = 0; i < 5; ++i) EXPECT_NEAR(ref[i], fast[i], 1e-6f) << plane;
  }
}

}  // namespace
}  // namespace qforge::kernels
