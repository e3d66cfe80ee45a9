// Dynamic-quantization and int4 kernels: argument checks, ISA dispatch, the QGemm-based
// dynamic int8 GEMM, int4 weight quantization (see dynq.h).
#include "qforge/kernels/dynq.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/ref/dynq_ref.h"
#include "kernels/x86/dynq_ukernel.h"
#include "kernels/x86/int4_vnni.h"
#include "qforge/kernels/gemm.h"
#include "qforge/numerics/float_formats.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

using numerics::IntFormat;
using numerics::QuantParams;
using numerics::RangeOptions;

namespace {

[[noreturn]] void Fail(const char* fn, const std::string& what) {
  throw Error(std::string(fn) + ": " + what);
}

bool UseAvx2(Isa isa) { return isa != Isa::kScalar && IsaSupported(Isa::kAvx2); }

}  // namespace

bool FiniteMinMax(const float* x, int64_t n, float* lo, float* hi, Isa isa) {
  if (n < 1 || !x) Fail("FiniteMinMax", "needs at least one element");
  if (UseAvx2(isa)) return detail::RowRange__avx2(x, n, lo, hi);
  float l = x[0], h = x[0];
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
    l = std::min(l, x[i]);
    h = std::max(h, x[i]);
  }
  *lo = l;
  *hi = h;
  return true;
}

void DynamicQuantizeRows(int64_t M, int64_t K, const float* x, int64_t ldx, IntFormat fmt,
                         RangeOptions opt, void* q, int64_t ldq, QuantParams* params, Isa isa) {
  constexpr const char* kFn = "DynamicQuantizeRows";
  if (fmt.bits != 8) Fail(kFn, "format must be int8 or uint8, got " + fmt.name());
  if (M < 0 || K < 0 || ldx < K || ldq < K)
    Fail(kFn, "bad sizes M=" + std::to_string(M) + " K=" + std::to_string(K) +
                  " ldx=" + std::to_string(ldx) + " ldq=" + std::to_string(ldq));
  if (M > 0 && K > 0 && (!x || !q)) Fail(kFn, "null data");
  if (M > 0 && !params) Fail(kFn, "null params");
  if (!UseAvx2(isa)) return ref::DynamicQuantizeRows(M, K, x, ldx, fmt, opt, q, ldq, params);
  const int32_t qmin = numerics::QuantMin(fmt, opt.restricted_range), qmax = fmt.qmax();
  for (int64_t m = 0; m < M; ++m) {
    float lo = 0.0f, hi = 0.0f;
    if (K > 0 && !detail::RowRange__avx2(x + m * ldx, K, &lo, &hi)) {
      // The reference's message: the first non-finite element.
      const float* row = x + m * ldx;
      const int64_t k = std::find_if(row, row + K, [](float v) { return !std::isfinite(v); }) - row;
      Fail(kFn, "row " + std::to_string(m) + " element " + std::to_string(k) + " is " +
                    (std::isnan(row[k]) ? "NaN" : "infinite") +
                    "; a dynamic range needs finite values");
    }
    params[m] = numerics::ChooseQuantParams(lo, hi, fmt, opt);
    detail::QuantizeRow__avx2(x + m * ldx, K, params[m], qmin, qmax, fmt.is_signed,
                              static_cast<uint8_t*>(q) + m * ldq);
  }
}

void QuantizeWithParams(const float* x, int64_t n, QuantParams p, int32_t qmin, int32_t qmax,
                        bool is_signed, void* q, Isa isa) {
  constexpr const char* kFn = "QuantizeWithParams";
  if (n < 0 || (n > 0 && (!x || !q))) Fail(kFn, "bad arguments");
  if (!(p.scale > 0) || qmin > qmax || qmin < (is_signed ? -128 : 0) ||
      qmax > (is_signed ? 127 : 255))
    Fail(kFn, "needs scale > 0 and a clamp range within the 8-bit type, got scale " +
                  std::to_string(p.scale) + " [" + std::to_string(qmin) + ", " +
                  std::to_string(qmax) + "]");
  if (UseAvx2(isa)) return detail::QuantizeWithParams__avx2(x, n, p, qmin, qmax, is_signed, q);
  if (is_signed)
    numerics::QuantizeRun(x, n, p, qmin, qmax, static_cast<int8_t*>(q));
  else
    numerics::QuantizeRun(x, n, p, qmin, qmax, static_cast<uint8_t*>(q));
}

