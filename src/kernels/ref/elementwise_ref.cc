// Elementwise kernels: unary ops, broadcasting binary ops, Where and Expand (reference + fast).
#include <array>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <type_traits>

#include "kernels/ref/kernel_util.h"
#include "kernels/x86/vecmath_avx2.h"
#include "qforge/kernels/elementwise.h"
#include "qforge/kernels/isa.h"
#include "qforge/kernels/transform.h"

namespace qforge::kernels {

using detail::DispatchNumeric;
using detail::DispatchNumericOrBool;
using detail::Tag;

std::string_view UnaryOpName(UnaryOp op) {
  switch (op) {
    case UnaryOp::kRelu:
      return "Relu";
    case UnaryOp::kLeakyRelu:
      return "LeakyRelu";
    case UnaryOp::kClip:
      return "Clip";
    case UnaryOp::kSigmoid:
      return "Sigmoid";
    case UnaryOp::kHardSigmoid:
      return "HardSigmoid";
    case UnaryOp::kHardSwish:
      return "HardSwish";
    case UnaryOp::kTanh:
      return "Tanh";
    case UnaryOp::kErf:
      return "Erf";
    case UnaryOp::kGelu:
      return "Gelu";
    case UnaryOp::kGeluTanh:
      return "Gelu(tanh)";
    case UnaryOp::kSqrt:
      return "Sqrt";
    case UnaryOp::kExp:
      return "Exp";
    case UnaryOp::kNeg:
      return "Neg";
    case UnaryOp::kAbs:
      return "Abs";
  }
  return "?";
}

std::string_view BinaryOpName(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd:
      return "Add";
    case BinaryOp::kSub:
      return "Sub";
    case BinaryOp::kMul:
      return "Mul";
    case BinaryOp::kDiv:
      return "Div";
    case BinaryOp::kPow:
      return "Pow";
    case BinaryOp::kMin:
      return "Min";
    case BinaryOp::kMax:
      return "Max";
    case BinaryOp::kEqual:
      return "Equal";
  }
  return "?";
}

namespace {

bool IsHalf(DType t) { return t == DType::kF16 || t == DType::kBF16; }
bool IsNative(DType t) {
  return IsFloat(t) ? (t == DType::kF32 || t == DType::kF64) : IsInteger(t);
}

// ---------------------------------------------------------------------------------------------
// Unary: one scalar function per op, shared by the reference and the fast loops.

// Calls f(fn) with fn: T -> T implementing `op` for element type T. Throws for ops undefined
// on T (callers check UnarySupports first, so the throw is a safety net).
template <typename T, typename F>
void WithUnaryFn(UnaryOp op, const UnaryParams& p, F&& f) {
  switch (op) {
    case UnaryOp::kRelu:
      return f([](T x) { return x > T(0) ? x : T(0); });
    case UnaryOp::kClip: {
      const T lo = detail::FromDouble<T>(p.lo), hi = detail::FromDouble<T>(p.hi);
      // min(max(x, lo), hi): when lo > hi the result is hi, as ONNX specifies.
      return f([lo, hi](T x) {
        T v = x < lo ? lo : x;
        return v > hi ? hi : v;
      });
    }
    case UnaryOp::kNeg:
      return f([](T x) { return detail::WrapNeg(x); });
    case UnaryOp::kAbs:
      if constexpr (std::is_unsigned_v<T>) {
        return f([](T x) { return x; });
      } else {
        return f([](T x) { return x < T(0) ? detail::WrapNeg(x) : x; });
      }
    default:
      break;
  }
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case UnaryOp::kLeakyRelu: {
        const T alpha = static_cast<T>(p.alpha);
        return f([alpha](T x) { return x >= T(0) ? x : alpha * x; });
      }
      case UnaryOp::kSigmoid:
        // Two branches so exp never overflows: both are exact rewrites of 1 / (1 + e^-x).
        return f([](T x) {
          if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
          T e = std::exp(x);
          return e / (T(1) + e);
        });
      case UnaryOp::kHardSigmoid: {
        const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
        return f([alpha, beta](T x) {
          T v = alpha * x + beta;
          v = v < T(0) ? T(0) : v;
          return v > T(1) ? T(1) : v;
        });
      }
      case UnaryOp::kHardSwish:
        return f([](T x) {
          T v = x * static_cast<T>(1.0 / 6.0) + T(0.5);
          v = v < T(0) ? T(0) : v;
          v = v > T(1) ? T(1) : v;
          return x * v;
        });
      case UnaryOp::kTanh:
        return f([](T x) { return std::tanh(x); });
      case UnaryOp::kErf:
        return f([](T x) { return std::erf(x); });
      case UnaryOp::kGelu:
        return f([](T x) {
          return T(0.5) * x * (T(1) + std::erf(x * static_cast<T>(0.70710678118654752440)));
        });
      case UnaryOp::kGeluTanh:
        return f([](T x) {
          const T k = static_cast<T>(0.79788456080286535588);  // sqrt(2 / pi)
          return T(0.5) * x * (T(1) + std::tanh(k * (x + static_cast<T>(0.044715) * x * x * x)));
        });
      case UnaryOp::kSqrt:
        return f([](T x) { return std::sqrt(x); });
      case UnaryOp::kExp:
        return f([](T x) { return std::exp(x); });
      default:
        break;
    }
  }
  throw Error(std::string(UnaryOpName(op)) + ": not defined for this dtype");
}

