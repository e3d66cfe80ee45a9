// int8 convolution: the input transposed once to pixels x channels (SSE2 16 x 16 byte blocks;
// int8 codes flipped to uint8 on the way), then, per block of output pixels, im2col with columns
// ordered (kernel row, kernel column, channel) so each tap is one contiguous copy (padding =
// the input zero point), QGemm into a small [pixels x channels] tile and that tile transposed
// into NCHW (with VNNI: tap pointers into the input instead of im2col, or for stems, row runs
// of a zero-point-padded input copy; QConvNhwc does the same without transposes). Working
// buffers are per-thread and reused across calls (no allocation, no clearing).
#include "qforge/kernels/qconv.h"

#include <emmintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "kernels/qgemm_internal.h"
#include "qforge/kernels/gemm.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

namespace {

[[noreturn]] void Fail(const std::string& what) { throw Error("QConv: " + what); }

int64_t RoundUp4(int64_t k) { return (k + 3) / 4 * 4; }

// The reduction length of the packed weights: K rounded up to a multiple of 4 (VNNI reads A in
// quads of k; a row of that length is read in place without staging). The extra columns hold
// weight 0 and, in the im2col rows, the input zero point, so each adds (za - za) * (0 - zb) = 0:
// the sum is unchanged. K <= kMaxQGemmK = 2^15 (a multiple of 4) keeps the padded K in range.
int64_t PaddedK(const QConvShape& s) { return RoundUp4(s.reduction()); }

// A grow-only, 64-byte aligned buffer per thread and slot, never cleared: the callers write
// every byte they read.
uint8_t* Scratch(int slot, int64_t bytes) {
  struct Buf {
    uint8_t* p = nullptr;
    int64_t size = 0;
    ~Buf() { ::operator delete[](p, std::align_val_t{64}); }
  };
  thread_local Buf bufs[5];
  Buf& b = bufs[slot];
  if (b.size < bytes) {
    ::operator delete[](b.p, std::align_val_t{64});
    b.p = nullptr;
    b.size = 0;
    const int64_t n = (bytes + 4095) / 4096 * 4096;
    b.p = static_cast<uint8_t*>(::operator new[](static_cast<size_t>(n), std::align_val_t{64}));
    b.size = n;
  }
  return b.p;
}

// One 16 x 16 block: dst[c * ldd + r] = src[r * lds + c] ^ flip, with SSE2 unpacks (four
// interleave stages: bytes, 16-, 32-, 64-bit lanes).
inline void Transpose16x16(const uint8_t* src, int64_t lds, uint8_t* dst, int64_t ldd, __m128i f) {
  __m128i a[16], b[16];
  for (int i = 0; i < 16; ++i)
    a[i] = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * lds)), f);
  // b[i], i < 8: 16-bit lane l = column l of rows 2i, 2i+1; b[i + 8]: column 8 + l.
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm_unpacklo_epi8(a[2 * i], a[2 * i + 1]);
    b[i + 8] = _mm_unpackhi_epi8(a[2 * i], a[2 * i + 1]);
  }
  // a[4q + i], i < 4: 32-bit lane l = column 4q + l of rows 4i .. 4i+3.
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 4; ++i) {
      a[8 * h + i] = _mm_unpacklo_epi16(b[8 * h + 2 * i], b[8 * h + 2 * i + 1]);
      a[8 * h + 4 + i] = _mm_unpackhi_epi16(b[8 * h + 2 * i], b[8 * h + 2 * i + 1]);
    }
  }
  // b[4q + i], i < 2: 64-bit lane l = column 4q + l of rows 8i .. 8i+7; b[4q + 2 + i]: column
  // 4q + 2 + l.
  for (int q = 0; q < 4; ++q) {
    for (int i = 0; i < 2; ++i) {
      b[4 * q + i] = _mm_unpacklo_epi32(a[4 * q + 2 * i], a[4 * q + 2 * i + 1]);
      b[4 * q + 2 + i] = _mm_unpackhi_epi32(a[4 * q + 2 * i], a[4 * q + 2 * i + 1]);
    }
  }
  // Column 4q + 2h (+1) = the low (high) 64-bit halves of b[4q + 2h] and b[4q + 2h + 1].
  for (int q = 0; q < 4; ++q) {
    for (int h = 0; h < 2; ++h) {
      const int c = 4 * q + 2 * h;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + c * ldd),
                       _mm_unpacklo_epi64(b[4 * q + 2 * h], b[4 * q + 2 * h + 1]));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + (c + 1) * ldd),
                       _mm_unpackhi_epi64(b[4 * q + 2 * h], b[4 * q + 2 * h + 1]));
    }
  }
}