void QuantizeCentered(const float* x, int64_t n, QuantParams p, int32_t qmin, int32_t qmax,
                      float* out, Isa isa) {
  if (n < 0 || (n > 0 && (!x || !out))) Fail("QuantizeCentered", "bad arguments");
  if (!(p.scale > 0) || qmin > qmax)
    Fail("QuantizeCentered",
         "needs scale > 0 and qmin <= qmax, got scale " + std::to_string(p.scale));
  if (UseAvx2(isa)) return detail::QuantizeCentered__avx2(x, n, p, qmin, qmax, out);
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<float>(numerics::QuantizeValue(x[i], p, qmin, qmax) - p.zero_point);
}

void DynamicQGemm(int64_t M, const void* a, int64_t lda, bool a_signed, const QuantParams* a_params,
                  const PackedQGemmB& b, const float* w_scales, const float* bias, float* y,
                  int64_t ldy, int threads, Isa isa) {
  constexpr const char* kFn = "DynamicQGemm";
  if (b.empty()) Fail(kFn, "B is not packed");
  const int64_t N = b.N(), K = b.K();
  if (M < 0 || lda < K || ldy < N)
    Fail(kFn, "bad sizes M=" + std::to_string(M) + " lda=" + std::to_string(lda) + " ldy=" +
                  std::to_string(ldy) + " for K=" + std::to_string(K) + " N=" + std::to_string(N));
  if (M == 0 || N == 0) return;
  if (!a_params || !w_scales || !y || (K > 0 && !a)) Fail(kFn, "null argument");
  for (int64_t m = 0; m < M; ++m) {
    const int32_t z = a_params[m].zero_point;
    if (a_signed ? (z < -128 || z > 127) : (z < 0 || z > 255))
      Fail(kFn, "row " + std::to_string(m) + " zero point " + std::to_string(z) + " is outside " +
                    (a_signed ? "int8" : "uint8"));
  }
  // acc0 = sum_k A * (B - zb) with za = 0, as int32, written into y's storage.
  QGemmA qa;
  qa.data = a;
  qa.ld = lda;
  qa.is_signed = a_signed;
  qa.zero_point = 0;
  QGemm(M, qa, b, QGemmOutput::Int32(), y, ldy, threads);
  // colb[n] = sum_k (B[k,n] - zb[n]); |colb| <= 255 K < 2^23.
  std::vector<int32_t> colb(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) {
    const int32_t zb = b.has_zero_points() ? b.zero_points()[n] : 0;
    colb[n] = b.col_sums()[n] - static_cast<int32_t>(K) * zb;
  }
  const int nt = static_cast<int>(
      std::min<int64_t>(ResolveThreads(threads), std::max<int64_t>(1, M * N / 65536)));
  const bool avx2 = UseAvx2(isa);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
  for (int64_t m = 0; m < M; ++m) {
    if (avx2) {
      detail::DynamicQGemmEpilogue__avx2(m, m + 1, N, a_params, colb.data(), w_scales, bias, y,
                                         ldy);
      continue;
    }
    float* row = y + m * ldy;
    const uint32_t za = static_cast<uint32_t>(a_params[m].zero_point);
    for (int64_t n = 0; n < N; ++n) {
      int32_t acc0;
      std::memcpy(&acc0, row + n, sizeof acc0);
      // Modulo 2^32; exact because the true sum fits int32 (K <= kMaxQGemmK).
      const int32_t acc =
          static_cast<int32_t>(static_cast<uint32_t>(acc0) - za * static_cast<uint32_t>(colb[n]));
      float v = static_cast<float>(acc) * (a_params[m].scale * w_scales[n]);
      if (bias) v = v + bias[n];
      row[n] = v;
    }
  }
}

void DynamicQuantizedLinear(int64_t M, const float* x, int64_t ldx, const PackedQGemmB& b,
                            const float* w_scales, const float* bias, float* y, int64_t ldy,
                            int threads, Isa isa) {
  if (b.empty()) Fail("DynamicQuantizedLinear", "B is not packed");
  const int64_t K = b.K();
  std::vector<uint8_t> q(static_cast<size_t>(M * K));
  std::vector<QuantParams> params(static_cast<size_t>(M));
  DynamicQuantizeRows(M, K, x, ldx, IntFormat{8, false}, RangeOptions{}, q.data(), K, params.data(),
                      isa);
  DynamicQGemm(M, q.data(), K, false, params.data(), b, w_scales, bias, y, ldy, threads, isa);
}

