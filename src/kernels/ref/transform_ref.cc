// Data-movement kernels: Cast, Transpose, Concat, Split, Slice, Gather (reference + fast).
#include <cstring>
#include <type_traits>

#include "kernels/ref/kernel_util.h"
#include "qforge/kernels/transform.h"
#include "qforge/numerics/float_formats.h"

namespace qforge::kernels {

using detail::DispatchNumericOrBool;
using detail::Tag;

namespace {

bool IsNarrowFloat(DType t) {
  return t == DType::kF16 || t == DType::kBF16 || t == DType::kF8E4M3 || t == DType::kF8E5M2;
}

template <typename S, typename D>
inline D ConvertScalar(S s) {
  if constexpr (std::is_same_v<D, bool>) {
    return s != S(0);
  } else if constexpr (std::is_same_v<S, bool>) {
    return static_cast<D>(s ? 1 : 0);
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    return detail::FromDouble<D>(static_cast<double>(s));  // truncates, saturates, NaN -> 0
  } else {
    return static_cast<D>(s);  // int -> int wraps (C++20); int -> float rounds
  }
}

// Narrow float (f16/bf16/fp8) <-> f32, one element at a time through qforge::numerics.
Tensor NarrowToF32(const Tensor& x) {
  Tensor y(DType::kF32, x.shape());
  float* out = y.data<float>();
  const int64_t n = x.numel();
  switch (x.dtype()) {
    case DType::kF16: {
      const uint16_t* in = x.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::Fp16ToFloat(in[i]);
      break;
    }
    case DType::kBF16: {
      const uint16_t* in = x.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::Bf16ToFloat(in[i]);
      break;
    }
    case DType::kF8E4M3: {
      const uint8_t* in = x.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::Fp8E4M3ToFloat(in[i]);
      break;
    }
    case DType::kF8E5M2: {
      const uint8_t* in = x.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::Fp8E5M2ToFloat(in[i]);
      break;
    }
    default:
      throw Error("internal: NarrowToF32 on " + std::string(DTypeName(x.dtype())));
  }
  return y;
}

Tensor F32ToNarrow(const Tensor& x, DType to, bool saturate) {
  Tensor y(to, x.shape());
  const float* in = x.data<float>();
  const int64_t n = x.numel();
  switch (to) {
    case DType::kF16: {
      uint16_t* out = y.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::FloatToFp16(in[i]);
      break;
    }
    case DType::kBF16: {
      uint16_t* out = y.data<uint16_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::FloatToBf16(in[i]);
      break;
    }
    case DType::kF8E4M3: {
      uint8_t* out = y.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::FloatToFp8E4M3(in[i], saturate);
      break;
    }
    case DType::kF8E5M2: {
      uint8_t* out = y.data<uint8_t>();
      for (int64_t i = 0; i < n; ++i) out[i] = numerics::FloatToFp8E5M2(in[i], saturate);
      break;
    }
    default:
      throw Error("internal: F32ToNarrow to " + std::string(DTypeName(to)));
  }
  return y;
}

// out[i] = in[i * stride] for n elements of es bytes; typed loops for the common sizes.
template <typename T>
void StridedRunT(const uint8_t* in, int64_t stride, uint8_t* out, int64_t n) {
  const T* src = reinterpret_cast<const T*>(in);
  T* dst = reinterpret_cast<T*>(out);
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i * stride];
}

void StridedRun(const uint8_t* in, int64_t stride, uint8_t* out, int64_t n, size_t es) {
  switch (es) {
    case 1:
      return StridedRunT<uint8_t>(in, stride, out, n);
    case 2:
      return StridedRunT<uint16_t>(in, stride, out, n);
    case 4:
      return StridedRunT<uint32_t>(in, stride, out, n);
    case 8:
      return StridedRunT<uint64_t>(in, stride, out, n);
    default:
      for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * es, in + i * stride * es, es);
  }
}