// dst[c * ldd + r] = src[r * lds + c] ^ flip for r < rows, c < cols: 16 x 16 blocks; a partial
// block at the edges goes through a local 16 x 16 copy (only its valid part is read / written).
void Transpose8(const uint8_t* src, int64_t lds, int64_t rows, int64_t cols, uint8_t* dst,
                int64_t ldd, uint8_t flip) {
  const __m128i f = _mm_set1_epi8(static_cast<char>(flip));
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t vr = std::min<int64_t>(16, rows - r0);
    for (int64_t c0 = 0; c0 < cols; c0 += 16) {
      const int64_t vc = std::min<int64_t>(16, cols - c0);
      if (vr == 16 && vc == 16) {
        Transpose16x16(src + r0 * lds + c0, lds, dst + c0 * ldd + r0, ldd, f);
        continue;
      }
      alignas(16) uint8_t in[256] = {}, out[256];
      for (int64_t r = 0; r < vr; ++r) std::memcpy(in + r * 16, src + (r0 + r) * lds + c0, vc);
      Transpose16x16(in, 16, out, 16, f);
      for (int64_t c = 0; c < vc; ++c) std::memcpy(dst + (c0 + c) * ldd + r0, out + c * 16, vr);
    }
  }
}

// The 4-byte version (int32 / float outputs), plain loops.
void Transpose32(const uint32_t* src, int64_t lds, int64_t rows, int64_t cols, uint32_t* dst,
                 int64_t ldd) {
  constexpr int64_t kBlock = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kBlock) {
    const int64_t r1 = std::min(rows, r0 + kBlock);
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = r0; r < r1; ++r) dst[c * ldd + r] = src[r * lds + c];
  }
}

// dst[i] = src[i] ^ flip (flip = 0x80 turns int8 codes into uint8 = x + 128).
inline void CopyFlip(uint8_t* dst, const uint8_t* src, int64_t n, uint8_t flip) {
  // Short runs (the taps of a stem convolution over 1-4 channels: a few bytes each) are copied
  // inline: a library call per run costs more than the bytes.
  if (n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] ^ flip;
    return;
  }
  if (flip == 0) {
    std::memcpy(dst, src, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] ^ flip;
}

// im2col rows of output pixels [p0, p1) into col (row stride Kp): row p = the cg codes of
// every tap (kernel row, kernel column; the packed weights' order) then Kp - K zero-point codes.
// Input pixel q's codes are img[q * pix_stride ...] ^ flip; a tap in the padding is cg codes
// `pad_code`. When pixels are packed (pix_stride == cg) and dilation is 1, the kW taps of a
// kernel row inside the image are one copy.
void Im2colRows(const QConvShape& s, const uint8_t* img, int64_t pix_stride, uint8_t flip,
                uint8_t pad_code, int64_t Kp, int64_t p0, int64_t p1, uint8_t* col) {
  const int64_t cg = s.in_channels / s.group, K = s.reduction(), ow_n = s.out_w();
  const bool row_runs = s.dilation_w == 1 && pix_stride == cg;
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t oh = p / ow_n, ow = p % ow_n;
    uint8_t* row = col + (p - p0) * Kp;
    const int64_t iw0 = ow * s.stride_w - s.pad_left;
    for (int64_t i = 0; i < s.kernel_h; ++i) {
      const int64_t ih = oh * s.stride_h - s.pad_top + i * s.dilation_h;
      const bool row_inside = ih >= 0 && ih < s.in_h;
      if (row_inside && row_runs && iw0 >= 0 && iw0 + s.kernel_w <= s.in_w) {
        CopyFlip(row, img + (ih * s.in_w + iw0) * cg, s.kernel_w * cg, flip);
        row += s.kernel_w * cg;
        continue;
      }
      for (int64_t j = 0; j < s.kernel_w; ++j, row += cg) {
        const int64_t iw = iw0 + j * s.dilation_w;
        if (row_inside && iw >= 0 && iw < s.in_w) {
          CopyFlip(row, img + (ih * s.in_w + iw) * pix_stride, cg, flip);
        } else {
          for (int64_t c = 0; c < cg; ++c) row[c] = pad_code;
        }
      }
    }
    if (Kp > K) std::memset(row, pad_code, Kp - K);
  }
}

