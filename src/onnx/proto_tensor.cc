// TensorProto / ValueInfoProto <-> Tensor / ValueInfo conversions, incl. external data files.
#include "onnx/proto_tensor.h"

#include <bit>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>

namespace qforge::onnx_io::detail {

static_assert(std::endian::native == std::endian::little,
              "ONNX raw_data is little-endian; big-endian hosts would need byte swaps");

namespace fs = std::filesystem;

DType DTypeFromOnnx(int32_t onnx_type, const std::string& what) {
  switch (onnx_type) {
    case 1:
      return DType::kF32;
    case 2:
      return DType::kU8;
    case 3:
      return DType::kI8;
    case 4:
      return DType::kU16;
    case 5:
      return DType::kI16;
    case 6:
      return DType::kI32;
    case 7:
      return DType::kI64;
    case 9:
      return DType::kBool;
    case 10:
      return DType::kF16;
    case 11:
      return DType::kF64;
    case 12:
      return DType::kU32;
    case 13:
      return DType::kU64;
    case 16:
      return DType::kBF16;
    case 17:
      return DType::kF8E4M3;
    case 19:
      return DType::kF8E5M2;
    case 0:
      throw Error(what + ": element type is undefined");
    case 8:
      throw Error(what + ": string tensors are not supported by qforge");
    case 14:
    case 15:
      throw Error(what + ": complex tensors are not supported by qforge");
    case 18:
    case 20:
      throw Error(what + ": fp8 'fnuz' element types are not supported by qforge");
    case 21:
    case 22:
      throw Error(what + ": int4/uint4 tensors are not supported by qforge");
    default:
      throw Error(what + ": unknown ONNX element type " + std::to_string(onnx_type));
  }
}

namespace {

// Shape from TensorProto dims; rejects negatives and element counts whose byte size (<= 8
// bytes per element) would overflow int64.
Shape ShapeFromDims(const onnx::TensorProto& tp, const std::string& what) {
  Shape shape(tp.dims().begin(), tp.dims().end());
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(what + ": negative dimension " + std::to_string(d));
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / 8 / d)
      throw Error(what + ": dims " + ShapeToString(shape) + " are too large");
    numel *= d;
  }
  return shape;
}

template <typename Field>
void CheckCount(const Field& f, int64_t numel, const std::string& field, const std::string& what) {
  if (static_cast<int64_t>(f.size()) != numel)
    throw Error(what + ": " + field + " has " + std::to_string(f.size()) + " values, dims need " +
                std::to_string(numel));
}

// Copies a repeated numeric field into `out` converting each value to T.
template <typename T, typename Field>
void CopyField(const Field& f, Tensor& out) {
  T* dst = static_cast<T*>(out.raw());
  for (int i = 0; i < f.size(); ++i) dst[i] = static_cast<T>(f.Get(i));
}

}  // namespace

void CheckTensorProto(const onnx::TensorProto& tp, const std::string& what) {
  if (tp.data_location() == onnx::TensorProto::EXTERNAL) return;  // resolved and checked later
  if (tp.has_segment()) throw Error(what + ": segmented tensors are not supported");
  const DType dtype = DTypeFromOnnx(tp.data_type(), what);
  Shape shape = ShapeFromDims(tp, what);
  const int64_t numel = NumElements(shape);
  if (tp.has_raw_data()) {
    if (tp.raw_data().size() != static_cast<size_t>(numel) * DTypeSize(dtype))
      throw Error(what + ": raw_data has " + std::to_string(tp.raw_data().size()) +
                  " bytes, dims " + ShapeToString(shape) + " of " + std::string(DTypeName(dtype)) +
                  " need " + std::to_string(static_cast<size_t>(numel) * DTypeSize(dtype)));
    return;
  }
  switch (dtype) {
    case DType::kF32:
      CheckCount(tp.float_data(), numel, "float_data", what);
      break;
    case DType::kF64:
      CheckCount(tp.double_data(), numel, "double_data", what);
      break;
    case DType::kI64:
      CheckCount(tp.int64_data(), numel, "int64_data", what);
      break;
    case DType::kU32:
    case DType::kU64:
      CheckCount(tp.uint64_data(), numel, "uint64_data", what);
      break;
    default:
      CheckCount(tp.int32_data(), numel, "int32_data", what);
      break;
  }
}