// Copies a strided view of src into dst (row-major, shape `dims`). Element d-index i of the
// output reads src[base + sum(i_d * strides[d])] (strides may be negative). Dimensions are
// collapsed where the view is contiguous across them so the inner runs are long; unit-stride
// runs are memcpy'd.
void StridedCopy(const uint8_t* src, int64_t base, const Shape& dims,
                 const std::vector<int64_t>& strides, uint8_t* dst, size_t es) {
  std::vector<int64_t> cd, cs;  // collapsed dims/strides, inner first
  for (size_t i = dims.size(); i-- > 0;) {
    if (dims[i] == 1) continue;
    if (!cd.empty() && strides[i] == cs.back() * cd.back()) {
      cd.back() *= dims[i];
      continue;
    }
    cd.push_back(dims[i]);
    cs.push_back(strides[i]);
  }
  int64_t total = NumElements(dims);
  if (total == 0) return;
  if (cd.empty()) {
    cd.push_back(1);
    cs.push_back(1);
  }
  const int r = static_cast<int>(cd.size());
  const int64_t n = cd[0], s0 = cs[0];
  detail::ParallelChunks(total / n, [&](int64_t row_begin, int64_t row_end) {
    std::vector<int64_t> idx(r, 0);
    int64_t off = base, rem = row_begin;
    for (int d = 1; d < r; ++d) {
      idx[d] = rem % cd[d];
      rem /= cd[d];
      off += idx[d] * cs[d];
    }
    for (int64_t row = row_begin; row < row_end; ++row) {
      uint8_t* out = dst + row * n * es;
      if (s0 == 1) {
        std::memcpy(out, src + off * es, n * es);
      } else {
        StridedRun(src + off * es, s0, out, n, es);
      }
      for (int d = 1; d < r; ++d) {
        ++idx[d];
        off += cs[d];
        if (idx[d] < cd[d]) break;
        off -= cd[d] * cs[d];
        idx[d] = 0;
      }
    }
  });
}

void CheckPerm(const Tensor& x, std::span<const int64_t> perm) {
  if (static_cast<int64_t>(perm.size()) != x.rank())
    throw Error("Transpose: perm has " + std::to_string(perm.size()) + " entries for rank " +
                std::to_string(x.rank()));
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= x.rank() || seen[p])
      throw Error("Transpose: perm is not a permutation of 0.." + std::to_string(x.rank() - 1));
    seen[p] = true;
  }
}

void CheckSlice(const Tensor& x, std::span<const int64_t> starts, std::span<const int64_t> steps,
                const Shape& out_shape) {
  const size_t r = x.shape().size();
  if (starts.size() != r || steps.size() != r || out_shape.size() != r)
    throw Error("Slice: starts/steps/output shape must have rank " + std::to_string(r));
  for (size_t d = 0; d < r; ++d) {
    if (steps[d] == 0) throw Error("Slice: step 0 on axis " + std::to_string(d));
    if (out_shape[d] < 0) throw Error("Slice: negative output size");
    if (out_shape[d] == 0) continue;
    int64_t span = 0, last = 0;
    if (__builtin_mul_overflow(out_shape[d] - 1, steps[d], &span) ||
        __builtin_add_overflow(starts[d], span, &last))
      throw Error("Slice: indices out of range on axis " + std::to_string(d));
    if (starts[d] < 0 || starts[d] >= x.shape()[d] || last < 0 || last >= x.shape()[d])
      throw Error("Slice: indices out of range on axis " + std::to_string(d));
  }
}

}  // namespace

Tensor Cast(const Tensor& x, DType to, bool saturate) {
  if (!x.defined()) throw Error("Cast: missing input");
  if (!IsStorable(to)) throw Error("Cast: unsupported target dtype " + std::string(DTypeName(to)));
  if (x.dtype() == to) return x;
  if (IsNarrowFloat(x.dtype())) return Cast(NarrowToF32(x), to, saturate);
  if (IsNarrowFloat(to)) return F32ToNarrow(Cast(x, DType::kF32), to, saturate);
  Tensor y(to, x.shape());
  DispatchNumericOrBool(x.dtype(), "Cast", [&](auto ts) {
    DispatchNumericOrBool(to, "Cast", [&](auto td) {
      using S = typename decltype(ts)::type;
      using D = typename decltype(td)::type;
      const S* in = x.data<S>();
      D* out = y.data<D>();
      detail::ParallelChunks(x.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = ConvertScalar<S, D>(in[i]);
      });
    });
  });
  return y;
}

