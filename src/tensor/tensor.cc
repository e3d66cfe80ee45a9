// Tensor storage, shape helpers and slow element access.
#include "qforge/tensor/tensor.h"

#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <new>
#include <utility>

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

// Recycles large tensor buffers. A model allocates and frees the same activation sizes on every
// run; a fresh multi-megabyte allocation comes from mmap and page-faults on first touch of every
// 4 KiB page, which for batch-32 CNNs cost more time than the convolutions themselves. Freed
// buffers of at least kMinCached bytes are kept (up to kMaxCachedBytes in total) and handed out
// again for requests of at most their size and at least half of it.
class BufferCache {
 public:
  static constexpr size_t kMinCached = size_t{256} << 10;
  static constexpr size_t kMaxCachedBytes = size_t{2} << 30;

  static BufferCache& Get() {
    static BufferCache* cache = new BufferCache;  // never destroyed: buffers may outlive main()
    return *cache;
  }

  // Returns a block of at least n bytes (n a multiple of kAlign) and its true capacity.
  std::pair<uint8_t*, size_t> Acquire(size_t n) {
    if (n >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.lower_bound(n);
      if (it != free_.end() && it->first / 2 <= n) {
        std::pair<uint8_t*, size_t> block{it->second, it->first};
        cached_bytes_ -= it->first;
        free_.erase(it);
        return block;
      }
    }
    auto* p = static_cast<uint8_t*>(::operator new[](n, std::align_val_t(kAlign)));
    return {p, n};
  }

  void Release(uint8_t* p, size_t capacity) {
    if (capacity >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_bytes_ + capacity <= kMaxCachedBytes) {
        free_.emplace(capacity, p);
        cached_bytes_ += capacity;
        return;
      }
    }
    ::operator delete[](p, std::align_val_t(kAlign));
  }

 private:
  std::mutex mu_;
  std::multimap<size_t, uint8_t*> free_;  // capacity -> block
  size_t cached_bytes_ = 0;
};

std::shared_ptr<uint8_t[]> Allocate(size_t nbytes, bool zero) {
  if (nbytes > kMaxBytes)
    throw Error("tensor of " + std::to_string(nbytes) + " bytes exceeds the 16 GiB limit");
  size_t n = (nbytes + kAlign - 1) / kAlign * kAlign;
  if (n == 0) n = kAlign;
  auto [p, capacity] = BufferCache::Get().Acquire(n);
  if (zero) std::memset(p, 0, n);
  return std::shared_ptr<uint8_t[]>(
      p, [capacity = capacity](uint8_t* q) { BufferCache::Get().Release(q, capacity); });
}
}  // namespace

Tensor::Tensor(DType dtype, Shape shape) : Tensor(dtype, std::move(shape), true) {}

Tensor Tensor::Uninitialized(DType dtype, Shape shape) {
  return Tensor(dtype, std::move(shape), false);
}

Tensor::Tensor(DType dtype, Shape shape, bool zero) : dtype_(dtype), shape_(std::move(shape)) {
  if (!IsStorable(dtype))
    throw Error("cannot create a tensor of type " + std::string(DTypeName(dtype)));
  numel_ = NumElements(shape_);
  storage_ = Allocate(static_cast<size_t>(numel_) * DTypeSize(dtype_), zero);
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
  Tensor t = Uninitialized(dtype_, shape_);
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
