// Tests for the int8 add / multiply / average-pooling kernels: AVX2 bit-exact with the
// reference on sizes 1..70 (vector width multiples +- 1), model sizes and all-extremes operands;
// the reference against the real-number formula (within one step, and exact away from ties).
#include "qforge/kernels/qelementwise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "qforge/numerics/dtypes.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {
namespace {

std::vector<uint8_t> RandomCodes(int64_t n, std::mt19937& rng) {
  std::uniform_int_distribution<int> u(0, 255);
  std::vector<uint8_t> v(n);
  for (auto& x : v) x = static_cast<uint8_t>(u(rng));
  return v;
}

int32_t Code(bool is_signed, const std::vector<uint8_t>& v, int64_t i) {
  return is_signed ? static_cast<int8_t>(v[i]) : v[i];
}

// round_half_even(real) + z, clamped: the float formula ORT's kernels evaluate.
int32_t FloatRef(double real, int32_t z, int32_t qmin, int32_t qmax) {
  const double r = numerics::RoundHalfEven(real) + z;
  return static_cast<int32_t>(std::min<double>(qmax, std::max<double>(qmin, r)));
}

TEST(QAddMul, VectorBitExactWithReferenceAndNearTheFormula) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(1);
  std::vector<int64_t> sizes;
  for (int64_t n = 1; n <= 70; ++n) sizes.push_back(n);
  for (int64_t n : {255, 256, 257, 16383, 16384, 16385, 56 * 56 * 24, 112 * 112 * 16})
    sizes.push_back(n);
  std::uniform_real_distribution<float> us(0.001f, 0.2f);
  int checked = 0, off = 0;
  for (int64_t n : sizes) {
    for (bool is_signed : {false, true}) {
      for (int steps = 0; steps < 3; ++steps) {  // both full, b broadcast, a broadcast
        const int64_t a_step = steps == 2 ? 0 : 1, b_step = steps == 1 ? 0 : 1;
        const std::vector<uint8_t> a = RandomCodes(n, rng), b = RandomCodes(n, rng);
        const int32_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
        std::uniform_int_distribution<int> uz(lo, hi);
        const float sa = us(rng), sb = us(rng), sc = us(rng);
        const int32_t za = uz(rng), zb = uz(rng), zc = uz(rng);
        const QAddParams pa = QAddParams::Make(sa, za, sb, zb, sc, zc, lo, hi);
        const QMulParams pm = QMulParams::Make(sa, za, sb, zb, sc * 0.05f, zc, lo, hi);
        std::vector<uint8_t> r(n), f(n), rm(n), fm(n);
        ref::QAdd(is_signed, a.data(), a_step, b.data(), b_step, r.data(), n, pa);
        ref::QMul(is_signed, a.data(), a_step, b.data(), b_step, rm.data(), n, pm);
        // A tiny output scale makes QAdd's multiplier >= 1/4 (n = 31 - shift < 33): the AVX-512
        // kernel's 64-bit requantization instead of its 32-bit form.
        const QAddParams pa_big = QAddParams::Make(sa, za, sb, zb, sc * 1e-6f, zc, lo, hi);
        std::vector<uint8_t> r_big(n), f_big(n);
        ref::QAdd(is_signed, a.data(), a_step, b.data(), b_step, r_big.data(), n, pa_big);
        for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
          if (!IsaSupported(isa)) continue;
          QAdd(is_signed, a.data(), a_step, b.data(), b_step, f.data(), n, pa, isa, 1 + n % 3);
          QMul(is_signed, a.data(), a_step, b.data(), b_step, fm.data(), n, pm, isa, 1 + n % 3);
          QAdd(is_signed, a.data(), a_step, b.data(), b_step, f_big.data(), n, pa_big, isa);
          ASSERT_EQ(r, f) << "add n=" << n << " signed=" << is_signed << " steps=" << steps << " "
                          << IsaName(isa);
          ASSERT_EQ(rm, fm) << "mul n=" << n << " signed=" << is_signed << " steps=" << steps << " "
                            << IsaName(isa);
          ASSERT_EQ(r_big, f_big) << "add (multiplier >= 1/4) n=" << n << " " << IsaName(isa);
        }
        for (int64_t i = 0; i < std::min<int64_t>(n, 300); ++i) {
          const double da = sa * double(Code(is_signed, a, i * a_step) - za);
          const double db = sb * double(Code(is_signed, b, i * b_step) - zb);
          const int32_t ea = FloatRef((da + db) / sc, zc, lo, hi);
          const int32_t em = FloatRef(da * db / (sc * 0.05f), zc, lo, hi);
          ASSERT_LE(std::abs(Code(is_signed, r, i) - ea), 1) << "add n=" << n << " i=" << i;
          ASSERT_LE(std::abs(Code(is_signed, rm, i) - em), 1) << "mul n=" << n << " i=" << i;
          off += (Code(is_signed, r, i) != ea) + (Code(is_signed, rm, i) != em);
          checked += 2;
        }
      }
    }
  }
  EXPECT_LE(off, checked / 200) << off << " of " << checked << " differ by one step";
}

