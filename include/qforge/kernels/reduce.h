// Reduction kernels: sum, mean and max over a set of axes.
//
// Accumulation: floating-point inputs accumulate in double (f16/bf16 are computed in f32 and
// rounded back); integer inputs accumulate in 64 bits (wrapping) and are cast back, and an
// integer mean truncates toward zero. Reducing over an empty set of elements gives 0 for Sum,
// NaN for a float Mean (0 for integers), and the lowest value (-Inf for floats) for Max.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "qforge/tensor/tensor.h"

namespace qforge::kernels {

enum class ReduceOp { kSum, kMean, kMax };

std::string_view ReduceOpName(ReduceOp op);

// axes: distinct, in [0, rank) (any order). An empty list reduces nothing (returns a copy of x
// in x's shape); callers implement ONNX's "empty means all" themselves. keepdims keeps reduced
// axes as size 1.
Tensor Reduce(ReduceOp op, const Tensor& x, std::span<const int64_t> axes, bool keepdims);
Tensor ReduceRef(ReduceOp op, const Tensor& x, std::span<const int64_t> axes, bool keepdims);

}  // namespace qforge::kernels