Tensor TensorFromProto(const onnx::TensorProto& tp, const std::string& what) {
  if (tp.has_segment()) throw Error(what + ": segmented tensors are not supported");
  if (tp.data_location() == onnx::TensorProto::EXTERNAL)
    throw Error(what + ": external data was not resolved");
  const DType dtype = DTypeFromOnnx(tp.data_type(), what);
  const size_t elem = DTypeSize(dtype);
  Shape shape = ShapeFromDims(tp, what);
  const int64_t numel = NumElements(shape);
  const size_t nbytes = static_cast<size_t>(numel) * elem;

  if (tp.has_raw_data()) {
    if (tp.raw_data().size() != nbytes)
      throw Error(what + ": raw_data has " + std::to_string(tp.raw_data().size()) +
                  " bytes, dims " + ShapeToString(shape) + " of " + std::string(DTypeName(dtype)) +
                  " need " + std::to_string(nbytes));
    Tensor t(dtype, shape);
    if (nbytes) std::memcpy(t.raw(), tp.raw_data().data(), nbytes);
    return t;
  }

  // Typed fields: which one holds the data depends on the element type (see onnx.proto).
  switch (dtype) {
    case DType::kF32: {
      CheckCount(tp.float_data(), numel, "float_data", what);
      Tensor t(dtype, shape);
      CopyField<float>(tp.float_data(), t);
      return t;
    }
    case DType::kF64: {
      CheckCount(tp.double_data(), numel, "double_data", what);
      Tensor t(dtype, shape);
      CopyField<double>(tp.double_data(), t);
      return t;
    }
    case DType::kI64: {
      CheckCount(tp.int64_data(), numel, "int64_data", what);
      Tensor t(dtype, shape);
      CopyField<int64_t>(tp.int64_data(), t);
      return t;
    }
    case DType::kU32:
    case DType::kU64: {
      CheckCount(tp.uint64_data(), numel, "uint64_data", what);
      Tensor t(dtype, shape);
      if (dtype == DType::kU32) {
        CopyField<uint32_t>(tp.uint64_data(), t);
      } else {
        CopyField<uint64_t>(tp.uint64_data(), t);
      }
      return t;
    }
    default: {
      // int32_data holds int32, int16/uint16, int8/uint8, bool, and the bit patterns of fp16,
      // bf16 and fp8 in its low bits.
      CheckCount(tp.int32_data(), numel, "int32_data", what);
      Tensor t(dtype, shape);
      switch (elem) {
        case 4:
          CopyField<int32_t>(tp.int32_data(), t);
          break;
        case 2:
          CopyField<uint16_t>(tp.int32_data(), t);
          break;
        case 1:
          if (dtype == DType::kBool) {
            uint8_t* dst = static_cast<uint8_t*>(t.raw());
            for (int i = 0; i < tp.int32_data_size(); ++i) dst[i] = tp.int32_data(i) != 0;
          } else {
            CopyField<uint8_t>(tp.int32_data(), t);
          }
          break;
        default:
          throw Error(what + ": unsupported element type for int32_data");
      }
      return t;
    }
  }
}

void TensorToProto(const Tensor& t, const std::string& name, onnx::TensorProto* tp) {
  if (!t.defined()) throw Error("tensor '" + name + "' has no data");
  tp->Clear();
  tp->set_name(name);
  tp->set_data_type(static_cast<int32_t>(t.dtype()));
  for (int64_t d : t.shape()) tp->add_dims(d);
  tp->set_raw_data(static_cast<const char*>(t.raw()), t.nbytes());
}

namespace {

bool ParseNonNegative(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// True if `p` (canonical) is `dir` (canonical) or lies below it.
bool IsInside(const fs::path& p, const fs::path& dir) {
  auto pi = p.begin();
  for (auto di = dir.begin(); di != dir.end(); ++di, ++pi) {
    if (di->empty()) continue;  // trailing separator
    if (pi == p.end() || *pi != *di) return false;
  }
  return true;
}

}  // namespace

void ResolveExternalData(onnx::TensorProto* tp, const fs::path& base_dir, const std::string& what) {
  if (tp->data_location() != onnx::TensorProto::EXTERNAL) return;
  if (tp->has_raw_data()) throw Error(what + ": has both external data and raw_data");
  if (base_dir.empty())
    throw Error(what + ": uses external data, but the model was not loaded from a file");
  std::string location;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (const auto& kv : tp->external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      if (!ParseNonNegative(kv.value(), &offset))
        throw Error(what + ": bad external data offset '" + kv.value() + "'");
    } else if (kv.key() == "length") {
      if (!ParseNonNegative(kv.value(), &length))
        throw Error(what + ": bad external data length '" + kv.value() + "'");
      has_length = true;
    }  // "checksum" and unknown keys are ignored
  }
  if (location.empty()) throw Error(what + ": external data has no location");
  if (location.find('\0') != std::string::npos)
    throw Error(what + ": external data location contains a NUL byte");
  const fs::path rel(location);
  if (rel.is_absolute() || rel.has_root_path())
    throw Error(what + ": external data location '" + location +
                "' is absolute; it must be relative to the model's folder");
  for (const auto& part : rel)
    if (part == "..")
      throw Error(what + ": external data location '" + location +
                  "' leaves the model's folder ('..' is not allowed)");