TEST(QAddMul, AllExtremes) {
  // Every operand at an end of its range and the zero points at the other: the largest
  // accumulators (2 * 255 * 2^21 for add, 255^2 for mul); checked against the exact value.
  for (bool is_signed : {false, true}) {
    const int32_t lo = is_signed ? -128 : 0, hi = is_signed ? 127 : 255;
    for (int32_t av : {lo, hi}) {
      for (int32_t bv : {lo, hi}) {
        const int32_t za = av == lo ? hi : lo, zb = bv == lo ? hi : lo;
        const int64_t n = 37;
        std::vector<uint8_t> a(n, static_cast<uint8_t>(av)), b(n, static_cast<uint8_t>(bv));
        // Equal scales (ka = kb = 2^21) and an output scale that keeps the result in range:
        // (a - za) + (b - zb) in [-510, 510] maps to [-124.4, 124.4] with s_c = 4.1.
        const QAddParams pa =
            QAddParams::Make(1.0f, za, 1.0f, zb, 4.1f, is_signed ? 0 : 128, lo, hi);
        const QMulParams pm =
            QMulParams::Make(1.0f, za, 1.0f, zb, 65025.0f / 127.0f, is_signed ? 0 : 128, lo, hi);
        for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
          if (!IsaSupported(isa)) continue;
          std::vector<uint8_t> c(n), d(n);
          QAdd(is_signed, a.data(), 1, b.data(), 1, c.data(), n, pa, isa);
          QMul(is_signed, a.data(), 1, b.data(), 1, d.data(), n, pm, isa);
          const int64_t sum = (av - za) + (bv - zb), prod = int64_t(av - za) * (bv - zb);
          // sum / 4.1 and prod / 512.0 are not near ties here (sum = 0 or +-510).
          const int32_t want_add = FloatRef(sum / double(4.1f), is_signed ? 0 : 128, lo, hi);
          const int32_t want_mul = FloatRef(prod / (65025.0 / 127.0), is_signed ? 0 : 128, lo, hi);
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(Code(is_signed, c, i), want_add) << av << " " << bv << " " << IsaName(isa);
            ASSERT_EQ(Code(is_signed, d, i), want_mul) << av << " " << bv << " " << IsaName(isa);
          }
        }
      }
    }
  }
}

TEST(QAddMul, ScaleRatiosAreIntegersWith21FractionalBits) {
  const QAddParams p = QAddParams::Make(0.5f, 0, 0.125f, 0, 1.0f, 0, 0, 255);
  EXPECT_EQ(p.ka, 1 << 21);
  EXPECT_EQ(p.kb, 1 << 19);
  EXPECT_THROW(QAddParams::Make(0.0f, 0, 1.0f, 0, 1.0f, 0, 0, 255), Error);
  EXPECT_THROW(QMulParams::Make(1.0f, 0, 1.0f, 0, NAN, 0, 0, 255), Error);
}