// ---- int4 ----

float Int4Weights::scale(int64_t g, int64_t n) const {
  return scales_fp16.empty() ? scales[g * N + n] : numerics::Fp16ToFloat(scales_fp16[g * N + n]);
}

int64_t Int4Weights::bytes() const {
  return static_cast<int64_t>(packed.size() + scales.size() * sizeof(float) +
                              scales_fp16.size() * sizeof(uint16_t) + zero_points.size());
}

namespace {

void CheckInt4Shape(const char* fn, int64_t N, int64_t K, int64_t group_size) {
  if (group_size != 32 && group_size != 64 && group_size != 128)
    Fail(fn, "group size must be 32, 64 or 128, got " + std::to_string(group_size));
  if (N < 0 || K < 0 || K % group_size != 0)
    Fail(fn, "K=" + std::to_string(K) + " must be a multiple of the group size " +
                 std::to_string(group_size) + " (N=" + std::to_string(N) + ")");
}

void CheckInt4Weights(const char* fn, const Int4Weights& w) {
  CheckInt4Shape(fn, w.N, w.K, w.group_size);
  const size_t params = static_cast<size_t>(w.groups() * w.N);
  if (w.packed.size() != static_cast<size_t>(w.N * w.K / 2) ||
      (w.scales.size() == params) == (w.scales_fp16.size() == params) ||
      (!w.scales.empty() && !w.scales_fp16.empty()) ||
      (!w.zero_points.empty() && w.zero_points.size() != params) ||
      (!w.vnni.empty() && w.vnni.size() != static_cast<size_t>((w.N + detail::kInt4VnniRows - 1) /
                                                               detail::kInt4VnniRows *
                                                               detail::kInt4VnniRows * w.K / 2)))
    Fail(fn, "Int4Weights arrays do not match N=" + std::to_string(w.N) +
                 " K=" + std::to_string(w.K) + " group " + std::to_string(w.group_size));
}

}  // namespace

Int4Weights QuantizeInt4Weights(const float* w, int64_t N, int64_t K, int64_t group_size,
                                bool symmetric, bool fp16_scales) {
  constexpr const char* kFn = "QuantizeInt4Weights";
  CheckInt4Shape(kFn, N, K, group_size);
  Int4Weights out;
  out.N = N;
  out.K = K;
  out.group_size = group_size;
  const int64_t G = K / group_size;
  out.packed.assign(static_cast<size_t>(N * K / 2), 0);
  (fp16_scales ? out.scales_fp16.resize(G * N) : out.scales.resize(G * N));
  if (!symmetric) out.zero_points.resize(static_cast<size_t>(G * N));
  const IntFormat fmt = symmetric ? IntFormat{4, true} : IntFormat{4, false};
  const RangeOptions opt{symmetric, symmetric};
  const int32_t qmin = numerics::QuantMin(fmt, opt.restricted_range), qmax = fmt.qmax();
  const int32_t offset = symmetric ? 8 : 0;  // stored code = q + 8 for signed int4
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const float* wg = w + n * K + g * group_size;
      float lo = 0.0f, hi = 0.0f;
      for (int64_t i = 0; i < group_size; ++i) {
        if (!std::isfinite(wg[i]))
          Fail(kFn, "weight [" + std::to_string(n) + ", " + std::to_string(g * group_size + i) +
                        "] is not finite");
        lo = std::min(lo, wg[i]);
        hi = std::max(hi, wg[i]);
      }
      QuantParams p = numerics::ChooseQuantParams(lo, hi, fmt, opt);
      if (fp16_scales) {
        uint16_t h = numerics::FloatToFp16(p.scale);
        if (h == 0) h = 1;  // below the smallest fp16 subnormal (2^-24): use it
        if ((h & 0x7C00) == 0x7C00)
          Fail(kFn, "group scale " + std::to_string(p.scale) + " overflows fp16");
        out.scales_fp16[g * N + n] = h;
        const float s16 = numerics::Fp16ToFloat(h);
        if (!symmetric) {  // re-derive z for the rounded scale, as ChooseQuantParams does
          const float mn = std::min(lo, 0.0f);
          const float zf = static_cast<float>(qmin) - numerics::RoundHalfEven(mn / s16);
          p.zero_point = static_cast<int32_t>(std::clamp(zf, float(qmin), float(qmax)));
        }
        p.scale = s16;
      } else {
        out.scales[g * N + n] = p.scale;
      }
      if (!symmetric) out.zero_points[g * N + n] = static_cast<uint8_t>(p.zero_point);
      for (int64_t i = 0; i < group_size; ++i) {
        const int64_t k = g * group_size + i;
        const int32_t c = numerics::QuantizeValue(wg[i], p, qmin, qmax) + offset;
        uint8_t& byte = out.packed[n * (K / 2) + k / kInt4Block * 16 + k % 16];
        byte = (k % kInt4Block) < 16 ? static_cast<uint8_t>((byte & 0xF0) | c)
                                     : static_cast<uint8_t>((byte & 0x0F) | (c << 4));
      }
    }
  }
  return out;
}