// The gathered-A form of the same rows (QGemmGather; uint8 input, no flip): ptrs[(p - p0) *
// taps + tap] = img + q * pix_stride for the tap's input pixel q, or `pad` (cg zero-point
// codes) for a tap in the padding. No data moves. A pixel whose taps are all inside the image
// (most of them) takes its pointers as one base plus fixed per-tap offsets; only the border
// pixels test each tap (the per-tap loop with its tests was ~12% of a 56x56x64 3x3 conv).
// ptrs[i * T + t] = base + i * step + off[t] for n interior pixels; T fixed so that the offsets
// stay in registers and the tap loop unrolls (3x3 convolutions).
template <int T>
void InteriorTaps(const uint8_t* base, int64_t step, const int64_t* off, int64_t n,
                  const uint8_t** ptrs) {
  int64_t o[T];
  for (int t = 0; t < T; ++t) o[t] = off[t];
  for (int64_t i = 0; i < n; ++i, base += step, ptrs += T)
    for (int t = 0; t < T; ++t) ptrs[t] = base + o[t];
}

void TapPointers(const QConvShape& s, const uint8_t* img, int64_t pix_stride, const uint8_t* pad,
                 int64_t p0, int64_t p1, const uint8_t** ptrs) {
  const int64_t ow_n = s.out_w(), taps = s.kernel_h * s.kernel_w;
  constexpr int64_t kMaxOffsets = 64;
  int64_t off[kMaxOffsets];  // tap t's offset from the pixel of tap 0 (interior pixels)
  const bool fast = taps <= kMaxOffsets;
  if (fast) {
    for (int64_t i = 0; i < s.kernel_h; ++i)
      for (int64_t j = 0; j < s.kernel_w; ++j)
        off[i * s.kernel_w + j] = (i * s.dilation_h * s.in_w + j * s.dilation_w) * pix_stride;
  }
  // Interior output columns [ow_lo, ow_hi): every tap column inside the image.
  const int64_t span_w = (s.kernel_w - 1) * s.dilation_w;
  const int64_t ow_lo = std::min(ow_n, (s.pad_left + s.stride_w - 1) / s.stride_w);
  const int64_t ow_hi =
      s.in_w - span_w + s.pad_left > 0
          ? std::max(ow_lo, std::min(ow_n, (s.in_w - 1 - span_w + s.pad_left) / s.stride_w + 1))
          : ow_lo;
  for (int64_t p = p0; p < p1;) {
    const int64_t oh = p / ow_n, row_end = std::min(p1, (oh + 1) * ow_n);
    const int64_t ih0 = oh * s.stride_h - s.pad_top;
    const bool rows_inside = ih0 >= 0 && ih0 + (s.kernel_h - 1) * s.dilation_h < s.in_h;
    for (int64_t ow = p - oh * ow_n; p < row_end; ++p, ++ow) {
      const int64_t iw0 = ow * s.stride_w - s.pad_left;
      if (fast && rows_inside && ow >= ow_lo && ow < ow_hi) {
        // The run of interior pixels from here: one base stepping by the stride.
        const int64_t n = std::min(ow_hi - ow, row_end - p);
        const uint8_t* base = img + (ih0 * s.in_w + iw0) * pix_stride;
        const int64_t step = s.stride_w * pix_stride;
        if (taps == 9) {
          InteriorTaps<9>(base, step, off, n, ptrs);
        } else {
          for (int64_t i = 0; i < n; ++i, base += step)
            for (int64_t t = 0; t < taps; ++t) ptrs[i * taps + t] = base + off[t];
        }
        ptrs += n * taps;
        p += n - 1;  // the loop adds the last one
        ow += n - 1;
        continue;
      }
      for (int64_t i = 0; i < s.kernel_h; ++i) {
        const int64_t ih = ih0 + i * s.dilation_h;
        const bool row_inside = ih >= 0 && ih < s.in_h;
        for (int64_t j = 0; j < s.kernel_w; ++j) {
          const int64_t iw = iw0 + j * s.dilation_w;
          *ptrs++ =
              row_inside && iw >= 0 && iw < s.in_w ? img + (ih * s.in_w + iw) * pix_stride : pad;
        }
      }
    }
  }
}

