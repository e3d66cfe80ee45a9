// int8 add / multiply / average pooling: parameter setup, kernel choice by ISA, threads, and the
// average-pooling loops (contract and no-clipping argument in qforge/kernels/qelementwise.h).
#include "qforge/kernels/qelementwise.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kernels/x86/qelementwise_avx2.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

void CheckScale(float s, const char* what) {
  if (!(s > 0) || !std::isfinite(s))
    throw Error(std::string("int8 kernels: scale ") + what + " must be finite and > 0, got " +
                std::to_string(s));
}

numerics::FixedMultiplier Multiplier(double m) {
  try {
    return numerics::QuantizeMultiplier(m);
  } catch (const std::exception& e) {
    throw Error(std::string("int8 kernels: requantization multiplier: ") + e.what());
  }
}

bool UseAvx2(Isa isa) { return isa != Isa::kScalar && IsaSupported(Isa::kAvx2); }

int32_t Load(bool is_signed, const void* p, int64_t i) {
  return is_signed ? static_cast<const int8_t*>(p)[i] : static_cast<const uint8_t*>(p)[i];
}

// Elements per parallel chunk of the element-wise kernels (a multiple of 8).
constexpr int64_t kChunk = 1 << 14;

}  // namespace

QAddParams QAddParams::Make(float sa, int32_t za, float sb, int32_t zb, float sc, int32_t zc,
                            int32_t qmin, int32_t qmax) {
  CheckScale(sa, "A");
  CheckScale(sb, "B");
  CheckScale(sc, "C");
  QAddParams p;
  p.za = za;
  p.zb = zb;
  p.zc = zc;
  p.qmin = qmin;
  p.qmax = qmax;
  const double smax = std::max(sa, sb);
  // ka, kb in [0, 2^21]: the larger is exactly 2^21.
  p.ka = static_cast<int32_t>(std::lround(double(sa) / smax * (1 << kQAddShift)));
  p.kb = static_cast<int32_t>(std::lround(double(sb) / smax * (1 << kQAddShift)));
  p.m = Multiplier(smax / double(1 << kQAddShift) / double(sc));
  return p;
}

QMulParams QMulParams::Make(float sa, int32_t za, float sb, int32_t zb, float sc, int32_t zc,
                            int32_t qmin, int32_t qmax) {
  CheckScale(sa, "A");
  CheckScale(sb, "B");
  CheckScale(sc, "C");
  QMulParams p;
  p.za = za;
  p.zb = zb;
  p.zc = zc;
  p.qmin = qmin;
  p.qmax = qmax;
  p.m = Multiplier(double(sa) * double(sb) / double(sc));
  return p;
}

template <typename Params, typename Fn>
void RunChunks(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step,
               void* c, int64_t n, const Params& p, int threads, Fn fn) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (chunks > 1 && nt > 1)
  for (int64_t k = 0; k < chunks; ++k) {
    const int64_t i = k * kChunk, len = std::min(kChunk, n - i);
    fn(is_signed, static_cast<const uint8_t*>(a) + i * a_step, a_step,
       static_cast<const uint8_t*>(b) + i * b_step, b_step, static_cast<uint8_t*>(c) + i, len, p);
  }
}

void QAdd(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QAddParams& p, Isa isa, int threads) {
  RunChunks(is_signed, a, a_step, b, b_step, c, n, p, threads,
            isa == Isa::kAvx512 && IsaSupported(isa) ? &detail::QAdd__avx512
            : UseAvx2(isa)                           ? &detail::QAdd__avx2
                                                     : &ref::QAdd);
}

void QMul(bool is_signed, const void* a, int64_t a_step, const void* b, int64_t b_step, void* c,
          int64_t n, const QMulParams& p, Isa isa, int threads) {
  RunChunks(is_signed, a, a_step, b, b_step, c, n, p, threads,
            isa == Isa::kAvx512 && IsaSupported(isa) ? &detail::QMul__avx512
            : UseAvx2(isa)                           ? &detail::QMul__avx2
                                                     : &ref::QMul);
}

