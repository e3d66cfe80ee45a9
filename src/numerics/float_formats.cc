// fp32 <-> fp16 / bf16 / fp8 (E4M3FN, E5M2) conversions: one generic mini-float codec.
#include "qforge/numerics/float_formats.h"

#include <bit>
#include <cstdint>

namespace qforge::numerics {
namespace {

// A binary floating-point format narrower than fp32: 1 sign bit, `ebits` exponent bits,
// `mbits` stored mantissa bits, exponent bias 2^(ebits-1)-1.
// ieee: the all-ones exponent encodes Inf (mantissa 0) and NaN (mantissa != 0).
// Otherwise (E4M3FN) only S.1111.111 is NaN, there is no Inf, and the all-ones exponent holds
// ordinary numbers.
struct MiniFormat {
  int ebits;
  int mbits;
  bool ieee;

  constexpr int bias() const { return (1 << (ebits - 1)) - 1; }
  constexpr int emin() const { return 1 - bias(); }  // exponent of the smallest normal
  constexpr uint32_t sign_bit() const { return 1u << (ebits + mbits); }
  constexpr uint32_t exp_mask() const { return ((1u << ebits) - 1) << mbits; }
  constexpr uint32_t man_mask() const { return (1u << mbits) - 1; }
  // Magnitude bit patterns (sign cleared).
  constexpr uint32_t inf_bits() const { return exp_mask(); }  // only meaningful if ieee
  constexpr uint32_t nan_bits() const {                       // canonical quiet NaN
    return ieee ? exp_mask() | (1u << (mbits - 1)) : exp_mask() | man_mask();
  }
  constexpr uint32_t max_finite_bits() const {
    return ieee ? exp_mask() - (1u << mbits) + man_mask() : (exp_mask() | man_mask()) - 1;
  }
};

constexpr MiniFormat kFp16{5, 10, true};
constexpr MiniFormat kBf16{8, 7, true};
constexpr MiniFormat kE4M3{4, 3, false};
constexpr MiniFormat kE5M2{5, 2, true};

float Decode(const MiniFormat& f, uint32_t bits) {
  const uint32_t sign = (bits & f.sign_bit()) ? 0x80000000u : 0u;
  const uint32_t mag = bits & (f.sign_bit() - 1);
  const uint32_t e = mag >> f.mbits;
  const uint32_t m = mag & f.man_mask();
  uint32_t out;
  if (f.ieee && e == (1u << f.ebits) - 1) {
    // Inf, or NaN: keep the payload's top bits and force quiet.
    out = m == 0 ? 0x7F800000u : 0x7FC00000u | (m << (23 - f.mbits));
  } else if (!f.ieee && mag == (f.exp_mask() | f.man_mask())) {
    out = 0x7FC00000u;
  } else if (e == 0 && f.emin() == -126) {
    // Subnormal with fp32's own exponent range (bf16): the fp32 subnormal with the same bits.
    out = m << (23 - f.mbits);
  } else if (e == 0) {
    // Subnormal (or zero): m * 2^(emin - mbits). Both factors are exact in fp32 (2^(emin-mbits)
    // is a normal fp32 for fp16/fp8) and so is the product.
    const float v = static_cast<float>(m) *
                    std::bit_cast<float>(static_cast<uint32_t>(127 + f.emin() - f.mbits) << 23);
    out = std::bit_cast<uint32_t>(v);
  } else {
    out = ((e - f.bias() + 127) << 23) | (m << (23 - f.mbits));
  }
  return std::bit_cast<float>(sign | out);
}

// Round-to-nearest-even encode. `saturate` decides what happens to values whose rounded
// magnitude exceeds the largest finite value, and to +-Inf: clamp to +-max (true) or become
// Inf (ieee formats) / NaN (E4M3FN). For fp16/bf16 (plain IEEE) callers pass saturate=false.
uint32_t Encode(const MiniFormat& f, float x, bool saturate) {
  const uint32_t in = std::bit_cast<uint32_t>(x);
  const uint32_t sign = (in & 0x80000000u) ? f.sign_bit() : 0u;
  const uint32_t abs = in & 0x7FFFFFFFu;
  const uint32_t overflow = saturate ? f.max_finite_bits() : (f.ieee ? f.inf_bits() : f.nan_bits());
  if (abs > 0x7F800000u) {  // NaN: keep the sign and the top payload bits, force quiet.
    if (!f.ieee) return sign | f.nan_bits();
    return sign | f.nan_bits() | ((abs & 0x7FFFFFu) >> (23 - f.mbits));
  }
  if (abs == 0x7F800000u) return sign | overflow;  // +-Inf

  // |x| = sig * 2^lsb_exp with sig < 2^24.
  const int e32 = static_cast<int>(abs >> 23);
  const uint32_t sig = e32 ? (abs & 0x7FFFFFu) | 0x800000u : abs & 0x7FFFFFu;
  const int lsb_exp = (e32 ? e32 : 1) - 127 - 23;
  // Exponent of |x| (floor(log2|x|)) clamped to the target's normal range from below; the
  // target's quantum (spacing of representable values) at |x| is 2^(e - mbits).
  int e = e32 ? e32 - 127 : -127;  // fp32 subnormals are far below every target's normal range
  if (e < f.emin()) e = f.emin();
  const int shift = e - f.mbits - lsb_exp;  // > 0 for every format here (mbits < 23)
  uint32_t r = 0;                           // |x| / quantum, rounded half to even
  if (shift < 32) {
    r = sig >> shift;
    const uint32_t rem = sig & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    r += static_cast<uint32_t>(rem > half) | (static_cast<uint32_t>(rem == half) & r & 1u);
  }  // else: |x| < quantum / 2^7, rounds to zero
  // r is in [2^mbits, 2^(mbits+1)] for normals and in [0, 2^mbits] in the subnormal range; a
  // carry out of the mantissa increments the exponent field, which is exactly what we want.
  const uint64_t mag = (static_cast<uint64_t>(e + f.bias() - 1) << f.mbits) + r;
  if (mag > f.max_finite_bits()) return sign | overflow;
  return sign | static_cast<uint32_t>(mag);
}

}  // namespace

float Fp16ToFloat(uint16_t bits) { return Decode(kFp16, bits); }
uint16_t FloatToFp16(float x) { return static_cast<uint16_t>(Encode(kFp16, x, false)); }

float Bf16ToFloat(uint16_t bits) { return Decode(kBf16, bits); }
uint16_t FloatToBf16(float x) { return static_cast<uint16_t>(Encode(kBf16, x, false)); }

float Fp8E4M3ToFloat(uint8_t bits) { return Decode(kE4M3, bits); }
uint8_t FloatToFp8E4M3(float x, bool saturate) {
  return static_cast<uint8_t>(Encode(kE4M3, x, saturate));
}

float Fp8E5M2ToFloat(uint8_t bits) { return Decode(kE5M2, bits); }
uint8_t FloatToFp8E5M2(float x, bool saturate) {
  return static_cast<uint8_t>(Encode(kE5M2, x, saturate));
}

const char* FloatFormatName(FloatFormat f) {
  switch (f) {
    case FloatFormat::kFp16:
      return "fp16";
    case FloatFormat::kBf16:
      return "bf16";
    case FloatFormat::kFp8E4M3:
      return "fp8_e4m3";
    case FloatFormat::kFp8E5M2:
      return "fp8_e5m2";
  }
  return "?";
}

namespace {
const MiniFormat& Mini(FloatFormat f) {
  switch (f) {
    case FloatFormat::kFp16:
      return kFp16;
    case FloatFormat::kBf16:
      return kBf16;
    case FloatFormat::kFp8E4M3:
      return kE4M3;
    case FloatFormat::kFp8E5M2:
      break;
  }
  return kE5M2;
}
}  // namespace

float FloatFormatMax(FloatFormat f) { return Decode(Mini(f), Mini(f).max_finite_bits()); }
float FloatFormatMinNormal(FloatFormat f) { return Decode(Mini(f), 1u << Mini(f).mbits); }
float FloatFormatEpsilon(FloatFormat f) {
  return std::bit_cast<float>(static_cast<uint32_t>(127 - Mini(f).mbits) << 23);
}

// fp16 / bf16 follow IEEE (overflow to Inf); only the fp8 conversions take `saturate`.
bool SaturateFor(FloatFormat f, bool saturate) {
  return saturate && (f == FloatFormat::kFp8E4M3 || f == FloatFormat::kFp8E5M2);
}

float RoundToFloatFormat(float x, FloatFormat f, bool saturate) {
  return Decode(Mini(f), Encode(Mini(f), x, SaturateFor(f, saturate)));
}

void RoundToFloatFormat(const float* x, int64_t n, FloatFormat f, float* out, bool saturate) {
  const MiniFormat& m = Mini(f);
  const bool sat = SaturateFor(f, saturate);
  for (int64_t i = 0; i < n; ++i) out[i] = Decode(m, Encode(m, x[i], sat));
}

}  // namespace qforge::numerics
