// 8-bit weight-only GEMM: argument checks, weight quantization, activation quantization to
// int16 and ISA dispatch (see weight_only.h).
#include "qforge/kernels/weight_only.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/ref/weight_only_ref.h"
#include "kernels/x86/int4_vnni.h"
#include "kernels/x86/weight_only_ukernel.h"
#include "qforge/numerics/float_formats.h"
#include "qforge/numerics/quant_params.h"
#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

using numerics::IntFormat;
using numerics::QuantParams;
using numerics::RangeOptions;

namespace {

[[noreturn]] void Fail(const char* fn, const std::string& what) {
  throw Error(std::string(fn) + ": " + what);
}

void CheckShape(const char* fn, int64_t N, int64_t K, int64_t group_size) {
  if (group_size != 32 && group_size != 64 && group_size != 128)
    Fail(fn, "group size must be 32, 64 or 128, got " + std::to_string(group_size));
  if (N < 0 || K < 0 || K % group_size != 0)
    Fail(fn, "K=" + std::to_string(K) + " must be a multiple of the group size " +
                 std::to_string(group_size) + " (N=" + std::to_string(N) + ")");
}

void CheckWeights(const char* fn, const Int8Weights& w) {
  CheckShape(fn, w.N, w.K, w.group_size);
  const size_t params = static_cast<size_t>(w.groups() * w.N);
  if (w.codes.size() != static_cast<size_t>(w.N * w.K) ||
      (w.scales.size() == params) == (w.scales_fp16.size() == params) ||
      (!w.scales.empty() && !w.scales_fp16.empty()) ||
      (!w.zero_points.empty() && w.zero_points.size() != params))
    Fail(fn, "Int8Weights arrays do not match N=" + std::to_string(w.N) +
                 " K=" + std::to_string(w.K) + " group " + std::to_string(w.group_size));
}

}  // namespace

float Int8Weights::scale(int64_t g, int64_t n) const {
  return scales_fp16.empty() ? scales[g * N + n] : numerics::Fp16ToFloat(scales_fp16[g * N + n]);
}

int64_t Int8Weights::bytes() const {
  return static_cast<int64_t>(codes.size() + scales.size() * sizeof(float) +
                              scales_fp16.size() * sizeof(uint16_t) + zero_points.size());
}

Int8Weights QuantizeInt8Weights(const float* w, int64_t N, int64_t K, int64_t group_size,
                                bool symmetric, bool fp16_scales) {
  constexpr const char* kFn = "QuantizeInt8Weights";
  CheckShape(kFn, N, K, group_size);
  Int8Weights out;
  out.N = N;
  out.K = K;
  out.group_size = group_size;
  const int64_t G = K / group_size;
  out.codes.assign(static_cast<size_t>(N * K), 0);
  (fp16_scales ? out.scales_fp16.resize(G * N) : out.scales.resize(G * N));
  if (!symmetric) out.zero_points.resize(static_cast<size_t>(G * N));
  const IntFormat fmt = symmetric ? IntFormat{8, true} : IntFormat{8, false};
  const RangeOptions opt{symmetric, symmetric};
  const int32_t qmin = numerics::QuantMin(fmt, opt.restricted_range), qmax = fmt.qmax();
  const int32_t offset = symmetric ? 128 : 0;  // stored code = q + 128 for signed int8
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
          const float zf = static_cast<float>(qmin) - numerics::RoundHalfEven(lo / s16);
          p.zero_point = static_cast<int32_t>(std::clamp(zf, float(qmin), float(qmax)));
        }
        p.scale = s16;
      } else {
        out.scales[g * N + n] = p.scale;
      }
      if (!symmetric) out.zero_points[g * N + n] = static_cast<uint8_t>(p.zero_point);
      for (int64_t i = 0; i < group_size; ++i)
        out.codes[n * K + g * group_size + i] =
            static_cast<uint8_t>(numerics::QuantizeValue(wg[i], p, qmin, qmax) + offset);
    }
  }
  return out;
}

void DequantizeInt8Weights(const Int8Weights& w, float* out) {
  CheckWeights("DequantizeInt8Weights", w);
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k) {
      const int64_t g = k / w.group_size;
      out[n * w.K + k] = w.scale(g, n) * static_cast<float>(w.code(n, k) - w.zero_point(g, n));
    }
}

