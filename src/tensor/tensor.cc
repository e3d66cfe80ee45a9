// Tensor storage, shape helpers and slow element access.
#include "qforge/tensor/tensor.h"

#include <cstring>
#include <limits>
#include <new>

#include "qforge/numerics/float_formats.h"

namespace qforge {

int64_t NumElements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("negative dimension in shape " + ShapeToString(shape));
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
      throw Error("shape " + ShapeToString(shape) + " has too many elements");
    n *= d;
  }
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::vector<int64_t> RowMajorStrides(const Shape& shape) {
  std::vector<int64_t> st(shape.size(), 1);
  for (int64_t i = static_cast<int64_t>(shape.size()) - 2; i >= 0; --i)
    st[i] = st[i + 1] * shape[i + 1];
  return st;
}

namespace {
constexpr size_t kAlign = 64;
// Refuse absurd allocations with a clear error instead of std::bad_alloc deep inside.
constexpr size_t kMaxBytes = size_t{16} << 30;

std::shared_ptr<uint8_t[]> Allocate(size_t nbytes) {
  if (nbytes > kMaxBytes)
    throw Error("tensor of " + std::to_string(nbytes) + " bytes exceeds the 16 GiB limit");
  size_t n = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (n == 0) n = kAlign;
  auto* p = static_cast<uint8_t*>(::operator new[](n, std::align_val_t(kAlign)));
  std::memset(p, 0, n);
  return std::shared_ptr<uint8_t[]>(
      p, [](uint8_t* q) { ::operator delete[](q, std::align_val_t(kAlign)); });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  if (!IsStorable(dtype))
    throw Error("cannot create a tensor of type " + std::string(DTypeName(dtype)));
  numel_ = NumElements(shape_);
  storage_ = Allocate(static_cast<size_t>(numel_) * DTypeSize(dtype_));
}

int64_t Tensor::dim(int64_t i) const {
  int64_t r = rank();
  if (i < 0) i += r;
  if (i < 0 || i >= r)
    throw Error("dimension index " + std::to_string(i) + " out of range for shape " +
                ShapeToString(shape_));
  return shape_[i];
}

void Tensor::CheckType(DType t) const {
  if (t == dtype_) return;
  // 16-bit and 8-bit float formats are accessed through their bit patterns.
  if (t == DType::kU16 && (dtype_ == DType::kF16 || dtype_ == DType::kBF16)) return;
  if (t == DType::kU8 && (dtype_ == DType::kF8E4M3 || dtype_ == DType::kF8E5M2)) return;
  if (!defined()) throw Error("access to an undefined tensor");
  throw Error("tensor type mismatch: tensor is " + std::string(DTypeName(dtype_)) +
              ", accessed as " + std::string(DTypeName(t)));
}

Tensor Tensor::Reshaped(Shape shape) const {
  if (NumElements(shape) != numel_)
    throw Error("cannot reshape " + ShapeToString(shape_) + " to " + ShapeToString(shape));
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  if (!defined()) return {};
  Tensor t(dtype_, shape_);
  std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

double Tensor::GetAsDouble(int64_t i) const {
  if (i < 0 || i >= numel_) throw Error("element index out of range");
  const void* p = static_cast<const uint8_t*>(raw()) + i * DTypeSize(dtype_);
  switch (dtype_) {
    case DType::kF32:
      return *static_cast<const float*>(p);
    case DType::kF64:
      return *static_cast<const double*>(p);
    case DType::kI8:
      return *static_cast<const int8_t*>(p);
    case DType::kU8:
      return *static_cast<const uint8_t*>(p);
    case DType::kI16:
      return *static_cast<const int16_t*>(p);
    case DType::kU16:
      return *static_cast<const uint16_t*>(p);
    case DType::kI32:
      return *static_cast<const int32_t*>(p);
    case DType::kU32:
      return *static_cast<const uint32_t*>(p);
    case DType::kI64:
      return static_cast<double>(*static_cast<const int64_t*>(p));
    case DType::kU64:
      return static_cast<double>(*static_cast<const uint64_t*>(p));
    case DType::kBool:
      return *static_cast<const uint8_t*>(p) ? 1.0 : 0.0;
    case DType::kF16:
      return numerics::Fp16ToFloat(*static_cast<const uint16_t*>(p));
    case DType::kBF16:
      return numerics::Bf16ToFloat(*static_cast<const uint16_t*>(p));
    case DType::kF8E4M3:
      return numerics::Fp8E4M3ToFloat(*static_cast<const uint8_t*>(p));
    case DType::kF8E5M2:
      return numerics::Fp8E5M2ToFloat(*static_cast<const uint8_t*>(p));
    default:
      throw Error("GetAsDouble: unsupported type " + std::string(DTypeName(dtype_)));
  }
}

int64_t Tensor::GetAsInt64(int64_t i) const {
  if (dtype_ == DType::kI64) {
    if (i < 0 || i >= numel_) throw Error("element index out of range");
    return data<int64_t>()[i];
  }
  return static_cast<int64_t>(GetAsDouble(i));
}

std::vector<int64_t> Tensor::ToInt64Vector() const {
  std::vector<int64_t> v(static_cast<size_t>(numel_));
  for (int64_t i = 0; i < numel_; ++i) v[i] = GetAsInt64(i);
  return v;
}

std::vector<float> Tensor::ToFloatVector() const {
  std::vector<float> v(static_cast<size_t>(numel_));
  if (dtype_ == DType::kF32) {
    std::memcpy(v.data(), raw(), nbytes());
    return v;
  }
  for (int64_t i = 0; i < numel_; ++i) v[i] = static_cast<float>(GetAsDouble(i));
  return v;
}

}  // namespace qforge