// The row-run form (PackedQConvWeights::row_runs; group 1, dilation_w 1): the input rows that
// output pixels [p0, p1) read are copied into a per-thread buffer with the padding written out
// (zero-point codes; int8 flipped to uint8 on the way), Wp = (out_w - 1) * stride_w + kW pixels
// per row, so kernel row i of pixel p is one contiguous run of kW * C codes:
// ptrs[(p - p0) * kH + i]. QGemmGather reads run_len = round_up(kW * C, 4) codes from there;
// the extra ones (the next pixel's, or the buffer's zero-point tail) meet zero weights.
// img: pixels of C codes, rows of in_w pixels (NHWC, or the transposed NCHW input).
void RowRunPointers(const QConvShape& s, const uint8_t* img, uint8_t flip, uint8_t pad_code,
                    int64_t p0, int64_t p1, const uint8_t** ptrs) {
  const int64_t C = s.in_channels, ow_n = s.out_w();
  const int64_t oh0 = p0 / ow_n, oh1 = (p1 - 1) / ow_n;
  const int64_t wp = (ow_n - 1) * s.stride_w + s.kernel_w;  // padded row, pixels
  const int64_t rows = (oh1 - oh0) * s.stride_h + (s.kernel_h - 1) * s.dilation_h + 1;
  const int64_t row_bytes = wp * C;
  // + 4: a run starting in the last row may read up to 3 codes past it.
  uint8_t* buf = Scratch(4, rows * row_bytes + 4);
  std::memset(buf + rows * row_bytes, pad_code, 4);
  // Padded columns [a, b) are input columns [a - pad_left, b - pad_left).
  const int64_t a = std::min(s.pad_left, wp), b = std::min(s.pad_left + s.in_w, wp);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = buf + r * row_bytes;
    const int64_t ih = oh0 * s.stride_h + r - s.pad_top;
    if (ih < 0 || ih >= s.in_h) {
      std::memset(dst, pad_code, row_bytes);
      continue;
    }
    std::memset(dst, pad_code, a * C);
    if (b > a) CopyFlip(dst + a * C, img + (ih * s.in_w + (a - s.pad_left)) * C, (b - a) * C, flip);
    std::memset(dst + b * C, pad_code, (wp - b) * C);
  }
  // Output row by output row, no division per pixel.
  const int64_t kh = s.kernel_h, step = s.stride_w * C, row_step = s.dilation_h * row_bytes;
  for (int64_t p = p0; p < p1;) {
    const int64_t oh = p / ow_n, row_end = std::min(p1, (oh + 1) * ow_n);
    const uint8_t* base = buf + (oh - oh0) * s.stride_h * row_bytes + (p - oh * ow_n) * step;
    for (; p < row_end; ++p, base += step, ptrs += kh) {
      for (int64_t i = 0; i < kh; ++i) ptrs[i] = base + i * row_step;
    }
  }
}

