// Internal: conversions between onnx::TensorProto / TypeProto and qforge Tensor / ValueInfo.
// Only src/onnx includes this; protobuf types must not leak into public headers.
#pragma once

#include <onnx/onnx_pb.h>

#include <filesystem>
#include <string>

#include "qforge/ir/graph.h"
#include "qforge/tensor/tensor.h"

namespace qforge::onnx_io::detail {

// Maps an ONNX TensorProto.DataType number to DType. Throws Error mentioning `what` for types
// qforge cannot store (string, complex, fp8 "fnuz" variants, int4, unknown numbers).
DType DTypeFromOnnx(int32_t onnx_type, const std::string& what);

// Tensor from a TensorProto whose data is inline (raw_data or a typed field). Checks that the
// data size matches the dims exactly before allocating. External data must have been resolved
// with ResolveExternalData first. Little-endian hosts only (raw_data is little-endian).
Tensor TensorFromProto(const onnx::TensorProto& tp, const std::string& what);

// Checks that an inline TensorProto's data matches its dims and type (no copy). libonnx reads
// constant tensors during shape inference assuming this, so import checks it first.
void CheckTensorProto(const onnx::TensorProto& tp, const std::string& what);

// TensorProto with the data in raw_data.
void TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* tp);

// Replaces a TensorProto's external data reference by the bytes it points to (raw_data).
// The file must lie inside `base_dir` (relative location, no "..", no symlink escaping it), and
// offset/length must fit in the file and match the tensor's dims. A no-op for inline tensors.
void ResolveExternalData(onnx::TensorProto* tp, const std::filesystem::path& base_dir,
                         const std::string& what);

// ValueInfo from a ValueInfoProto with a tensor type. Throws for non-tensor types (sequence,
// map, optional, sparse) and string elements.
ir::ValueInfo ValueInfoFromProto(const onnx::ValueInfoProto& vp, const std::string& what);
void ValueInfoToProto(const ir::ValueInfo& vi, onnx::ValueInfoProto* vp);

}  // namespace qforge::onnx_io::detail
