// Conversions between fp32 and the narrow floating-point formats: fp16, bf16, fp8 E4M3/E5M2.
//
// Contract (all functions): round to nearest, ties to even. NaN maps to NaN.
// fp16 / bf16 / E5M2 have infinities: overflow goes to +-Inf (IEEE behaviour).
// E4M3 (the "FN" variant used by ONNX FLOAT8E4M3FN) has no infinity; its max finite is 448.
// With saturate=true (ONNX's default for Cast/QuantizeLinear to fp8) out-of-range values and
// +-Inf clamp to +-max finite; with saturate=false they become NaN (E4M3) or Inf (E5M2).
#pragma once

#include <cstdint>

namespace qforge::numerics {

float Fp16ToFloat(uint16_t bits);
uint16_t FloatToFp16(float x);

float Bf16ToFloat(uint16_t bits);
uint16_t FloatToBf16(float x);

float Fp8E4M3ToFloat(uint8_t bits);
uint8_t FloatToFp8E4M3(float x, bool saturate = true);

float Fp8E5M2ToFloat(uint8_t bits);
uint8_t FloatToFp8E5M2(float x, bool saturate = true);

}  // namespace qforge::numerics
