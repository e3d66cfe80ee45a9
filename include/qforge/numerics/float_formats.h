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

// The narrow float formats as values, for reports and simulation.
enum class FloatFormat { kFp16, kBf16, kFp8E4M3, kFp8E5M2 };

const char* FloatFormatName(FloatFormat f);  // "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"
float FloatFormatMax(FloatFormat f);         // largest finite value (65504, 3.39e38, 448, 57344)
float FloatFormatMinNormal(FloatFormat f);   // 2^-14, 2^-126, 2^-6, 2^-14
float FloatFormatEpsilon(FloatFormat f);     // 2^-mantissa_bits: 2^-10, 2^-7, 2^-3, 2^-2

// The value x becomes when stored in format f: decode(encode(x)). `saturate` as above (fp8
// only; fp16/bf16 always follow IEEE overflow to Inf).
float RoundToFloatFormat(float x, FloatFormat f, bool saturate = true);
void RoundToFloatFormat(const float* x, int64_t n, FloatFormat f, float* out, bool saturate = true);

}  // namespace qforge::numerics