  std::error_code ec;
  const fs::path dir = fs::canonical(base_dir, ec);
  if (ec) throw Error(what + ": cannot resolve model folder '" + base_dir.string() + "'");
  const fs::path full = fs::weakly_canonical(dir / rel, ec);
  if (ec || !IsInside(full, dir))
    throw Error(what + ": external data location '" + location +
                "' resolves outside the model's folder");
  if (!fs::is_regular_file(full, ec))
    throw Error(what + ": external data file '" + location + "' not found in '" + dir.string() +
                "'");
  const uint64_t file_size = fs::file_size(full, ec);
  if (ec) throw Error(what + ": cannot read size of external data file '" + location + "'");

  const DType dtype = DTypeFromOnnx(tp->data_type(), what);
  Shape shape = ShapeFromDims(*tp, what);
  const uint64_t need = static_cast<uint64_t>(NumElements(shape)) * DTypeSize(dtype);
  if (offset > file_size)
    throw Error(what + ": external data offset " + std::to_string(offset) +
                " is past the end of '" + location + "' (" + std::to_string(file_size) + " bytes)");
  if (!has_length) length = file_size - offset;
  if (length > file_size - offset)
    throw Error(what + ": external data [" + std::to_string(offset) + ", +" +
                std::to_string(length) + ") runs past the end of '" + location + "' (" +
                std::to_string(file_size) + " bytes)");
  if (length != need)
    throw Error(what + ": external data length " + std::to_string(length) +
                " does not match dims " + ShapeToString(shape) + " of " +
                std::string(DTypeName(dtype)) + " (" + std::to_string(need) + " bytes)");

  std::string bytes(length, '\0');
  std::ifstream f(full, std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  if (length && !f.read(bytes.data(), static_cast<std::streamsize>(length)))
    throw Error(what + ": cannot read external data file '" + location + "'");
  tp->clear_external_data();
  tp->set_data_location(onnx::TensorProto::DEFAULT);
  tp->set_raw_data(std::move(bytes));
}

ir::ValueInfo ValueInfoFromProto(const onnx::ValueInfoProto& vp, const std::string& what) {
  ir::ValueInfo vi;
  vi.name = vp.name();
  if (!vp.has_type()) return vi;  // type unknown: dtype undefined, rank unknown
  const onnx::TypeProto& type = vp.type();
  switch (type.value_case()) {
    case onnx::TypeProto::kTensorType:
      break;
    case onnx::TypeProto::VALUE_NOT_SET:
      return vi;
    case onnx::TypeProto::kSequenceType:
      throw Error(what + ": sequence types are not supported by qforge (tensors only)");
    case onnx::TypeProto::kMapType:
      throw Error(what + ": map types are not supported by qforge (tensors only)");
    case onnx::TypeProto::kOptionalType:
      throw Error(what + ": optional types are not supported by qforge (tensors only)");
    case onnx::TypeProto::kSparseTensorType:
      throw Error(what + ": sparse tensors are not supported by qforge");
    default:
      throw Error(what + ": unsupported value type (tensors only)");
  }
  const auto& tt = type.tensor_type();
  if (tt.elem_type() != 0) vi.dtype = DTypeFromOnnx(tt.elem_type(), what);
  if (tt.has_shape()) {
    vi.has_shape = true;
    for (const auto& d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        if (d.dim_value() < 0)
          throw Error(what + ": negative dimension " + std::to_string(d.dim_value()));
        vi.dims.push_back(ir::Dim::Known(d.dim_value()));
      } else if (d.has_dim_param() && !d.dim_param().empty()) {
        vi.dims.push_back(ir::Dim::Symbol(d.dim_param()));
      } else {
        vi.dims.push_back(ir::Dim{});
      }
    }
  }
  return vi;
}

void ValueInfoToProto(const ir::ValueInfo& vi, onnx::ValueInfoProto* vp) {
  vp->Clear();
  vp->set_name(vi.name);
  if (vi.dtype == DType::kUndefined && !vi.has_shape) return;
  auto* tt = vp->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(vi.dtype));
  if (!vi.has_shape) return;
  auto* shape = tt->mutable_shape();
  for (const ir::Dim& d : vi.dims) {
    auto* dp = shape->add_dim();
    if (d.known()) {
      dp->set_dim_value(d.value);
    } else if (!d.symbol.empty()) {
      dp->set_dim_param(d.symbol);
    }
  }
}

}  // namespace qforge::onnx_io::detail