// Group g's slice of the per-channel output-stage arrays (they start at channel g * mg).
QGemmOutput GroupOutput(const QGemmOutput& out, int64_t g, int64_t mg, int64_t M) {
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
  return og;
}

// The gathered path reads the input in place: the VNNI kernel, a whole number of quads per tap
// (then K = Kp), uint8 codes.
bool UseGather(const PackedQConvWeights& w, bool is_signed) {
  const QConvShape& s = w.shape();
  return w.group(0).kernel() == QGemmKernel::kAvx512Vnni && !is_signed &&
         (s.in_channels / s.group) % 4 == 0;
}

// The row-run path (row_runs() exists only for group 1 with the VNNI kernel): any input type
// (the padded copy flips int8), contiguous kernel rows only.
bool UseRowRuns(const PackedQConvWeights& w) {
  return w.row_runs() != nullptr && w.shape().dilation_w == 1;
}

}  // namespace

namespace detail {
// Exposed for the tests (qconv_test.cc): the blocked byte transpose against a plain loop.
void QConvTranspose8ForTest(const uint8_t* src, int64_t lds, int64_t rows, int64_t cols,
                            uint8_t* dst, int64_t ldd, uint8_t flip) {
  Transpose8(src, lds, rows, cols, dst, ldd, flip);
}
}  // namespace detail

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
  const int64_t Kp = PaddedK(shape);
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
    // stored [mg, Kp] row-major (columns K..Kp-1 zero): B = W_g^T (Kp x mg), i.e. trans.
    const int64_t cg = shape.in_channels / shape.group, taps = shape.kernel_h * shape.kernel_w;
    std::vector<int8_t> wr(mg * Kp, 0);
    for (int64_t m = 0; m < mg; ++m)
      for (int64_t c = 0; c < cg; ++c)
        for (int64_t t = 0; t < taps; ++t)
          wr[m * Kp + t * cg + c] = w[(g * mg + m) * K + c * taps + t];
    p.groups_.push_back(PackedQGemmB::Pack(Kp, mg, wr.data(), Kp, true, zp, isa));
  }
  // Stems: the row-run packing (qconv.h), kernel row i at columns [i * L, i * L + kW * C), the
  // rest of each row's L columns zero.
  const int64_t C = shape.in_channels, kh = shape.kernel_h, kw = shape.kernel_w;
  const int64_t L = RoundUp4(kw * C);
  if (shape.group == 1 && C % 4 != 0 && p.groups_[0].kernel() == QGemmKernel::kAvx512Vnni &&
      !p.groups_[0].has_zero_points() && kh * L <= kMaxQGemmK) {
    const int64_t kr = kh * L;
    std::vector<int8_t> wr(M * kr, 0);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < kh; ++i)
          for (int64_t j = 0; j < kw; ++j)
            wr[m * kr + i * L + j * C + c] = w[m * K + (c * kh + i) * kw + j];
    p.row_runs_ = std::make_shared<const PackedQGemmB>(
        PackedQGemmB::Pack(kr, M, wr.data(), kr, true, {}, QGemmKernel::kAvx512Vnni));
    p.run_len_ = L;
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
  const int64_t K = s.reduction(), Kp = PaddedK(s), oh_n = s.out_h(), ow_n = s.out_w();
  const int64_t P = oh_n * ow_n;
  // Validated once for the whole conv; the per-block GEMMs below skip it (detail::*Validated).
  ValidateQGemm(1, M, K, {x.data, K, x.is_signed, x.zero_point}, out, M);
  if (s.batch == 0) return;
  if (x.data == nullptr || y == nullptr) Fail("null input or output");
  const int64_t esize =
      out.kind == QGemmOutputKind::kUint8 || out.kind == QGemmOutputKind::kInt8 ? 1 : 4;
  // int8 codes are flipped to uint8 (x ^ 0x80 = x + 128) with the zero point moved along, so the
  // GEMM reads plain uint8 rows: (x + 128) - (zx + 128) = x - zx.
  const uint8_t flip = x.is_signed ? 0x80 : 0x00;
  const int32_t za = x.zero_point + (x.is_signed ? 128 : 0);
  const auto pad_code = static_cast<uint8_t>(za);
  // A pointwise convolution (1x1, stride 1, no padding) reads the transposed input as is.
  const bool pointwise = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                         s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
  const int64_t hw = s.in_h * s.in_w;
  // The transposed input's row stride: Kp for pointwise (the GEMM's A rows, zero-point padded),
  // else cg (im2col copies from it).
  const int64_t ldx = pointwise ? Kp : cg;
  // Pixel blocks whose A rows (im2col, or the transposed input) and output tile (~192 KiB
  // together) stay in L2 between im2col, GEMM and the output transpose; a multiple of the VNNI
  // tile's 12 rows and of the transpose's 16.
  const int64_t rows = std::min<int64_t>(
      P, std::max<int64_t>(48, (int64_t{192} << 10) / (Kp + mg * esize) / 48 * 48));
  const int64_t blocks = (P + rows - 1) / rows;
  int t = omp_in_parallel() ? 1 : ResolveThreads(threads);
  constexpr int64_t kMinMacsPerThread = int64_t{1} << 22;  // as QGemm: ~10 us of work
  t = static_cast<int>(
      std::min<int64_t>({t, blocks, std::max<int64_t>(1, P * mg * K / kMinMacsPerThread)}));
  const auto* xb = static_cast<const uint8_t*>(x.data);
  uint8_t* xt = Scratch(0, hw * ldx);
  if (pointwise && Kp > K) {
    for (int64_t p = 0; p < hw; ++p) std::memset(xt + p * ldx + K, pad_code, Kp - K);
  }
  // The VNNI kernel reads the taps in place from the transposed (already uint8) input.
  const bool runs = !pointwise && UseRowRuns(w);
  const bool gather = !pointwise && !runs && UseGather(w, false);
  const int64_t taps = s.kernel_h * s.kernel_w;
  for (int64_t n = 0; n < s.batch; ++n) {
    for (int64_t g = 0; g < s.group; ++g) {
      // The group's input planes [cg, H*W] transposed to pixels x channels [H*W, ldx].
      Transpose8(xb + (n * s.in_channels + g * cg) * hw, hw, cg, hw, xt, ldx, flip);
      const QGemmOutput og = GroupOutput(out, g, mg, M);
      auto* yb = static_cast<uint8_t*>(y) + ((n * M + g * mg) * P) * esize;
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1)
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t p0 = blk * rows, p1 = std::min(P, p0 + rows);
        const uint8_t* a = xt + p0 * ldx;
        // [p1 - p0 x mg] tile, then y[n, g*mg + m, p0 + r].
        uint8_t* tile = Scratch(2, (p1 - p0) * mg * esize);
        if (runs) {  // group 1; xt is already uint8
          auto** ptrs = reinterpret_cast<const uint8_t**>(Scratch(1, (p1 - p0) * s.kernel_h * 8));
          RowRunPointers(s, xt, 0, pad_code, p0, p1, ptrs);
          detail::QGemmGatherValidated(p1 - p0, {ptrs, s.kernel_h, w.run_len(), za}, *w.row_runs(),
                                       og, tile, mg, 1);
        } else if (gather) {
          uint8_t* pad_row = Scratch(3, cg);
          std::memset(pad_row, pad_code, cg);
          auto** ptrs = reinterpret_cast<const uint8_t**>(Scratch(1, (p1 - p0) * taps * 8));
          TapPointers(s, xt, cg, pad_row, p0, p1, ptrs);
          detail::QGemmGatherValidated(p1 - p0, {ptrs, taps, cg, za}, w.group(g), og, tile, mg, 1);
        } else {
          if (!pointwise) {
            uint8_t* col = Scratch(1, (p1 - p0) * Kp);
            Im2colRows(s, xt, cg, 0, pad_code, Kp, p0, p1, col);
            a = col;
          }
          detail::QGemmValidated(p1 - p0, {a, pointwise ? ldx : Kp, false, za}, w.group(g), og,
                                 tile, mg, 1);
        }
        if (esize == 1) {
          Transpose8(tile, mg, p1 - p0, mg, yb + p0, P, 0);
        } else {
          Transpose32(reinterpret_cast<const uint32_t*>(tile), mg, p1 - p0, mg,
                      reinterpret_cast<uint32_t*>(yb) + p0, P);
        }
      }
    }
  }
}