void QAveragePool(bool is_signed, const QPoolShape& s, const QPoolParams& p, const void* x, void* y,
                  int threads) {
  CheckScale(p.x_scale, "X");
  CheckScale(p.y_scale, "Y");
  if (s.planes < 0 || s.in_h < 1 || s.in_w < 1 || s.out_h < 1 || s.out_w < 1 || s.kernel_h < 1 ||
      s.kernel_w < 1 || s.stride_h < 1 || s.stride_w < 1 || s.pad_top < 0 || s.pad_left < 0 ||
      s.pad_bottom < 0 || s.pad_right < 0)
    throw Error("QAveragePool: sizes and strides must be positive and pads non-negative");
  if (s.kernel_h * s.kernel_w > kMaxPoolWindow)
    throw Error("QAveragePool: window of " + std::to_string(s.kernel_h * s.kernel_w) +
                " taps exceeds " + std::to_string(kMaxPoolWindow));
  // One multiplier per possible divisor 1..kH*kW: M = s_x / (s_y * count).
  std::vector<numerics::FixedMultiplier> mult(s.kernel_h * s.kernel_w + 1);
  for (size_t c = 1; c < mult.size(); ++c)
    mult[c] = Multiplier(double(p.x_scale) / (double(p.y_scale) * double(c)));
  // Every output window must cover an input tap (a window entirely in the padding has no
  // ONNX value): the first starts at -pad (so pad < kernel), the last at (out - 1) * stride -
  // pad (so that must be < the input size); windows in between start inside the input.
  if (s.pad_top >= s.kernel_h || s.pad_left >= s.kernel_w ||
      (s.out_h - 1) * s.stride_h - s.pad_top >= s.in_h ||
      (s.out_w - 1) * s.stride_w - s.pad_left >= s.in_w)
    throw Error(
        "QAveragePool: an output window lies entirely outside the input (pads must be "
        "smaller than the kernel)");
  const int64_t in_plane = s.in_h * s.in_w, out_plane = s.out_h * s.out_w;
#pragma omp parallel for schedule(static)                                                        \
    num_threads(threads > 0 ? threads : omp_get_max_threads()) if (s.planes * out_plane *        \
                                                                       s.kernel_h * s.kernel_w > \
                                                                   (1 << 16))
  for (int64_t c = 0; c < s.planes; ++c) {
    for (int64_t oh = 0; oh < s.out_h; ++oh) {
      const int64_t h0 = oh * s.stride_h - s.pad_top;
      const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + s.kernel_h, s.in_h);
      const int64_t ph = std::min(h0 + s.kernel_h, s.in_h + s.pad_bottom) - h0;
      for (int64_t ow = 0; ow < s.out_w; ++ow) {
        const int64_t w0 = ow * s.stride_w - s.pad_left;
        const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + s.kernel_w, s.in_w);
        const int64_t pw = std::min(w0 + s.kernel_w, s.in_w + s.pad_right) - w0;
        // |sum| <= 255 * kH * kW <= 255 * 2^23 < 2^31.
        int32_t sum = 0;
        for (int64_t h = hs; h < he; ++h)
          for (int64_t w = ws; w < we; ++w)
            sum += Load(is_signed, x, c * in_plane + h * s.in_w + w) - p.zx;
        const int64_t count = s.count_include_pad ? ph * pw : (he - hs) * (we - ws);
        const int32_t q = numerics::Requantize(sum, mult[count], p.zy, p.qmin, p.qmax);
        const int64_t o = c * out_plane + oh * s.out_w + ow;
        if (is_signed)
          static_cast<int8_t*>(y)[o] = static_cast<int8_t>(q);
        else
          static_cast<uint8_t*>(y)[o] = static_cast<uint8_t>(q);
      }
    }
  }
}

namespace {

// The argument checks of both global average pools; `fn` names the one called.
void CheckGlobalPool(const QPoolParams& p, int64_t hw, const char* fn) {
  CheckScale(p.x_scale, "X");
  CheckScale(p.y_scale, "Y");
  if (hw < 1 || hw > kMaxPoolWindow)
    throw Error(std::string(fn) + ": plane of " + std::to_string(hw) + " elements (1.." +
                std::to_string(kMaxPoolWindow) + " supported)");
}

}  // namespace

