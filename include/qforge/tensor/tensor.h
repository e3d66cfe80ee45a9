// Tensor: a dense, row-major, 64-byte-aligned n-d array with shared storage.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "qforge/tensor/dtype.h"

namespace qforge {

using Shape = std::vector<int64_t>;

// Product of dims (1 for a scalar shape {}). Throws on negative dims or overflow.
int64_t NumElements(const Shape& shape);
// "[1, 3, 224, 224]"
std::string ShapeToString(const Shape& shape);
// Row-major strides in elements.
std::vector<int64_t> RowMajorStrides(const Shape& shape);

// Error thrown for all user-facing problems (bad model, bad input, bad shape).
// The CLI prints what() on one line and exits non-zero.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Copying a Tensor shares its storage (like a shared_ptr); Clone() deep-copies.
// Storage is always 64-byte aligned and at least one byte, so data() is never null.
class Tensor {
 public:
  Tensor() = default;
  // Zero-initialized tensor.
  Tensor(DType dtype, Shape shape);
  // Tensor whose contents are unspecified: for kernels that write every element (saves a pass
  // over memory). Reading an element before writing it is a bug.
  static Tensor Uninitialized(DType dtype, Shape shape);

  template <typename T>
  static Tensor FromVector(Shape shape, const std::vector<T>& values) {
    Tensor t(DTypeOf<T>::value, std::move(shape));
    if (static_cast<int64_t>(values.size()) != t.numel())
      throw Error("Tensor::FromVector: " + std::to_string(values.size()) + " values for shape " +
                  ShapeToString(t.shape()));
    T* dst = t.data<T>();
    for (size_t i = 0; i < values.size(); ++i) dst[i] = values[i];
    return t;
  }
  template <typename T>
  static Tensor Scalar(T v) {
    return FromVector<T>({}, {v});
  }

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  // Dimension i; negative i counts from the end.
  int64_t dim(int64_t i) const;
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * DTypeSize(dtype_); }

  void* raw() { return storage_.get(); }
  const void* raw() const { return storage_.get(); }
  template <typename T>
  T* data() {
    CheckType(DTypeOf<T>::value);
    return static_cast<T*>(raw());
  }
  template <typename T>
  const T* data() const {
    CheckType(DTypeOf<T>::value);
    return static_cast<const T*>(raw());
  }
  template <typename T>
  std::span<T> span() {
    return {data<T>(), static_cast<size_t>(numel_)};
  }
  template <typename T>
  std::span<const T> span() const {
    return {data<T>(), static_cast<size_t>(numel_)};
  }

  // Same storage, new shape with the same element count.
  Tensor Reshaped(Shape shape) const;
  Tensor Clone() const;
  // Element i converted to double / int64 (any numeric dtype; slow, for small tensors).
  double GetAsDouble(int64_t i) const;
  int64_t GetAsInt64(int64_t i) const;
  // All elements as int64 (for shape-like tensors of any integer type).
  std::vector<int64_t> ToInt64Vector() const;
  // All elements converted to float (any numeric dtype).
  std::vector<float> ToFloatVector() const;

 private:
  Tensor(DType dtype, Shape shape, bool zero);
  void CheckType(DType t) const;

  DType dtype_ = DType::kUndefined;
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<uint8_t[]> storage_;
};

}  // namespace qforge