void QConvNhwc(const QConvInput& x, const PackedQConvWeights& w, const QGemmOutput& out, void* y,
               int threads) {
  const QConvShape& s = w.shape();
  if (s.out_channels == 0) Fail("weights are not packed");
  s.Validate();
  const int64_t C = s.in_channels, M = s.out_channels, mg = M / s.group, cg = C / s.group;
  const int64_t K = s.reduction(), Kp = PaddedK(s), oh_n = s.out_h(), ow_n = s.out_w();
  const int64_t P = oh_n * ow_n;
  // Validated once for the whole conv; the per-block GEMMs below skip it (detail::*Validated).
  ValidateQGemm(1, M, K, {x.data, K, x.is_signed, x.zero_point}, out, M);
  if (s.batch == 0) return;
  if (x.data == nullptr || y == nullptr) Fail("null input or output");
  const int64_t esize =
      out.kind == QGemmOutputKind::kUint8 || out.kind == QGemmOutputKind::kInt8 ? 1 : 4;
  const auto* xb = static_cast<const uint8_t*>(x.data);
  auto* yb = static_cast<uint8_t*>(y);
  const bool pointwise = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                         s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 && s.pad_right == 0;
  if (pointwise && Kp == K) {
    // The input rows are the GEMM's A rows (lda = C, group g's columns start at g * cg) and
    // the output rows its C rows (ldc = M): all images and pixels in one product per group.
    for (int64_t g = 0; g < s.group; ++g) {
      QGemm(s.batch * P, {xb + g * cg, C, x.is_signed, x.zero_point}, w.group(g),
            GroupOutput(out, g, mg, M), yb + g * mg * esize, M, threads);
    }
    return;
  }
  // A rows: with the VNNI kernel and uint8 codes, pointers to the taps' input pixels (read in
  // place); else im2col rows of Kp codes copied from the input pixels (int8 flipped to uint8 on
  // the way, zero point moved along: (x + 128) - (zx + 128) = x - zx). Columns (kernel row,
  // kernel column, channel) as packed; padding taps and the Kp - K tail hold the zero point
  // (they add 0).
  const uint8_t flip = x.is_signed ? 0x80 : 0x00;
  const int32_t za = x.zero_point + (x.is_signed ? 128 : 0);
  const auto pad_code = static_cast<uint8_t>(za);
  const bool runs = UseRowRuns(w);
  const bool gather = !runs && UseGather(w, x.is_signed);
  const int64_t taps = runs ? s.kernel_h : s.kernel_h * s.kernel_w;  // pointers per pixel
  // Pixel blocks: im2col rows in L2 (~128 KiB), or tap pointers (~64 KiB; the input is read in
  // place, so blocks can be much larger and the GEMM sees long runs of full tiles); at least one
  // block per thread; split evenly within an image (196 pixels are 4 x 49, not 4 x 48 + 4).
  int t = omp_in_parallel() ? 1 : ResolveThreads(threads);
  constexpr int64_t kMinMacsPerThread = int64_t{1} << 22;  // as QGemm: ~10 us of work
  t = static_cast<int>(std::min<int64_t>(
      {t, s.batch * P, std::max<int64_t>(1, s.batch * P * M * K / s.group / kMinMacsPerThread)}));
  const int64_t max_rows =
      std::max<int64_t>(48, gather || runs ? (int64_t{64} << 10) / (taps * 8) / 48 * 48
                                           : (int64_t{128} << 10) / Kp / 48 * 48);
  int64_t per_image = (P + max_rows - 1) / max_rows;
  if (s.batch < t) per_image = std::max(per_image, (t + s.batch - 1) / s.batch);
  const int64_t rows = (P + per_image - 1) / per_image;
  per_image = (P + rows - 1) / rows;
  // Small images on the tap-pointer path (ResNet-18's 14x14 and 7x7 layers at batch 32): a
  // block holds several whole images, as many as fit in max_rows while leaving a block per
  // thread. The NHWC output rows of consecutive images are consecutive (ldc = M), so one GEMM
  // runs over all their pixels: 17 x 49 rows are 69 full 12-row tiles and two short ones
  // instead of 3 full + 7 + 6 per image. Each row's sum is the same whatever tile it is in.
  const int64_t images = per_image == 1 && gather && P > 0
                             ? std::max<int64_t>(1, std::min(max_rows / P, s.batch / t))
                             : 1;
  if (images > 1) {
    const int64_t groups_of_images = (s.batch + images - 1) / images;
    t = static_cast<int>(std::min<int64_t>(t, groups_of_images));
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1)
    for (int64_t blk = 0; blk < groups_of_images; ++blk) {
      const int64_t n0 = blk * images, n1 = std::min(s.batch, n0 + images);
      uint8_t* pad_row = Scratch(3, cg);
      std::memset(pad_row, pad_code, cg);
      auto** ptrs = reinterpret_cast<const uint8_t**>(Scratch(1, (n1 - n0) * P * taps * 8));
      for (int64_t g = 0; g < s.group; ++g) {
        for (int64_t n = n0; n < n1; ++n) {
          TapPointers(s, xb + n * s.in_h * s.in_w * C + g * cg, C, pad_row, 0, P,
                      ptrs + (n - n0) * P * taps);
        }
        detail::QGemmGatherValidated((n1 - n0) * P, {ptrs, taps, cg, za}, w.group(g),
                                     GroupOutput(out, g, mg, M), yb + (n0 * P * M + g * mg) * esize,
                                     M, 1);
      }
    }
    return;
  }
  const int64_t blocks = s.batch * per_image;
  t = static_cast<int>(std::min<int64_t>(t, blocks));