void PrepackInt4Weights(Int4Weights& w, Isa isa) {
  CheckInt4Weights("PrepackInt4Weights", w);
  if (isa != Isa::kAvx512 || !IsaSupported(Isa::kAvx512) || !detail::Int4VnniSupported()) return;
  constexpr int64_t R = detail::kInt4VnniRows;
  const int64_t tiles = (w.N + R - 1) / R, octets = w.K / 8;
  w.vnni.assign(static_cast<size_t>(tiles * R * w.K / 2), 0);
  for (int64_t t = 0; t < tiles; ++t)
    for (int64_t j = 0; j < R && t * R + j < w.N; ++j)
      for (int64_t o = 0; o < octets; ++o)
        for (int64_t i = 0; i < 4; ++i) {
          const int64_t n = t * R + j;
          w.vnni[(t * octets + o) * 64 + j * 4 + i] =
              static_cast<uint8_t>(w.code(n, 8 * o + i) | (w.code(n, 8 * o + 4 + i) << 4));
        }
}

void DequantizeInt4Weights(const Int4Weights& w, float* out) {
  CheckInt4Weights("DequantizeInt4Weights", w);
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k) {
      const int64_t g = k / w.group_size;
      out[n * w.K + k] = w.scale(g, n) * static_cast<float>(w.code(n, k) - w.zero_point(g, n));
    }
}

void Int4Gemm(int64_t M, const float* x, int64_t ldx, const Int4Weights& w, const float* bias,
              float* y, int64_t ldy, Isa isa) {
  constexpr const char* kFn = "Int4Gemm";
  CheckInt4Weights(kFn, w);
  if (M < 0 || ldx < w.K || ldy < w.N)
    Fail(kFn, "bad sizes M=" + std::to_string(M) + " ldx=" + std::to_string(ldx) +
                  " ldy=" + std::to_string(ldy));
  if (M == 0 || w.N == 0) return;
  if (!UseAvx2(isa)) return ref::Int4Gemm(M, x, ldx, w, bias, y, ldy);
  const int64_t K = w.K, G = w.groups();
  std::vector<int8_t> xq(static_cast<size_t>(M * K));
  std::vector<QuantParams> px(static_cast<size_t>(M));
  DynamicQuantizeRows(M, K, x, ldx, IntFormat{8, true}, RangeOptions{true, true}, xq.data(), K,
                      px.data(), isa);
  std::vector<float> sx(static_cast<size_t>(M));
  std::vector<int32_t> xsum(static_cast<size_t>(M * G));
  for (int64_t m = 0; m < M; ++m) {
    sx[m] = px[m].scale;
    for (int64_t g = 0; g < G; ++g) {
      int32_t s = 0;
      for (int64_t k = g * w.group_size; k < (g + 1) * w.group_size; ++k) s += xq[m * K + k];
      xsum[m * G + g] = s;
    }
  }
  if (isa == Isa::kAvx512 && !w.vnni.empty() && IsaSupported(Isa::kAvx512) &&
      detail::Int4VnniSupported()) {
    detail::Int4Gemm__avx512vnni(M, xq.data(), K, sx.data(), xsum.data(), w, bias, y, ldy);
    return;
  }
  detail::Int4Gemm__avx2(M, xq.data(), K, sx.data(), xsum.data(), w, bias, y, ldy);
}

}  // namespace qforge::kernels