void QGlobalAveragePool(bool is_signed, int64_t planes, int64_t hw, const QPoolParams& p,
                        const void* x, void* y, int threads, Isa isa) {
  CheckGlobalPool(p, hw, "QGlobalAveragePool");
  if (!UseAvx2(isa)) {
    ref::QGlobalAveragePool(is_signed, planes, hw, p, x, y);
    return;
  }
  const numerics::FixedMultiplier m =
      Multiplier(double(p.x_scale) / (double(p.y_scale) * double(hw)));
#pragma omp parallel for schedule(static) \
    num_threads(threads > 0 ? threads : omp_get_max_threads()) if (planes * hw > (1 << 16))
  for (int64_t c = 0; c < planes; ++c) {
    // sum(x - zx) = sum(x) - zx * hw; |.| <= 255 * 2^23 < 2^31.
    const int64_t sum =
        detail::QSum__avx2(is_signed, static_cast<const uint8_t*>(x) + c * hw, hw) - p.zx * hw;
    const int32_t q = numerics::Requantize(static_cast<int32_t>(sum), m, p.zy, p.qmin, p.qmax);
    if (is_signed)
      static_cast<int8_t*>(y)[c] = static_cast<int8_t>(q);
    else
      static_cast<uint8_t*>(y)[c] = static_cast<uint8_t>(q);
  }
}

namespace {

template <typename T>
void GlobalAveragePoolNhwc(int64_t batch, int64_t hw, int64_t channels, const QPoolParams& p,
                           numerics::FixedMultiplier m, const T* x, T* y) {
  std::vector<int32_t> acc(static_cast<size_t>(channels));
  // sum (x - zx) = sum x - zx hw. With zx in the codes' type |sum (x - zx)| <= 255 hw < 2^31;
  // the subtraction is done modulo 2^32 like the reference's int64 -> int32 conversion.
  const uint32_t fold = static_cast<uint32_t>(p.zx) * static_cast<uint32_t>(hw);
  for (int64_t n = 0; n < batch; ++n) {
    std::fill(acc.begin(), acc.end(), 0);
    int32_t* __restrict a = acc.data();
    for (int64_t i = 0; i < hw; ++i) {
      const T* __restrict px = x + (n * hw + i) * channels;
      for (int64_t c = 0; c < channels; ++c) a[c] += px[c];  // vectorized over channels
    }
    for (int64_t c = 0; c < channels; ++c)
      y[n * channels + c] = static_cast<T>(numerics::Requantize(
          static_cast<int32_t>(static_cast<uint32_t>(a[c]) - fold), m, p.zy, p.qmin, p.qmax));
  }
}

}  // namespace

void QGlobalAveragePoolNhwc(bool is_signed, int64_t batch, int64_t hw, int64_t channels,
                            const QPoolParams& p, const void* x, void* y) {
  CheckGlobalPool(p, hw, "QGlobalAveragePoolNhwc");
  if (batch < 0 || channels < 0) throw Error("QGlobalAveragePoolNhwc: negative size");
  // The multiplier exactly as QGlobalAveragePool computes it (the same bits).
  const numerics::FixedMultiplier m =
      Multiplier(double(p.x_scale) / (double(p.y_scale) * double(hw)));
  if (is_signed)
    GlobalAveragePoolNhwc(batch, hw, channels, p, m, static_cast<const int8_t*>(x),
                          static_cast<int8_t*>(y));
  else
    GlobalAveragePoolNhwc(batch, hw, channels, p, m, static_cast<const uint8_t*>(x),
                          static_cast<uint8_t*>(y));
}