void Int8WeightGemm(int64_t M, const float* x, int64_t ldx, const Int8Weights& w, const float* bias,
                    float* y, int64_t ldy, Isa isa) {
  constexpr const char* kFn = "Int8WeightGemm";
  CheckWeights(kFn, w);
  if (M < 0 || ldx < w.K || ldy < w.N)
    Fail(kFn, "bad sizes M=" + std::to_string(M) + " ldx=" + std::to_string(ldx) +
                  " ldy=" + std::to_string(ldy));
  if (M == 0 || w.N == 0) return;
  if (!x || !y) Fail(kFn, "null data");
  if (isa == Isa::kScalar || !IsaSupported(Isa::kAvx2))
    return ref::Int8WeightGemm(M, x, ldx, w, bias, y, ldy);
  // Activations: int16 per row, symmetric restricted (the contract), via QuantizeRun (equal to
  // QuantizeValue everywhere), plus the per-group sums the kernel needs for the zero points.
  const int64_t K = w.K, G = w.groups();
  std::vector<int16_t> xq(static_cast<size_t>(M * K));
  std::vector<float> sx(static_cast<size_t>(M));
  std::vector<int32_t> xsum(static_cast<size_t>(M * G));
  for (int64_t m = 0; m < M; ++m) {
    const float* row = x + m * ldx;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
      if (!std::isfinite(row[k]))
        Fail(kFn, "row " + std::to_string(m) + " element " + std::to_string(k) + " is not finite");
      lo = std::min(lo, row[k]);
      hi = std::max(hi, row[k]);
    }
    const QuantParams p = numerics::ChooseQuantParams(lo, hi, IntFormat{16, true}, {true, true});
    sx[m] = p.scale;
    numerics::QuantizeRun(row, K, p, -32767, 32767, xq.data() + m * K);
    for (int64_t g = 0; g < G; ++g) {
      int32_t s = 0;
      for (int64_t k = g * w.group_size; k < (g + 1) * w.group_size; ++k) s += xq[m * K + k];
      xsum[m * G + g] = s;
    }
  }
  // The VNNI kernel repacks each 16-column block once per call (a gather per 4 k), which pays
  // off only when several rows reuse it; GEMV-like calls stay on the AVX2 kernel.
  if (M >= 4 && isa == Isa::kAvx512 && IsaSupported(Isa::kAvx512) && detail::Int4VnniSupported()) {
    detail::Int8WeightGemm__avx512vnni(M, xq.data(), K, sx.data(), w, bias, y, ldy);
    return;
  }
  detail::Int8WeightGemm__avx2(M, xq.data(), K, sx.data(), xsum.data(), w, bias, y, ldy);
}

}  // namespace qforge::kernels

// ---- MatMulNBits layout ----

namespace qforge::kernels {

namespace {

template <typename W>
MatMulNBitsWeights ToNBitsCommon(const W& w, int64_t K, int64_t bits) {
  MatMulNBitsWeights m;
  m.N = w.N;
  m.K = K;
  m.bits = bits;
  m.block_size = w.group_size;
  const int64_t nb = m.blocks(), N = w.N;
  if (K <= 0 || nb * w.group_size != w.K)
    throw Error("ToMatMulNBits: K=" + std::to_string(K) + " does not pad to the weights' K=" +
                std::to_string(w.K) + " with blocks of " + std::to_string(w.group_size));
  // [G][N] -> [N][G]
  if (!w.scales.empty()) {
    m.scales.resize(static_cast<size_t>(N * nb));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < nb; ++g) m.scales[n * nb + g] = w.scales[g * N + n];
  } else {
    m.scales_fp16.resize(static_cast<size_t>(N * nb));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < nb; ++g) m.scales_fp16[n * nb + g] = w.scales_fp16[g * N + n];
  }
  if (!w.zero_points.empty()) {
    const int64_t zrow = (nb * bits + 7) / 8;
    m.zero_points.assign(static_cast<size_t>(N * zrow), 0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < nb; ++g) {
        const uint8_t z = w.zero_points[g * N + n];
        if (bits == 8)
          m.zero_points[n * zrow + g] = z;
        else
          m.zero_points[n * zrow + g / 2] |= static_cast<uint8_t>(z << (4 * (g % 2)));
      }
  }
  return m;
}