TEST(QAveragePool, MatchesTheFormula) {
  std::mt19937 rng(4);
  struct Case {
    QPoolShape s;
  };
  for (int iter = 0; iter < 200; ++iter) {
    std::uniform_int_distribution<int> u(1, 9), uk(1, 4), us(1, 3), up(0, 2);
    QPoolShape s;
    s.planes = u(rng);
    s.in_h = u(rng);
    s.in_w = u(rng);
    s.kernel_h = std::min<int64_t>(uk(rng), s.in_h + 2);
    s.kernel_w = std::min<int64_t>(uk(rng), s.in_w + 2);
    s.stride_h = us(rng);
    s.stride_w = us(rng);
    s.pad_top = std::min<int64_t>(up(rng), s.kernel_h - 1);
    s.pad_left = std::min<int64_t>(up(rng), s.kernel_w - 1);
    s.pad_bottom = std::min<int64_t>(up(rng), s.kernel_h - 1);
    s.pad_right = std::min<int64_t>(up(rng), s.kernel_w - 1);
    s.count_include_pad = iter % 2;
    s.out_h = (s.in_h + s.pad_top + s.pad_bottom - s.kernel_h) / s.stride_h + 1;
    s.out_w = (s.in_w + s.pad_left + s.pad_right - s.kernel_w) / s.stride_w + 1;
    if (s.out_h < 1 || s.out_w < 1) continue;
    const bool is_signed = iter % 3 == 0;
    QPoolParams p{0.05f,
                  0.03f,
                  is_signed ? -5 : 130,
                  is_signed ? 3 : 120,
                  is_signed ? -128 : 0,
                  is_signed ? 127 : 255};
    const std::vector<uint8_t> x = RandomCodes(s.planes * s.in_h * s.in_w, rng);
    std::vector<uint8_t> y(s.planes * s.out_h * s.out_w);
    QAveragePool(is_signed, s, p, x.data(), y.data(), 2);
    int64_t o = 0;
    for (int64_t c = 0; c < s.planes; ++c)
      for (int64_t oh = 0; oh < s.out_h; ++oh)
        for (int64_t ow = 0; ow < s.out_w; ++ow, ++o) {
          int64_t sum = 0, inside = 0, padded = 0;
          for (int64_t i = 0; i < s.kernel_h; ++i)
            for (int64_t j = 0; j < s.kernel_w; ++j) {
              const int64_t h = oh * s.stride_h - s.pad_top + i,
                            w = ow * s.stride_w - s.pad_left + j;
              if (h < s.in_h + s.pad_bottom && w < s.in_w + s.pad_right) ++padded;
              if (h < 0 || h >= s.in_h || w < 0 || w >= s.in_w) continue;
              sum += Code(is_signed, x, (c * s.in_h + h) * s.in_w + w) - p.zx;
              ++inside;
            }
          const int64_t count = s.count_include_pad ? padded : inside;
          const double real = double(p.x_scale) * sum / count / p.y_scale;
          const int32_t exact = numerics::Requantize(
              static_cast<int32_t>(sum),
              numerics::QuantizeMultiplier(double(p.x_scale) / (double(p.y_scale) * count)), p.zy,
              p.qmin, p.qmax);
          ASSERT_EQ(Code(is_signed, y, o), exact) << iter;
          ASSERT_LE(std::abs(Code(is_signed, y, o) - FloatRef(real, p.zy, p.qmin, p.qmax)), 1);
        }
  }
}

TEST(QGlobalAveragePool, Avx2BitExactWithReferenceIncludingExtremes) {
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2";
  std::mt19937 rng(6);
  std::vector<int64_t> sizes;
  for (int64_t n = 1; n <= 70; ++n) sizes.push_back(n);
  for (int64_t n : {49, 95, 96, 97, 3136, 12544}) sizes.push_back(n);
  for (int64_t hw : sizes) {
    for (bool is_signed : {false, true}) {
      const int64_t planes = 5;
      const QPoolParams p{0.1f,
                          0.07f,
                          is_signed ? 1 : 129,
                          is_signed ? -2 : 127,
                          is_signed ? -128 : 0,
                          is_signed ? 127 : 255};
      std::vector<uint8_t> x = RandomCodes(planes * hw, rng);
      // Plane 0 all at the top of the range, plane 1 at the bottom.
      for (int64_t i = 0; i < hw; ++i) {
        x[i] = is_signed ? 127 : 255;
        x[hw + i] = is_signed ? 0x80 : 0;
      }
      std::vector<uint8_t> r(planes), f(planes);
      ref::QGlobalAveragePool(is_signed, planes, hw, p, x.data(), r.data());
      QGlobalAveragePool(is_signed, planes, hw, p, x.data(), f.data(), 2, Isa::kAvx2);
      ASSERT_EQ(r, f) << hw << " " << is_signed;
      // Plane 0: mean (qmax - zx) exactly; 126 * 0.1 / 0.07 = 180 -> saturates / 127 * ...
      const double mean0 = (is_signed ? 127 - 1 : 255 - 129) * 0.1 / 0.07;
      ASSERT_EQ(Code(is_signed, r, 0), FloatRef(mean0, p.zy, p.qmin, p.qmax));
    }
  }
}