void QuantizeToNhwc(const float* x, int64_t batch, int64_t channels, int64_t pixels,
                    numerics::QuantParams p, bool is_signed, void* y, Isa isa, int threads) {
  if (batch < 0 || channels < 0 || pixels < 0) throw Error("QuantizeToNhwc: negative size");
  const int32_t qmin = is_signed ? -128 : 0, qmax = is_signed ? 127 : 255;
  const bool avx2 = isa != Isa::kScalar && IsaSupported(Isa::kAvx2);
  const int64_t planes = batch * channels;
  auto* out = static_cast<uint8_t*>(y);
  int nt = omp_in_parallel() ? 1 : (threads > 0 ? threads : omp_get_max_threads());
  if (isa == Isa::kAvx512 && IsaSupported(isa) && channels >= 1 && channels <= 4) {
    // Image inputs (1-4 channels): all channels of 16 pixels at a time, stored interleaved
    // (no per-plane scatter). Chunks of 2^14 pixels (a multiple of 16) are shared out.
    constexpr int64_t kPixChunk = int64_t{1} << 14;
    const int64_t per_image = (pixels + kPixChunk - 1) / kPixChunk, chunks = batch * per_image;
    nt = static_cast<int>(std::min<int64_t>(
        {nt, std::max<int64_t>(chunks, 1), std::max<int64_t>(1, planes * pixels / 65536)}));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t ch = 0; ch < chunks; ++ch) {
      const int64_t n = ch / per_image, p0 = ch % per_image * kPixChunk;
      detail::QuantizeToNhwc__avx512(x + n * channels * pixels, channels, pixels, p0,
                                     std::min(pixels, p0 + kPixChunk), p, qmin, qmax,
                                     out + n * pixels * channels);
    }
    return;
  }
  nt = static_cast<int>(std::min<int64_t>(
      {nt, std::max<int64_t>(planes, 1), std::max<int64_t>(1, planes * pixels / 65536)}));
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    // One plane quantized contiguously, then scattered with stride `channels`.
    std::vector<uint8_t> row(pixels);
#pragma omp for schedule(static)
    for (int64_t pc = 0; pc < planes; ++pc) {
      const int64_t n = pc / channels, c = pc % channels;
      const float* xs = x + pc * pixels;
      if (avx2) {
        detail::QuantizeRow8__avx2(xs, pixels, p, qmin, qmax, row.data());
      } else {
        for (int64_t i = 0; i < pixels; ++i)
          row[i] = static_cast<uint8_t>(numerics::QuantizeValue(xs[i], p, qmin, qmax));
      }
      uint8_t* dst = out + n * pixels * channels + c;
      for (int64_t i = 0; i < pixels; ++i) dst[i * channels] = row[i];
    }
  }
}

namespace {

template <typename T>
void MaxPoolNhwc(const QPoolShape& s, int64_t channels, const T* x, T* y, int threads) {
  const int64_t rows = s.planes * s.out_h, C = channels;
  int nt = omp_in_parallel() ? 1 : (threads > 0 ? threads : omp_get_max_threads());
  nt = static_cast<int>(std::min<int64_t>(
      {nt, std::max<int64_t>(rows, 1),
       std::max<int64_t>(1, rows * s.out_w * C * s.kernel_h * s.kernel_w / (int64_t{1} << 20))}));
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t n = r / s.out_h, oh = r % s.out_h;
    const T* img = x + n * s.in_h * s.in_w * C;
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      // __restrict: input and output never overlap, so the channel loop vectorizes.
      T* __restrict out = y + (r * s.out_w + ow) * C;
      std::fill(out, out + C, std::numeric_limits<T>::lowest());
      for (int64_t i = 0; i < s.kernel_h; ++i) {
        const int64_t ih = oh * s.stride_h - s.pad_top + i;
        if (ih < 0 || ih >= s.in_h) continue;
        for (int64_t j = 0; j < s.kernel_w; ++j) {
          const int64_t iw = ow * s.stride_w - s.pad_left + j;
          if (iw < 0 || iw >= s.in_w) continue;
          const T* __restrict in = img + (ih * s.in_w + iw) * C;
          for (int64_t c = 0; c < C; ++c) out[c] = std::max(out[c], in[c]);
        }
      }
    }
  }
}

}  // namespace

void QMaxPoolNhwc(bool is_signed, const QPoolShape& s, int64_t channels, const void* x, void* y,
                  int threads) {
  if (s.planes < 0 || s.in_h <= 0 || s.in_w <= 0 || s.out_h < 0 || s.out_w < 0 || channels < 0 ||
      s.kernel_h <= 0 || s.kernel_w <= 0 || s.stride_h <= 0 || s.stride_w <= 0 || s.pad_top < 0 ||
      s.pad_left < 0)
    throw Error("QMaxPoolNhwc: bad sizes");
  if (is_signed)
    MaxPoolNhwc(s, channels, static_cast<const int8_t*>(x), static_cast<int8_t*>(y), threads);
  else
    MaxPoolNhwc(s, channels, static_cast<const uint8_t*>(x), static_cast<uint8_t*>(y), threads);
}

}  // namespace qforge::kernels