// Throws unless m is a consistent MatMulNBits weight of `bits` bits that the kernels take.
void CheckNBits(const MatMulNBitsWeights& m, int64_t bits, const std::string& what) {
  auto fail = [&](const std::string& s) { throw Error(what + ": " + s); };
  if (m.bits != bits) fail("bits=" + std::to_string(m.bits) + ", expected " + std::to_string(bits));
  if (m.block_size != 32 && m.block_size != 64 && m.block_size != 128)
    fail("block_size " + std::to_string(m.block_size) + " is not supported (32, 64 or 128)");
  if (m.N <= 0 || m.K <= 0)
    fail("N=" + std::to_string(m.N) + " K=" + std::to_string(m.K) + " must be positive");
  const int64_t nb = m.blocks(), params = m.N * nb;
  if (static_cast<int64_t>(m.b.size()) != m.N * nb * m.block_size * bits / 8)
    fail("B has " + std::to_string(m.b.size()) + " bytes, expected N * n_blocks * blob = " +
         std::to_string(m.N * nb * m.block_size * bits / 8));
  if ((static_cast<int64_t>(m.scales.size()) == params) ==
          (static_cast<int64_t>(m.scales_fp16.size()) == params) ||
      (!m.scales.empty() && !m.scales_fp16.empty()))
    fail("scales must have N * n_blocks = " + std::to_string(params) + " elements");
  for (int64_t i = 0; i < params; ++i) {
    const float s = m.scales.empty() ? numerics::Fp16ToFloat(m.scales_fp16[i]) : m.scales[i];
    if (!std::isfinite(s)) fail("scale " + std::to_string(i) + " is not finite");
  }
  if (!m.zero_points.empty() &&
      static_cast<int64_t>(m.zero_points.size()) != m.N * ((nb * bits + 7) / 8))
    fail("zero_points has " + std::to_string(m.zero_points.size()) + " bytes, expected " +
         std::to_string(m.N * ((nb * bits + 7) / 8)));
}

template <typename W>
void FromNBitsCommon(const MatMulNBitsWeights& m, W& w) {
  const int64_t nb = m.blocks(), N = m.N;
  w.N = N;
  w.K = nb * m.block_size;
  w.group_size = m.block_size;
  if (!m.scales.empty()) {
    w.scales.resize(static_cast<size_t>(N * nb));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < nb; ++g) w.scales[g * N + n] = m.scales[n * nb + g];
  } else {
    w.scales_fp16.resize(static_cast<size_t>(N * nb));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < nb; ++g) w.scales_fp16[g * N + n] = m.scales_fp16[n * nb + g];
  }
  if (!m.zero_points.empty()) {
    const int64_t zrow = (nb * m.bits + 7) / 8;
    w.zero_points.resize(static_cast<size_t>(N * nb));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < nb; ++g) {
        const uint8_t byte = m.zero_points[n * zrow + (m.bits == 8 ? g : g / 2)];
        w.zero_points[g * N + n] =
            m.bits == 8 ? byte : static_cast<uint8_t>((byte >> (4 * (g % 2))) & 0xF);
      }
  }
}

}  // namespace

MatMulNBitsWeights ToMatMulNBits(const Int4Weights& w, int64_t K) {
  MatMulNBitsWeights m = ToNBitsCommon(w, K, 4);
  m.b.assign(w.packed.size(), 0);
  const int64_t row = w.K / 2;
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k)
      m.b[n * row + k / 2] |= static_cast<uint8_t>(w.code(n, k) << (4 * (k % 2)));
  return m;
}

MatMulNBitsWeights ToMatMulNBits(const Int8Weights& w, int64_t K) {
  MatMulNBitsWeights m = ToNBitsCommon(w, K, 8);
  m.b = w.codes;  // same [N][K] byte order
  return m;
}

Int4Weights Int4FromMatMulNBits(const MatMulNBitsWeights& m, const std::string& what) {
  CheckNBits(m, 4, what);
  Int4Weights w;
  FromNBitsCommon(m, w);
  w.packed.assign(m.b.size(), 0);
  const int64_t row = w.K / 2;
  for (int64_t n = 0; n < w.N; ++n)
    for (int64_t k = 0; k < w.K; ++k) {
      const uint8_t c = (m.b[n * row + k / 2] >> (4 * (k % 2))) & 0xF;
      uint8_t& byte = w.packed[n * row + k / kInt4Block * 16 + k % 16];
      byte |= (k % kInt4Block) < 16 ? c : static_cast<uint8_t>(c << 4);
    }
  return w;
}

Int8Weights Int8FromMatMulNBits(const MatMulNBitsWeights& m, const std::string& what) {
  CheckNBits(m, 8, what);
  Int8Weights w;
  FromNBitsCommon(m, w);
  w.codes = m.b;
  return w;
}

}  // namespace qforge::kernels