Tensor Transpose(const Tensor& x, std::span<const int64_t> perm) {
  CheckPerm(x, perm);
  Shape out_shape(perm.size());
  std::vector<int64_t> in_strides = RowMajorStrides(x.shape()), strides(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) {
    out_shape[i] = x.shape()[perm[i]];
    strides[i] = in_strides[perm[i]];
  }
  Tensor y = Tensor::Uninitialized(x.dtype(), out_shape);  // StridedCopy writes every element
  StridedCopy(static_cast<const uint8_t*>(x.raw()), 0, out_shape, strides,
              static_cast<uint8_t*>(y.raw()), DTypeSize(x.dtype()));
  return y;
}

Tensor TransposeRef(const Tensor& x, std::span<const int64_t> perm) {
  CheckPerm(x, perm);
  const size_t r = perm.size();
  Shape out_shape(r);
  for (size_t i = 0; i < r; ++i) out_shape[i] = x.shape()[perm[i]];
  Tensor y(x.dtype(), out_shape);
  const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
  const size_t es = DTypeSize(x.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    // Output coordinate c[k] (k from the innermost) lands on input axis perm[k].
    int64_t rem = i, src = 0;
    for (size_t k = r; k-- > 0;) {
      src += (rem % out_shape[k]) * in_strides[perm[k]];
      rem /= out_shape[k];
    }
    std::memcpy(static_cast<uint8_t*>(y.raw()) + i * es,
                static_cast<const uint8_t*>(x.raw()) + src * es, es);
  }
  return y;
}

Tensor Concat(std::span<const Tensor> xs, int64_t axis) {
  if (xs.empty()) throw Error("Concat: no inputs");
  const Tensor& first = xs[0];
  if (axis < 0 || axis >= first.rank())
    throw Error("Concat: axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(first.rank()));
  Shape out_shape = first.shape();
  out_shape[axis] = 0;
  for (const Tensor& t : xs) {
    if (!t.defined()) throw Error("Concat: missing input");
    if (t.dtype() != first.dtype())
      throw Error("Concat: inputs have different dtypes (" + std::string(DTypeName(first.dtype())) +
                  " and " + std::string(DTypeName(t.dtype())) + ")");
    bool ok = t.rank() == first.rank();
    for (int64_t d = 0; ok && d < t.rank(); ++d) ok = d == axis || t.shape()[d] == first.shape()[d];
    if (!ok)
      throw Error("Concat: input shapes " + ShapeToString(first.shape()) + " and " +
                  ShapeToString(t.shape()) + " differ outside axis " + std::to_string(axis));
    out_shape[axis] += t.shape()[axis];
  }
  Tensor y(first.dtype(), out_shape);
  const size_t es = DTypeSize(first.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= out_shape[d];
  for (int64_t d = axis + 1; d < first.rank(); ++d) inner *= out_shape[d];
  const size_t out_row = static_cast<size_t>(out_shape[axis] * inner) * es;
  uint8_t* dst = static_cast<uint8_t*>(y.raw());
  size_t col = 0;
  for (const Tensor& t : xs) {
    const size_t row = static_cast<size_t>(t.shape()[axis] * inner) * es;
    const uint8_t* src = static_cast<const uint8_t*>(t.raw());
    for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * out_row + col, src + o * row, row);
    col += row;
  }
  return y;
}

std::vector<Tensor> Split(const Tensor& x, int64_t axis, std::span<const int64_t> sizes) {
  if (!x.defined()) throw Error("Split: missing input");
  if (axis < 0 || axis >= x.rank())
    throw Error("Split: axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(x.rank()));
  int64_t sum = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw Error("Split: negative split size");
    if (__builtin_add_overflow(sum, s, &sum)) throw Error("Split: split sizes overflow");
  }
  if (sum != x.shape()[axis])
    throw Error("Split: split sizes sum to " + std::to_string(sum) + ", axis " +
                std::to_string(axis) + " has " + std::to_string(x.shape()[axis]));
  const size_t es = DTypeSize(x.dtype());
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= x.shape()[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape()[d];
  const size_t in_row = static_cast<size_t>(x.shape()[axis] * inner) * es;
  const uint8_t* src = static_cast<const uint8_t*>(x.raw());
  std::vector<Tensor> out;
  size_t col = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[axis] = s;
    Tensor t(x.dtype(), shape);
    const size_t row = static_cast<size_t>(s * inner) * es;
    uint8_t* dst = static_cast<uint8_t*>(t.raw());
    for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * row, src + o * in_row + col, row);
    col += row;
    out.push_back(std::move(t));
  }
  return out;
}

