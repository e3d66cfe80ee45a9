// Element types a Tensor can hold, with ONNX-compatible numbering.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace qforge {

// Values equal ONNX TensorProto.DataType so the onnx module maps them 1:1.
enum class DType : int32_t {
  kUndefined = 0,
  kF32 = 1,
  kU8 = 2,
  kI8 = 3,
  kU16 = 4,
  kI16 = 5,
  kI32 = 6,
  kI64 = 7,
  kString = 8,  // not storable in Tensor; named only so import can reject it clearly
  kBool = 9,
  kF16 = 10,
  kF64 = 11,
  kU32 = 12,
  kU64 = 13,
  kBF16 = 16,
  kF8E4M3 = 17,  // ONNX FLOAT8E4M3FN
  kF8E5M2 = 19,  // ONNX FLOAT8E5M2
};

// Bytes per element (0 for kUndefined / kString).
size_t DTypeSize(DType t);
// Short name: "f32", "i8", "u8", "bf16", "f8e4m3", ...
std::string_view DTypeName(DType t);
// True for types Tensor can store.
bool IsStorable(DType t);
bool IsFloat(DType t);
bool IsInteger(DType t);

template <typename T>
struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::kF32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::kF64; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::kI8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::kU8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::kI16; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::kU16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::kI32; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::kU32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::kI64; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::kU64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::kBool; };

}  // namespace qforge
