// fp16 / bf16 / fp8 conversions (placeholder until the numerics work lands).
#include "qforge/numerics/float_formats.h"

#include <cmath>
#include <cstring>

namespace qforge::numerics {
float Fp16ToFloat(uint16_t) { return NAN; }
uint16_t FloatToFp16(float) { return 0; }
float Bf16ToFloat(uint16_t b) { uint32_t u = uint32_t(b) << 16; float f; std::memcpy(&f, &u, 4); return f; }
uint16_t FloatToBf16(float) { return 0; }
float Fp8E4M3ToFloat(uint8_t) { return NAN; }
uint8_t FloatToFp8E4M3(float, bool) { return 0; }
float Fp8E5M2ToFloat(uint8_t) { return NAN; }
uint8_t FloatToFp8E5M2(float, bool) { return 0; }
}  // namespace qforge::numerics