#pragma omp parallel for num_threads(t) schedule(static) if (t > 1)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t n = blk / per_image, p0 = (blk % per_image) * rows, p1 = std::min(P, p0 + rows);
    const uint8_t* img = xb + n * s.in_h * s.in_w * C;
    for (int64_t g = 0; g < s.group; ++g) {
      uint8_t* yg = yb + ((n * P + p0) * M + g * mg) * esize;
      if (runs) {  // group 1
        auto** ptrs = reinterpret_cast<const uint8_t**>(Scratch(1, (p1 - p0) * taps * 8));
        RowRunPointers(s, img, flip, pad_code, p0, p1, ptrs);
        detail::QGemmGatherValidated(p1 - p0, {ptrs, taps, w.run_len(), za}, *w.row_runs(), out, yg,
                                     M, 1);
      } else if (gather) {
        uint8_t* pad_row = Scratch(3, cg);
        std::memset(pad_row, pad_code, cg);
        auto** ptrs = reinterpret_cast<const uint8_t**>(Scratch(1, (p1 - p0) * taps * 8));
        TapPointers(s, img + g * cg, C, pad_row, p0, p1, ptrs);
        detail::QGemmGatherValidated(p1 - p0, {ptrs, taps, cg, za}, w.group(g),
                                     GroupOutput(out, g, mg, M), yg, M, 1);
      } else {
        uint8_t* col = Scratch(1, (p1 - p0) * Kp);
        Im2colRows(s, img + g * cg, C, flip, pad_code, Kp, p0, p1, col);
        detail::QGemmValidated(p1 - p0, {col, Kp, false, za}, w.group(g),
                               GroupOutput(out, g, mg, M), yg, M, 1);
      }
    }
  }
}

}  // namespace qforge::kernels