void CheckUnary(UnaryOp op, DType t) {
  if (!UnarySupports(op, t))
    throw Error(std::string(UnaryOpName(op)) + ": unsupported dtype " + std::string(DTypeName(t)));
}

// Runs `body(x32)` on x converted to f32 and converts the f32 result back to x's dtype.
template <typename F>
Tensor ViaF32(const Tensor& x, F&& body) {
  Tensor r = body(Cast(x, DType::kF32));
  return r.dtype() == DType::kF32 ? Cast(r, x.dtype()) : r;
}

}  // namespace

bool UnarySupports(UnaryOp op, DType t) {
  if (IsFloat(t)) return t == DType::kF32 || t == DType::kF64 || IsHalf(t);
  if (!IsInteger(t)) return false;
  switch (op) {
    case UnaryOp::kRelu:
    case UnaryOp::kClip:
    case UnaryOp::kAbs:
      return true;
    case UnaryOp::kNeg:
      return t == DType::kI8 || t == DType::kI16 || t == DType::kI32 || t == DType::kI64;
    default:
      return false;
  }
}

namespace {

// The vectorized fp32 loop for op, or null when op has none (or the CPU lacks AVX2). Erf /
// Gelu / Exp are polynomial approximations within the bounds stated in x86/vecmath_avx2.h
// (not bit-identical with std::erf / std::exp; tested against them).
using F32Loop = void (*)(const float*, float*, int64_t);
F32Loop FastF32Loop(UnaryOp op) {
  if (ActiveIsa() == Isa::kScalar) return nullptr;
  switch (op) {
    case UnaryOp::kErf:
      return detail::ErfF32__avx2;
    case UnaryOp::kGelu:
      return detail::GeluF32__avx2;
    case UnaryOp::kExp:
      return detail::ExpF32__avx2;
    default:
      return nullptr;
  }
}

}  // namespace

void UnaryF32(UnaryOp op, const UnaryParams& p, const float* x, float* y, int64_t n) {
  if (F32Loop f = FastF32Loop(op)) return f(x, y, n);
  WithUnaryFn<float>(op, p, [&](auto fn) {
    for (int64_t i = 0; i < n; ++i) y[i] = fn(x[i]);
  });
}

Tensor Unary(UnaryOp op, const UnaryParams& p, const Tensor& x) {
  CheckUnary(op, x.dtype());
  if (IsHalf(x.dtype())) return ViaF32(x, [&](const Tensor& x32) { return Unary(op, p, x32); });
  Tensor y = Tensor::Uninitialized(x.dtype(), x.shape());  // every element written below
  if (x.dtype() == DType::kF32) {
    if (F32Loop f = FastF32Loop(op)) {
      const float* xs = x.data<float>();
      float* ys = y.data<float>();
      detail::ParallelChunks(x.numel(), [&](int64_t b, int64_t e) { f(xs + b, ys + b, e - b); });
      return y;
    }
  }
  DispatchNumeric(x.dtype(), UnaryOpName(op), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xs = x.data<T>();
    T* ys = y.data<T>();
    WithUnaryFn<T>(op, p, [&](auto fn) {
      detail::ParallelChunks(x.numel(), [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) ys[i] = fn(xs[i]);
      });
    });
  });
  return y;
}