Tensor Slice(const Tensor& x, std::span<const int64_t> starts, std::span<const int64_t> steps,
             const Shape& out_shape) {
  CheckSlice(x, starts, steps, out_shape);
  Tensor y(x.dtype(), out_shape);
  const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
  std::vector<int64_t> strides(out_shape.size());
  int64_t base = 0;
  for (size_t d = 0; d < out_shape.size(); ++d) {
    strides[d] = in_strides[d] * steps[d];
    if (out_shape[d] > 0) base += starts[d] * in_strides[d];
  }
  StridedCopy(static_cast<const uint8_t*>(x.raw()), base, out_shape, strides,
              static_cast<uint8_t*>(y.raw()), DTypeSize(x.dtype()));
  return y;
}

Tensor SliceRef(const Tensor& x, std::span<const int64_t> starts, std::span<const int64_t> steps,
                const Shape& out_shape) {
  CheckSlice(x, starts, steps, out_shape);
  Tensor y(x.dtype(), out_shape);
  const std::vector<int64_t> in_strides = RowMajorStrides(x.shape());
  const size_t es = DTypeSize(x.dtype());
  for (int64_t i = 0; i < y.numel(); ++i) {
    int64_t rem = i, src = 0;
    for (size_t d = out_shape.size(); d-- > 0;) {
      src += (starts[d] + (rem % out_shape[d]) * steps[d]) * in_strides[d];
      rem /= out_shape[d];
    }
    std::memcpy(static_cast<uint8_t*>(y.raw()) + i * es,
                static_cast<const uint8_t*>(x.raw()) + src * es, es);
  }
  return y;
}

Tensor Gather(const Tensor& data, const Tensor& indices, int64_t axis) {
  if (!data.defined() || !indices.defined()) throw Error("Gather: missing input");
  if (axis < 0 || axis >= data.rank())
    throw Error("Gather: axis " + std::to_string(axis) + " out of range for rank " +
                std::to_string(data.rank()));
  if (indices.dtype() != DType::kI32 && indices.dtype() != DType::kI64)
    throw Error("Gather: indices must be i32 or i64, got " +
                std::string(DTypeName(indices.dtype())));
  const int64_t n = data.shape()[axis];
  std::vector<int64_t> idx = indices.ToInt64Vector();
  for (int64_t& i : idx) {
    if (i < -n || i >= n)
      throw Error("Gather: index " + std::to_string(i) + " out of range for axis " +
                  std::to_string(axis) + " of size " + std::to_string(n));
    if (i < 0) i += n;
  }
  Shape out_shape(data.shape().begin(), data.shape().begin() + axis);
  out_shape.insert(out_shape.end(), indices.shape().begin(), indices.shape().end());
  out_shape.insert(out_shape.end(), data.shape().begin() + axis + 1, data.shape().end());
  Tensor y(data.dtype(), out_shape);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= data.shape()[d];
  for (int64_t d = axis + 1; d < data.rank(); ++d) inner *= data.shape()[d];
  const size_t block = static_cast<size_t>(inner) * DTypeSize(data.dtype());
  const uint8_t* src = static_cast<const uint8_t*>(data.raw());
  uint8_t* dst = static_cast<uint8_t*>(y.raw());
  const int64_t k = static_cast<int64_t>(idx.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < k; ++j)
      std::memcpy(dst + (o * k + j) * block, src + (o * n + idx[j]) * block, block);
  return y;
}

}  // namespace qforge::kernels