TEST(QGlobalAveragePoolNhwc, BitExactWithThePlaneKernelTransposed) {
  // Channels-last global average pooling equals the reference on the transposed planes: random
  // codes, channel counts around vector widths, planes of 1..70 pixels and MobileNetV2's 7 x 7 x
  // 1280, batch 1 and 3, uint8 / int8, zero points at both ends; and all codes at one extreme.
  std::mt19937 rng(5);
  for (bool is_signed : {false, true}) {
    for (int64_t channels : {1, 15, 16, 17, 33, 64, 1280}) {
      for (int64_t hw : {1, 2, 7, 49, 70}) {
        if (channels == 1280 && hw != 49) continue;
        for (int64_t batch : {1, 3}) {
          for (int extreme = 0; extreme < 3; ++extreme) {
            QPoolParams p;
            p.x_scale = 0.05f;
            p.y_scale = extreme ? 0.05f : 0.031f;
            p.zx = is_signed ? (extreme == 1 ? 127 : -128) : (extreme == 1 ? 255 : 0);
            p.zy = is_signed ? -3 : 7;
            p.qmin = is_signed ? -128 : 0;
            p.qmax = is_signed ? 127 : 255;
            std::vector<uint8_t> x(batch * hw * channels);
            for (auto& v : x) {
              v = extreme == 1   ? (is_signed ? 0x80 : 0)    // qmin: sum = -255 hw with zx at qmax
                  : extreme == 2 ? (is_signed ? 0x7F : 255)  // qmax: sum = 255 hw with zx at qmin
                                 : static_cast<uint8_t>(rng());
            }
            std::vector<uint8_t> planes(x.size());
            for (int64_t n = 0; n < batch; ++n)
              for (int64_t i = 0; i < hw; ++i)
                for (int64_t c = 0; c < channels; ++c)
                  planes[(n * channels + c) * hw + i] = x[(n * hw + i) * channels + c];
            std::vector<uint8_t> want(batch * channels), got(batch * channels, 0xCD);
            ref::QGlobalAveragePool(is_signed, batch * channels, hw, p, planes.data(), want.data());
            QGlobalAveragePoolNhwc(is_signed, batch, hw, channels, p, x.data(), got.data());
            ASSERT_EQ(got, want) << "signed " << is_signed << " C " << channels << " hw " << hw
                                 << " batch " << batch << " extreme " << extreme;
          }
        }
      }
    }
  }
  EXPECT_THROW(QGlobalAveragePoolNhwc(false, 1, 0, 4, QPoolParams{}, nullptr, nullptr), Error);
}

TEST(QuantizeToNhwc, BitExactWithQuantizeValueTransposed) {
  // Random values, exact ties of the scale (k + 0.5) * s, values far beyond the range, +-0,
  // +-Inf and NaN; pixel counts around the 8- and 16-lane vectors and the 2^14-pixel chunks;
  // 1-5 and 16 channels; uint8 and int8; scalar, AVX2 and AVX-512.
  std::mt19937 rng(31);
  std::uniform_real_distribution<float> u(-3.0f, 3.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t pixels : {1, 7, 8, 9, 15, 16, 17, 31, 33, 150, 16385}) {
    for (int64_t channels : {1, 2, 3, 4, 5, 16}) {
      const int64_t batch = 2;
      for (bool is_signed : {false, true}) {
        const numerics::QuantParams p{0.0173f, is_signed ? -5 : 113};
        std::vector<float> x(batch * channels * pixels);
        for (size_t i = 0; i < x.size(); ++i) {
          switch (i % 9) {
            case 0:
              x[i] = (static_cast<float>(rng() % 41) - 20.5f) * p.scale;
              break;
            case 1:
              x[i] = u(rng) * 1e3f;
              break;
            case 2:
              x[i] = i % 2 ? -0.0f : 0.0f;
              break;
            case 3:
              x[i] = i % 4 == 3 ? std::nanf("") : (i % 8 < 4 ? inf : -inf);
              break;
            default:
              x[i] = u(rng);
          }
        }
        const int32_t qmin = is_signed ? -128 : 0, qmax = is_signed ? 127 : 255;
        std::vector<uint8_t> want(x.size());
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t c = 0; c < channels; ++c)
            for (int64_t i = 0; i < pixels; ++i)
              want[(n * pixels + i) * channels + c] = static_cast<uint8_t>(
                  numerics::QuantizeValue(x[(n * channels + c) * pixels + i], p, qmin, qmax));
        for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
          if (!IsaSupported(isa)) continue;
          for (int threads : {1, 2}) {
            std::vector<uint8_t> got(x.size(), 0xCD);
            QuantizeToNhwc(x.data(), batch, channels, pixels, p, is_signed, got.data(), isa,
                           threads);
            ASSERT_EQ(got, want) << IsaName(isa) << " pixels " << pixels << " channels " << channels
                                 << " signed " << is_signed;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace qforge::kernels
