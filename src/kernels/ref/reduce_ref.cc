// Reduction kernels (sum, mean, max over axes): reference and [outer, R, inner] fast path.
#include <cmath>
#include <limits>
#include <type_traits>

#include "kernels/ref/kernel_util.h"
#include "qforge/kernels/reduce.h"
#include "qforge/kernels/transform.h"

namespace qforge::kernels {

std::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "ReduceSum";
    case ReduceOp::kMean:
      return "ReduceMean";
    case ReduceOp::kMax:
      return "ReduceMax";
  }
  return "?";
}

namespace {

// Accumulator type: double for floats, 64-bit for integers (wrapping on overflow).
template <typename T>
using AccT = std::conditional_t<std::is_floating_point_v<T>, double,
                                std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

// The accumulation rules, shared by both implementations so they agree bit for bit.
template <typename T>
struct Acc {
  ReduceOp op;
  AccT<T> Init() const {
    if (op != ReduceOp::kMax) return AccT<T>(0);
    if constexpr (std::is_floating_point_v<T>) {
      return -std::numeric_limits<double>::infinity();
    } else {
      return static_cast<AccT<T>>(std::numeric_limits<T>::lowest());
    }
  }
  AccT<T> Add(AccT<T> acc, T v) const {
    const AccT<T> x = static_cast<AccT<T>>(v);
    if (op == ReduceOp::kMax) return (x > acc || x != x) ? x : acc;  // NaN propagates
    return detail::WrapAdd(acc, x);
  }
  T Finish(AccT<T> acc, int64_t count) const {
    if (op == ReduceOp::kMean) {
      if constexpr (std::is_floating_point_v<T>) {
        return static_cast<T>(acc / static_cast<double>(count));  // 0 / 0 = NaN when empty
      } else {
        return count == 0 ? T(0) : static_cast<T>(acc / static_cast<AccT<T>>(count));
      }
    }
    return static_cast<T>(acc);  // integers: wraps modulo 2^bits (C++20)
  }
};

struct Prepared {
  std::vector<bool> reduced;  // per input axis
  Shape out_shape;            // with keepdims applied
  int64_t count = 1;          // elements reduced into each output
};

Prepared Prepare(ReduceOp op, const Tensor& x, std::span<const int64_t> axes, bool keepdims) {
  const std::string name(ReduceOpName(op));
  if (!x.defined()) throw Error(name + ": missing input");
  Prepared p;
  p.reduced.assign(x.rank(), false);
  for (int64_t a : axes) {
    if (a < 0 || a >= x.rank())
      throw Error(name + ": axis " + std::to_string(a) + " out of range for rank " +
                  std::to_string(x.rank()));
    if (p.reduced[a]) throw Error(name + ": axis " + std::to_string(a) + " given twice");
    p.reduced[a] = true;
  }
  for (int64_t d = 0; d < x.rank(); ++d) {
    if (p.reduced[d]) {
      p.count *= x.shape()[d];
      if (keepdims) p.out_shape.push_back(1);
    } else {
      p.out_shape.push_back(x.shape()[d]);
    }
  }
  return p;
}

bool IsHalf(DType t) { return t == DType::kF16 || t == DType::kBF16; }

template <typename T>
void ReduceSlow(const Acc<T>& acc, const Tensor& x, const Prepared& p, Tensor& y) {
  std::vector<AccT<T>> sums(static_cast<size_t>(y.numel()), acc.Init());
  const Shape& s = x.shape();
  // Output strides over the kept axes only (keepdims does not change the linear order).
  std::vector<int64_t> ostride(s.size(), 0);
  int64_t st = 1;
  for (size_t d = s.size(); d-- > 0;) {
    if (p.reduced[d]) continue;
    ostride[d] = st;
    st *= s[d];
  }
  const T* in = x.data<T>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    int64_t rem = i, o = 0;
    for (size_t d = s.size(); d-- > 0;) {
      o += (rem % s[d]) * ostride[d];
      rem /= s[d];
    }
    sums[o] = acc.Add(sums[o], in[i]);
  }
  T* out = y.data<T>();
  for (int64_t o = 0; o < y.numel(); ++o) out[o] = acc.Finish(sums[o], p.count);
}

// Fast path when the reduced axes form one contiguous block after dropping size-1 axes:
// x viewed as [outer, r, inner], reduce the middle. Returns false if not applicable.
template <typename T>
bool ReduceFast(const Acc<T>& acc, const Tensor& x, const Prepared& p, Tensor& y) {
  int64_t outer = 1, r = 1, inner = 1;
  int phase = 0;  // 0: before the reduced block, 1: inside, 2: after
  for (int64_t d = 0; d < x.rank(); ++d) {
    const int64_t n = x.shape()[d];
    if (n == 1) continue;
    if (p.reduced[d]) {
      if (phase == 2) return false;
      phase = 1;
      r *= n;
    } else {
      if (phase == 1) phase = 2;
      (phase == 0 ? outer : inner) *= n;
    }
  }
  const T* in = x.data<T>();
  T* out = y.data<T>();
  // Parallel over output rows when there is enough work; each row is independent.
  const bool parallel = outer > 1 && outer * r * inner >= 2 * detail::kParallelGrain;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t o = 0; o < outer; ++o) {
    std::vector<AccT<T>> sums(static_cast<size_t>(inner), acc.Init());
    const T* base = in + o * r * inner;
    for (int64_t k = 0; k < r; ++k) {
      const T* row = base + k * inner;
      for (int64_t i = 0; i < inner; ++i) sums[i] = acc.Add(sums[i], row[i]);
    }
    for (int64_t i = 0; i < inner; ++i) out[o * inner + i] = acc.Finish(sums[i], p.count);
  }
  return true;
}

template <bool kFast>
Tensor ReduceImpl(ReduceOp op, const Tensor& x, std::span<const int64_t> axes, bool keepdims) {
  Prepared p = Prepare(op, x, axes, keepdims);
  if (IsHalf(x.dtype())) {
    Tensor r = ReduceImpl<kFast>(op, Cast(x, DType::kF32), axes, keepdims);
    return Cast(r, x.dtype());
  }
  Tensor y(x.dtype(), p.out_shape);
  detail::DispatchNumeric(x.dtype(), ReduceOpName(op), [&](auto tag) {
    using T = typename decltype(tag)::type;
    Acc<T> acc{op};
    if (!kFast || !ReduceFast<T>(acc, x, p, y)) ReduceSlow<T>(acc, x, p, y);
  });
  return y;
}

}  // namespace

Tensor Reduce(ReduceOp op, const Tensor& x, std::span<const int64_t> axes, bool keepdims) {
  return ReduceImpl<true>(op, x, axes, keepdims);
}

Tensor ReduceRef(ReduceOp op, const Tensor& x, std::span<const int64_t> axes, bool keepdims) {
  return ReduceImpl<false>(op, x, axes, keepdims);
}

}  // namespace qforge::kernels