Tensor UnaryRef(UnaryOp op, const UnaryParams& p, const Tensor& x) {
  CheckUnary(op, x.dtype());
  if (IsHalf(x.dtype())) return ViaF32(x, [&](const Tensor& x32) { return UnaryRef(op, p, x32); });
  Tensor y(x.dtype(), x.shape());
  DispatchNumeric(x.dtype(), UnaryOpName(op), [&](auto tag) {
    using T = typename decltype(tag)::type;
    for (int64_t i = 0; i < x.numel(); ++i)
      WithUnaryFn<T>(op, p, [&](auto fn) { y.data<T>()[i] = fn(x.data<T>()[i]); });
  });
  return y;
}

// ---------------------------------------------------------------------------------------------
// Broadcasting.

Shape BroadcastShape(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    // Align from the right; missing leading dims count as 1.
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      throw Error("shapes " + ShapeToString(a) + " and " + ShapeToString(b) +
                  " cannot be broadcast together");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

namespace {

constexpr int kMaxInputs = 3;

// How K inputs map onto a broadcast output, with dimensions collapsed as far as possible so
// the innermost loop is long. Input strides are in elements, 0 on broadcast dimensions.
// Invariant: the innermost stride of every input is 0 or 1.
struct Plan {
  Shape out;
  int64_t total = 0;
  std::vector<int64_t> dims;                             // collapsed, outer..inner
  std::vector<std::array<int64_t, kMaxInputs>> strides;  // per collapsed dim, per input
};

Plan MakePlan(std::initializer_list<const Shape*> ins, const Shape& out) {
  Plan p;
  p.out = out;
  p.total = NumElements(out);
  const size_t r = out.size();
  std::vector<std::array<int64_t, kMaxInputs>> st(r);
  int k = 0;
  for (const Shape* s : ins) {
    const size_t off = r - s->size();
    int64_t stride = 1;
    for (size_t i = r; i-- > 0;) {
      int64_t d = i < off ? 1 : (*s)[i - off];
      st[i][k] = d == 1 ? 0 : stride;
      stride *= d;
    }
    ++k;
  }
  // Collapse from the innermost dimension outwards, skipping size-1 output dims.
  std::vector<int64_t> dims;
  std::vector<std::array<int64_t, kMaxInputs>> strides;
  for (size_t i = r; i-- > 0;) {
    if (out[i] == 1) continue;
    if (!dims.empty()) {
      bool merge = true;
      for (int j = 0; j < k; ++j) merge &= st[i][j] == strides.back()[j] * dims.back();
      if (merge) {
        dims.back() *= out[i];
        continue;
      }
    }
    dims.push_back(out[i]);
    strides.push_back(st[i]);
  }
  if (dims.empty()) {
    dims.push_back(1);
    strides.push_back({0, 0, 0});
  }
  p.dims.assign(dims.rbegin(), dims.rend());
  p.strides.assign(strides.rbegin(), strides.rend());
  return p;
}

// Calls fn(out_offset, in_offsets, len, inner_strides) for runs of consecutive output elements
// that lie on one innermost row; the runs cover [0, total) exactly once, possibly in parallel.
template <int K, typename Fn>
void ForEachRun(const Plan& p, Fn&& fn) {
  const int r = static_cast<int>(p.dims.size());
  const int64_t n = p.dims.back();
  std::array<int64_t, K> inner;
  for (int k = 0; k < K; ++k) inner[k] = p.strides[r - 1][k];
  detail::ParallelChunks(p.total, [&](int64_t begin, int64_t end) {
    std::vector<int64_t> idx(r, 0);
    std::array<int64_t, K> off{};
    int64_t rem = begin / n, col = begin % n;
    for (int d = r - 2; d >= 0; --d) {
      idx[d] = rem % p.dims[d];
      rem /= p.dims[d];
      for (int k = 0; k < K; ++k) off[k] += idx[d] * p.strides[d][k];
    }
    for (int64_t pos = begin; pos < end;) {
      const int64_t len = std::min(n - col, end - pos);
      std::array<int64_t, K> o;
      for (int k = 0; k < K; ++k) o[k] = off[k] + col * inner[k];
      fn(pos, o, len, inner);
      pos += len;
      col = 0;
      for (int d = r - 2; d >= 0; --d) {
        ++idx[d];
        for (int k = 0; k < K; ++k) off[k] += p.strides[d][k];
        if (idx[d] < p.dims[d]) break;
        for (int k = 0; k < K; ++k) off[k] -= p.dims[d] * p.strides[d][k];
        idx[d] = 0;
      }
    }
  });
}

// Offset of output element i in an input of shape `in` broadcast to `out` (reference helper).
int64_t BroadcastOffset(int64_t i, const Shape& out, const Shape& in) {
  int64_t off = 0, stride = 1;
  const size_t lead = out.size() - in.size();
  for (size_t d = out.size(); d-- > 0;) {
    int64_t coord = i % out[d];
    i /= out[d];
    if (d < lead) continue;
    int64_t dim = in[d - lead];
    if (dim != 1) off += coord * stride;
    stride *= dim;
  }
  return off;
}

// ---------------------------------------------------------------------------------------------
// Binary scalar functions.

template <typename T>
T IntPow(T base, T exp) {
  if constexpr (std::is_signed_v<T>) {
    if (exp < 0) {
      // Truncated 1 / base^|exp|: nonzero only for |base| == 1.
      if (base == 1) return 1;
      if (base == -1) return (exp % 2 == 0) ? T(1) : T(-1);
      return 0;
    }
  }
  T result = 1;
  while (exp > 0) {
    if (exp & 1) result = detail::WrapMul(result, base);
    base = detail::WrapMul(base, base);
    exp = static_cast<T>(exp >> 1);
  }
  return result;
}

// Calls f(fn) with fn: (T, T) -> T for the same-dtype arithmetic ops.
template <typename T, typename F>
void WithBinaryFn(BinaryOp op, F&& f) {
  switch (op) {
    case BinaryOp::kAdd:
      return f([](T a, T b) { return detail::WrapAdd(a, b); });
    case BinaryOp::kSub:
      return f([](T a, T b) { return detail::WrapSub(a, b); });
    case BinaryOp::kMul:
      return f([](T a, T b) { return detail::WrapMul(a, b); });
    case BinaryOp::kDiv:
      if constexpr (std::is_floating_point_v<T>) {
        return f([](T a, T b) { return a / b; });
      } else if constexpr (std::is_signed_v<T>) {
        // b == 0 is rejected before the loop; b == -1 avoids lowest / -1 overflowing.
        return f([](T a, T b) { return b == T(-1) ? detail::WrapNeg(a) : T(a / b); });
      } else {
        return f([](T a, T b) { return T(a / b); });
      }
    case BinaryOp::kPow:
      if constexpr (std::is_floating_point_v<T>) {
        return f([](T a, T b) { return std::pow(a, b); });
      } else {
        return f([](T a, T b) { return IntPow(a, b); });
      }
    case BinaryOp::kMin:
      // The "a != a" test propagates NaN from either side.
      return f([](T a, T b) { return (a < b || a != a) ? a : b; });
    case BinaryOp::kMax:
      return f([](T a, T b) { return (a > b || a != a) ? a : b; });
    case BinaryOp::kEqual:
      break;
  }
  throw Error("internal: WithBinaryFn called for " + std::string(BinaryOpName(op)));
}

// One run of a binary op: c[i] = fn(a[i * sa], b[i * sb]) with sa, sb in {0, 1}. The four
// cases are separate loops so each is a plain vectorizable loop.
template <typename TA, typename TB, typename R, typename Fn>
inline void BinaryRun(const TA* a, int64_t sa, const TB* b, int64_t sb, R* c, int64_t n, Fn fn) {
  if (sa && sb) {
    for (int64_t i = 0; i < n; ++i) c[i] = fn(a[i], b[i]);
  } else if (sb) {
    const TA av = a[0];
    for (int64_t i = 0; i < n; ++i) c[i] = fn(av, b[i]);
  } else if (sa) {
    const TB bv = b[0];
    for (int64_t i = 0; i < n; ++i) c[i] = fn(a[i], bv);
  } else {
    const R v = fn(a[0], b[0]);
    for (int64_t i = 0; i < n; ++i) c[i] = v;
  }
}

template <typename TA, typename TB, typename R, typename Fn>
void BinaryFast(const Tensor& a, const Tensor& b, Tensor& c, Fn fn) {
  const TA* pa = a.data<TA>();
  const TB* pb = b.data<TB>();
  R* pc = c.data<R>();
  if (a.shape() == b.shape() || a.numel() == 1 || b.numel() == 1) {
    // Contiguous fast path: equal shapes or a scalar side (the output is the other's shape or
    // a broadcast of both to the same element count).
    if (a.numel() == c.numel() && b.numel() == c.numel()) {
      detail::ParallelChunks(c.numel(), [&](int64_t s, int64_t e) {
        BinaryRun(pa + s, 1, pb + s, 1, pc + s, e - s, fn);
      });
      return;
    }
    if (b.numel() == 1 && a.numel() == c.numel()) {
      detail::ParallelChunks(
          c.numel(), [&](int64_t s, int64_t e) { BinaryRun(pa + s, 1, pb, 0, pc + s, e - s, fn); });
      return;
    }
    if (a.numel() == 1 && b.numel() == c.numel()) {
      detail::ParallelChunks(
          c.numel(), [&](int64_t s, int64_t e) { BinaryRun(pa, 0, pb + s, 1, pc + s, e - s, fn); });
      return;
    }
  }
  Plan plan = MakePlan({&a.shape(), &b.shape()}, c.shape());
  ForEachRun<2>(plan, [&](int64_t o, const std::array<int64_t, 2>& in, int64_t len,
                          const std::array<int64_t, 2>& s) {
    BinaryRun(pa + in[0], s[0], pb + in[1], s[1], pc + o, len, fn);
  });
}

template <typename TA, typename TB, typename R, typename Fn>
void BinarySlow(const Tensor& a, const Tensor& b, Tensor& c, Fn fn) {
  for (int64_t i = 0; i < c.numel(); ++i) {
    TA x = a.data<TA>()[BroadcastOffset(i, c.shape(), a.shape())];
    TB y = b.data<TB>()[BroadcastOffset(i, c.shape(), b.shape())];
    c.data<R>()[i] = fn(x, y);
  }
}

template <bool kFast>
Tensor BinaryImpl(BinaryOp op, const Tensor& a, const Tensor& b) {
  const std::string name(BinaryOpName(op));
  if (!a.defined() || !b.defined()) throw Error(name + ": missing input");
  if (op != BinaryOp::kPow && a.dtype() != b.dtype())
    throw Error(name + ": inputs have different dtypes (" + std::string(DTypeName(a.dtype())) +
                " and " + std::string(DTypeName(b.dtype())) + ")");
  const Shape out_shape = BroadcastShape(a.shape(), b.shape());
  // f16 / bf16: compute in f32, round back (Equal's bool result needs no rounding).
  if (IsHalf(a.dtype()) || IsHalf(b.dtype())) {
    Tensor a32 = IsHalf(a.dtype()) ? Cast(a, DType::kF32) : a;
    Tensor b32 = IsHalf(b.dtype()) ? Cast(b, DType::kF32) : b;
    Tensor r = BinaryImpl<kFast>(op, a32, b32);
    return (op == BinaryOp::kEqual || !IsHalf(a.dtype())) ? r : Cast(r, a.dtype());
  }
  auto run = [&](auto ta, auto tb, auto tr, Tensor& c, auto fn) {
    using TA = typename decltype(ta)::type;
    using TB = typename decltype(tb)::type;
    using R = typename decltype(tr)::type;
    if constexpr (kFast) {
      BinaryFast<TA, TB, R>(a, b, c, fn);
    } else {
      BinarySlow<TA, TB, R>(a, b, c, fn);
    }
  };
  if (op == BinaryOp::kEqual) {
    Tensor c(DType::kBool, out_shape);
    DispatchNumericOrBool(a.dtype(), name, [&](auto t) {
      using T = typename decltype(t)::type;
      run(t, t, Tag<bool>{}, c, [](T x, T y) { return x == y; });
    });
    return c;
  }
  if (!IsNative(a.dtype()) || !IsNative(b.dtype()))
    throw Error(name + ": unsupported dtype " +
                std::string(DTypeName(IsNative(a.dtype()) ? b.dtype() : a.dtype())));
  Tensor c = Tensor::Uninitialized(a.dtype(), out_shape);  // every element written below
  if (op == BinaryOp::kPow && a.dtype() != b.dtype()) {
    // Mixed-type Pow (ONNX Pow-12+): computed in double, converted to the base's dtype.
    DispatchNumeric(a.dtype(), name, [&](auto ta) {
      DispatchNumeric(b.dtype(), name, [&](auto tb) {
        using TA = typename decltype(ta)::type;
        using TB = typename decltype(tb)::type;
        run(ta, tb, ta, c, [](TA x, TB y) {
          return detail::FromDouble<TA>(std::pow(static_cast<double>(x), static_cast<double>(y)));
        });
      });
    });
    return c;
  }
  DispatchNumeric(a.dtype(), name, [&](auto t) {
    using T = typename decltype(t)::type;
    if constexpr (std::is_integral_v<T>) {
      if (op == BinaryOp::kDiv) {
        for (T v : b.span<T>())
          if (v == T(0)) throw Error(name + ": integer division by zero");
      }
    }
    WithBinaryFn<T>(op, [&](auto fn) { run(t, t, t, c, fn); });
  });
  return c;
}

// Copies element runs for Where / Expand: dispatches on the element size only.
template <typename F>
void DispatchBySize(size_t size, F&& f) {
  switch (size) {
    case 1:
      return f(Tag<uint8_t>{});
    case 2:
      return f(Tag<uint16_t>{});
    case 4:
      return f(Tag<uint32_t>{});
    case 8:
      return f(Tag<uint64_t>{});
    default:
      throw Error("internal: unexpected element size " + std::to_string(size));
  }
}

void CheckWhere(const Tensor& cond, const Tensor& x, const Tensor& y) {
  if (!cond.defined() || !x.defined() || !y.defined()) throw Error("Where: missing input");
  if (cond.dtype() != DType::kBool)
    throw Error("Where: condition must be bool, got " + std::string(DTypeName(cond.dtype())));
  if (x.dtype() != y.dtype())
    throw Error("Where: X and Y have different dtypes (" + std::string(DTypeName(x.dtype())) +
                " and " + std::string(DTypeName(y.dtype())) + ")");
}

}  // namespace

Tensor Binary(BinaryOp op, const Tensor& a, const Tensor& b) { return BinaryImpl<true>(op, a, b); }
Tensor BinaryRef(BinaryOp op, const Tensor& a, const Tensor& b) {
  return BinaryImpl<false>(op, a, b);
}

Tensor Where(const Tensor& cond, const Tensor& x, const Tensor& y) {
  CheckWhere(cond, x, y);
  Tensor out(x.dtype(), BroadcastShape(cond.shape(), BroadcastShape(x.shape(), y.shape())));
  Plan plan = MakePlan({&cond.shape(), &x.shape(), &y.shape()}, out.shape());
  DispatchBySize(DTypeSize(x.dtype()), [&](auto t) {
    using T = typename decltype(t)::type;
    const uint8_t* pc = static_cast<const uint8_t*>(cond.raw());
    const T* px = static_cast<const T*>(x.raw());
    const T* py = static_cast<const T*>(y.raw());
    T* po = static_cast<T*>(out.raw());
    ForEachRun<3>(plan, [&](int64_t o, const std::array<int64_t, 3>& in, int64_t len,
                            const std::array<int64_t, 3>& s) {
      const uint8_t* c = pc + in[0];
      const T* a = px + in[1];
      const T* b = py + in[2];
      for (int64_t i = 0; i < len; ++i) po[o + i] = c[i * s[0]] ? a[i * s[1]] : b[i * s[2]];
    });
  });
  return out;
}

Tensor WhereRef(const Tensor& cond, const Tensor& x, const Tensor& y) {
  CheckWhere(cond, x, y);
  Tensor out(x.dtype(), BroadcastShape(cond.shape(), BroadcastShape(x.shape(), y.shape())));
  const size_t es = DTypeSize(x.dtype());
  for (int64_t i = 0; i < out.numel(); ++i) {
    bool c = static_cast<const uint8_t*>(cond.raw())[BroadcastOffset(i, out.shape(), cond.shape())];
    const Tensor& src = c ? x : y;
    int64_t j = BroadcastOffset(i, out.shape(), src.shape());
    std::memcpy(static_cast<uint8_t*>(out.raw()) + i * es,
                static_cast<const uint8_t*>(src.raw()) + j * es, es);
  }
  return out;
}

Tensor Expand(const Tensor& x, const Shape& shape) {
  if (!x.defined()) throw Error("Expand: missing input");
  for (int64_t d : shape)
    if (d < 0) throw Error("Expand: negative dimension in shape " + ShapeToString(shape));
  Tensor out(x.dtype(), BroadcastShape(x.shape(), shape));
  if (out.numel() == x.numel()) {
    std::memcpy(out.raw(), x.raw(), x.nbytes());
    return out;
  }
  Plan plan = MakePlan({&x.shape()}, out.shape());
  DispatchBySize(DTypeSize(x.dtype()), [&](auto t) {
    using T = typename decltype(t)::type;
    const T* px = static_cast<const T*>(x.raw());
    T* po = static_cast<T*>(out.raw());
    ForEachRun<1>(plan, [&](int64_t o, const std::array<int64_t, 1>& in, int64_t len,
                            const std::array<int64_t, 1>& s) {
      if (s[0]) {
        std::memcpy(po + o, px + in[0], len * sizeof(T));
      } else {
        std::fill(po + o, po + o + len, px[in[0]]);
      }
    });
  });
  return out;
}

}  // namespace qforge::kernels
