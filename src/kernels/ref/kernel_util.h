// Internal helpers for the reference kernels: dtype dispatch, wrapping integer arithmetic,
// checked float->integer conversion and a chunked OpenMP loop.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels::detail {

template <typename T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) for the C type of a natively computable numeric dtype (no f16/bf16/fp8/bool).
// Throws Error("<what>: unsupported dtype X") otherwise.
template <typename F>
decltype(auto) DispatchNumeric(DType t, std::string_view what, F&& f) {
  switch (t) {
    case DType::kF32:
      return f(Tag<float>{});
    case DType::kF64:
      return f(Tag<double>{});
    case DType::kI8:
      return f(Tag<int8_t>{});
    case DType::kU8:
      return f(Tag<uint8_t>{});
    case DType::kI16:
      return f(Tag<int16_t>{});
    case DType::kU16:
      return f(Tag<uint16_t>{});
    case DType::kI32:
      return f(Tag<int32_t>{});
    case DType::kU32:
      return f(Tag<uint32_t>{});
    case DType::kI64:
      return f(Tag<int64_t>{});
    case DType::kU64:
      return f(Tag<uint64_t>{});
    default:
      throw Error(std::string(what) + ": unsupported dtype " + std::string(DTypeName(t)));
  }
}

// Same plus bool (for copies and comparisons).
template <typename F>
decltype(auto) DispatchNumericOrBool(DType t, std::string_view what, F&& f) {
  if (t == DType::kBool) return f(Tag<bool>{});
  return DispatchNumeric(t, what, std::forward<F>(f));
}

// Unsigned type wide enough that arithmetic on it never promotes to (signed) int, so integer
// overflow wraps modulo 2^bits instead of being undefined behaviour.
template <typename T>
using WrapT = std::conditional_t<(sizeof(T) < 4), uint32_t, std::make_unsigned_t<T>>;

template <typename T>
inline T WrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<WrapT<T>>(a) + static_cast<WrapT<T>>(b));
  } else {
    return a + b;
  }
}
template <typename T>
inline T WrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<WrapT<T>>(a) - static_cast<WrapT<T>>(b));
  } else {
    return a - b;
  }
}
template <typename T>
inline T WrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(static_cast<WrapT<T>>(a) * static_cast<WrapT<T>>(b));
  } else {
    return a * b;
  }
}
template <typename T>
inline T WrapNeg(T a) {
  if constexpr (std::is_integral_v<T>) {
    return static_cast<T>(WrapT<T>(0) - static_cast<WrapT<T>>(a));
  } else {
    return -a;
  }
}

// double -> T. For integer T: NaN -> 0, out of range saturates (C++ leaves these undefined;
// ONNX leaves them unspecified, we pick the safe answer). For float T: plain conversion.
template <typename T>
inline T FromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else if constexpr (std::is_integral_v<T>) {
    if (std::isnan(v)) return T(0);
    // The bounds as doubles: lowest is exact (0 or -2^k); max+1 is exact (2^k).
    constexpr double lo = static_cast<double>(std::numeric_limits<T>::lowest());
    constexpr double hi_excl = static_cast<double>(std::numeric_limits<T>::max()) + 1.0;
    if (v <= lo) return std::numeric_limits<T>::lowest();
    if (v >= hi_excl) return std::numeric_limits<T>::max();
    return static_cast<T>(v);
  } else {
    return static_cast<T>(v);
  }
}

// Outputs larger than this many elements are processed in parallel.
inline constexpr int64_t kParallelGrain = int64_t{1} << 15;

// Splits [0, n) into contiguous chunks and calls fn(begin, end) for each, in parallel when n
// is large. fn must not throw (exceptions cannot cross an OpenMP region).
template <typename F>
void ParallelChunks(int64_t n, F&& fn) {
  if (n <= 0) return;
  int64_t chunks = 1;
  if (n >= 2 * kParallelGrain && !omp_in_parallel()) {
    chunks = std::min<int64_t>(n / kParallelGrain, int64_t{4} * omp_get_max_threads());
  }
  if (chunks <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    int64_t begin = n * c / chunks, end = n * (c + 1) / chunks;
    fn(begin, end);
  }
}

}  // namespace qforge::kernels::detail
